"""Small media helpers for the simulator tests: images made without an imaging library, probes."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import ffmpeg


def png(width: int, height: int, rgb: tuple[int, int, int] = (40, 60, 90)) -> bytes:
    """A solid-colour RGB PNG, built with zlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b"")


def ffmpeg_image(path: Path, width: int, height: int, *extra: str) -> bytes:
    """An image in the format ``path``'s suffix names, made by ffmpeg."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:d=1", "-frames:v", "1", *extra, str(path)],
        check=True,
    )
    return path.read_bytes()


def mp4(path: Path, width: int, height: int, seconds: float, *, audio: bool = True) -> bytes:
    """A test-pattern H.264 MP4 (with a tone unless ``audio`` is False), made by ffmpeg."""
    sound = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"] if audio else []
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r=24:d={seconds}", *sound,
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-t", str(seconds), str(path)],
        check=True,
    )
    return path.read_bytes()


def colour_at(path: Path, seconds: float) -> tuple[int, int, int]:
    """The mean colour of the frame at ``seconds`` (the frame scaled to one pixel)."""
    out, _ = (
        ffmpeg.input(str(path), ss=seconds)
        .filter("scale", 1, 1)
        .output("pipe:", vframes=1, format="rawvideo", pix_fmt="rgb24")
        .run(capture_stdout=True, quiet=True)
    )
    return out[0], out[1], out[2]


def close_colours(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """The same colour, within what encoding changes."""
    return all(abs(x - y) <= 6 for x, y in zip(a, b))


def corner_colour(path: Path, seconds: float = 1.0) -> tuple[int, int, int]:
    """The colour of the frame's bottom-right corner at ``seconds``: the background, where no
    text is drawn (the mean of the whole frame would move with the drawn text)."""
    out, _ = (
        ffmpeg.input(str(path), ss=seconds)
        .filter("crop", "iw/8", "ih/8", "iw*7/8", "ih*7/8")
        .filter("scale", 1, 1)
        .output("pipe:", vframes=1, format="rawvideo", pix_fmt="rgb24")
        .run(capture_stdout=True, quiet=True)
    )
    return out[0], out[1], out[2]


def probe(path: Path) -> dict:
    """``{"duration", "video": [...], "audio": [...]}`` from ffprobe."""
    info = ffmpeg.probe(str(path))
    out: dict = {"duration": float(info["format"]["duration"]), "format": info["format"]["format_name"]}
    for stream in info["streams"]:
        out.setdefault(stream["codec_type"], []).append(stream)
    return out


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (ftyp, moov, mdat, ...)."""
    boxes = []
    with open(path, "rb") as fh:
        while header := fh.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            boxes.append(kind.decode("latin-1"))
            fh.seek(size - 8, 1)
    return boxes


def band_colour(path: Path, seconds: float = 1.0) -> tuple[int, int, int]:
    """The colour of the band the simulator draws across a take that another take of the same
    request (or a seed) sets apart, sampled right of its label; a plain take shows its background
    there."""
    from soraflow.simulator.render import BAND_HEIGHT, BAND_TOP

    out, _ = (
        ffmpeg.input(str(path), ss=seconds)
        .filter("crop", "iw*3/10", f"ih*{BAND_HEIGHT / 2}", "iw*6/10", f"ih*{BAND_TOP + BAND_HEIGHT / 4}")
        .filter("scale", 1, 1)
        .output("pipe:", vframes=1, format="rawvideo", pix_fmt="rgb24")
        .run(capture_stdout=True, quiet=True)
    )
    return out[0], out[1], out[2]
