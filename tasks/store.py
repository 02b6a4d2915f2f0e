"""Store: put clips and the film's outputs where the user keeps media (file:// or s3://)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from soraflow import archive
from soraflow.generation import DownloadedClip
from soraflow.plan import ClipSpec
from soraflow.archive import StoredClip

from . import runtime
from .runtime import clean_errors


@task(
    name="store-clip",
    task_run_name="store {spec.shot_id} part {spec.part}",
    # Never answered from a cache: a cached result would claim an object that may have been
    # deleted since. The store checks what is there (a HEAD with the sha256 metadata and the
    # checksum, or the local file's digest) and uploads again only when it is missing or
    # different; a stored clip costs one HEAD to confirm.
    cache_policy=runtime.NO_CACHE,
    **runtime.RETRY_OPTIONS,
)
@clean_errors
def store_clip(spec: ClipSpec, downloaded: DownloadedClip, storage_url: str, title: str) -> StoredClip:
    return archive.store_clip(spec, downloaded, storage_url=storage_url, title=title, settings=runtime.settings(), ledger=runtime.ledger(), session=runtime.aws_session())


@task(name="store-outputs", cache_policy=runtime.NO_CACHE, **runtime.RETRY_OPTIONS)
@clean_errors
def store_outputs(out_dir: str, storage_url: str, title: str, names: list[str], metadata: dict[str, dict[str, str]] | None = None) -> dict[str, dict]:
    return archive.store_outputs(
        Path(out_dir), names, storage_url=storage_url, title=title, settings=runtime.settings(), session=runtime.aws_session(), metadata=metadata
    )
