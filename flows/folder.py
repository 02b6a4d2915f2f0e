"""render-folder: render every new or changed storyboard in a folder or an S3 prefix.

Meant for a schedule: drop storyboards into the folder (or bucket) and the next run films them.
Each storyboard is one ``render-storyboard`` subflow; finished ones are skipped by their
sha256, and one failing storyboard does not stop the others.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.states import Completed, Failed

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow import inbox
from soraflow.errors import BudgetExceededError, StoryboardError
from soraflow.tasks import runtime

# No rerun can fix these until the storyboard itself changes.
REJECTIONS = (StoryboardError, BudgetExceededError)


@task(name="mirror-s3-prefix", cache_policy=runtime.NO_CACHE, retries=3, retry_delay_seconds=10)
def mirror_source(source: str, dest: str) -> str:
    return str(inbox.mirror_s3_prefix(source, Path(dest)))


@task(name="scan-folder", cache_policy=runtime.NO_CACHE)
def scan_folder(folder: str, out_root: str) -> list[inbox.InboxItem]:
    return inbox.scan(Path(folder), Path(out_root))


@flow(name="render-folder", log_prints=True)
def render_folder(
    source: str,
    out_root: str = "out",
    storage: str | None = None,
    budget_usd_per_storyboard: float | None = None,
):
    """Render the storyboards (*.yaml, *.yml, *.json) directly in ``source``.

    ``source``: a folder on the worker, or ``s3://bucket/prefix`` (mirrored under
    ``out_root/.inbox``). Outputs go to ``out_root/<storyboard name>/``; ``storage`` is passed
    on to each render (default: each one's output folder).
    """
    log = get_run_logger()
    out = Path(out_root).expanduser().resolve()
    folder = source
    if source.startswith("s3://"):
        folder = mirror_source(source, str(out / ".inbox" / source[5:].strip("/").replace("/", "_")))
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
        if isinstance(error, REJECTIONS):
            inbox.record_outcome(item, "rejected", str(error))
        failed.append(item.name)
        rows.append({"storyboard": item.name, "outcome": "failed", "film": "", "detail": str(error or state.message)[:500]})

    create_table_artifact(key="soraflow-render-folder", table=rows, description=f"Storyboards in {source}")
    summary = {r["storyboard"]: r["outcome"] for r in rows}
    if failed:
        return Failed(message=f"{len(failed)} of {len(items)} storyboard(s) failed: {', '.join(failed)}", data=summary)
    return Completed(message=f"{sum(r['outcome'] == 'rendered' for r in rows)} rendered", data=summary)


__all__ = ["render_folder"]
