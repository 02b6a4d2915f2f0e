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
