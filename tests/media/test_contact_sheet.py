from __future__ import annotations

import ffmpeg
import pytest

from soraflow.errors import MediaError
from soraflow.media import contact_sheet


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
    label_band = b"".join(row(y, 4, 4 + 320) for y in range(150, 180))
    assert max(label_band) > 200 and min(label_band) < 40  # white text on a dark box


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
