"""A clip's last frame as a PNG: where the next part of a chained shot starts."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import ffmpeg

from ._ffmpeg import run


def last_frame(clip: str | os.PathLike, dest: Path) -> Path:
    """Write the last decoded frame of ``clip`` to ``dest`` (a PNG, the clip's own size).

    Read from the final second only (``-sseof``), keeping the last frame ffmpeg decodes
    (``-update``): the same clip always gives the same bytes, so a chained part's inputs follow
    from its source's clip key. Written via a temp name, so a reader never sees half a file.
    """
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.{uuid.uuid4().hex[:12]}.png")
    try:
        stream = ffmpeg.input(str(clip), sseof=-1).video.output(str(tmp), update=1, vcodec="png", f="image2")
        run(stream, what=f"last frame of {Path(clip).name}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
