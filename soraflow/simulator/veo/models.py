"""The Veo models the simulated Vertex AI serves, and what each accepts.

Values follow Google's Veo 3.1 documentation (November 2026): clips of 4, 6 or 8 s; 16:9 or 9:16;
720p, 1080p or 4k, the two larger at 8 s only; a first-frame image, a last frame, and up to
three "asset" reference images (8 s only; the standard model only); an extension of a video
of 1-30 s by 7 s. Audio is generated when
``generateAudio`` is true, which Veo 3 models require to be stated.
"""

from __future__ import annotations

from dataclasses import dataclass

ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
PERSON_GENERATION = ("allow_adult", "dont_allow", "allow_all")
MAX_REFERENCE_IMAGES = 3
MAX_SAMPLES = 4
# Veo extends a video of 1-30 s (MP4, 16:9 or 9:16) by 7 s; the answer plays both.
EXTENSION_SECONDS = 7
EXTENDED_SOURCE_SECONDS = (1, 30)


@dataclass(frozen=True)
class VeoModel:
    name: str
    seconds: tuple[int, ...] = (4, 6, 8)
    resolutions: tuple[str, ...] = ("720p", "1080p", "4k")
    eight_seconds_only: tuple[str, ...] = ("1080p", "4k")
    last_frame: bool = True
    reference_images: bool = True
    extension: bool = True  # the Veo 3.1 models extend videos (generate_videos with ``video``)


VEO_MODELS: dict[str, VeoModel] = {
    m.name: m
    for m in (
        VeoModel("veo-3.1-generate-001"),
        VeoModel("veo-3.1-fast-generate-001", reference_images=False),
        VeoModel("veo-3.1-generate-preview"),
        VeoModel("veo-3.1-fast-generate-preview", reference_images=False),
    )
}


def profiled(model) -> VeoModel:
    """A model the simulator serves because a profile asks for it (a ``SimulatedModel`` of the
    google-genai dialect): its lengths, and the resolutions its sizes come in."""
    resolutions = tuple(r for r in RESOLUTIONS if any(f"{w}x{h}" in model.sizes for w, h in _both(r)))
    eight_only = tuple(r for r in resolutions if all(model.seconds_at(f"{w}x{h}") == (8,) for w, h in _both(r) if f"{w}x{h}" in model.sizes))
    return VeoModel(model.id, seconds=tuple(model.seconds), resolutions=resolutions, eight_seconds_only=eight_only)


def _both(resolution: str) -> tuple[tuple[int, int], tuple[int, int]]:
    width, height = RESOLUTIONS[resolution]
    return (width, height), (height, width)


def frame_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Pixel size of a clip: 16:9 720p is 1280x720, 9:16 720p is 720x1280."""
    width, height = RESOLUTIONS[resolution]
    return (width, height) if aspect_ratio == "16:9" else (height, width)
