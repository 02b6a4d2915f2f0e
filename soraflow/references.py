"""Reference images: the Videos API wants an image of exactly the output size.

A user's reference rarely has that size, so it is scaled to cover the frame and centre-cropped
(no letterbox bars, which the model would copy). The result is cached by source hash and size.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import ffmpeg

from .errors import MediaError
from .media import error_summary
from .plan import sha256_file


def image_size(path: Path) -> tuple[int, int]:
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as err:
        raise MediaError(f"reference image {path}: {error_summary(err.stderr)}") from None
    stream = next((s for s in info.get("streams", []) if s.get("codec_type") == "video"), None)
    width, height = (int(stream.get(k) or 0) for k in ("width", "height")) if stream else (0, 0)
    if width <= 0 or height <= 0:  # ffprobe names a codec even for bytes that do not decode
        raise MediaError(f"reference image {path}: not a readable image")
    return width, height


def decoded_image_size(path: Path) -> tuple[int, int]:
    """The image's width and height once every byte of it has decoded (ffmpeg with -xerror):
    ffprobe alone reads the header and names a size for a PNG cut in half. MediaError, in
    soraflow's words, otherwise."""
    size = image_size(path)
    try:
        ffmpeg.input(str(path)).output("-", format="null").global_args("-nostdin", "-xerror").run(quiet=True)
    except ffmpeg.Error as err:
        raise MediaError(f"reference image {path}: does not decode ({error_summary(err.stderr)})") from None
    return size


def prepare_reference(source: Path, size: str, cache_dir: Path) -> Path:
    """A PNG of ``size`` made from ``source`` (the source itself when it already fits)."""
    width, height = (int(v) for v in size.split("x"))
    if image_size(source) == (width, height):
        return source
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / f"{sha256_file(source)[:16]}-{size}.png"
    if out.is_file():
        return out
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.png")
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
        raise MediaError(f"reference image {source}: {error_summary(err.stderr)}") from None
    os.replace(tmp, out)
    return out
