"""Generating one clip: create once, record, wait for a terminal state (a verified webhook
delivery confirmed by one status call, or polling), download.

Plain functions on a provider and a ledger; the Prefect tasks wrap them with retries, caching
and concurrency limits. Each function first asks the ledger what is already known, so a rerun
resumes where the last run stopped and never pays twice (docs/architecture.md, rule 3).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict

from .errors import (
    AmbiguousCreateError,
    ClipInDoubtError,
    ClipTimeoutError,
    JobLostError,
    MediaError,
    ModerationBlockedError,
    PermanentProviderError,
    ProviderError,
    RetryAfterTooLongError,
    SpendCapError,
    TransientProviderError,
    UntrustedAnswerError,
)
from . import stop
from .ledger import CLIP_REF_LENGTH, ClaimKind, DeliveryWatch, JobHeldError, Ledger, Spend, SpendCaps, owner_id
from .plan import ClipSpec, sha256_file
from .providers.base import CreateRequest, LostCreateSearch, VideoJob, VideoProvider
from .references import prepare_reference
from .settings import Settings

log = logging.getLogger("soraflow.generation")

ProgressCallback = Callable[[ClipSpec, VideoJob], None]
# A job that ended this way was refused for its content (Sora's moderation, Veo's safety filter).
REFUSED_CONTENT_CODES = frozenset({"moderation_blocked", "safety_filtered"})


class GeneratedClip(BaseModel):
    """A finished job (plain data: a Prefect result and a manifest row)."""

    model_config = ConfigDict(frozen=True)

    clip_key: str
    job_id: str
    status: str
    created_here: bool = False


class DownloadedClip(BaseModel):
    model_config = ConfigDict(frozen=True)

    clip_key: str
    job_id: str
    path: str
    sha256: str
    size: int
    thumbnail: str | None = None
    duration: float


def clip_filename(spec: ClipSpec) -> str:
    take = f"-t{spec.take}" if spec.take != 1 else ""
    return f"{spec.shot_id}-p{spec.part}{take}-{spec.clip_key[:16]}.mp4"


# ----------------------------------------------------------------------------------------------
# submit: the claim loop
# ----------------------------------------------------------------------------------------------

# After a lost answer, the provider is searched at once and again after these pauses: a job list
# can lag the create by a moment (a search that cannot prove anything says so at once).
LOST_ANSWER_SEARCH_DELAYS = (0.0, 0.5, 1.5)


def clip_ref(spec: ClipSpec) -> str:
    """How the user names a clip to ``soraflow jobs``: the start of its clip key."""
    return spec.clip_key[:CLIP_REF_LENGTH]


def settle_commands(ref: str) -> str:
    return (
        f"`soraflow jobs adopt {ref} JOB_ID` if you find its job at the provider, "
        f"or `soraflow jobs re-create {ref}` to pay for a new one"
    )


def _in_doubt(spec: ClipSpec, ledger: Ledger, *, code: str, what: str, tried: str) -> ClipInDoubtError:
    """Put the clip in doubt in the ledger; the error says what happened, what was tried, and
    the commands that settle it."""
    reason = " ".join(f"{what}; {tried}".split())  # one line: gateways' messages span several
    ledger.mark_in_doubt(spec.clip_key, code, reason)
    log.error("clip %s is in doubt: %s", spec.label, reason)
    return _doubt_error(spec, reason, code)


def _brief(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utc(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "an unknown time"


def _doubt_error(spec: ClipSpec, reason: str, code: str | None) -> ClipInDoubtError:
    return ClipInDoubtError(
        f"clip {spec.label} is in doubt: {reason}. Nothing was created again; settle it with {settle_commands(clip_ref(spec))}",
        code=code or "in_doubt",
    ).for_shot(spec.shot_id)


def _search(spec: ClipSpec, provider: VideoProvider, ledger: Ledger, since: float) -> LostCreateSearch:
    request = CreateRequest(model=spec.model, size=spec.size, seconds=spec.job_seconds, prompt=spec.prompt)
    return provider.find_lost_create(
        request, since=since, exclude=ledger.known_job_ids(), witnesses=ledger.jobs_recorded_since(since, endpoint=spec.endpoint)
    )


def job_mismatch(job: VideoJob, *, size: str, seconds: int) -> str | None:
    """What the job says it is, where that differs from what was asked (size, length)."""
    wrong = [
        f"{name} {got} (asked {asked})"
        for name, got, asked in (("size", job.size, size), ("seconds", job.seconds, str(seconds)))
        if got is not None and got != asked
    ]
    return ", ".join(wrong) or None


def _mismatch(spec: ClipSpec, job: VideoJob) -> str | None:
    return job_mismatch(job, size=spec.size, seconds=spec.job_seconds)


def _check_model(spec: ClipSpec, job: VideoJob, endpoint: str) -> None:
    # Gateways answer with the upstream model's name for their own aliases (LiteLLM does), so
    # a name that differs is not proof of another product: it is said, not refused. Size and
    # length are what is paid and delivered, and are refused (``_mismatch``).
    if job.model and job.model.rsplit("/", 1)[-1] != spec.model.rsplit("/", 1)[-1]:
        log.warning("clip %s: endpoint %s reports job %s as model %s, asked %s", spec.label, endpoint, job.id, job.model, spec.model)


def _accept_job(spec: ClipSpec, job: VideoJob, *, provider: VideoProvider, ledger: Ledger, how: str) -> None:
    """Check a job a create answered (or a search found) and record it; rule 7 before rule 3."""
    try:
        ledger.record_job(spec.clip_key, job, how=how)
    except JobHeldError as err:
        raise _in_doubt(
            spec, ledger, code="duplicate_job",
            what=f"endpoint {provider.where} answered its create with job {job.id}, which clip {err.holder} already holds",
            tried="that answer was not trusted, and the job this create made (if any) is unknown",
        ) from None
    _check_model(spec, job, provider.where)
    if wrong := _mismatch(spec, job):
        raise _in_doubt(
            spec, ledger, code="job_mismatch",
            what=f"endpoint {provider.where} made job {job.id} with {wrong}",
            tried="the job is paid for but is not what the clip asked",
        )


@dataclass(frozen=True)
class SpendGuard:
    """The spend ledger and the caps a create is reserved under, and the storyboard it is for."""

    spend: Spend
    caps: SpendCaps
    storyboard: str


def submit_clip(
    spec: ClipSpec,
    *,
    provider: VideoProvider,
    ledger: Ledger,
    settings: Settings,
    work_dir: Path,
    before_create: Callable[[], None] | None = None,
    guard: SpendGuard | None = None,
    source: DownloadedClip | None = None,
) -> GeneratedClip:
    """Return the job for ``spec``: the ledger's, one a lost answer made, or exactly one new create.

    A create that may have reached the provider is made again only when the provider proves
    it made nothing (docs/architecture.md, rule 4); otherwise the clip is put *in doubt* and
    left for the user's word (``soraflow jobs``), while its siblings go on.

    ``before_create`` runs only when a create is about to be sent (the Prefect task takes a
    rate-limit slot there): a clip whose job the ledger already has, from this run or another
    worker's, costs no slot.

    ``guard``: every create is reserved under the spend caps before it is sent (refused with
    ``SpendCapError`` when it does not fit, the claim given back), paid once its job is known,
    released when the create certainly made nothing, and kept while it is in doubt.

    ``source``: the downloaded clip ``spec.follows`` names (a chained part starts from its last
    frame, an extension or a remix is made from its job).
    """
    if spec.follows is not None and (source is None or source.clip_key != spec.follows.clip_key):
        raise PermanentProviderError(f"clip {spec.label} is made from {spec.follows.label}, which was not made", code="no_source")
    owner = owner_id()
    waited_since = time.monotonic()
    rate_limited = 0
    rate_limit_wait = 0.0  # seconds this clip has slept on the endpoint's retry-after
    while True:
        claim = ledger.claim_create(
            clip_key=spec.clip_key,
            shot_id=spec.shot_id,
            part=spec.part,
            model=spec.model,
            size=spec.size,
            seconds=spec.seconds,
            prompt_sha256=spec.prompt_sha256,
            owner=owner,
            endpoint=spec.endpoint,
            profile=spec.profile,
            price_usd=spec.price_usd,
        )
        if claim.kind is ClaimKind.HAVE_JOB:
            return GeneratedClip(clip_key=spec.clip_key, job_id=claim.job_id, status="submitted")
        if claim.kind is ClaimKind.IN_DOUBT:
            raise _doubt_error(spec, claim.reason or "an earlier create may have been paid", claim.code)
        if claim.kind is ClaimKind.WAIT:
            if time.monotonic() - waited_since > ledger.lease_seconds + 60:
                raise TransientProviderError(f"another run has held the create of {spec.label} for too long")
            stop.sleep(0.5 + random.random() * 0.5, f"clip {spec.label} was not created")
            continue
        if claim.kind is ClaimKind.RECONCILE:
            # An earlier create (a killed run's, or this run's lost answer) may have made a job.
            search = _search(spec, provider, ledger, claim.since or time.time())
            if search.outcome == "found":
                log.info("clip %s: adopted job %s from an earlier unanswered create (%s)", spec.label, search.job.id, search.tried)
                _accept_job(spec, search.job, provider=provider, ledger=ledger, how="reconciled")
                if guard is not None:
                    guard.spend.settle_open(spec.clip_key, search.job.id)
                return GeneratedClip(clip_key=spec.clip_key, job_id=search.job.id, status=search.job.status)
            if search.outcome == "unknown":
                raise _in_doubt(
                    spec, ledger, code="unanswered_create",
                    what=f"a create sent to endpoint {provider.where} at {_utc(claim.since)} by an earlier run was never answered",
                    tried=search.tried,
                )
            log.info("clip %s: an earlier create made no job (%s); creating it now", spec.label, search.tried)
            if guard is not None:
                guard.spend.release_open(spec.clip_key, f"an earlier create made no job ({search.tried})")

        reference = _first_frame(spec, source, work_dir)
        reservation = _reserve(spec, guard, ledger, owner)
        if before_create is not None:
            before_create()
        if stop.requested():  # asked to stop while waiting for its rate: nothing is sent
            _release(guard, reservation, "the render was stopped before the create was sent")
            ledger.release_claim(spec.clip_key, owner)
            stop.check(f"clip {spec.label} was not created")
        if not ledger.renew_claim(spec.clip_key, owner):
            _release(guard, reservation, "the claim was taken over before the create was sent")
            continue  # taken over while this run waited (its lease ran out): ask the ledger again
        sent_at = time.time()
        try:
            job = _send(spec, provider, source, reference)
        except AmbiguousCreateError as err:
            # A reservation stays while the create may have been paid (found: paid; absent: released).
            # The claim stays ours and 'creating': whoever tries next searches first.
            for delay in LOST_ANSWER_SEARCH_DELAYS:
                time.sleep(delay)  # not cut short: the claim stays 'creating' until this search says
                search = _search(spec, provider, ledger, sent_at)
                if search.outcome == "found":
                    log.info("clip %s: the create's answer was lost; found its job %s (%s)", spec.label, search.job.id, search.tried)
                    _accept_job(spec, search.job, provider=provider, ledger=ledger, how="reconciled")
                    _settle(guard, reservation, search.job.id)
                    return GeneratedClip(clip_key=spec.clip_key, job_id=search.job.id, status=search.job.status, created_here=True)
                if search.outcome == "unknown":
                    raise _in_doubt(
                        spec, ledger, code="unanswered_create",
                        what=f"its create sent to endpoint {provider.where} at {_utc(sent_at)} may have been paid ({_brief(err.detail)})",
                        tried=search.tried,
                    ) from err
            # Proven absent: nothing was made. The retry searches once more before it creates.
            _release(guard, reservation, f"the create's answer was lost and it made no job ({search.tried})")
            raise err.for_shot(spec.shot_id)
        except TransientProviderError as err:
            # Refused before acceptance (429, connection refused): nothing was created.
            _release(guard, reservation, f"refused before acceptance: {_brief(str(err))}")
            ledger.release_claim(spec.clip_key, owner)
            rate_limited += 1
            if err.retry_after is None or rate_limited > settings.transient_retries:
                raise err.for_shot(spec.shot_id)
            delay = min(err.retry_after, settings.retry_max_delay_seconds)
            if err.retry_after > settings.max_retry_after_seconds or rate_limit_wait + delay > settings.max_retry_after_seconds:
                raise RetryAfterTooLongError(
                    f"the endpoint asks to wait {err.retry_after:.0f} s before the next create "
                    f"(rate limited, retry-after) and this clip has waited {rate_limit_wait:.0f} s already; that is "
                    f"beyond SORAFLOW_MAX_RETRY_AFTER_SECONDS={settings.max_retry_after_seconds:.0f}. Nothing was "
                    "created: rerun later, or raise the setting",
                    code="retry_after_too_long",
                    status=err.status,
                    retry_after=err.retry_after,
                ).for_shot(spec.shot_id) from err
            log.warning(
                "clip %s: rate limited by the endpoint; waiting %.0f s as it asks (retry-after), %.0f s so far",
                spec.label, delay, rate_limit_wait,
            )
            stop.sleep(delay + random.random() * 0.25, f"clip {spec.label} was not created")
            rate_limit_wait += delay
            continue
        except ProviderError as err:
            _release(guard, reservation, f"refused: {_brief(err.provider_message)}")
            ledger.mark_failed(spec.clip_key, err.code, err.provider_message)
            raise err.for_shot(spec.shot_id)
        _accept_job(spec, job, provider=provider, ledger=ledger, how="created")
        _settle(guard, reservation, job.id)
        log.info("clip %s: created job %s", spec.label, job.id)
        return GeneratedClip(clip_key=spec.clip_key, job_id=job.id, status=job.status, created_here=True)


def _reserve(spec: ClipSpec, guard: SpendGuard | None, ledger: Ledger, owner: str) -> str | None:
    if guard is None:
        return None
    try:
        return guard.spend.reserve(spec, storyboard=guard.storyboard, owner=owner, caps=guard.caps)
    except SpendCapError:
        ledger.release_claim(spec.clip_key, owner)  # nothing was sent: another run may create it
        raise


def _settle(guard: SpendGuard | None, reservation: str | None, job_id: str) -> None:
    if guard is not None and reservation is not None:
        guard.spend.settle(reservation, job_id)


def _release(guard: SpendGuard | None, reservation: str | None, why: str) -> None:
    if guard is not None and reservation is not None:
        guard.spend.release(reservation, why)


def _first_frame(spec: ClipSpec, source: DownloadedClip | None, work_dir: Path) -> Path | None:
    """The image the clip starts from: its source's last frame (a chained part), else the shot's
    reference fitted to the clip's size, else none."""
    if spec.follows is not None and spec.follows.kind == "last_frame":
        from . import media

        return media.last_frame(source.path, work_dir / "frames" / f"{spec.follows.clip_key}-last.png")
    return prepare_reference(Path(spec.reference_path), spec.size, work_dir / "references") if spec.reference_path else None


def _send(spec: ClipSpec, provider: VideoProvider, source: DownloadedClip | None, first_frame: Path | None) -> VideoJob:
    """The one paid request of a clip: a create (from a first frame and reference images), or an
    extension or a remix of its source's job."""
    kind = spec.follows.kind if spec.follows else "create"
    if kind == "extend":
        return provider.extend(
            source_job_id=source.job_id, model=spec.model, size=spec.size, seconds=spec.seconds, prompt=spec.prompt, audio=spec.audio,
        )
    if kind == "remix":
        return provider.remix(source_job_id=source.job_id, model=spec.model, prompt=spec.prompt)
    return provider.create(
        model=spec.model, size=spec.size, seconds=spec.seconds, prompt=spec.prompt, reference=first_frame, audio=spec.audio,
        reference_images=tuple(Path(p) for p in spec.reference_images), seed=spec.seed,
    )


# ----------------------------------------------------------------------------------------------
# poll: adaptive, deadline-bound, resumable
# ----------------------------------------------------------------------------------------------


@dataclass
class PollClock:
    """When to ask again. The provider's hint wins; else the reported progress; else the profile's pace."""

    expected_total: float
    min_interval: float
    max_interval: float

    def next_interval(self, *, hint: float | None, progress: int, elapsed: float) -> float:
        if hint is not None:
            return max(0.05, min(hint, self.max_interval))
        if progress <= 0:
            # Nothing known yet: look again after a slice of the expected time to learn the pace.
            wait = 0.1 * self.expected_total
        else:
            remaining = elapsed * (100 - progress) / progress
            # Close to the end, sleep just past the estimate rather than in small steps.
            wait = remaining + self.min_interval / 2 if remaining <= 2 * self.min_interval else 0.85 * remaining
        return max(self.min_interval, min(wait, self.max_interval))


KNOWN_STATUSES = frozenset({"queued", "in_progress", "completed", "failed"})


def _checked_poll(spec: ClipSpec, job_id: str, job: VideoJob, *, provider: VideoProvider, ledger: Ledger, warned: set[str]) -> VideoJob:
    """The job as polled, once it is shown to be the one asked about and to make sense (rule 7).

    Progress outside 0-100 is clamped for display and said once; another job's id or a status
    the dialect does not have fails this poll (the job stays recorded: the next run polls it
    again); a size or length other than asked puts the clip in doubt.
    """
    where = f"endpoint {provider.where} (clip {spec.label})"
    if job.id != job_id:
        raise UntrustedAnswerError(f"{where} answered the retrieve of job {job_id} with job {job.id}", code="wrong_job").for_shot(spec.shot_id)
    if job.status not in KNOWN_STATUSES:
        raise UntrustedAnswerError(
            f"{where} reports job {job_id} with status {job.status!r}, not one of {', '.join(sorted(KNOWN_STATUSES))}",
            code="unknown_status",
        ).for_shot(spec.shot_id)
    if wrong := _mismatch(spec, job):
        raise _in_doubt(spec, ledger, code="job_mismatch", what=f"endpoint {provider.where} reports job {job_id} with {wrong}",
                        tried="the job is paid for but is not what the clip asked")
    if not 0 <= job.progress <= 100:
        if "progress" not in warned:
            warned.add("progress")
            log.warning("clip %s: endpoint %s reports progress %s%% for job %s; shown clamped to 0-100", spec.label, provider.where, job.progress, job_id)
        job = job.model_copy(update={"progress": min(100, max(0, job.progress))})
    return job


def poll_clip(
    spec: ClipSpec,
    job_id: str,
    *,
    provider: VideoProvider,
    ledger: Ledger,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] | None = None,
    deliveries: DeliveryWatch | None = None,
) -> GeneratedClip:
    """Wait until ``job_id`` is completed; raise typed errors for failure, loss or deadline.

    A clip whose route waits on webhooks (its endpoint declares them) waits for a delivery in the
    ledger (``deliveries``) and confirms it with one status call, with a slow poll as the safety
    net; any other clip polls, paced by the provider's hint, its progress or its profile.

    The deadline runs from the job's submission; a job polled again after an earlier run gave
    up on it (it is paid for) gets a new deadline from now, so a rerun resumes polling. Between
    polls it sleeps until a stop is requested (``soraflow.stop``): then it ends at once.
    """
    if sleep is None:
        def sleep(seconds: float) -> None:
            stop.sleep(seconds, f"job {job_id} of clip {spec.label} is paid for and recorded; not polled to the end")
    entry = ledger.get(spec.clip_key)
    if entry is not None and entry.job_id == job_id and entry.state == "completed":
        return GeneratedClip(clip_key=spec.clip_key, job_id=job_id, status="completed")
    started = entry.submitted_at if entry and entry.submitted_at else time.time()
    if started + settings.clip_deadline_seconds < time.time():
        log.info("clip %s: job %s outlived an earlier run's deadline; polling it again (it is paid for)", spec.label, job_id)
        started = time.time()
    deadline = started + settings.clip_deadline_seconds
    status = _StatusCalls(spec, job_id, provider=provider, ledger=ledger, settings=settings, on_progress=on_progress)
    if deliveries is not None and spec.route.waits_on_webhooks:
        return _await_delivery(spec, job_id, status=status, deliveries=deliveries, settings=settings, started=started, deadline=deadline)
    clock = PollClock(spec.expected_render_seconds, settings.poll_min_interval_seconds, settings.poll_max_interval_seconds)
    while True:
        job, hint = status.ask(deadline)
        if job is None:  # a transient failure: ask again after a pause
            sleep(status.backoff())
            continue
        if job.status == "completed":
            return GeneratedClip(clip_key=spec.clip_key, job_id=job_id, status="completed")
        now = time.time()
        status.fail_past(deadline, job, now)
        sleep(min(clock.next_interval(hint=hint, progress=job.progress, elapsed=now - started), max(0.05, deadline - now)))


class _StatusCalls:
    """One status call of a clip's job: asked, checked (rule 7), recorded, shown; a failed job
    raises. Shared by polling and by waiting on webhooks, so both trust an answer alike."""

    def __init__(self, spec: ClipSpec, job_id: str, *, provider: VideoProvider, ledger: Ledger, settings: Settings,
                 on_progress: ProgressCallback | None):  # fmt: skip
        self.spec, self.job_id, self.provider, self.ledger, self.settings = spec, job_id, provider, ledger, settings
        self.on_progress = on_progress
        self.transient_streak = 0
        self.warned: set[str] = set()

    def ask(self, deadline: float) -> tuple[VideoJob | None, float | None]:
        """The job and the provider's hint; (None, None) after a transient failure (the SDK
        already retried; the caller asks again later, until the deadline says otherwise)."""
        spec, job_id = self.spec, self.job_id
        try:
            job, hint = self.provider.retrieve(job_id)
            self.transient_streak = 0
        except JobLostError as err:
            self.ledger.mark_lost(spec.clip_key, err.provider_message)
            raise err.for_shot(spec.shot_id)
        except TransientProviderError as err:
            self.transient_streak += 1
            log.warning("clip %s: poll of %s failed (%s); still polling", spec.label, job_id, err)
            if time.time() > deadline:
                raise ClipTimeoutError(
                    f"clip {spec.label} (job {job_id}) did not finish within {self.settings.clip_deadline_seconds:.0f} s",
                    code="deadline",
                ).for_shot(spec.shot_id) from err
            return None, None
        job = _checked_poll(spec, job_id, job, provider=self.provider, ledger=self.ledger, warned=self.warned)
        self.ledger.update_job(spec.clip_key, job)
        if self.on_progress is not None:
            self.on_progress(spec, job)
        if job.status == "failed":
            message = job.error_message or "the provider reported the job failed"
            cls = ModerationBlockedError if job.error_code in REFUSED_CONTENT_CODES else PermanentProviderError
            raise cls(message, code=job.error_code or "failed").for_shot(spec.shot_id)
        return job, hint

    def backoff(self) -> float:
        s = self.settings
        return min(s.poll_max_interval_seconds, s.poll_min_interval_seconds * 2 ** min(self.transient_streak, 6))

    def fail_past(self, deadline: float, job: VideoJob, now: float) -> None:
        if now > deadline:
            raise ClipTimeoutError(
                f"clip {self.spec.label} (job {self.job_id}) still {job.status} at {job.progress}% after "
                f"{self.settings.clip_deadline_seconds:.0f} s (SORAFLOW_CLIP_DEADLINE_SECONDS); it is paid for: "
                "a rerun polls it again",
                code="deadline",
            ).for_shot(self.spec.shot_id)


def _await_delivery(
    spec: ClipSpec, job_id: str, *, status: _StatusCalls, deliveries: DeliveryWatch, settings: Settings, started: float, deadline: float
) -> GeneratedClip:
    """Wait for a verified delivery about the job in the ledger (docs/architecture.md: "A
    delivery is a hint, verified twice").

    A delivery is a hint: it is confirmed by one status call, whose answer is checked like any
    poll's, and only that answer marks the clip done (a delivery that says done while the job is
    not is said, and the clip is looked at again soon). A delivery already acted on is not acted
    on again. The safety net: with no delivery, the provider is asked at the clip's expected
    render time plus ``webhook_safety_poll_seconds``, and as often after that (lost deliveries,
    a dead receiver). Deliveries come through the ledger, so any worker on any host sees them.
    """
    safety = settings.webhook_safety_poll_seconds
    next_look = started + spec.expected_render_seconds + safety
    acted_on = 0  # the newest delivery row already confirmed
    clock = PollClock(spec.expected_render_seconds, settings.poll_min_interval_seconds, settings.poll_max_interval_seconds)
    # A stop request wakes this wait as it wakes every other (soraflow.stop): the job is recorded.
    forget = stop.on_request(lambda _why: deliveries.interrupt())
    try:
        while True:
            delivery = deliveries.wait(
                spec.clip_key, job_id, after=acted_on, timeout=max(0.0, min(next_look, deadline) - time.time()), give_up=stop.requested
            )
            stop.check(f"job {job_id} of clip {spec.label} is paid for and recorded; not waited for to the end")
            if delivery is not None:
                acted_on = delivery.id
            job, hint = status.ask(deadline)
            now = time.time()
            if job is None:  # a transient failure: the next look after a pause, whatever woke this one
                next_look = now + min(status.backoff(), safety)
                continue
            if job.status == "completed":
                how = f"delivery {delivery.delivery_id} confirmed by its status" if delivery else "the safety poll (no delivery came)"
                log.info("clip %s: job %s completed: %s", spec.label, job_id, how)
                return GeneratedClip(clip_key=spec.clip_key, job_id=job_id, status="completed")
            status.fail_past(deadline, job, now)
            if delivery is not None:
                log.warning("clip %s: delivery %s says job %s %s, but endpoint %s reports it %s at %s%%; looking again soon",
                            spec.label, delivery.delivery_id, job_id, delivery.event, status.provider.where, job.status, job.progress)
                next_look = now + min(clock.next_interval(hint=hint, progress=job.progress, elapsed=now - started), safety)
            else:
                next_look = now + safety
    finally:
        forget()


# ----------------------------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------------------------


def download_clip(
    spec: ClipSpec,
    job_id: str,
    *,
    provider: VideoProvider,
    ledger: Ledger,
    work_dir: Path,
    storage=None,
    storage_key: str | None = None,
) -> DownloadedClip:
    """Fetch and validate the clip (and its thumbnail).

    A verified local copy is used as is; a clip already stored is restored from storage.
    Only otherwise is the provider asked (its content expires, the stored copy does not).
    """
    from . import media  # ffprobe-based validation

    dest = work_dir / "clips" / clip_filename(spec)
    thumb = dest.with_suffix(".webp")
    entry = ledger.get(spec.clip_key)
    if entry and entry.sha256 and entry.storage_uri and storage is not None and storage_key and not dest.is_file():
        if storage.exists(storage_key, entry.sha256) is not None:
            storage.get_file(storage_key, dest)
    if entry and entry.sha256 and dest.is_file() and sha256_file(dest) == entry.sha256:
        # The copy kept is checked as a download is: one damaged before this check existed (a
        # cut answer stored whole) is fetched again from its job, which is paid for: no new job.
        try:
            probe = media.validate_clip(dest, expect_size=spec.size, expect_seconds=spec.job_seconds, name=spec.label)
        except MediaError as err:
            log.warning("clip %s: the copy kept of job %s is damaged (%s); fetching it again from endpoint %s",
                        spec.label, job_id, err, provider.where)  # fmt: skip
            dest.unlink(missing_ok=True)
        else:
            return DownloadedClip(
                clip_key=spec.clip_key, job_id=job_id, path=str(dest), sha256=entry.sha256, size=dest.stat().st_size,
                thumbnail=str(thumb) if thumb.is_file() else None, duration=probe.duration,
            )
    try:
        got = provider.download(job_id, dest, variant="video")
    except JobLostError as err:
        # Expired or deleted at the provider, and no copy here or in storage: the ledger marks
        # it lost, so the next create of this clip is a new, deliberate one (render does that).
        ledger.mark_lost(spec.clip_key, err.provider_message)
        raise JobLostError(
            f"clip {spec.label}: job {job_id} is gone at endpoint {provider.where} ({err.provider_message}) and no copy "
            "is kept locally or in storage",
            code=err.code or "not_found",
            status=err.status,
        ).for_shot(spec.shot_id) from err
    except UntrustedAnswerError as err:
        raise UntrustedAnswerError(f"clip {spec.label}: {err.provider_message}", code=err.code).for_shot(spec.shot_id) from err
    try:
        probe = media.validate_clip(dest, expect_size=spec.size, expect_seconds=spec.job_seconds, name=spec.label)
    except MediaError as err:
        dest.unlink(missing_ok=True)
        # A damaged download is fetched again; the job itself is fine and is not re-created.
        raise TransientProviderError(f"downloaded clip {spec.label} failed validation: {err}", code="invalid_media").for_shot(spec.shot_id) from err
    try:
        if "thumbnail" in provider.variants:
            provider.download(job_id, thumb, variant="thumbnail")
    except ProviderError as err:  # a thumbnail is a convenience, never a reason to fail a paid clip
        log.warning("clip %s: no thumbnail from endpoint %s: %s", spec.label, provider.where, err.provider_message)
    ledger.record_download(spec.clip_key, dest, got.sha256)
    return DownloadedClip(
        clip_key=spec.clip_key, job_id=job_id, path=str(dest), sha256=got.sha256, size=got.size,
        thumbnail=str(thumb) if thumb.is_file() else None, duration=probe.duration,
    )
