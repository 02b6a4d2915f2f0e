"""render-storyboard: the journey of one storyboard, from YAML to film."""

from __future__ import annotations

from decimal import Decimal

from prefect import flow, get_run_logger
from prefect.futures import wait
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel

from soraflow import archive, assembly
from soraflow.budget import clips_to_create
from soraflow.errors import JobLostError, ProviderError, SoraflowError
from soraflow.output_lock import hold_output_dir
from soraflow.plan import ClipSpec
from soraflow.settings import Settings
from soraflow.tasks.download import download_clip
from soraflow.tasks.generate import generate_clip
from soraflow.tasks.limits import apply_limits
from soraflow.tasks.prepare import check_availability, check_regeneration_budget, run_preflight
from soraflow.tasks.runtime import ledger, result_storage
from soraflow.tasks.report import publish_estimate, publish_failures, publish_results, publish_spend
from soraflow.tasks.stitch import stitch_film, write_manifest
from soraflow.tasks.store import store_clip, store_outputs

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


class ShotsFailed(SoraflowError):
    """Some shots failed; the others were generated and are kept for the rerun.

    ``failures``: one ``{"shot_id", "part", "error"}`` per failed clip, the error without the
    shot's name (the line that shows it names the shot already).
    """

    def __init__(self, summary: str, failures: list[dict] | None = None):
        super().__init__(summary)
        self.failures = list(failures or [])


@flow(name="render-storyboard", task_runner=ThreadPoolTaskRunner(max_workers=64), log_prints=True)
def render_storyboard(request: RenderRequest = RenderRequest()) -> RenderResult:
    """Render one storyboard into a film: film.mp4, contact_sheet.png and manifest.json.

    Args:
        request: The storyboard (written in the form, or a file on the worker), where the film goes,
            and an optional budget. Clips already paid for are reused, never paid for twice.
    """
    log = get_run_logger()
    settings = Settings()

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
        apply_limits(plan)
        to_create = clips_to_create(plan, ledger())  # their models' availability: in the preflight

        # 2. every clip, concurrently: generate (create once + poll) → download → store
        work_dir = str(out_dir / ".work")
        results = result_storage()

        def submit_clips(specs: list, refresh: bool = False) -> None:
            # Wave by wave, and in each wave every create before any download and every download
            # before any store: a download or a store holds one of the run's threads while it
            # waits for its clip, so submitted first they kept later clips' creates waiting for a
            # thread (48 clips: the last create 11 s after the first), and submitted after what
            # they wait for, no thread waits for work queued behind it. A chained part, an
            # extension or a remix starts once the clip it is made from is downloaded.
            generate = generate_clip.with_options(result_storage=results, refresh_cache=refresh)
            for wave in _waves(specs):
                generated = {s.clip_key: generate.submit(s, work_dir, plan.title, chains[s.follows.clip_key][2] if s.follows else None)
                             for s in wave}  # fmt: skip
                downloaded = {s.clip_key: download_clip.submit(s, generated[s.clip_key], work_dir, storage_url, plan.title) for s in wave}
                for s in wave:
                    stored = store_clip.submit(s, downloaded[s.clip_key], storage_url, plan.title)
                    chains[s.clip_key] = (s, generated[s.clip_key], downloaded[s.clip_key], stored)
            wait([f for spec in specs for f in chains[spec.clip_key][1:]])

        chains: dict = {spec.clip_key: None for spec in plan.clips}  # in plan order: a clip's source comes before it
        submit_clips(plan.clips)

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

        stored_clips, created_here, failures = [], {}, []
        for spec, generated, downloaded, stored in chains.values():
            try:
                stored_clips.append(stored.result())
                # a cached result replays the first run's flag: nothing was created (or paid) now
                created_here[spec.clip_key] = generated.result().created_here and generated.state.name != "Cached"
            except Exception as err:  # noqa: BLE001 - each failed shot is reported, none hides another
                cause = _root_error(generated, downloaded, stored) or _source_failed(spec) or err
                failures.append({"shot_id": spec.shot_id, "part": spec.part, "error": _without_shot(cause)})
        publish_spend(plan)
        if failures:
            publish_failures(plan.title, failures)
            summary = "; ".join(f"shot {f['shot_id']!r} part {f['part']}: {f['error']}" for f in failures)
            head = f"{len(failures)} of {len(plan.clips)} clips failed"
            return Failed(
                message=f"{head}: {summary}",
                data=ShotsFailed(f"{head}; the others are kept, and a rerun regenerates only what failed or changed", failures),
            )

        # 3. assemble in storyboard order, then store and report the outputs
        film = stitch_film(plan, stored_clips, str(out_dir))
        if film.reused:
            log.info("%s is up to date (made from these clips already): not stitched again", film.film)
        outputs = store_outputs(str(out_dir), storage_url, plan.title, [assembly.FILM_NAME, assembly.CONTACT_SHEET_NAME])
        paid = ledger().paid_creates([spec.clip_key for spec in plan.clips])
        manifest = assembly.build_manifest(
            plan, stored_clips, film, created_here=created_here, storage_url=storage_url, outputs=outputs, paid_creates=paid
        )
        manifest_path, stored_manifest = write_manifest(manifest, str(out_dir), storage_url)
        outputs.update(stored_manifest)
        publish_results(manifest, str(out_dir))
        return RenderResult(
            title=plan.title,
            estimated_usd=f"{plan.total_usd:.2f}",
            film=film.film,
            manifest=manifest_path,
            contact_sheet=film.contact_sheet,
            duration_seconds=film.duration,
            billed_usd_this_run=manifest["run"]["billed_usd"],
        )


def _source_failed(spec) -> Exception | None:
    """Why a clip made from another one was not made: its source failed."""
    return SoraflowError(f"not made: it is made from {spec.follows.label}, which failed") if spec.follows else None


def _without_shot(err: Exception) -> str:
    """The error's text for a line that already names the shot and part."""
    return err.detail if isinstance(err, ProviderError) else str(err)


def _waves(specs: list[ClipSpec]) -> list[list[ClipSpec]]:
    """The clips in waves, each clip after the clip it is made from where that one is among them
    (a chained part, an extension, a remix); in plan order within a wave."""
    depth: dict[str, int] = {}
    for spec in specs:  # a clip's source comes before it in the plan
        source = spec.follows.clip_key if spec.follows else None
        depth[spec.clip_key] = depth[source] + 1 if source in depth else 0
    waves: list[list[ClipSpec]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for spec in specs:
        waves[depth[spec.clip_key]].append(spec)
    return waves


def _root_error(*chain) -> Exception | None:
    """The first failure in a clip's chain (a failed stage makes the later ones 'not ready')."""
    for future in chain:
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
