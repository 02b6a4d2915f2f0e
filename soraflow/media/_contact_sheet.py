"""A contact sheet: one labelled frame per shot, tiled into a PNG."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import ffmpeg

from ..errors import MediaError
from . import _ffmpeg
from ._inputs import own_inputs
from ._probe import ClipProbe, probe_clip

FONT_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def contact_sheet(
    frames: Sequence[tuple[str | os.PathLike, str]],
    out_path: str | os.PathLike,
    columns: int = 4,
    tile_width: int = 320,
) -> Path:
    """Take the middle frame of each clip, label it, tile them ``columns`` wide into a PNG.

    Tiles share the first clip's aspect ratio; other shapes are letterboxed into it.
    """
    if not frames:
        raise MediaError("contact sheet: no clips to take frames from")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    first = probe_clip(frames[0][0], name=frames[0][1])
    tile_height = max(2, round(tile_width * first.height / first.width / 2) * 2)
    with tempfile.TemporaryDirectory(prefix="soraflow-sheet-") as work:
        sources = own_inputs([path for path, _ in frames], Path(work))
        tiles = [
            _labelled_frame(probe_clip(path, name=label), source, label, tile_width, tile_height)
            for (path, label), source in zip(frames, sources)
        ]
        strip = tiles[0] if len(tiles) == 1 else ffmpeg.concat(*tiles, v=1, a=0)
        sheet = strip.filter("tile", f"{columns}x{rows}", padding=4, margin=4, color="black")
        _ffmpeg.run(
            ffmpeg.output(sheet, str(out_path), format="image2", vcodec="png", update=1, **{"frames:v": 1}),
            what=f"contact sheet {out_path.name}",
        )
    return out_path


def _labelled_frame(probe: ClipProbe, source: str, label: str, width: int, height: int):
    # Seeking before -i lands on the keyframe before the middle and decodes up to it: cheap.
    frame = ffmpeg.input(source, ss=f"{probe.duration / 2:.3f}")["v:0"]
    return (
        frame.filter("trim", end_frame=1)
        .filter("setpts", "PTS-STARTPTS")
        .filter("scale", width, height, force_original_aspect_ratio="decrease", force_divisible_by=2)
        .filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2", color="black")
        .filter("setsar", "1")
        .filter(
            "drawtext",
            fontfile=FONT_FILE,
            text=label,
            expansion="none",  # labels are literal text, not %{...} templates
            fontsize=max(12, height // 10),
            fontcolor="white",
            box=1,
            boxcolor="black@0.6",
            boxborderw=6,
            x=10,
            y="h-th-12",
        )
    )
