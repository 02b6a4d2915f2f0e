"""Where every segment, chapter and subtitle line sits in the film, before ffmpeg runs.

The film's timeline is computed here, from probed durations and transitions, so the graph
builders only follow it and the result can be checked against it afterwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal, Mapping, Sequence

from ..errors import MediaError
from ._probe import ClipProbe

Transition = Literal["cut", "crossfade", "fade"]
TRANSITIONS: tuple[str, ...] = ("cut", "crossfade", "fade")


@dataclass(frozen=True)
class SubtitleLine:
    """One line of dialogue, in seconds from the start of its segment."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class FilmSegment:
    """One clip in film order. ``transition`` leads INTO this segment (ignored for the first);
    the parts of one shot follow each other with "cut". ``chapter_title`` None continues the
    current chapter (later parts of a shot); a new shot id starts a chapter anyway."""

    path: str | os.PathLike
    shot_id: str
    label: str = ""
    transition: Transition = "cut"
    subtitles: Sequence[SubtitleLine] = ()
    chapter_title: str | None = None


@dataclass(frozen=True)
class FilmSpec:
    """The film to make. ``fps`` None takes the first clip's frame rate."""

    width: int
    height: int
    fps: float | str | Fraction | None = None
    transition_seconds: float = 0.5
    burn_subtitles: bool = False
    title: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)  # e.g. {"comment": "AI-generated with sora-2"}
    preset: str = "veryfast"  # x264, when the film is re-encoded
    crf: int = 20
    audio_bitrate: str = "160k"


@dataclass(frozen=True)
class TimelineEntry:
    """Where one shot sits in the film, in seconds."""

    shot_id: str
    start: float
    end: float


@dataclass(frozen=True)
class Chapter:
    title: str
    start: float
    end: float


@dataclass(frozen=True)
class Placement:
    """One segment as it lands in the film."""

    segment: FilmSegment
    probe: ClipProbe
    start: float
    duration: float
    frames: int | None  # set when re-encoding: the segment is trimmed to exactly this many
    crossfade_in: float = 0.0  # overlap with the previous segment
    fade_in: float = 0.0  # fade from black at the start
    fade_out: float = 0.0  # fade to black at the end

    @property
    def end(self) -> float:
        return self.start + self.duration


def check_request(segments: Sequence[FilmSegment], spec: FilmSpec) -> None:
    if spec.width <= 0 or spec.height <= 0 or spec.width % 2 or spec.height % 2:
        raise MediaError(f"film size {spec.width}x{spec.height}: width and height must be positive and even (H.264 4:2:0)")
    if spec.transition_seconds < 0:
        raise MediaError(f"transition_seconds {spec.transition_seconds}: must be 0 or more")
    if not segments:
        raise MediaError("cannot stitch a film from no segments")
    for i, seg in enumerate(segments):
        if seg.transition not in TRANSITIONS:
            raise MediaError(
                f"segment {i} ({seg.label or seg.shot_id}): transition {seg.transition!r} is not one of "
                f"{', '.join(TRANSITIONS)}"
            )


def place_for_copy(segments: Sequence[FilmSegment], probes: Sequence[ClipProbe]) -> list[Placement]:
    """Back to back: the concat demuxer advances by each file's container duration."""
    placed, t = [], 0.0
    for seg, probe in zip(segments, probes):
        placed.append(Placement(seg, probe, start=t, duration=probe.duration, frames=None))
        t += probe.duration
    return placed


def place_for_encode(
    segments: Sequence[FilmSegment], probes: Sequence[ClipProbe], fps: Fraction, transition_seconds: float
) -> list[Placement]:
    """Whole frames per segment; crossfades overlap whole frames; fades keep the length.

    A transition never takes more than half of either neighbour, so a short clip between
    two crossfades still shows on its own.
    """
    frames = [max(1, round(p.video_duration * fps)) for p in probes]
    durations = [Fraction(n) / fps for n in frames]
    crossfade = [Fraction(0)] * len(segments)
    fade_in = [0.0] * len(segments)
    fade_out = [0.0] * len(segments)
    for i in range(1, len(segments)):
        limit = min(durations[i - 1], durations[i]) / 2
        if segments[i].transition == "crossfade":
            overlap_frames = min(round(transition_seconds * fps), int(limit * fps))
            crossfade[i] = Fraction(max(overlap_frames, 0)) / fps
        elif segments[i].transition == "fade":
            half = float(min(Fraction(transition_seconds) / 2, limit))
            fade_out[i - 1] = fade_in[i] = half
    placed, t = [], Fraction(0)
    for i, (seg, probe) in enumerate(zip(segments, probes)):
        start = t - crossfade[i]
        placed.append(
            Placement(
                seg, probe, start=float(start), duration=float(durations[i]), frames=frames[i],
                crossfade_in=float(crossfade[i]), fade_in=fade_in[i], fade_out=fade_out[i],
            )
        )
        t = start + durations[i]
    return placed


def film_length(placed: Sequence[Placement]) -> float:
    return placed[-1].end if placed else 0.0


def shot_timeline(placed: Sequence[Placement]) -> list[TimelineEntry]:
    """One entry per run of consecutive segments of the same shot."""
    out: list[TimelineEntry] = []
    for p in placed:
        if out and out[-1].shot_id == p.segment.shot_id:
            out[-1] = TimelineEntry(p.segment.shot_id, out[-1].start, round(p.end, 3))
        else:
            out.append(TimelineEntry(p.segment.shot_id, round(p.start, 3), round(p.end, 3)))
    return out


def chapters(placed: Sequence[Placement]) -> list[Chapter]:
    starts: list[tuple[str, float]] = []
    previous_shot = None
    for p in placed:
        seg = p.segment
        if not starts or seg.chapter_title is not None or seg.shot_id != previous_shot:
            starts.append((seg.chapter_title or seg.shot_id, p.start))
        previous_shot = seg.shot_id
    end = film_length(placed)
    return [
        Chapter(title, start, starts[i + 1][1] if i + 1 < len(starts) else end)
        for i, (title, start) in enumerate(starts)
    ]


def film_subtitles(placed: Sequence[Placement]) -> list[SubtitleLine]:
    """Dialogue in film time: shifted by each segment's start, kept inside its segment, and
    never overlapping (a mov_text track shows one sample at a time)."""
    lines: list[SubtitleLine] = []
    for p in placed:
        for line in p.segment.subtitles:
            start = p.start + max(0.0, line.start)
            end = p.start + min(line.end, p.duration)
            text = "\n".join(part for part in line.text.strip().splitlines() if part.strip())
            if end - start > 0.01 and text:
                lines.append(SubtitleLine(start, end, text))
    lines.sort(key=lambda line: line.start)
    for i in range(len(lines) - 1):
        if lines[i].end > lines[i + 1].start:
            lines[i] = SubtitleLine(lines[i].start, lines[i + 1].start, lines[i].text)
    return [line for line in lines if line.end - line.start > 0.01]


def write_srt(lines: Sequence[SubtitleLine], path: Path) -> Path:
    cues = [
        f"{i}\n{_srt_time(line.start)} --> {_srt_time(line.end)}\n{line.text}\n"
        for i, line in enumerate(lines, start=1)
    ]
    path.write_text("\n".join(cues), encoding="utf-8")
    return path


# iTunes-style MP4 metadata keeps only known keys; the rest are folded into "description"
# so provenance such as ai_generated=true survives in every player's metadata view.
_MP4_KEYS = frozenset(
    "title artist album_artist composer album date encoder comment genre copyright grouping "
    "lyrics description synopsis show episode_id network keywords".split()
)


def write_ffmetadata(title: str, metadata: Mapping[str, str], marks: Sequence[Chapter], path: Path) -> Path:
    tags = {k: str(v) for k, v in metadata.items() if k in _MP4_KEYS}
    if title:
        tags["title"] = title
    extra = [f"{k}: {v}" for k, v in metadata.items() if k not in _MP4_KEYS]
    if extra:
        tags["description"] = "\n".join(filter(None, [tags.get("description"), *extra]))
    body = [";FFMETADATA1", *(f"{_meta_escape(k)}={_meta_escape(v)}" for k, v in tags.items())]
    for mark in marks:
        body += [
            "[CHAPTER]", "TIMEBASE=1/1000", f"START={round(mark.start * 1000)}", f"END={round(mark.end * 1000)}",
            f"title={_meta_escape(mark.title)}",
        ]
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return path


def _meta_escape(text: str) -> str:
    for ch in ("\\", "=", ";", "#", "\n"):
        text = text.replace(ch, "\\" + ch)
    return text


def _srt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"
