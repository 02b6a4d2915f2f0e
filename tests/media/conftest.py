"""Real clips made with lavfi (testsrc2 + sine), once per session: mixed sizes, frame rates
and audio layouts, plus the broken files a provider can hand back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import pytest


@dataclass(frozen=True)
class ClipRecipe:
    size: str
    fps: int
    seconds: float
    channels: int | None  # None: no audio track
    sample_rate: int = 48000
    tone_hz: int = 440


RECIPES = {
    # two clips that differ only in content and length: they can be joined by stream copy
    "match_a": ClipRecipe("320x180", 30, 1.0, 2, 48000, 440),
    "match_b": ClipRecipe("320x180", 30, 1.5, 2, 48000, 660),
    "mono_44k": ClipRecipe("640x360", 25, 1.2, 1, 44100, 330),
    "no_audio": ClipRecipe("320x240", 24, 1.0, None),
    "portrait": ClipRecipe("180x320", 30, 1.0, 2, 44100, 550),
}


def make_clip(recipe: ClipRecipe, path: Path) -> Path:
    video = ffmpeg.input(f"testsrc2=s={recipe.size}:r={recipe.fps}:d={recipe.seconds}", f="lavfi")
    streams = [video]
    audio_opts = {}
    if recipe.channels:
        tone = f"sine=f={recipe.tone_hz}:r={recipe.sample_rate}:d={recipe.seconds}"
        streams.append(ffmpeg.input(tone, f="lavfi"))
        audio_opts = {"acodec": "aac", "ac": recipe.channels, "ar": recipe.sample_rate}
    # veryfast (not ultrafast) so the clips have B-frames, like real provider output: the
    # copy path must keep timestamps monotonic across joins of such streams.
    ffmpeg.output(
        *streams, str(path), vcodec="libx264", preset="veryfast", pix_fmt="yuv420p", **audio_opts
    ).run(quiet=True, overwrite_output=True)
    return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    made = {name: make_clip(recipe, folder / f"{name}.mp4") for name, recipe in RECIPES.items()}

    made["empty"] = folder / "empty.mp4"
    made["empty"].write_bytes(b"")
    made["corrupt"] = folder / "corrupt.mp4"
    made["corrupt"].write_bytes(b"this is not a video\n" * 200)
    # The first 4 KiB of a real clip: the header is there, the index (at the end) is not.
    made["truncated"] = folder / "truncated.mp4"
    with open(made["match_a"], "rb") as src:
        made["truncated"].write_bytes(src.read(4096))
    made["audio_only"] = folder / "audio_only.m4a"
    ffmpeg.input("sine=f=440:d=1", f="lavfi").output(str(made["audio_only"]), acodec="aac").run(
        quiet=True, overwrite_output=True
    )
    return made
