"""Joining clips into a film: stream copy when the clips allow it, else a normalising encode.

A blind ``-c copy`` concat of clips that differ in size, frame rate or audio layout exits 0
and writes a broken film, so the copy path is taken only when every property that shapes the
bitstream matches. Otherwise every clip is brought to the target (size, frame rate, pixel
format, 48 kHz stereo) and joined (see _normalize). Both paths end in the same cheap mux that
adds dialogue, chapters and metadata with the index at the front; the film's length, as the
muxer reports it, is checked against the timeline computed beforehand.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal, Sequence

import ffmpeg

from ..errors import MediaError
from . import _ffmpeg
from ._inputs import own_inputs
from ._normalize import FILM_SAMPLE_RATE, plan_chunks, render_audio, render_video_chunk
from ._probe import ClipProbe, memoised_probe, probe_clip
from ._timeline import (
    Chapter,
    FilmSegment,
    FilmSpec,
    Placement,
    TimelineEntry,
    chapters,
    check_request,
    film_length,
    film_subtitles,
    place_for_copy,
    place_for_encode,
    shot_timeline,
    write_ffmetadata,
    write_srt,
)

log = logging.getLogger("soraflow.media")

_COPY_CODECS = ("h264", "aac")  # the film is H.264 + AAC, so only those may be copied


@dataclass(frozen=True)
class StitchResult:
    path: Path
    duration: float  # measured on the written film by ffprobe
    method: Literal["copy", "normalize"]
    timeline: list[TimelineEntry]  # one entry per shot, in film order
    has_subtitles: bool  # dialogue is in the film (soft track, or burned in)
    subtitles_burned: bool = False
    chapters: list[Chapter] = field(default_factory=list)
    reencode_reason: str | None = None  # why the copy path was not possible


def stitch_film(segments: Sequence[FilmSegment], out_path: str | os.PathLike, spec: FilmSpec) -> StitchResult:
    """Join ``segments`` in order into an MP4 (H.264 + AAC, +faststart, chapters, metadata,
    dialogue as a mov_text track or burned in). Raises MediaError naming the failing clip."""
    check_request(segments, spec)
    probes = _probe_all(segments)
    burn = spec.burn_subtitles and any(seg.subtitles for seg in segments)
    reason = copy_refusal(segments, probes, spec, burn_subtitles=burn)
    fps = _target_fps(spec, probes)
    if reason is None:
        placed, method = place_for_copy(segments, probes), "copy"
    else:
        log.info("re-encoding the film: %s", reason)
        placed, method = place_for_encode(segments, probes, fps, spec.transition_seconds), "normalize"
    lines = film_subtitles(placed)
    marks = chapters(placed)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed when verified: a failed run never leaves a
    # broken film where a good one is expected.
    # The name is this stitch's own: two renders (or two threads) never write one file.
    partial = out_path.with_name(f".{out_path.stem}.{uuid.uuid4().hex[:12]}.partial.mp4")
    try:
        with tempfile.TemporaryDirectory(prefix="soraflow-stitch-") as tmp:
            work = Path(tmp)
            srt = write_srt(lines, work / "dialogue.srt") if lines else None
            meta = write_ffmetadata(spec.title, spec.metadata, marks, work / "film.ffmetadata")
            if method == "copy":
                streams, codec_opts = _copy_streams(placed, work)
            else:
                streams, codec_opts = _normalized_streams(placed, work, spec, fps, marks, srt if burn else None)
            if srt is not None and not burn:
                streams.append(ffmpeg.input(str(srt), f="srt")["s:0"])
                codec_opts["scodec"] = "mov_text"
            reserve = _index_reserve(placed, fps if method == "normalize" else None, len(lines), len(marks))
            written = _mux(streams, partial, codec_opts, meta, reserve, work / "progress.txt", what=f"film {out_path.name}")
        duration = _check_length(written, placed, fps, name=out_path.name)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return StitchResult(
        path=out_path,
        duration=duration,
        method=method,
        timeline=shot_timeline(placed),
        has_subtitles=bool(lines),
        subtitles_burned=burn and bool(lines),
        chapters=marks,
        reencode_reason=reason,
    )


def copy_refusal(
    segments: Sequence[FilmSegment], probes: Sequence[ClipProbe], spec: FilmSpec, *, burn_subtitles: bool
) -> str | None:
    """Why these clips cannot be joined by stream copy into this film, or None if they can."""
    for seg in segments[1:]:
        if seg.transition != "cut":
            return f"transition {seg.transition!r} into {seg.label or seg.shot_id}"
    if burn_subtitles:
        return "subtitles are burned in"
    first = probes[0]
    for probe in probes:
        if not probe.has_audio:
            return f"clip {probe.name} has no audio track"
        if (probe.video_codec, probe.audio_codec) != _COPY_CODECS:
            return f"clip {probe.name} is {probe.video_codec}+{probe.audio_codec}, the film is h264+aac"
        if probe.size != f"{spec.width}x{spec.height}":
            return f"clip {probe.name} is {probe.size}, the film is {spec.width}x{spec.height}"
        if spec.fps is not None and probe.fps != _fraction(spec.fps):
            return f"clip {probe.name} runs at {probe.fps} fps, the film at {spec.fps}"
        if probe.stream_copy_signature() != first.stream_copy_signature():
            return f"clip {probe.name} differs from {first.name} in {_first_difference(first, probe)}"
    return None


def _first_difference(a: ClipProbe, b: ClipProbe) -> str:
    fields = (
        "video_codec", "video_profile", "size", "sample_aspect_ratio", "pix_fmt", "r_frame_rate",
        "time_base", "video_extradata", "audio_codec", "audio_profile", "sample_rate",
        "channel_layout", "audio_extradata",
    )
    for name in fields:
        if getattr(a, name) != getattr(b, name):
            return f"{name} ({getattr(b, name)} vs {getattr(a, name)})"
    return "stream parameters"


def _probe_all(segments: Sequence[FilmSegment]) -> list[ClipProbe]:
    names = [seg.label or seg.shot_id for seg in segments]
    # In a render every clip was probed when it was downloaded: usually nothing is left to do.
    probes = [memoised_probe(seg.path, name=name) for seg, name in zip(segments, names)]
    missing = [i for i, probe in enumerate(probes) if probe is None]
    if missing:
        # ffprobe runs are process start-up bound, so a few run side by side.
        with ThreadPoolExecutor(max_workers=min(4, len(missing))) as pool:
            for i, probe in zip(missing, pool.map(lambda i: probe_clip(segments[i].path, name=names[i]), missing)):
                probes[i] = probe
    return probes


def _target_fps(spec: FilmSpec, probes: Sequence[ClipProbe]) -> Fraction:
    return _fraction(spec.fps) if spec.fps is not None else probes[0].fps


def _fraction(value) -> Fraction:
    return Fraction(str(value)).limit_denominator(1001)


def _copy_streams(placed: Sequence[Placement], work: Path):
    listing = _write_concat_list([p.probe.path for p in placed], work / "clips.ffconcat")
    joined = ffmpeg.input(str(listing), f="concat", safe=0)
    return [joined["v:0"], joined["a:0"]], {"vcodec": "copy", "acodec": "copy"}


def _write_concat_list(paths: Sequence[Path], listing: Path) -> Path:
    lines = ["ffconcat version 1.0"]
    for path in paths:
        quoted = str(Path(path).resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return listing


def _normalized_streams(
    placed: Sequence[Placement], work: Path, spec: FilmSpec, fps: Fraction, marks: Sequence[Chapter], burn_srt: Path | None
):
    """Render the audio track (in the background) and the video chunks; the final mux copies
    them, as it copies clips on the copy path."""
    sources = own_inputs([p.probe.path for p in placed], work)
    with ThreadPoolExecutor(max_workers=1) as background:
        audio = background.submit(render_audio, placed, sources, work / "audio.m4a", spec, what="film audio")
        chunks = plan_chunks(placed, sources, fps)
        videos = [
            render_video_chunk(
                pieces, work / f"video-{n:03d}.mp4", spec, fps, marks=marks, burn_srt=burn_srt,
                what=f"film video, part {n + 1} of {len(chunks)}",
            )
            for n, pieces in enumerate(chunks)
        ]
        audio_path = audio.result()
    listing = _write_concat_list(videos, work / "video.ffconcat")
    video = ffmpeg.input(str(listing), f="concat", safe=0)["v:0"]
    return [video, ffmpeg.input(str(audio_path))["a:0"]], {"vcodec": "copy", "acodec": "copy"}


def _index_reserve(placed: Sequence[Placement], fps: Fraction | None, subtitle_lines: int, chapter_count: int) -> int:
    """Bytes to reserve for the MP4 index at the front of the file (generous: unused space
    is a small 'free' box, too little makes the muxer fail and we fall back to +faststart)."""
    video = sum(p.duration * float(fps or p.probe.fps) for p in placed)
    audio = sum(p.duration * (FILM_SAMPLE_RATE if fps else (p.probe.sample_rate or FILM_SAMPLE_RATE)) / 1024 for p in placed)
    estimate = 16_384 + 24 * video + 12 * audio + 64 * (2 * subtitle_lines + 1) + 512 * chapter_count
    return int(estimate * 1.5) // 4096 * 4096 + 4096


def _mux(streams, partial: Path, codec_opts: dict, meta: Path, reserve: int, progress: Path, *, what: str) -> float:
    """Write the film; return its length in seconds as the muxer reports it."""
    # The ffmetadata input carries no stream to map, so ffmpeg-python cannot place it in its
    # graph; it is appended as a raw input after every graph input, hence its index.
    meta_index = sum(1 for arg in ffmpeg.output(*streams, str(partial)).get_args() if arg == "-i")
    # -progress: ffmpeg's machine-readable report, whose last block gives the written length.
    # It replaces probing the film afterwards: one more ffprobe costs 0.1 s to start here, a
    # third of a 12-clip copy join (bench/bench_stitch.py), and the streams and chapters are
    # fixed by the maps below.
    extra = ("-f", "ffmetadata", "-i", str(meta), "-progress", str(progress))
    common = dict(codec_opts, format="mp4", map_metadata=meta_index, map_chapters=meta_index)
    # moov_size writes the index in space reserved at the front: the file is faststart in one
    # pass, where +faststart rewrites the whole film a second time.
    try:
        _ffmpeg.run(ffmpeg.output(*streams, str(partial), moov_size=reserve, **common), what=what, extra_args=extra)
    except MediaError as err:
        if "reserved_moov_size is too small" not in str(err):
            raise
        log.warning("%s: reserved index space too small, muxing again with +faststart", what)
        _ffmpeg.run(ffmpeg.output(*streams, str(partial), movflags="+faststart", **common), what=what, extra_args=extra)
    return _written_length(progress, what=what)


def _written_length(progress: Path, *, what: str) -> float:
    """The output time of ffmpeg's final progress block (``progress=end``), in seconds."""
    report: dict[str, str] = {}
    try:
        lines = progress.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise MediaError(f"{what}: ffmpeg wrote no progress report ({err.strerror or err})") from None
    for line in lines:
        key, _, value = (part.strip() for part in line.partition("="))
        report[key] = value
        if key == "progress" and value == "end":
            try:
                return int(report["out_time_us"]) / 1_000_000
            except (KeyError, ValueError):
                break
    raise MediaError(f"{what}: ffmpeg did not report a finished film (no final out_time_us in its progress report)")


def _check_length(duration: float, placed: Sequence[Placement], fps: Fraction, *, name: str) -> float:
    """The written film is as long as the timeline promised, within a frame per join."""
    expected = film_length(placed)
    tolerance = 0.1 + len(placed) / float(fps)
    if abs(duration - expected) > tolerance:
        raise MediaError(
            f"film {name}: duration {duration:.3f} s, expected {expected:.3f} s (± {tolerance:.3f} s)"
        )
    return duration
