"""Submit and poll: the paid part. One slot of the global limit is held per clip in flight."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.concurrency.sync import concurrency, rate_limit

from soraflow import generation
from soraflow.generation import GeneratedClip
from soraflow.plan import ClipSpec

from . import runtime


def _submit(spec: ClipSpec, work_dir: str) -> GeneratedClip:
    s = runtime.settings()
    return generation.submit_clip(
        spec, provider=runtime.provider_for(spec), ledger=runtime.ledger(), settings=s, work_dir=Path(work_dir),
        # one slot of the requests-per-minute limit per create actually sent: a clip whose job the
        # ledger has (this run's or another worker's) takes none
        before_create=lambda: rate_limit(s.rate_limit_name, strict=True),
    )  # fmt: skip


def _poll(spec: ClipSpec, job_id: str) -> GeneratedClip:
    s = runtime.settings()
    artifact_id = create_progress_artifact(progress=0.0, description=f"clip {spec.label} (job {job_id})")

    shown = [0]

    def report(_spec, job):
        if job.progress != shown[0]:  # each update is a write on the Prefect server
            shown[0] = job.progress
            update_progress_artifact(artifact_id, progress=float(job.progress))

    return generation.poll_clip(spec, job_id, provider=runtime.provider_for(spec), ledger=runtime.ledger(), settings=s, on_progress=report)


@task(
    name="generate-clip",
    task_run_name="generate {spec.shot_id} part {spec.part}",
    cache_key_fn=runtime.clip_cache_key("generate"),
    persist_result=True,
    **runtime.RETRY_OPTIONS,
)
def generate_clip(spec: ClipSpec, work_dir: str) -> GeneratedClip:
    """Create once and poll to completion while holding one slot of the submission limit.

    Submit and poll are plain calls, not nested task runs. Each task run is more writes on the
    Prefect server, and on its SQLite backend (the embedded default) concurrent writes collide
    ("database is locked", a 503 and a 2 s client back-off that stalls Prefect's serialised
    slot queue): 12 clips at 3 s latency took 24-35 s with nested tasks and 16-17 s without
    (on Postgres both took about 9 s). The ledger already makes both steps resumable, and the
    clip's progress artifact shows the poll.
    """
    s = runtime.settings()
    # A failed lease renewal must not abort the polling of a paid job: the slot is given up
    # (Prefect logs it) and the clip goes on.
    # An endpoint whose entry sets ``concurrency`` has a limit of its own: one acquire takes both.
    limits = [s.concurrency_limit_name, *([s.endpoint_limit_name(spec.endpoint)] if spec.route.endpoint.concurrency else [])]
    with concurrency(
        limits, occupy=1, strict=True, lease_duration=s.slot_lease_seconds,
        raise_on_lease_renewal_failure=False,
    ):
        created = _submit(spec, work_dir)
        done = _poll(spec, created.job_id)
    return done.model_copy(update={"created_here": created.created_here})
