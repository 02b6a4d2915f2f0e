"""Generating one clip: create once, record, poll to a terminal state, download.

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
    TransientProviderError,
)
from .ledger import ClaimKind, Ledger, owner_id
from .plan import ClipSpec, sha256_file
from .providers.base import VideoJob, VideoProvider
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
    return f"{spec.shot_id}-p{spec.part}-{spec.clip_key[:16]}.mp4"


# ----------------------------------------------------------------------------------------------
# submit: the claim loop
# ----------------------------------------------------------------------------------------------


def _reconcile(spec: ClipSpec, provider: VideoProvider, ledger: Ledger, since: float | None) -> VideoJob | None:
    """Find a job an earlier, ambiguous create may have made: same parameters and prompt."""
    known = ledger.known_job_ids()
    window_start = int((since or time.time()) - 120)  # allow for clock skew with the provider
    matches = [
        job
        for job in provider.list_jobs(created_after=window_start)
        if job.id not in known
        and job.model in (spec.model, None)
        and job.size == spec.size
        and str(job.seconds) == str(spec.seconds)
        and job.prompt == spec.prompt
        and job.status != "failed"
    ]
    if not matches:
        return None
    return min(matches, key=lambda j: (j.created_at or 0, j.id))


def in_doubt(spec: ClipSpec, provider: VideoProvider, since: float | None, what: str) -> ClipInDoubtError:
    """The error for a clip whose create may have been paid for, when the provider cannot list
    its jobs to show it (rule 4): it names the clip, what happened and what settles it."""
    sent = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if since else "earlier"
    key = spec.clip_key[:16]
    return ClipInDoubtError(
        f"clip {spec.label} is in doubt: a create sent to the {provider.dialect} endpoint at {sent} may have been "
        f"accepted ({what}), and this endpoint cannot list its jobs to show whether it was. It is not created again "
        f"automatically. Settle it: find the operation (for Veo, the Vertex AI operations of model {spec.model}, or "
        f"billing) and run `soraflow jobs adopt {key} OPERATION_NAME`, or pay for it again with `soraflow jobs re-create {key}`",
        code="in_doubt",
        shot_id=spec.shot_id,
    )


def submit_clip(
    spec: ClipSpec, *, provider: VideoProvider, ledger: Ledger, settings: Settings, work_dir: Path
) -> GeneratedClip:
    """Return the job for ``spec``: the ledger's, a reconciled one, or exactly one new create."""
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
        if claim.kind is ClaimKind.WAIT:
            if time.monotonic() - waited_since > ledger.lease_seconds + 60:
                raise TransientProviderError(f"another run has held the create of {spec.label} for too long")
            time.sleep(0.5 + random.random() * 0.5)
            continue
        if claim.kind is ClaimKind.RECONCILE:
            if not provider.finds_lost_creates:
                raise in_doubt(spec, provider, claim.since, "an earlier run sent its create and stopped before the answer was recorded")
            found = _reconcile(spec, provider, ledger, claim.since)
            if found is not None:
                log.info("clip %s: adopted job %s from an earlier unanswered create", spec.label, found.id)
                ledger.record_job(spec.clip_key, found, how="reconciled")
                return GeneratedClip(clip_key=spec.clip_key, job_id=found.id, status=found.status)

        reference = prepare_reference(Path(spec.reference_path), spec.size, work_dir / "references") if spec.reference_path else None
        ledger.renew_claim(spec.clip_key, owner)
        try:
            job = provider.create(model=spec.model, size=spec.size, seconds=spec.seconds, prompt=spec.prompt, reference=reference)
        except AmbiguousCreateError as err:
            # The claim stays ours and 'creating': whoever tries next reconciles first.
            if not provider.finds_lost_creates:
                raise in_doubt(spec, provider, time.time(), err.detail) from err
            for delay in (0.5, 1.5):
                time.sleep(delay)  # the job list can lag the create by a moment
                found = _reconcile(spec, provider, ledger, time.time() - 120)
                if found is not None:
                    ledger.record_job(spec.clip_key, found, how="reconciled")
                    return GeneratedClip(clip_key=spec.clip_key, job_id=found.id, status=found.status, created_here=True)
            raise err.for_shot(spec.shot_id)
        except TransientProviderError as err:
            # Refused before acceptance (429, connection refused): nothing was created.
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
            time.sleep(delay + random.random() * 0.25)
            rate_limit_wait += delay
            continue
        except ProviderError as err:
            ledger.mark_failed(spec.clip_key, err.code, err.provider_message)
            raise err.for_shot(spec.shot_id)
        ledger.record_job(spec.clip_key, job)
        log.info("clip %s: created job %s", spec.label, job.id)
        return GeneratedClip(clip_key=spec.clip_key, job_id=job.id, status=job.status, created_here=True)


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


def poll_clip(
    spec: ClipSpec,
    job_id: str,
    *,
    provider: VideoProvider,
    ledger: Ledger,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> GeneratedClip:
    """Poll ``job_id`` until completed; raise typed errors for failure, loss or deadline."""
    entry = ledger.get(spec.clip_key)
    if entry is not None and entry.job_id == job_id and entry.state == "completed":
        return GeneratedClip(clip_key=spec.clip_key, job_id=job_id, status="completed")
    started = entry.submitted_at if entry and entry.submitted_at else time.time()
    deadline = started + settings.clip_deadline_seconds
    clock = PollClock(spec.expected_render_seconds, settings.poll_min_interval_seconds, settings.poll_max_interval_seconds)
    transient_streak = 0
    while True:
        try:
            job, hint = provider.retrieve(job_id)
            transient_streak = 0
        except JobLostError as err:
            ledger.mark_lost(spec.clip_key, err.provider_message)
            raise err.for_shot(spec.shot_id)
        except TransientProviderError as err:
            # The SDK already retried this read; keep polling until the deadline says otherwise.
            transient_streak += 1
            log.warning("clip %s: poll of %s failed (%s); still polling", spec.label, job_id, err)
            if time.time() > deadline:
                raise ClipTimeoutError(
                    f"clip {spec.label} (job {job_id}) did not finish within {settings.clip_deadline_seconds:.0f} s",
                    code="deadline",
                ).for_shot(spec.shot_id) from err
            sleep(min(settings.poll_max_interval_seconds, settings.poll_min_interval_seconds * 2**min(transient_streak, 6)))
            continue
        ledger.update_job(spec.clip_key, job)
        if on_progress is not None:
            on_progress(spec, job)
        if job.status == "completed":
            return GeneratedClip(clip_key=spec.clip_key, job_id=job_id, status="completed")
        if job.status == "failed":
            message = job.error_message or "the provider reported the job failed"
            cls = ModerationBlockedError if job.error_code in REFUSED_CONTENT_CODES else PermanentProviderError
            raise cls(message, code=job.error_code or "failed").for_shot(spec.shot_id)
        now = time.time()
        if now > deadline:
            raise ClipTimeoutError(
                f"clip {spec.label} (job {job_id}) still {job.status} at {job.progress}% after "
                f"{settings.clip_deadline_seconds:.0f} s (SORAFLOW_CLIP_DEADLINE_SECONDS)",
                code="deadline",
            ).for_shot(spec.shot_id)
        sleep(min(clock.next_interval(hint=hint, progress=job.progress, elapsed=now - started), max(0.05, deadline - now)))


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
        probe = media.probe_clip(dest, name=spec.label)
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
            f"clip {spec.label}: job {job_id} is gone at the provider ({err.provider_message}) and no copy "
            "is kept locally or in storage",
            code=err.code or "not_found",
            status=err.status,
        ).for_shot(spec.shot_id) from err
    try:
        probe = media.validate_clip(dest, expect_size=spec.size, expect_seconds=spec.seconds, name=spec.label)
    except MediaError as err:
        dest.unlink(missing_ok=True)
        # A damaged download is fetched again; the job itself is fine and is not re-created.
        raise TransientProviderError(f"downloaded clip {spec.label} failed validation: {err}", code="invalid_media").for_shot(spec.shot_id) from err
    try:
        if "thumbnail" in provider.variants:
            provider.download(job_id, thumb, variant="thumbnail")
    except ProviderError as err:  # a thumbnail is a convenience, never a reason to fail a paid clip
        log.warning("clip %s: no thumbnail (%s)", spec.label, err)
    ledger.record_download(spec.clip_key, dest, got.sha256)
    return DownloadedClip(
        clip_key=spec.clip_key, job_id=job_id, path=str(dest), sha256=got.sha256, size=got.size,
        thumbnail=str(thumb) if thumb.is_file() else None, duration=probe.duration,
    )
