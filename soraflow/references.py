"""Reference images: the Videos API wants an image of exactly the output size.

A user's reference rarely has that size, so it is scaled to cover the frame and centre-cropped
(no letterbox bars, which the model would copy). The result is cached by source hash and size.
"""

from __future__ import annotations

import os
from pathlib import Path

import ffmpeg

from .errors import MediaError
from .plan import sha256_file


def image_size(path: Path) -> tuple[int, int]:
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as err:
        raise MediaError(f"reference image {path}: {err.stderr.decode(errors='replace').strip()[-300:]}") from None
    stream = next((s for s in info.get("streams", []) if s.get("codec_type") == "video"), None)
    if stream is None:
        raise MediaError(f"reference image {path}: not an image")
    return int(stream["width"]), int(stream["height"])


def prepare_reference(source: Path, size: str, cache_dir: Path) -> Path:
    """A PNG of ``size`` made from ``source`` (the source itself when it already fits)."""
    width, height = (int(v) for v in size.split("x"))
    if image_size(source) == (width, height):
        return source
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / f"{sha256_file(source)[:16]}-{size}.png"
    if out.is_file():
        return out
    tmp = out.with_name(f".{out.name}.{os.getpid()}.png")
    try:
        (
            ffmpeg.input(str(source))
            .filter("scale", width, height, force_original_aspect_ratio="increase")
            .filter("crop", width, height)
            .output(str(tmp), vframes=1)
            .overwrite_output()
            .run(quiet=True)
        )
    except ffmpeg.Error as err:
        raise MediaError(f"reference image {source}: {err.stderr.decode(errors='replace').strip()[-300:]}") from None
    os.replace(tmp, out)
    return out
