"""Assembling the film: stored clips in storyboard order → film, contact sheet, manifest."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from . import __version__, media
from .plan import ClipSpec, Plan
from .storing import StoredClip

FILM_NAME = "film.mp4"
MANIFEST_NAME = "manifest.json"
CONTACT_SHEET_NAME = "contact_sheet.png"


class AssembledFilm(BaseModel):
    model_config = ConfigDict(frozen=True)

    film: str
    contact_sheet: str
    duration: float
    method: str
    timeline: list[dict]
    has_subtitles: bool


def subtitle_lines(spec: ClipSpec, duration: float) -> list[media.SubtitleLine]:
    """Spread a clip's dialogue evenly over its duration, in order."""
    if not spec.dialogue:
        return []
    step = duration / len(spec.dialogue)
    return [
        media.SubtitleLine(start=i * step, end=(i + 1) * step - 0.05, text=f"{d.speaker}: {d.line}")
        for i, d in enumerate(spec.dialogue)
    ]


def assemble(plan: Plan, stored: list[StoredClip], out_dir: Path, *, transition_seconds: float, burn_subtitles: bool) -> AssembledFilm:
    by_key = {s.clip_key: s for s in stored}
    segments, opened = [], set()
    for spec in plan.film_clips:  # an extended clip is played by its extension, not twice
        clip = by_key[spec.clip_key]
        segments.append(
            media.FilmSegment(
                path=Path(clip.local_path),
                shot_id=spec.shot_id,
                label=spec.label,
                transition=spec.transition,
                subtitles=subtitle_lines(spec, clip.duration),
                chapter_title=spec.shot_id if spec.shot_id not in opened else None,
            )
        )
        opened.add(spec.shot_id)
    first = plan.clips[0]
    width, height = (int(v) for v in first.size.split("x"))
    out_dir.mkdir(parents=True, exist_ok=True)
    film_path = out_dir / FILM_NAME
    result = media.stitch_film(
        segments,
        film_path,
        media.FilmSpec(
            width=width,
            height=height,
            transition_seconds=transition_seconds,
            burn_subtitles=burn_subtitles,
            title=plan.title,
            metadata={
                "comment": f"AI-generated video made with {', '.join(plan.models)} by soraflow",
                "ai_generated": "true",
            },
        ),
    )
    sheet = out_dir / CONTACT_SHEET_NAME
    firsts = [(Path(by_key[c.clip_key].local_path), c.shot_id) for c in plan.clips if c.part == 1]
    media.contact_sheet(firsts, sheet)
    return AssembledFilm(
        film=str(film_path),
        contact_sheet=str(sheet),
        duration=result.duration,
        method=result.method,
        timeline=[dict(t) if isinstance(t, dict) else _timeline_row(t) for t in result.timeline],
        has_subtitles=result.has_subtitles,
    )


def _timeline_row(entry) -> dict:
    if hasattr(entry, "model_dump"):
        return entry.model_dump()
    if hasattr(entry, "__dataclass_fields__"):
        return {k: getattr(entry, k) for k in entry.__dataclass_fields__}
    shot_id, start, end = entry
    return {"shot_id": shot_id, "start": start, "end": end}


def build_manifest(
    plan: Plan,
    stored: list[StoredClip],
    film: AssembledFilm | None,
    *,
    created_here: dict[str, bool],
    storage_url: str,
    outputs: dict[str, dict] | None = None,
    paid_creates: dict[str, int] | None = None,
) -> dict:
    """The manifest: what was made, from what, where it is, and what it cost.

    ``paid_creates`` (from the ledger) counts, per clip, every create that may have been paid:
    a clip generated again after its job was lost, or created again at the user's word after a
    create in doubt, is billed for each. A clip the ledger does not know was paid once.
    """
    by_key = {s.clip_key: s for s in stored}
    clips = []
    billed_seconds, billed = 0, Decimal("0")  # what the film's clips cost: every create paid for them
    run_seconds, run_billed = 0, Decimal("0")  # what this run created
    for spec in plan.clips:
        s = by_key.get(spec.clip_key)
        new = created_here.get(spec.clip_key, False)
        creates = max(1, (paid_creates or {}).get(spec.clip_key, 1))
        if s is not None:
            billed_seconds += spec.seconds * creates
            billed += spec.price_usd * creates
            if new:
                run_seconds += spec.seconds
                run_billed += spec.price_usd
        clips.append(
            {
                "shot_id": spec.shot_id,
                "part": spec.part,
                "parts": spec.parts,
                "clip_key": spec.clip_key,
                "job_id": s.job_id if s else None,
                "profile": spec.profile,
                "model": spec.model,
                "endpoint": spec.endpoint,
                "size": spec.size,
                "seconds": spec.seconds,
                "audio": spec.audio,
                "price_usd": f"{spec.price_usd:.2f}",
                "paid_creates": creates,
                "sha256": s.sha256 if s else None,
                "storage_uri": s.uri if s else None,
                "link": s.link if s else None,
                "generated_this_run": new,
                "prompt_sha256": spec.prompt_sha256,
                # made from another clip of the film: its last frame, an extension of it, or a remix
                "made_from": {"kind": spec.follows.kind, "clip_key": spec.follows.clip_key} if spec.follows else None,
                "in_film": spec.in_film,
            }
        )
    return {
        "soraflow_version": __version__,
        "title": plan.title,
        # Each endpoint the film used, by name, with its identity (a URL without credentials).
        "endpoints": {name: route.identity for name, route in sorted(plan.routes.items())},
        "storage": storage_url,
        "ai_generated": True,
        "models": plan.models,
        "film": (
            {
                "path": FILM_NAME,
                "duration_seconds": round(film.duration, 3),
                "assembly": film.method,
                "subtitles": film.has_subtitles,
                "timeline": film.timeline,
            }
            if film
            else None
        ),
        "outputs": outputs or {},
        "clips": clips,
        "totals": {
            "clips": len(plan.clips),
            "planned_seconds": plan.total_seconds,
            "estimated_usd": f"{plan.total_usd:.2f}",
            "billed_seconds": billed_seconds,
            "billed_usd": f"{billed:.2f}",
        },
        # What this run did: only in the local manifest and the run's artifacts (see stable_manifest).
        "run": {
            "rendered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "billed_seconds": run_seconds,
            "billed_usd": f"{run_billed:.2f}",
            "reused_clips": sum(1 for c in clips if c["job_id"] and not c["generated_this_run"]),
        },
    }


# Fields that change from run to run although the film does not.
_RUN_ONLY_CLIP_FIELDS = ("generated_this_run",)
_RUN_ONLY_OUTPUT_FIELDS = ("uploaded",)


def stable_manifest(manifest: dict) -> dict:
    """The manifest as stored next to the film: without this run's facts.

    A rerun of an unchanged storyboard then writes the same bytes, so the stored copy is not
    uploaded again. No manifest holds a presigned link: it would carry the access key id and
    session token (``soraflow link`` makes one when it is wanted).
    """
    stable = {k: v for k, v in manifest.items() if k != "run"}
    stable["clips"] = [{k: v for k, v in c.items() if k not in _RUN_ONLY_CLIP_FIELDS} for c in manifest["clips"]]
    stable["outputs"] = {
        name: {k: v for k, v in out.items() if k not in _RUN_ONLY_OUTPUT_FIELDS} for name, out in manifest["outputs"].items()
    }
    return stable


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
