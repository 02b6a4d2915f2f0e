"""The film's C2PA manifest definition: what made the film, and from which clips.

Plain data for c2pa's ``Builder`` (c2pa-rs's ManifestDefinition as JSON), made from the plan and
the stored clips. Nothing secret: endpoint identities are URLs without credentials (and go
through ``redact_url`` again here), and a clip's prompt is included only when the storyboard
opts in. The manifest's own fields carry the rest: the storyboard's title, soraflow as the
claim generator, and the time of each action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from .. import __version__
from ..plan import ClipSpec, Plan
from ..redaction import redact_url

CLAIM_GENERATOR = "soraflow"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# Where an ingredient keeps soraflow's facts about its clip (ingredient metadata allows
# namespaced fields of one's own); `soraflow verify` reads its table from here.
CLIP_FIELDS = "org.soraflow.clip"
VIDEO_MP4 = "video/mp4"
AGENT = {"name": CLAIM_GENERATOR, "version": __version__}


@dataclass(frozen=True)
class FilmClip:
    """One generated clip, as an ingredient of the film."""

    path: Path  # the clip's file (its bytes are read by c2pa: a manifest its provider signed comes along)
    shot_id: str
    part: int
    parts: int
    profile: str
    model: str
    endpoint: str
    endpoint_identity: str
    size: str
    seconds: int
    sha256: str
    clip_key: str
    take: int = 1  # which take of its shot (the chosen one)
    retake: bool = False  # a review asked for this take
    in_film: bool = True  # False: a later extension of it plays in the film, so it is an input to that clip
    prompt: str | None = None  # only when the storyboard opts in

    @property
    def label(self) -> str:
        name = f"{self.shot_id} {self.part}/{self.parts}" if self.parts > 1 else self.shot_id
        return f"{name} take {self.take}" if self.take != 1 else name

    @property
    def ingredient_id(self) -> str:
        """The ingredient's id within the definition (actions refer to it)."""
        return f"clip-{self.clip_key}"


@dataclass(frozen=True)
class Stitching:
    """What the stitching did to the clips, for the ``c2pa.edited`` action."""

    method: str  # "copy" (joined as they are) or "normalize" (re-encoded to the film's format)
    size: str
    transitions: list[str] = field(default_factory=list)  # "crossfade into keeper", ...
    subtitles: str | None = None  # "soft track" | "burned in" | None
    fitted: list[str] = field(default_factory=list)  # the plan's fitting notes: clips of another size

    def description(self) -> str:
        what = ["clips joined in storyboard order" + (" as they are" if self.method == "copy" else f", re-encoded to {self.size}")]
        if self.transitions:
            what.append("transitions: " + ", ".join(self.transitions))
        if self.subtitles:
            what.append(f"dialogue as subtitles ({self.subtitles})")
        if self.fitted:
            what.append(f"{len(self.fitted)} shot(s) fitted into {self.size}")
        what.append("chapters per shot")
        return "; ".join(what)


def film_clips(plan: Plan, stored: Mapping[str, tuple[Path, str]]) -> list[FilmClip]:
    """The clips the film is made from, with their files and sha256 (``stored``: clip key →
    (path, sha256)): every clip of each shot's chosen take (an extended clip too, as an input
    of its extension). Takes not chosen are not in the film, so not its ingredients."""
    return [_film_clip(spec, *stored[spec.clip_key], include_prompt=plan.provenance.include_prompts) for spec in plan.chosen_clips]


def _film_clip(spec: ClipSpec, path: Path, sha256: str, *, include_prompt: bool) -> FilmClip:
    return FilmClip(
        path=Path(path),
        shot_id=spec.shot_id,
        part=spec.part,
        parts=spec.parts,
        profile=spec.profile,
        model=spec.model,
        endpoint=spec.endpoint,
        endpoint_identity=redact_url(spec.route.identity),
        size=spec.size,
        seconds=spec.seconds,
        sha256=sha256,
        clip_key=spec.clip_key,
        take=spec.take,
        retake=spec.retake,
        in_film=spec.in_film,
        prompt=spec.prompt if include_prompt else None,
    )


def film_definition(title: str, clips: list[FilmClip], *, when: datetime | None = None) -> dict:
    """The manifest definition: title, claim generator, and the actions known before stitching
    (created by trained algorithmic media, the clips placed). The clips are added as ingredients
    beside it (``ingredient``), each from its file, and the stitching's edits once it is done
    (``edited_action``)."""
    at = _when(when)
    models = sorted({c.model for c in clips})
    placed = [c.ingredient_id for c in clips if c.in_film]
    actions = [
        {
            "action": "c2pa.created",
            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": AGENT,
            "when": at,
            "description": f"every clip generated by a video model ({', '.join(models)}); each clip's model and endpoint are in its ingredient",
        },
        {
            "action": "c2pa.placed",
            "softwareAgent": AGENT,
            "when": at,
            "description": f"{len(placed)} generated clips placed in storyboard order",
            "parameters": {"ingredientIds": placed},
        },
    ]
    return {
        "title": title,
        "format": VIDEO_MP4,
        "claim_generator_info": [AGENT],
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
    }


def edited_action(stitching: Stitching, *, when: datetime | None = None) -> dict:
    """``c2pa.edited``: what the stitching did (joined or re-encoded, transitions, subtitles, fitted sizes)."""
    return {
        "action": "c2pa.edited",
        "softwareAgent": AGENT,
        "when": _when(when),
        "description": stitching.description(),
        "parameters": {
            "assembly": stitching.method,
            "size": stitching.size,
            "transitions": stitching.transitions,
            "subtitles": stitching.subtitles or "none",
            "fitted": stitching.fitted,
        },
    }


def _when(when: datetime | None) -> str:
    return (when or datetime.now(timezone.utc)).isoformat(timespec="seconds")


def ingredient(clip: FilmClip) -> dict:
    """One clip as an ingredient: c2pa reads its file for the rest (its own manifest, if signed)."""
    facts = {
        "shot_id": clip.shot_id,
        "part": clip.part,
        "parts": clip.parts,
        "profile": clip.profile,
        "model": clip.model,
        "endpoint": clip.endpoint,
        "endpoint_identity": clip.endpoint_identity,
        "size": clip.size,
        "seconds": clip.seconds,
        "sha256": clip.sha256,
        "clip_key": clip.clip_key,
        "take": clip.take,
        "retake": clip.retake,
    }
    if clip.prompt is not None:
        facts["prompt"] = clip.prompt
    return {
        "title": f"{clip.label}.mp4",
        "format": VIDEO_MP4,
        "relationship": "componentOf" if clip.in_film else "inputTo",
        "label": clip.ingredient_id,
        "description": f"shot {clip.shot_id} take {clip.take}{' (a retake)' if clip.retake else ''} part {clip.part} of {clip.parts}: "
        f"{clip.seconds} s by {clip.model} at {clip.endpoint}",
        "metadata": {CLIP_FIELDS: facts},
    }


__all__ = [
    "CLAIM_GENERATOR", "CLIP_FIELDS", "FilmClip", "Stitching", "TRAINED_ALGORITHMIC_MEDIA", "edited_action", "film_clips", "film_definition",
    "ingredient",
]
