"""render-storyboard: the journey of one storyboard, from YAML to film."""

from __future__ import annotations

import queue
from collections import deque
from decimal import Decimal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.exceptions import TerminationSignal
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel

from soraflow import archive, assembly, choices, stop
from soraflow.budget import clips_to_create
from soraflow.errors import JobLostError, ProviderError, SoraflowError, SpendCapError
from soraflow.limits import ALL, wall_time
from soraflow.output_lock import hold_output_dir
from soraflow.plan import ClipSpec, Plan
from soraflow.settings import Settings
from soraflow.tasks.download import download_clip
from soraflow.tasks.generate import generate_clip
from soraflow.tasks.limits import apply_limits
from soraflow.tasks.prepare import check_availability, check_regeneration_budget, plan_again, run_preflight
from soraflow.tasks.runtime import clean_errors, ledger, model_catalog, result_storage
from soraflow.tasks.report import publish_estimate, publish_failures, publish_results, publish_spend
from soraflow.tasks.review import approve_cut, check_retakes, choose_takes, publish_review, record_decision, settle_retakes
from soraflow.tasks.stitch import stitch_film, stitch_review_cut, write_manifest
from soraflow.tasks.store import store_clip, store_outputs

from . import review
from .form import RenderRequest


class RenderResult(BaseModel):
    title: str
    estimated_usd: str
    dry_run: bool = False
    film: str | None = None
    manifest: str | None = None
    contact_sheet: str | None = None
    duration_seconds: float | None = None
    billed_usd_this_run: str | None = None
    c2pa_manifest: str | None = None  # the label of the film's C2PA manifest; None: unsigned
    signed_by: str | None = None


UNSIGNED = ("film.mp4 is not signed: no C2PA signer is configured (set SORAFLOW_PROVENANCE_CERT_CHAIN and "
            "SORAFLOW_PROVENANCE_PRIVATE_KEY, or try `soraflow provenance dev-cert DIR`)")


class ShotsFailed(SoraflowError):
    """Some shots failed; the others were generated and are kept for the rerun.

    ``failures``: one ``{"shot_id", "part", "error"}`` per failed clip, the error without the
    shot's name (the line that shows it names the shot already).
    """

    def __init__(self, summary: str, failures: list[dict] | None = None):
        super().__init__(summary)
        self.failures = list(failures or [])


@flow(name="render-storyboard", task_runner=ThreadPoolTaskRunner(max_workers=64), log_prints=True)
@clean_errors
def render_storyboard(request: RenderRequest = RenderRequest()) -> RenderResult:
    """Render one storyboard into a film: film.mp4, contact_sheet.png and manifest.json.

    Args:
        request: The storyboard (written in the form, or a file on the worker), where the film goes,
            and an optional budget. Clips already paid for are reused, never paid for twice.
    """
    try:
        return _render(request)
    except (KeyboardInterrupt, TerminationSignal) as signal:
        # Prefect's engine cancels the run's tasks next and waits for every running one to end:
        # each clip's wait ends at once (soraflow.stop), and no create starts after this.
        stop.request("terminated" if isinstance(signal, TerminationSignal) else "interrupted")
        raise


def _render(request: RenderRequest) -> RenderResult | Failed:
    log = get_run_logger()
    settings = Settings()
    stop.clear()  # a stop asked of an earlier render in this process is not this one's

    # 1. storyboard → priced plan, and the preflight: every problem known before paying, at once
    path, inline = request.storyboard_source()
    log.info("storyboard: %s", f"the file {path}" if path else "written in the run form")
    cleared = run_preflight(
        path, inline, request.key_secrets, request.out_dir, request.storage or None, request.budget_usd, live=not request.dry_run
    )
    plan, can_pay = cleared.plan, cleared.payable
    publish_estimate(plan)
    log.info("%s", can_pay.describe())
    log.info("%r: %d clips, %d s, estimated $%.2f", plan.title, len(plan.clips), plan.total_seconds, plan.total_usd)
    for note in plan.fitting_notes():
        log.warning("%s", note)
    if request.dry_run:
        return RenderResult(title=plan.title, estimated_usd=f"{plan.total_usd:.2f}", dry_run=True)

    # the output directory: one render writes into it at a time (a second one waits, saying so)
    out_dir, storage_url = archive.resolve_paths(request.out_dir, request.storage or None, settings)
    with hold_output_dir(
        out_dir, run=flow_run.get_name(), title=plan.title, wait_seconds=settings.out_dir_wait_seconds, on_wait=log.warning
    ):
        capacities = apply_limits(plan)
        to_create = clips_to_create(plan, ledger())  # their models' availability: in the preflight
        # The one line about clips waiting their turn under the limits (the terminal shows them
        # queued; a wait that is not expected is said by the clip: other runs' slots, a limit of 0).
        expected = wall_time(plan, model_catalog(), settings, to_create)
        queued = max(0, len(to_create) - expected.in_flight)
        log.info("%s%s", f"{queued} clip(s) queued for their turn under the limits; " if queued else "", expected.describe())

        # 2. every clip, concurrently: generate (create once + poll) → download → store
        work_dir = str(out_dir / ".work")
        results = result_storage()
        window = min(GENERATE_WINDOW_MAX, max(GENERATE_WINDOW_MIN, 2 * capacities.get(ALL, 1)))
        chains: dict[str, list] = {spec.clip_key: [spec, None, None, None] for spec in plan.clips}  # in plan order

        def submit_clips(specs: list[ClipSpec], refresh: bool = False) -> None:
            _run_clips(specs, chains, window=window, generate=generate_clip.with_options(result_storage=results, refresh_cache=refresh),
                       download=lambda s, g: download_clip.submit(s, g, work_dir, storage_url, plan.title),
                       store=lambda s, d: store_clip.submit(s, d, storage_url, plan.title), work_dir=work_dir, title=plan.title)  # fmt: skip

        submit_clips(list(plan.clips))

        # 2b. a job the provider no longer has (expired or deleted), with no copy kept anywhere, can
        # only be generated again: once, said plainly, and billed in the manifest
        lost = [spec for spec, *futures in chains.values() if isinstance(_root_error(*futures), JobLostError)]
        if lost:
            log.warning(
                "%d clip(s) must be generated again: their jobs are gone at the provider and no copy is kept "
                "(%s); estimated $%.2f", len(lost), ", ".join(spec.label for spec in lost), sum(spec.price_usd for spec in lost),
            )
            # the same budget guards them: what this run may have paid so far, plus them
            check_regeneration_budget(lost, sum((c.price_usd for c in to_create), Decimal("0")), request.budget_usd)
            checked = {(c.route, c.model) for c in cleared.to_create}
            if unchecked := [spec for spec in lost if (spec.route, spec.model) not in checked]:
                check_availability(unchecked)  # a retired model is refused before anything is spent
            submit_clips(lost, refresh=True)

        created_here, failures = _outcomes(chains, chains)
        publish_spend(plan)
        if failures:
            publish_failures(plan.title, failures)
            summary = "; ".join(f"shot {f['shot_id']!r} part {f['part']}: {f['error']}" for f in failures)
            head = f"{len(failures)} of {len(plan.clips)} clips failed"
            return Failed(
                message=f"{head}: {summary}",
                data=ShotsFailed(f"{head}; the others are kept, and a rerun regenerates only what failed or changed", failures),
            )

        # 3. the review (review: true): every take is stored; stop for a decision on them, make the
        # retakes it asks for, and stop again until it approves the cut
        if choices.review_needed(plan, ledger(), asked=request.review):
            billed = sum((c.price_usd for c in plan.clips if created_here.get(c.clip_key)), Decimal("0"))
            plan = _review(plan, request, str(out_dir), storage_url, submit_clips, chains, created_here, billed, settings)
        stored_clips = [chains[spec.clip_key][3].result() for spec in plan.clips]

        # 4. assemble the chosen takes in storyboard order, then store and report the outputs
        film = stitch_film(plan, stored_clips, str(out_dir))
        if film.reused:
            log.info("%s is up to date (made from these clips already): not stitched again", film.film)
        if film.c2pa_manifest:
            log.info("film.mp4 is signed: C2PA manifest %s, by %s", film.c2pa_manifest, film.signed_by)
        else:
            log.warning("%s", UNSIGNED)
        outputs = store_outputs(
            str(out_dir), storage_url, plan.title, [assembly.FILM_NAME, assembly.CONTACT_SHEET_NAME],
            metadata={assembly.FILM_NAME: {"c2pa-manifest": film.c2pa_manifest}} if film.c2pa_manifest else None,
        )
        paid = ledger().paid_creates([spec.clip_key for spec in plan.clips])
        manifest = assembly.build_manifest(
            plan, stored_clips, film, created_here=created_here, storage_url=storage_url, outputs=outputs, paid_creates=paid
        )
        manifest_path, stored_manifest = write_manifest(manifest, str(out_dir), storage_url)
        outputs.update(stored_manifest)
        publish_results(manifest, str(out_dir), film.provenance_summary)
        return RenderResult(
            title=plan.title,
            estimated_usd=f"{plan.total_usd:.2f}",
            film=film.film,
            manifest=manifest_path,
            contact_sheet=film.contact_sheet,
            duration_seconds=film.duration,
            billed_usd_this_run=manifest["run"]["billed_usd"],
            c2pa_manifest=film.c2pa_manifest,
            signed_by=film.signed_by,
        )


def _outcomes(chains: dict, keys) -> tuple[dict[str, bool], list[dict]]:
    """Whether each clip of ``keys`` was created by this run, and the failed ones (each with the
    first error in its chain)."""
    created_here, failures = {}, []
    for key in keys:
        spec, generated, downloaded, stored = chains[key]
        try:
            if stored is None:  # an earlier stage failed, or the clip it is made from: never submitted
                raise _root_error(generated, downloaded) or _source_failed(spec) or SoraflowError("not made")
            stored.result()
            # a cached result replays the first run's flag: nothing was created (or paid) now
            created_here[spec.clip_key] = generated.result().created_here and generated.state.name != "Cached"
        except Exception as err:  # noqa: BLE001 - each failed shot is reported, none hides another
            cause = _root_error(generated, downloaded, stored) or _source_failed(spec) or err
            failures.append({"shot_id": spec.shot_id, "part": spec.part, "take": spec.take, "error": _without_shot(cause), "cause": cause})
    for f in failures:
        f["refused"] = isinstance(f.pop("cause"), SpendCapError)
    return created_here, failures


def _review(
    plan: Plan, request: RenderRequest, out_dir: str, storage_url: str, submit_clips, chains: dict, created_here: dict,
    billed: Decimal, settings: Settings,
) -> Plan:
    """Review rounds until one approves: show the takes (review.json, an artifact), wait for the
    decision (pause, or suspend from a deployment), record it, make the retakes it asks for
    (priced, budgeted and capped like any clip; one refused is said and nothing is paid).

    A suspended run resumes from the top: the rounds before it meet their decisions again, and
    each decision is recorded once (the ledger knows it by run and round), so nothing is created
    again. Returns the plan of the approved cut."""
    log = get_run_logger()
    run_id = flow_run.get_id()
    path, inline = request.storyboard_source()
    how_to_open = (
        f"Open the review page with `soraflow review {out_dir}` (or `soraflow review {run_id}`): it plays every take and "
        "resumes this run with your decision. Or resume the run here, in the Prefect UI, with the form."
    )
    round, notes = 0, []
    while True:
        round += 1
        ref = f"{run_id}:{round}"
        if not review.decided_before(round):
            cut = stitch_review_cut(plan, [chains[c.clip_key][3].result() for c in plan.clips], out_dir)
            _, markdown = publish_review(plan, out_dir, storage_url, round, run_id, how_to_open, notes, cut)
            log.warning("review %d of %r: waiting for a decision on %d take(s). %s", round, plan.title,
                        len({(c.shot_id, c.take) for c in plan.clips}), how_to_open)
        else:
            markdown = ""
        decision = review.wait_for_decision(round, markdown, dict(plan.chosen), settings)
        if problems := choices.decision_problems(decision, plan):
            notes = [f"The decision of review {round} was refused, nothing of it was recorded: " + "; ".join(map(str, problems))]
            log.error("%s", notes[0])
            continue
        recorded = record_decision(decision, plan, ref)
        planned = {c.clip_key for c in plan.clips}
        plan = plan_again(path, inline, request.key_secrets)
        retakes = [c for c in plan.clips if c.clip_key not in planned]
        settled: list[tuple[str, int, str, str]] = []
        if retakes:
            refused = check_retakes(retakes, billed, request.budget_usd)
            checked = {(c.route, c.model) for c in plan.clips if c.clip_key in planned}
            if unchecked := [c for c in retakes if (c.route, c.model) not in checked and c.clip_key not in refused]:
                check_availability(unchecked)  # a retired model is refused before anything is spent
            settled += sorted({(c.shot_id, c.take, "refused", why) for c in retakes if (why := refused.get(c.clip_key))})
            made = [c for c in retakes if not any((c.shot_id, c.take) == (s, t) for s, t, *_ in settled)]
            submit_clips(made)
            made_here, failed = _outcomes(chains, [c.clip_key for c in made])
            created_here.update(made_here)
            billed += sum((c.price_usd for c in made if made_here.get(c.clip_key)), Decimal("0"))
            settled += sorted({(f["shot_id"], f["take"], "refused" if f["refused"] else "failed", f"{'refused' if f['refused'] else 'failed'}: {f['error']}") for f in failed})
        if settled:
            settle_retakes(plan.title, settled)
        made_takes = {(c.shot_id, c.take) for c in plan.clips} - {(s, t) for s, t, *_ in settled}
        keep = {d.shot for d in decision.shots if d.keep is not None}
        if chosen := [(s, t) for s, t in recorded.retakes if (s, t) in made_takes and s not in keep and s not in plan.fixed]:
            choose_takes(plan.title, chosen, ref)  # a retake asked for without keep becomes the shot's take once made
        if settled or chosen:
            plan = plan_again(path, inline, request.key_secrets)
        notes = [f"Retake {t} of shot {s!r} {why}" for s, t, _, why in settled]
        if decision.approve:
            approve_cut(plan, ref)
            log.info("review %d approved the cut: %s", round, ", ".join(f"{s} take {t}" for s, t in plan.chosen.items()))
            return plan


def _source_failed(spec) -> Exception | None:
    """Why a clip made from another one was not made: its source failed."""
    return SoraflowError(f"not made: it is made from {spec.follows.label}, which failed") if spec.follows else None


def _without_shot(err: Exception) -> str:
    """The error's text for a line that already names the shot and part."""
    return err.detail if isinstance(err, ProviderError) else str(err)


# Generate tasks submitted ahead of the slots they wait for: twice the clips the limit "all" lets
# run at once (a freed slot finds a clip waiting), within the run's 64 threads (downloads and
# stores need some). Submitting every clip at once held a thread, a task run and a survey of the
# slots every half second per clip: 500 clips, 64 threads busy waiting.
GENERATE_WINDOW_MIN, GENERATE_WINDOW_MAX = 8, 48


def _run_clips(specs: list[ClipSpec], chains: dict[str, list], *, window: int, generate, download, store, work_dir: str, title: str) -> None:
    """Run each clip through generate → download → store, each stage submitted when what it takes
    is done, so no task ever holds a thread waiting for another; at most ``window`` generate
    tasks at once, and a clip made from another (a chained part, an extension, a remix) as soon
    as its source is downloaded, before clips not yet started. ``chains[key]`` gets each stage's
    future (None: not submitted, because an earlier stage or the clip's source failed)."""
    keys = {s.clip_key for s in specs}
    for spec in specs:  # a clip made again (its job lost) or a retake starts a chain afresh
        chains[spec.clip_key] = [spec, None, None, None]
    followers: dict[str, list[ClipSpec]] = {}
    ready: deque[ClipSpec] = deque()
    for spec in specs:  # a clip's source comes before it in the plan
        if spec.follows is not None and spec.follows.clip_key in keys:
            followers.setdefault(spec.follows.clip_key, []).append(spec)
        else:
            ready.append(spec)
    finished: queue.Queue = queue.Queue()
    outstanding = generating = 0

    def track(stage: int, spec: ClipSpec, future) -> None:
        nonlocal outstanding
        chains[spec.clip_key][stage] = future
        outstanding += 1
        future.add_done_callback(lambda f: finished.put((stage, spec, f)))

    while ready or outstanding:
        while ready and generating < window:
            spec = ready.popleft()
            source = chains[spec.follows.clip_key][2] if spec.follows is not None else None
            track(1, spec, generate.submit(spec, work_dir, title, source))
            generating += 1
        while True:  # woken by the next stage to end (a short timeout keeps signals deliverable)
            try:
                stage, spec, future = finished.get(timeout=1.0)
                break
            except queue.Empty:
                continue
        outstanding -= 1
        generating -= stage == 1
        future.wait()  # done already: this keeps its final state (``state`` alone asks the API, which may lag)
        if not future.state.is_completed():
            continue  # its later stages and the clips made from it are not submitted: reported below
        if stage == 1:
            track(2, spec, download(spec, future))
        elif stage == 2:
            track(3, spec, store(spec, future))
            ready.extendleft(reversed(followers.get(spec.clip_key, [])))


def _root_error(*chain) -> Exception | None:
    """The first failure in a clip's chain (a stage after a failed one is never submitted: None)."""
    for future in chain:
        if future is None:
            continue
        future.wait()
        state = future.state
        if state.is_failed() or state.is_crashed():
            try:
                future.result()
            except Exception as err:  # noqa: BLE001
                return err
    return None


def render(request: RenderRequest) -> RenderResult:
    """Run the flow in this process (the CLI's entry point)."""
    return render_storyboard(request)


__all__ = ["RenderRequest", "RenderResult", "render", "render_storyboard"]
