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
