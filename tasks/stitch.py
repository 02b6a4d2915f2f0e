"""Stitch: clips in storyboard order → film (signed with its C2PA manifest when a signer is configured), contact sheet and manifest."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from soraflow import archive, assembly
from soraflow.assembly import AssembledFilm
from soraflow.plan import Plan
from soraflow.archive import StoredClip

from . import runtime
from .runtime import clean_errors


@task(name="stitch-film", cache_policy=runtime.NO_CACHE)
@clean_errors
def stitch_film(plan: Plan, stored: list[StoredClip], out_dir: str) -> AssembledFilm:
    s = runtime.settings()
    return assembly.assemble(
        plan, stored, Path(out_dir), transition_seconds=s.transition_seconds, burn_subtitles=s.burn_subtitles,
        signing=runtime.signing_credentials(),  # built here: the key is never a task parameter
    )


@task(name="stitch-review-cut", cache_policy=runtime.NO_CACHE)
@clean_errors
def stitch_review_cut(plan: Plan, stored: list[StoredClip], out_dir: str) -> str:
    """The chosen takes stitched as the film would be (OUT/.work/review-cut.mp4), for the review
    page to play; its file:// URI."""
    s = runtime.settings()
    cut = assembly.review_cut(plan, stored, Path(out_dir) / ".work", transition_seconds=s.transition_seconds, burn_subtitles=s.burn_subtitles)
    return cut.resolve().as_uri()


@task(name="write-manifest", cache_policy=runtime.NO_CACHE, **runtime.RETRY_OPTIONS)
@clean_errors
def write_manifest(manifest: dict, out_dir: str, storage_url: str) -> tuple[str, dict[str, dict]]:
    """OUT/manifest.json (with this run's facts), and the stable manifest stored beside the film."""
    path = Path(out_dir) / assembly.MANIFEST_NAME
    assembly.write_json_atomic(path, manifest)
    stored = archive.store_manifest(
        assembly.stable_manifest(manifest), Path(out_dir), assembly.MANIFEST_NAME, storage_url=storage_url,
        title=manifest["title"], settings=runtime.settings(), session=runtime.aws_session(),
    )
    return str(path), stored
