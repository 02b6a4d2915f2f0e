"""Re-encoding clips to the film's format: video in bounded chunks, audio in one pass.

One ffmpeg process per film would keep a decoder and its filter buffers alive for every clip
until the end (ffmpeg closes them only at exit), and its audio crossfades make it decode video
far ahead of need: 12 clips of 720p peaked at 2.6 GB. So:

- the audio track is rendered on its own (audio decoders are small), straight to AAC;
- the video is rendered in chunks of at most ``CLIPS_PER_ENCODE`` clips, each chunk an H.264
  file made with identical encoder settings, so the chunks join by stream copy. A crossfade
  that falls on a chunk boundary is rendered whole in the later chunk: the earlier chunk stops
  where the overlap starts, the later one begins with the overlapped tail of that clip.

Every segment is cut to whole frames at the film's rate, and its audio to exactly the same
length, so the joins never drift and the film's length is known before ffmpeg starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import ffmpeg

from . import _ffmpeg
from ._timeline import Chapter, FilmSpec, Placement

CLIPS_PER_ENCODE = 6  # decoders alive at once in one video encode (~35 MB each at 720p)
FILM_SAMPLE_RATE = 48000
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
_BURNED_STYLE = "FontName=DejaVu Sans,FontSize=20,Outline=1,Shadow=0,MarginV=18"


@dataclass(frozen=True)
class Piece:
    """Frames [first_frame, end_frame) of one normalised segment, in one video chunk."""

    placement: Placement
    source: str  # this use's own input path (see _inputs.own_inputs)
    first_frame: int
    end_frame: int
    crossfade_in: float  # overlap with the piece before it in the chunk

    def film_start(self, fps: Fraction) -> float:
        return self.placement.start + self.first_frame / float(fps)

    @property
    def whole(self) -> bool:
        return self.first_frame == 0 and self.end_frame == self.placement.frames


def plan_chunks(
    placed: Sequence[Placement], sources: Sequence[str], fps: Fraction, clips_per_encode: int | None = None
) -> list[list[Piece]]:
    limit = max(2, clips_per_encode or CLIPS_PER_ENCODE)  # 2: a chunk is never just a tail
    chunks: list[list[Piece]] = [[]]
    for p, source in zip(placed, sources):
        if len(chunks[-1]) >= limit:
            if p.crossfade_in > 0:
                before = chunks[-1][-1]
                split = before.end_frame - round(p.crossfade_in * fps)
                chunks[-1][-1] = replace(before, end_frame=split)
                chunks.append([replace(before, first_frame=split, crossfade_in=0.0)])
            else:
                chunks.append([])
        chunks[-1].append(Piece(p, source, 0, p.frames, p.crossfade_in))
    return chunks


def render_video_chunk(
    pieces: Sequence[Piece],
    out: Path,
    spec: FilmSpec,
    fps: Fraction,
    *,
    marks: Sequence[Chapter],
    burn_srt: Path | None,
    what: str,
) -> Path:
    chunk_start = pieces[0].film_start(fps)
    runs: list[list[Piece]] = []
    for piece in pieces:
        if not runs or piece.crossfade_in > 0:
            runs.append([])
        runs[-1].append(piece)
    tb = f"{fps.denominator}/{fps.numerator}"
    joined = []
    for run in runs:
        parts = [_piece_video(piece, spec, fps) for piece in run]
        video = parts[0] if len(parts) == 1 else ffmpeg.concat(*parts, v=1, a=0)
        # concat answers in microseconds; xfade wants both inputs on the same time base.
        joined.append((video.filter("settb", tb), run[0]))
    video = joined[0][0]
    for next_video, first in joined[1:]:
        offset = first.film_start(fps) - chunk_start
        video = ffmpeg.filter([video, next_video], "xfade", transition="fade", duration=first.crossfade_in, offset=offset)
    if burn_srt is not None:  # the subtitles are in film time: shift there and back
        video = (
            video.filter("setpts", f"PTS+{chunk_start:.6f}/TB")
            .filter("subtitles", str(burn_srt), fontsdir=FONT_DIR, force_style=_BURNED_STYLE)
            .filter("setpts", "PTS-STARTPTS")
        )
    chunk_end = chunk_start + sum(p.end_frame - p.first_frame for p in pieces) / float(fps)
    chunk_end -= sum(p.crossfade_in for p in pieces)
    keyframes = [0.0] + [m.start - chunk_start for m in marks if chunk_start < m.start < chunk_end]
    _ffmpeg.run(
        ffmpeg.output(
            video,
            str(out),
            format="mp4",
            vcodec="libx264",
            preset=spec.preset,
            crf=spec.crf,
            pix_fmt="yuv420p",
            # Chapter starts on keyframes, so jumping to a chapter lands exactly on the shot.
            force_key_frames=",".join(f"{t:.3f}" for t in keyframes),
            **{"profile:v": "high"},
        ),
        what=what,
    )
    return out


def render_audio(placed: Sequence[Placement], sources: Sequence[str], out: Path, spec: FilmSpec, *, what: str) -> Path:
    runs: list[list[tuple[Placement, str]]] = []
    for p, source in zip(placed, sources):
        if not runs or p.crossfade_in > 0:
            runs.append([])
        runs[-1].append((p, source))
    joined = []
    for run in runs:
        parts = [_segment_audio(p, source) for p, source in run]
        joined.append((parts[0] if len(parts) == 1 else ffmpeg.concat(*parts, v=0, a=1), run[0][0]))
    audio = joined[0][0]
    for next_audio, first in joined[1:]:
        audio = ffmpeg.filter([audio, next_audio], "acrossfade", d=f"{first.crossfade_in:.6f}")
    _ffmpeg.run(
        ffmpeg.output(audio, str(out), format="mp4", acodec="aac", audio_bitrate=spec.audio_bitrate, ar=FILM_SAMPLE_RATE, ac=2),
        what=what,
    )
    return out


def _piece_video(piece: Piece, spec: FilmSpec, fps: Fraction):
    p = piece.placement
    probe = p.probe
    video = ffmpeg.input(piece.source)["v:0"].filter("setpts", "PTS-STARTPTS")
    if probe.sample_aspect_ratio != "1:1":  # anamorphic: fit what is displayed, not stored
        video = video.filter("scale", "iw*sar", "ih").filter("setsar", "1")
    if probe.sample_aspect_ratio != "1:1" or (probe.width, probe.height) != (spec.width, spec.height):
        video = video.filter(
            "scale", spec.width, spec.height, force_original_aspect_ratio="decrease", force_divisible_by=2
        ).filter("pad", spec.width, spec.height, "(ow-iw)/2", "(oh-ih)/2", color="black")
    video = video.filter("setsar", "1").filter("fps", str(fps)).filter("format", "yuv420p")
    # Exactly p.frames frames: clone the last frame if the clip falls short, then cut.
    video = video.filter("tpad", stop_mode="clone", stop=2).filter("trim", end_frame=p.frames)
    if p.fade_in:
        video = video.filter("fade", t="in", st=0, d=f"{p.fade_in:.4f}")
    if p.fade_out:
        # The picture reaches black on the last frame (which starts one frame before the end).
        last_frame = p.duration - 1 / float(fps)
        video = video.filter("fade", t="out", st=f"{last_frame - p.fade_out:.4f}", d=f"{p.fade_out:.4f}")
    if not piece.whole:
        video = video.filter("trim", start_frame=piece.first_frame, end_frame=piece.end_frame).filter(
            "setpts", "PTS-STARTPTS"
        )
    return video


def _segment_audio(p: Placement, source: str):
    if p.probe.has_audio:
        audio = ffmpeg.input(source)["a:0"]
    else:
        # ffmpeg-python merges inputs with equal arguments; offsetting each silence to its
        # place in the film keeps two equally long silent clips two inputs (asetpts resets it).
        silence = f"anullsrc=r={FILM_SAMPLE_RATE}:cl=stereo:d={p.duration:.6f}"
        audio = ffmpeg.input(silence, f="lavfi", itsoffset=f"{p.start:.6f}")["a:0"]
    audio = audio.filter("asetpts", "PTS-STARTPTS").filter(
        "aformat", sample_fmts="fltp", sample_rates=FILM_SAMPLE_RATE, channel_layouts="stereo"
    )
    # Audio exactly as long as the video, so joins never drift.
    audio = audio.filter("apad", whole_dur=f"{p.duration:.6f}").filter("atrim", end=f"{p.duration:.6f}")
    if p.fade_in:
        audio = audio.filter("afade", t="in", st=0, d=f"{p.fade_in:.4f}")
    if p.fade_out:
        audio = audio.filter("afade", t="out", st=f"{p.duration - p.fade_out:.4f}", d=f"{p.fade_out:.4f}")
    return audio
