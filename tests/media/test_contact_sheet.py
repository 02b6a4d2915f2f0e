from __future__ import annotations

import json
import subprocess
import sys

import ffmpeg
import pytest

from soraflow.errors import MediaError
from soraflow.media import contact_sheet

TILE, MARGIN = (320, 180), 4


def test_contact_sheet_tiles_one_labelled_frame_per_shot(clips, tmp_path):
    shots = [
        (clips["match_a"], "dawn"),
        (clips["mono_44k"], "keeper's lantern: 100%"),
        (clips["portrait"], "stairs"),
        (clips["no_audio"], "storm"),
        (clips["match_a"], "dawn again"),  # the same clip twice
    ]
    sheet = contact_sheet(shots, tmp_path / "sheet.png", columns=3)

    info = ffmpeg.probe(str(sheet), v="error")["streams"][0]
    assert info["codec_name"] == "png"
    # 3 x 2 tiles of 320x180 with a 4 px margin and 4 px padding
    assert (info["width"], info["height"]) == (4 + 3 * 320 + 2 * 4 + 4, 4 + 2 * 180 + 4 + 4)
    # the sixth cell is empty and black; the label box makes a tile differ from its frame
    pixels, _ = (
        ffmpeg.input(str(sheet)).output("pipe:", format="rawvideo", pix_fmt="gray").run(capture_stdout=True, quiet=True)
    )
    width = info["width"]
    row = lambda y, x0, x1: pixels[y * width + x0 : y * width + x1]  # noqa: E731
    assert max(row(4 + 180 + 4 + 90, 4 + 2 * 324, 4 + 2 * 324 + 320)) < 20
    for cell in range(len(shots)):  # every shot's tile carries its label: white text on a dark box
        x0, y0 = 4 + (cell % 3) * 324, 4 + (cell // 3) * 184
        label_band = b"".join(row(y0 + y, x0, x0 + 320) for y in range(150, 180))
        assert max(label_band) > 200 and min(label_band) < 40, f"tile {cell} has no label"


def solid_clip(folder, colour: str, size: str = "320x180", seconds: float = 1.0):
    path = folder / f"{colour}.mp4"
    ffmpeg.input(f"color=c={colour}:s={size}:r=30:d={seconds}", f="lavfi").output(
        str(path), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p"
    ).run(quiet=True, overwrite_output=True)
    return path


def test_contact_sheet_shows_each_shots_own_frame_in_storyboard_order(tmp_path):
    colours = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0), "white": (255, 255, 255)}
    shots = [(solid_clip(tmp_path, name), f"shot {name}") for name in colours]
    sheet = contact_sheet(shots, tmp_path / "sheet.png", columns=2)

    width = MARGIN + 2 * TILE[0] + 4 + MARGIN
    pixels, _ = ffmpeg.input(str(sheet)).output("pipe:", format="rawvideo", pix_fmt="rgb24").run(capture_stdout=True, quiet=True)
    assert len(pixels) == width * (MARGIN + 3 * TILE[1] + 2 * 4 + MARGIN) * 3
    for cell, expected in enumerate(colours.values()):
        x, y = MARGIN + (cell % 2) * (TILE[0] + 4) + 40, MARGIN + (cell // 2) * (TILE[1] + 4) + 40  # above the label
        at = (y * width + x) * 3
        assert all(abs(got - want) < 40 for got, want in zip(pixels[at : at + 3], expected)), f"tile {cell}: {tuple(pixels[at : at + 3])}"


_LARGEST_FFMPEG = """
import json, resource, sys
from soraflow.media import contact_sheet
clips = sys.argv[2:]
contact_sheet([(c, f"shot {i}") for i, c in enumerate(clips)], sys.argv[1])
print(json.dumps(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
"""


def largest_ffmpeg_kib(out, clips) -> int:
    """The peak RSS of the largest ffmpeg a contact sheet of ``clips`` ran (a fresh process)."""
    done = subprocess.run([sys.executable, "-c", _LARGEST_FFMPEG, str(out), *map(str, clips)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_contact_sheet_memory_does_not_grow_with_the_number_of_shots(tmp_path):
    # 720p, where a decoder's frames are what an ffmpeg's memory is made of; one clip, 8 paths
    clip = solid_clip(tmp_path, "gray", size="1280x720", seconds=0.5)
    paths = []
    for i in range(8):
        paths.append(tmp_path / f"shot{i:02d}.mp4")
        paths[-1].symlink_to(clip)
    one = largest_ffmpeg_kib(tmp_path / "one.png", paths[:1])
    many = largest_ffmpeg_kib(tmp_path / "many.png", paths)
    assert many < 1.3 * one, f"8 shots: {many} KiB in one ffmpeg, 1 shot: {one} KiB"


def test_contact_sheet_needs_frames(tmp_path):
    with pytest.raises(MediaError, match="no clips"):
        contact_sheet([], tmp_path / "sheet.png")


def test_portrait_films_get_portrait_tiles_with_labels_inside_them(tmp_path):
    black = tmp_path / "black.mp4"
    ffmpeg.input("color=c=black:s=720x1280:r=30:d=1", f="lavfi").output(
        str(black), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p"
    ).run(quiet=True, overwrite_output=True)
    labels = ["keeper 1/2", "the-lighthouse-keepers-long-climb-up-the-stairs"]
    sheet = contact_sheet([(black, label) for label in labels], tmp_path / "sheet.png", film_size=(720, 1280))

    info = ffmpeg.probe(str(sheet), v="error")["streams"][0]
    tile_w, tile_h = 180, 320  # the film's aspect, 320 px on the long side
    assert (info["width"], info["height"]) == (4 + 2 * tile_w + 4 + 4, 4 + tile_h + 4)
    pixels, _ = ffmpeg.input(str(sheet)).output("pipe:", format="rawvideo", pix_fmt="gray").run(capture_stdout=True, quiet=True)
    for n in range(2):
        left = 4 + n * (tile_w + 4)
        text_columns = [
            x - left
            for y in range(tile_h // 2, 4 + tile_h)
            for x in range(left, left + tile_w)
            if pixels[y * info["width"] + x] > 200  # the label's white text on a black frame
        ]
        assert text_columns, f"no label drawn in tile {n}"
        assert max(text_columns) < tile_w - 4, f"the label of tile {n} runs off its right edge"


def test_labels_fit_narrow_tiles():
    from soraflow.media._contact_sheet import fit_label

    assert fit_label("dawn", 320, 180) == ("dawn", 18)
    text, size = fit_label("keeper 1/2", 180, 320)
    assert text == "keeper 1/2" and size * 0.62 * len(text) <= 180 - 32
    text, size = fit_label("x" * 64, 180, 320)
    assert size == 8 and text.endswith("…") and len(text) * 0.62 * 8 <= 180 - 32 + 5


def test_a_sheet_of_many_shots_keeps_to_its_pixels_with_smaller_tiles_more_columns_wide(tmp_path):
    """The last ffmpeg holds the whole sheet: a film of many shots gets smaller tiles in a sheet
    about as wide as it is tall, within ``max_pixels``, never a longer and longer strip."""
    clip = solid_clip(tmp_path, "gray", size="1280x720", seconds=0.5)
    paths = []
    for i in range(24):
        paths.append(tmp_path / f"shot{i:02d}.mp4")
        paths[-1].symlink_to(clip)
    shots = [(p, f"shot {i}") for i, p in enumerate(paths)]
    few = ffmpeg.probe(str(contact_sheet(shots[:4], tmp_path / "few.png", max_pixels=500_000)), v="error")["streams"][0]
    assert (few["width"], few["height"]) == (4 + 4 * 320 + 3 * 4 + 4, 4 + 180 + 4)  # within the cap: as before

    many = ffmpeg.probe(str(contact_sheet(shots, tmp_path / "many.png", max_pixels=500_000)), v="error")["streams"][0]
    # 24 tiles of 320x180 are 1.38 MP: shrunk to 192x108 (x0.6), 4 columns of 6 rows
    assert (many["width"], many["height"]) == (4 + 4 * 192 + 3 * 4 + 4, 4 + 6 * 108 + 5 * 4 + 4)
    assert 24 * 192 * 108 <= 500_000

    lots = [(paths[i % 24], f"shot {i}") for i in range(96)]
    wide = ffmpeg.probe(str(contact_sheet(lots, tmp_path / "lots.png", max_pixels=500_000)), v="error")["streams"][0]
    # 96 tiles: 96x54 (the smallest long side), 7 columns wide, not 4 (24 rows)
    assert (wide["width"], wide["height"]) == (4 + 7 * 96 + 6 * 4 + 4, 4 + 14 * 54 + 13 * 4 + 4)
