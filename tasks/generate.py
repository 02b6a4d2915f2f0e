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


@task(name="submit-clip", cache_policy=runtime.NO_CACHE)
def submit_clip(spec: ClipSpec, work_dir: str) -> GeneratedClip:
    s = runtime.settings()
    rate_limit(s.rate_limit_name, strict=True)
    return generation.submit_clip(spec, provider=runtime.provider(), ledger=runtime.ledger(), settings=s, work_dir=Path(work_dir))


@task(name="poll-clip", cache_policy=runtime.NO_CACHE)
def poll_clip(spec: ClipSpec, job_id: str) -> GeneratedClip:
    s = runtime.settings()
    artifact_id = create_progress_artifact(progress=0.0, description=f"clip {spec.label} (job {job_id})")

    def report(_spec, job):
        update_progress_artifact(artifact_id, progress=float(job.progress))

    return generation.poll_clip(spec, job_id, provider=runtime.provider(), ledger=runtime.ledger(), settings=s, on_progress=report)


@task(
    name="generate-clip",
    task_run_name="generate {spec.shot_id} part {spec.part}",
    cache_key_fn=runtime.clip_cache_key("generate"),
    persist_result=True,
    **runtime.RETRY_OPTIONS,
)
def generate_clip(spec: ClipSpec, work_dir: str) -> GeneratedClip:
    """Create once and poll to completion while holding one slot of the submission limit."""
    s = runtime.settings()
    with concurrency(s.concurrency_limit_name, occupy=1, strict=True):
        created = submit_clip(spec, work_dir)
        done = poll_clip(spec, created.job_id)
    return done.model_copy(update={"created_here": created.created_here})
