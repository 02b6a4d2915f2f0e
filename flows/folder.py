"""render-folder: render every new or changed storyboard in a folder or an S3 prefix.

Meant for a schedule: drop storyboards into the folder (or bucket) and the next run films them.
Each storyboard is one ``render-storyboard`` subflow; finished ones are skipped by their
sha256, and one failing storyboard does not stop the others.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.states import Completed, Failed

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow import inbox
from soraflow.errors import BudgetExceededError, StorageError, StoryboardError
from soraflow.preflight import PreflightError
from soraflow.tasks import outbound, runtime
from soraflow.tasks.runtime import clean_errors

# No rerun can fix these until the storyboard itself changes.
REJECTIONS = (StoryboardError, BudgetExceededError)


@task(name="mirror-s3-prefix", cache_policy=runtime.NO_CACHE, retries=3, retry_delay_seconds=10)
@clean_errors
def mirror_source(source: str, dest: str) -> str:
    return str(inbox.mirror_s3_prefix(source, Path(dest)))


@task(name="scan-folder", cache_policy=runtime.NO_CACHE)
@clean_errors
def scan_folder(folder: str, out_root: str) -> list[inbox.InboxItem]:
    return inbox.scan(Path(folder), Path(out_root))


@flow(name="render-folder", log_prints=True)
@clean_errors
def render_folder(
    source: str = "inbox",
    out_root: str = "out",
    storage: str = "",
    budget_usd_per_storyboard: float | None = None,
):
    """Render the storyboards (*.yaml, *.yml, *.json) directly in a folder, each into its own folder.

    Args:
        source: The folder on the worker to render storyboards from (created when missing), or an
            s3://bucket/prefix. A relative folder is in the worker's service directory.
        out_root: Where each storyboard's film goes: OUT_ROOT/<storyboard name>/film.mp4.
        storage: Where clips and outputs are also stored: file:///path or s3://bucket/prefix.
            Empty: each storyboard's output folder.
        budget_usd_per_storyboard: Skip a storyboard whose estimate is above this many USD
            (nothing of it is created). Empty: no budget.
    """
    log = get_run_logger()
    out = Path(out_root).expanduser().resolve()
    folder = source
    if source.startswith("s3://"):
        folder = mirror_source(source, str(out / ".inbox" / source[5:].strip("/").replace("/", "_")))
    elif not Path(source).expanduser().is_dir():
        return _start_missing_folder(Path(source).expanduser().absolute(), log)
    items = scan_folder(folder, str(out))

    rows, failed = [], []
    for item in items:
        if not item.to_render:
            rows.append({"storyboard": item.name, "outcome": f"skipped ({item.state})", "film": "", "detail": ""})
            continue
        log.info("rendering %s (%s) into %s", item.name, item.state, item.out_dir)
        state = render_storyboard(
            RenderRequest(
                storyboard_path=str(item.path),
                out_dir=str(item.out_dir),
                storage=storage,
                budget_usd=budget_usd_per_storyboard,
            ),
            return_state=True,
        )
        if state.is_completed():
            result = state.result()
            inbox.record_outcome(item, "finished", result.film)
            rows.append({"storyboard": item.name, "outcome": "rendered", "film": result.film or "", "detail": ""})
            continue
        error = state.result(raise_on_failure=False)
        if isinstance(error, REJECTIONS) or (isinstance(error, PreflightError) and error.in_storyboard):
            inbox.record_outcome(item, "rejected", str(error))
        failed.append(item.name)
        rows.append({"storyboard": item.name, "outcome": "failed", "film": "", "detail": str(error or state.message)[:500]})

    outbound.table_artifact(key="soraflow-render-folder", table=rows, description=f"Storyboards in {source}")
    summary = {r["storyboard"]: r["outcome"] for r in rows}
    if failed:
        return Failed(message=f"{len(failed)} of {len(items)} storyboard(s) failed: {', '.join(failed)}", data=summary)
    return Completed(message=f"{sum(r['outcome'] == 'rendered' for r in rows)} rendered", data=summary)


def _start_missing_folder(folder: Path, log) -> Completed:
    """A new service's inbox does not exist yet: create it (one line says so) and end the run
    Completed, as an empty folder would. A schedule must not fail every 30 minutes for it."""
    try:
        inbox.ensure_folder(folder)
    except StorageError as err:
        log.warning("Nothing to render: %s", err)
        return Completed(message=f"nothing to render: {err}", data={})
    log.info("The storyboard folder %s did not exist: created it, empty. Storyboards put there are rendered by the next run.", folder)
    return Completed(message=f"created the empty storyboard folder {folder}; nothing to render", data={})


__all__ = ["render_folder"]
