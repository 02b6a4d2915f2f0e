"""What a clip is, as ffprobe sees it, and whether it is the clip we asked for."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import ffmpeg

from ..errors import MediaError
from ._ffmpeg import error_summary

DURATION_TOLERANCE_SECONDS = 0.25


@dataclass(frozen=True)
class ClipProbe:
    """The facts about one clip that decide how it can be joined to others."""

    path: Path
    name: str
    duration: float  # the container's duration: what the concat demuxer advances by
    video_duration: float
    width: int
    height: int
    sample_aspect_ratio: str  # "1:1"; "" when the file does not say
    pix_fmt: str
    r_frame_rate: str  # "30/1"
    avg_frame_rate: str
    time_base: str  # of the video stream, "1/15360"
    video_codec: str
    video_profile: str
    # "size:sha256" of the codec's extradata (SPS/PPS for H.264): ffprobe's -show_data_hash
    # prints extradata_hash, so the parameter sets are compared without reading the file.
    video_extradata: str
    has_audio: bool
    audio_codec: str | None
    audio_profile: str | None
    sample_rate: int | None
    channel_layout: str | None
    audio_extradata: str | None
    size_bytes: int
    # Where the data actually read ends, per stream (the last packet's end, demuxed, not decoded):
    # a header-only probe reads the whole duration from ``moov`` even when the file is cut short.
    # None when the probe did not read packets (``probe_clip``; ``validate_clip`` always does).
    video_data_end: float | None = None
    audio_data_end: float | None = None
    audio_duration: float | None = None  # the audio stream's own length, as its header says
    damaged_packets: int = 0

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def fps(self) -> Fraction:
        """The clip's frame rate: the average when it is sane, else the base rate."""
        for rate in (self.avg_frame_rate, self.r_frame_rate):
            value = _fraction(rate)
            if value and 0 < value <= 240:
                return value.limit_denominator(1001)
        return Fraction(30)

    def stream_copy_signature(self) -> tuple:
        """Everything that must be equal for two clips to be joined without re-encoding."""
        return (
            self.video_codec, self.video_profile, self.width, self.height, self.sample_aspect_ratio,
            self.pix_fmt, self.r_frame_rate, self.time_base, self.video_extradata,
            self.has_audio, self.audio_codec, self.audio_profile, self.sample_rate,
            self.channel_layout, self.audio_extradata,
        )


def probe_clip(path: str | os.PathLike, name: str | None = None) -> ClipProbe:
    """Probe a clip with ffprobe. Raises MediaError naming the clip when it is unreadable,
    empty or has no video stream."""
    return _probe(path, name, probe=True)


def memoised_probe(path: str | os.PathLike, name: str | None = None) -> ClipProbe | None:
    """The probe of the clip as it is now, if this process has already made it; else None.
    Raises as probe_clip does for a missing or empty file."""
    return _probe(path, name, probe=False)


def _probe(path: str | os.PathLike, name: str | None, *, probe: bool, packets: bool = False) -> ClipProbe | None:
    path = Path(path)
    name = name or path.name
    try:
        stat = path.stat()
    except OSError as err:
        raise MediaError(f"clip {name}: cannot read {path}: {err.strerror or err}") from None
    if stat.st_size == 0:
        raise MediaError(f"clip {name}: {path} is empty (0 bytes)")
    key = (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    cached = _memo.get(key)
    if cached is None or (packets and cached.video_data_end is None):
        if not probe:
            return None
        cached = _probe_uncached(path, name, stat.st_size, packets=packets)
        _memo.put(key, cached)
    return cached if cached.name == name else replace(cached, name=name)


def validate_clip(
    path: str | os.PathLike,
    *,
    expect_size: str | None = None,
    expect_seconds: float | None = None,
    name: str | None = None,
) -> ClipProbe:
    """Probe a clip and check it is what was ordered: a video stream, the size, the length, and
    data for all of that length in every stream (its packets read to the end, not decoded: about
    as cheap as the probe, and a file cut short is caught even when its header is whole)."""
    probe = _probe(path, name, probe=True, packets=True)
    if expect_size is not None and probe.size != expect_size:
        raise MediaError(f"clip {probe.name}: size is {probe.size}, expected {expect_size}")
    if expect_seconds is not None and abs(probe.duration - expect_seconds) > DURATION_TOLERANCE_SECONDS:
        raise MediaError(
            f"clip {probe.name}: duration is {probe.duration:.3f} s, expected {expect_seconds:g} s "
            f"(± {DURATION_TOLERANCE_SECONDS} s)"
        )
    if problem := _damage(probe):
        raise MediaError(f"clip {probe.name}: {problem}")
    return probe


def _damage(probe: ClipProbe) -> str | None:
    """What is missing from the clip's data: each stream's packets must reach the length its own
    header gives it (a sound track may be shorter than the picture, and that is no damage)."""
    short = [
        f"its {kind} data ends at {end:.3f} s of the {length:.3f} s its header says"
        for kind, end, length in (
            ("video", probe.video_data_end, probe.video_duration),
            ("audio", probe.audio_data_end, probe.audio_duration or probe.duration),
        )
        if end is not None and end < length - DURATION_TOLERANCE_SECONDS
    ]  # fmt: skip
    if short:
        return f"{' and '.join(short)}: the file is cut short ({probe.size_bytes} bytes)"
    if probe.damaged_packets:
        return f"{probe.damaged_packets} of its packets are damaged"
    return None


def _probe_uncached(path: Path, name: str, size_bytes: int, *, packets: bool = False) -> ClipProbe:
    options = {"show_entries": "packet=stream_index,pts_time,duration_time,flags"} if packets else {}
    try:
        info = ffmpeg.probe(str(path), v="error", show_data_hash="sha256", **options)
    except ffmpeg.Error as err:
        raise MediaError(f"clip {name}: ffprobe cannot read {path}: {error_summary(err.stderr)}") from None
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover_art(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None:
        kinds = ", ".join(sorted({s.get("codec_type", "?") for s in streams})) or "none"
        raise MediaError(f"clip {name}: {path} has no video stream (streams found: {kinds})")
    fmt = info.get("format", {})
    duration = _float(fmt.get("duration")) or _float(video.get("duration"))
    if not duration or duration <= 0:
        raise MediaError(f"clip {name}: ffprobe reports no duration for {path}")
    return ClipProbe(
        path=path,
        name=name,
        duration=duration,
        video_duration=_float(video.get("duration")) or duration,
        width=int(video.get("width") or 0),
        height=int(video.get("height") or 0),
        sample_aspect_ratio=_sar(video.get("sample_aspect_ratio")),
        pix_fmt=video.get("pix_fmt", ""),
        r_frame_rate=video.get("r_frame_rate", ""),
        avg_frame_rate=video.get("avg_frame_rate", ""),
        time_base=video.get("time_base", ""),
        video_codec=video.get("codec_name", ""),
        video_profile=video.get("profile", ""),
        video_extradata=_extradata(video),
        has_audio=audio is not None,
        audio_codec=audio.get("codec_name") if audio else None,
        audio_profile=audio.get("profile") if audio else None,
        sample_rate=int(audio["sample_rate"]) if audio and audio.get("sample_rate") else None,
        channel_layout=(audio.get("channel_layout") or f"{audio.get('channels', 0)}ch") if audio else None,
        audio_extradata=_extradata(audio) if audio else None,
        size_bytes=size_bytes,
        **(_data_ends(info.get("packets") or [], video, audio) if packets else {}),
    )


def _data_ends(packets: list[dict], video: dict, audio: dict | None) -> dict:
    """Where each stream's packets end (pts + duration of the latest), and how many are flagged corrupt."""
    ends: dict[int, float] = {}
    damaged = 0
    for p in packets:
        start, length = _float(p.get("pts_time")), _float(p.get("duration_time")) or 0.0
        if start is not None:
            index = p.get("stream_index")
            ends[index] = max(ends.get(index, 0.0), start + length)
        damaged += "C" in (p.get("flags") or "")
    return {
        "video_data_end": ends.get(video.get("index"), 0.0),
        "audio_data_end": ends.get(audio.get("index"), 0.0) if audio else None,
        "audio_duration": _float(audio.get("duration")) if audio else None,
        "damaged_packets": damaged,
    }


def _is_cover_art(stream: dict) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))


def _extradata(stream: dict) -> str:
    return f"{stream.get('extradata_size', 0)}:{stream.get('extradata_hash', '')}"


def _sar(value: str | None) -> str:
    # Unset and 1:1 mean the same square pixels; ffprobe prints unset as "0:1" or "N/A".
    return "1:1" if value in (None, "", "0:1", "N/A") else value


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _fraction(value: str | None) -> Fraction | None:
    try:
        return Fraction(value) if value and not value.endswith("/0") else None
    except (ValueError, ZeroDivisionError):
        return None


class _ProbeMemo:
    """Probes keyed by the file's identity and mtime: a clip validated at download is not
    probed again at stitch time (each ffprobe run costs ~75 ms of process start-up)."""

    def __init__(self, capacity: int = 2048):
        self._items: OrderedDict[tuple, ClipProbe] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def get(self, key: tuple) -> ClipProbe | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, probe: ClipProbe) -> None:
        with self._lock:
            self._items[key] = probe
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_memo = _ProbeMemo()


def clear_probe_cache() -> None:
    """Forget memoised probes (benchmarks use it to measure a cold start)."""
    _memo.clear()
