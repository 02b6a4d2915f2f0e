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
    tile_size: int = 320,
    film_size: tuple[int, int] | None = None,
) -> Path:
    """Take the middle frame of each clip, label it, tile them ``columns`` wide into a PNG.

    Tiles have the film's aspect (``film_size``; default: the first clip's), ``tile_size``
    pixels on their long side; clips of another shape are letterboxed into them. Labels are
    sized to fit their tile, portrait tiles included.
    """
    if not frames:
        raise MediaError("contact sheet: no clips to take frames from")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    if film_size is None:
        first = probe_clip(frames[0][0], name=frames[0][1])
        film_size = (first.width, first.height)
    tile_width, tile_height = _tile(film_size, tile_size)
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


def _tile(film_size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """The tile for a film of this size: its aspect, ``long_side`` pixels on its long side (even)."""
    width, height = film_size
    scale = long_side / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


# DejaVu Sans glyphs average under 0.62 em in width; with the box border and margins this
# keeps a label inside its tile.
_GLYPH_WIDTH_EM = 0.62
_LABEL_MARGIN = 10
_LABEL_BORDER = 6
_MIN_FONT = 8


def fit_label(label: str, width: int, height: int) -> tuple[str, int]:
    """The label and font size that fit the tile's width: the largest size up to a tenth of the
    tile's height, so a portrait tile does not clip it; at the 8 px floor a longer label is
    shortened with an ellipsis."""
    room = width - 2 * (_LABEL_MARGIN + _LABEL_BORDER)
    by_width = int(room / (_GLYPH_WIDTH_EM * max(1, len(label))))
    size = max(_MIN_FONT, min(max(12, height // 10), by_width))
    fits = max(1, int(room / (_GLYPH_WIDTH_EM * size)))
    return (label if len(label) <= fits else label[: max(1, fits - 1)] + "…"), size


def _labelled_frame(probe: ClipProbe, source: str, label: str, width: int, height: int):
    text, font_size = fit_label(label, width, height)
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
            text=text,
            expansion="none",  # labels are literal text, not %{...} templates
            fontsize=font_size,
            fontcolor="white",
            box=1,
            boxcolor="black@0.6",
            boxborderw=_LABEL_BORDER,
            x=_LABEL_MARGIN,
            y="h-th-12",
        )
    )


def thumbnail(image: str | os.PathLike, out_path: str | os.PathLike, width: int = 640) -> Path:
    """A small JPEG of ``image`` (at most ``width`` pixels wide): the contact sheet as it can be
    embedded in a page (tens of kilobytes, where the PNG is hundreds)."""
    out_path = Path(out_path)
    picture = ffmpeg.input(str(image)).filter("scale", f"min({width},iw)", -2)
    _ffmpeg.run(
        ffmpeg.output(picture, str(out_path), format="image2", vcodec="mjpeg", update=1, **{"frames:v": 1, "q:v": 5}),
        what=f"thumbnail {out_path.name}",
    )
    return out_path
