"""Submit and wait (a webhook delivery confirmed by one status call, or polling): the paid part,
holding one slot of each of the clip's limits (in the ledger)."""

from __future__ import annotations

import threading
from pathlib import Path

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from soraflow import generation
from soraflow.generation import DownloadedClip, GeneratedClip
from soraflow.ledger import Limit
from soraflow.limits import clip_limits
from soraflow.plan import ClipSpec

from . import outbound, runtime
from .runtime import clean_errors

# What was said about waiting for slots, once per flow run and limit: a clip queued behind this
# run's own clips is the limits working (the terminal shows it queued; the flow logs one summary),
# so only a wait that is not expected is said, once: slots held by other runs, a limit of 0.
_said: set[tuple[str, str, str]] = set()
_said_lock = threading.Lock()


def _first_time(*key: str) -> bool:
    with _said_lock:
        if key in _said:
            return False
        _said.add(key)
        return True


def _submit(spec: ClipSpec, work_dir: str, limits: tuple[Limit, ...], storyboard: str, source: DownloadedClip | None) -> GeneratedClip:
    s = runtime.settings()
    log = get_run_logger()

    def waiting(limit: str, seconds: float) -> None:
        log.info("clip %s: waiting %.1f s for the rate of %s", spec.label, seconds, limit)

    return generation.submit_clip(
        spec, provider=runtime.provider_for(spec), ledger=runtime.ledger(), settings=s, work_dir=Path(work_dir),
        # one token of each rate per create actually sent: a clip whose job the ledger has (this
        # run's or another worker's) takes none
        before_create=lambda: runtime.slots().take_token(limits, on_wait=waiting),
        guard=generation.SpendGuard(runtime.spend(), runtime.spend_caps(), storyboard), source=source,
    )  # fmt: skip


def _poll(spec: ClipSpec, job_id: str) -> GeneratedClip:
    s = runtime.settings()
    artifact_id = outbound.progress_artifact(progress=0.0, description=f"clip {spec.label} (job {job_id})")

    shown = [0]

    def report(_spec, job):
        if job.progress != shown[0]:  # each update is a write on the Prefect server
            shown[0] = job.progress
            outbound.update_progress(artifact_id, progress=float(job.progress))

    # A clip whose endpoint declares webhooks waits for its delivery in the ledger (one status call
    # confirms it); any other is polled.
    deliveries = runtime.delivery_watch() if spec.route.waits_on_webhooks else None
    return generation.poll_clip(
        spec, job_id, provider=runtime.provider_for(spec), ledger=runtime.ledger(), settings=s, on_progress=report, deliveries=deliveries
    )


@task(
    name="generate-clip",
    task_run_name="generate {spec.shot_id} part {spec.part}",
    cache_key_fn=runtime.clip_cache_key("generate"),
    persist_result=True,
    **runtime.RETRY_OPTIONS,
)
@clean_errors
def generate_clip(spec: ClipSpec, work_dir: str, storyboard: str = "", source: DownloadedClip | None = None) -> GeneratedClip:
    """Create once and poll to completion while holding one slot of each of the clip's limits.

    ``source``: the downloaded clip this one is made from (``spec.follows``), so a chained part
    runs after its predecessor; the cache key is the clip key alone, which holds the source's.

    The slots live in the ledger (soraflow.ledger.Slots), not in Prefect's global concurrency
    limits: there each clip cost about a second of server writes, a freed slot reached the next
    clip 3-9 s late, and a killed render's slots were never given back (bench/bench_generate.py).

    Each create is reserved under the spend caps first (the ledger's spend rows), for the
    storyboard titled ``storyboard``.

    Submit and poll are plain calls, not nested task runs: each task run is more writes on the
    Prefect server, and the ledger already makes both steps resumable; the clip's progress
    artifact shows the poll.
    """
    log = get_run_logger()
    limits = clip_limits(spec, runtime.model_catalog(), runtime.settings())

    run = str(flow_run.get_id() or "")

    def waiting(wait) -> None:
        if wait.capacity <= 0:
            if _first_time(run, wait.limit, "empty"):
                log.warning("limit %r has 0 slots: no clip holding it can start until it is raised (%s)", wait.limit, wait.describe())
        elif wait.holders and not any(h.in_this_process for h in wait.holders):
            if _first_time(run, wait.limit, "others"):
                log.warning("clip %s waits for a slot: %s (other runs hold them; this run's clips start as they free them)",
                            spec.label, wait.describe())  # fmt: skip
        else:
            log.debug("clip %s waits for a slot: %s", spec.label, wait.describe())

    def reclaimed(holdings) -> None:
        for h in holdings:
            log.warning("slot of %r taken back from %s (%s): %s", h.limit_name, h.holder, h.pid, h.why_released())

    holder = f"run {flow_run.get_name() or '?'} clip {spec.label}"
    with runtime.slots().hold(limits, clip_key=spec.clip_key, holder=holder, on_wait=waiting, on_reclaim=reclaimed):
        created = _submit(spec, work_dir, limits, storyboard, source)
        done = _poll(spec, created.job_id)
    return done.model_copy(update={"created_here": created.created_here})
