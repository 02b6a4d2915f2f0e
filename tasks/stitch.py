"""Stitch: clips in storyboard order → film, contact sheet and manifest."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from soraflow import assembly
from soraflow.assembly import AssembledFilm
from soraflow.plan import Plan
from soraflow.storing import StoredClip

from . import runtime


@task(name="stitch-film", cache_policy=runtime.NO_CACHE)
def stitch_film(plan: Plan, stored: list[StoredClip], out_dir: str) -> AssembledFilm:
    s = runtime.settings()
    return assembly.assemble(plan, stored, Path(out_dir), transition_seconds=s.transition_seconds, burn_subtitles=s.burn_subtitles)


@task(name="write-manifest", cache_policy=runtime.NO_CACHE)
def write_manifest(manifest: dict, out_dir: str) -> tuple[str, str]:
    """OUT/manifest.json (with this run's facts and links) and the stable copy that is stored."""
    path = Path(out_dir) / assembly.MANIFEST_NAME
    assembly.write_json_atomic(path, manifest)
    stable_dir = Path(out_dir) / ".work" / "stored"
    stable_dir.mkdir(parents=True, exist_ok=True)
    assembly.write_json_atomic(stable_dir / assembly.MANIFEST_NAME, assembly.stable_manifest(manifest))
    return str(path), str(stable_dir)
