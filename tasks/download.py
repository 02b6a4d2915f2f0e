"""Download: stream the clip and thumbnail, validate with ffprobe (or restore it from storage)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from soraflow import archive, generation
from soraflow.generation import DownloadedClip, GeneratedClip
from soraflow.plan import ClipSpec

from . import runtime
from .runtime import clean_errors


@task(
    name="download-clip",
    task_run_name="download {spec.shot_id} part {spec.part}",
    cache_policy=runtime.NO_CACHE,
    **runtime.RETRY_OPTIONS,
)
@clean_errors
def download_clip(spec: ClipSpec, generated: GeneratedClip, work_dir: str, storage_url: str, title: str) -> DownloadedClip:
    s = runtime.settings()
    return generation.download_clip(
        spec,
        generated.job_id,
        provider=runtime.provider_for(spec),
        ledger=runtime.ledger(),
        work_dir=Path(work_dir),
        storage=archive.open_for(storage_url, s, runtime.aws_session()),
        storage_key=archive.clip_storage_key(title, spec),
    )
