"""What a test needs to know about a written film, read with ffprobe/ffmpeg."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import ffmpeg


def streams_by_type(path: Path) -> dict[str, list[dict]]:
    info = ffmpeg.probe(str(path), v="error")
    out: dict[str, list[dict]] = {}
    for stream in info["streams"]:
        out.setdefault(stream["codec_type"], []).append(stream)
    return out


def film_info(path: Path) -> dict:
    return ffmpeg.probe(str(path), v="error", show_chapters=None)


def packets(path: Path) -> dict[int, list[dict]]:
    """Packets per stream index, in file order."""
    info = ffmpeg.probe(str(path), v="error", show_packets=None, show_entries="packet=stream_index,pts,dts,duration")
    out: dict[int, list[dict]] = {}
    for packet in info["packets"]:
        out.setdefault(packet["stream_index"], []).append(packet)
    return out


def assert_monotonic_timestamps(path: Path) -> None:
    """DTS strictly increasing per stream, PTS never before DTS, and video frames evenly
    spaced (no gap or overlap at a join)."""
    info = film_info(path)
    by_index = {s["index"]: s for s in info["streams"]}
    for index, pkts in packets(path).items():
        dts = [p["dts"] for p in pkts]
        assert all(b > a for a, b in zip(dts, dts[1:])), f"stream {index}: DTS not strictly increasing"
        assert all(p["pts"] >= p["dts"] for p in pkts), f"stream {index}: PTS before DTS"
        stream = by_index[index]
        if stream["codec_type"] == "video":
            tb = Fraction(stream["time_base"])
            frame = 1 / Fraction(stream["avg_frame_rate"])
            pts = sorted(p["pts"] for p in pkts)
            steps = {(b - a) * tb for a, b in zip(pts, pts[1:])}
            assert all(abs(step - frame) <= tb * 2 for step in steps), f"video frame spacing {sorted(steps)} != {frame}"


def video_packet_count(path: Path) -> int:
    info = film_info(path)
    index = next(s["index"] for s in info["streams"] if s["codec_type"] == "video")
    return len(packets(path)[index])


def subtitle_cues(path: Path) -> list[tuple[float, float, str]]:
    """The soft subtitle track as (start, end, text), read back through ffmpeg as SRT."""
    out, _ = ffmpeg.input(str(path))["s:0"].output("pipe:", format="srt").run(capture_stdout=True, quiet=True)
    cues = []
    for block in out.decode("utf-8").strip().split("\n\n"):
        lines = block.strip().splitlines()
        start, end = (_srt_seconds(t) for t in lines[1].split(" --> "))
        cues.append((start, end, "\n".join(lines[2:])))
    return cues


def gray_frame(path: Path, at: float, size: str = "32x18") -> bytes:
    """One frame at ``at`` seconds, shrunk to a few grey pixels (small enough to hold)."""
    out, _ = (
        ffmpeg.input(str(path), ss=at)
        .output("pipe:", vframes=1, s=size, pix_fmt="gray", format="rawvideo")
        .run(capture_stdout=True, quiet=True)
    )
    return out


def mean(values: bytes) -> float:
    return sum(values) / len(values)


def _srt_seconds(stamp: str) -> float:
    hms, ms = stamp.strip().split(",")
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s + int(ms) / 1000
