"""Reading a reference image's format and size from its header."""

from __future__ import annotations

import pytest

from soraflow.simulator.images import NotAnImage, image_format, image_size

from .media import ffmpeg_image, png


def test_png():
    assert image_size(png(1280, 720)) == ("png", 1280, 720)


@pytest.mark.parametrize(
    "name, extra, fmt",
    [("a.jpg", (), "jpeg"), ("a.webp", (), "webp"), ("b.webp", ("-lossless", "1"), "webp")],
)
def test_ffmpeg_images(tmp_path, name, extra, fmt):
    assert image_size(ffmpeg_image(tmp_path / name, 720, 1280, *extra)) == (fmt, 720, 1280)


def test_webp_extended_header():
    # VP8X (alpha, animation, metadata) stores the canvas size as 24-bit width-1, height-1.
    chunk = b"VP8X" + (10).to_bytes(4, "little") + b"\x10\x00\x00\x00" + (1791).to_bytes(3, "little") + (1023).to_bytes(3, "little")
    data = b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk
    assert image_size(data) == ("webp", 1792, 1024)


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"RIFF\x00\x00\x00\x00WEBPVP9 "])
def test_other_bytes_are_not_images(data):
    with pytest.raises(NotAnImage):
        image_size(data)


def test_image_format_tells_stills_from_videos(tmp_path):
    assert image_format(png(8, 8)) == "png"
    assert image_format(ffmpeg_image(tmp_path / "a.jpg", 16, 16)) == "jpeg"
    assert image_format(ffmpeg_image(tmp_path / "a.webp", 16, 16)) == "webp"
    assert image_format(b"GIF89a\x01\x00") == "gif"
    assert image_format(b"\x00\x00\x00\x18ftypmp42") is None  # an MP4
    assert image_format(b"") is None
