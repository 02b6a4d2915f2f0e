"""A contact sheet: one labelled frame per shot, tiled into a PNG.

Memory stays flat in the number of shots: each shot's frame is taken by an ffmpeg of its own
(one H.264 decoder at a time, the film's size) and written as a small PNG tile; one last ffmpeg
tiles those images, read as one image sequence. Opening every clip in one ffmpeg instead holds a
decoder per clip at once (48 clips of 8 s 720p: 1.2 GB; ``bench/bench_contact_sheet.py``).
"""

from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import ffmpeg

from ..errors import MediaError
from . import _ffmpeg
from ._probe import probe_clip

FONT_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
# The most pixels a sheet has: the last ffmpeg holds the whole sheet (about 8 bytes a pixel while
# it tiles and encodes it), so a film of many shots gets smaller tiles, more columns wide, instead
# of a longer sheet: 500 shots at 320 px, 4 wide, were 1,300 x 22,500 px and a 231 MB ffmpeg.
MAX_SHEET_PIXELS = 8_000_000
# The smallest long side a tile is shrunk to (its label stays readable); past that a sheet grows.
MIN_TILE_SIZE = 96
# ffmpegs taking frames at once: most of each one's time is start-up and probing, so two keep a
# 2-core machine busy; memory is this many decoders of one clip (~80 MB each at 720p).
FRAME_WORKERS = 2


def contact_sheet(
    frames: Sequence[tuple[str | os.PathLike, str]],
    out_path: str | os.PathLike,
    columns: int = 4,
    tile_size: int = 320,
    film_size: tuple[int, int] | None = None,
    max_pixels: int = MAX_SHEET_PIXELS,
) -> Path:
    """Take the middle frame of each clip, label it, tile them ``columns`` wide into a PNG.

    Tiles have the film's aspect (``film_size``; default: the first clip's), ``tile_size``
    pixels on their long side; clips of another shape are letterboxed into them. Labels are
    sized to fit their tile, portrait tiles included. Where the tiles would pass ``max_pixels``
    (a film of many shots), they are made smaller (down to ``MIN_TILE_SIZE``) and laid out in
    enough columns for a sheet about as wide as it is tall.
    """
    if not frames:
        raise MediaError("contact sheet: no clips to take frames from")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if film_size is None:
        first = probe_clip(frames[0][0], name=frames[0][1])
        film_size = (first.width, first.height)
    tile_width, tile_height = _tile(film_size, tile_size)
    if len(frames) * tile_width * tile_height > max_pixels:
        shrink = math.sqrt(max_pixels / (len(frames) * tile_width * tile_height))
        tile_width, tile_height = _tile(film_size, max(MIN_TILE_SIZE, int(tile_size * shrink)))
        columns = max(columns, round(math.sqrt(len(frames) * tile_height / tile_width)))
    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    with tempfile.TemporaryDirectory(prefix="soraflow-sheet-") as work:
        tiles = Path(work)

        def take_frame(i: int) -> None:
            path, label = frames[i]
            source = str(Path(path).resolve())  # absolute: never read as a protocol or an option
            middle = probe_clip(path, name=label).duration / 2
            # Seeking before -i lands on the keyframe before the middle and decodes from there;
            # frames no other frame refers to are not decoded (skip_frame=noref), so the tile is
            # the first reference frame from the middle on: a frame or two later, at about half
            # the decoding.
            frame = ffmpeg.input(source, ss=f"{middle:.3f}", skip_frame="noref")["v:0"]
            tile = _labelled_frame(frame, label, tile_width, tile_height)
            _ffmpeg.run(_one_image(tile, tiles / f"{i:04d}.png"), what=f"contact sheet frame of {label!r}")

        with ThreadPoolExecutor(FRAME_WORKERS, thread_name_prefix="contact-sheet") as pool:
            list(pool.map(take_frame, range(len(frames))))  # the first failure is raised
        # The tiles as one image2 sequence: one demuxer and one small decoder, whatever their
        # number. "%%" is a literal "%" in the sequence's pattern.
        pattern = str(tiles).replace("%", "%%") + "/%04d.png"
        strip = ffmpeg.input(pattern, format="image2", start_number=0)
        sheet = strip.filter("tile", f"{columns}x{rows}", padding=4, margin=4, color="black")
        _ffmpeg.run(_one_image(sheet, out_path), what=f"contact sheet {out_path.name}")
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


def _one_image(stream, path: Path):
    return ffmpeg.output(stream, str(path), format="image2", vcodec="png", update=1, **{"frames:v": 1})


def _labelled_frame(frame, label: str, width: int, height: int):
    """The first frame of ``frame`` (a video stream), fitted into the tile and labelled."""
    text, font_size = fit_label(label, width, height)
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
