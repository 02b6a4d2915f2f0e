"""Stitching speed, as ratios against ffmpeg run in this process on the same clips.

1. Copy path: ``stitch_film`` on 12 matching clips (8 s, 1280x720, H.264 + AAC) against the raw
   ``ffmpeg -f concat -safe 0 -i list -c copy`` — target <= 1.2. Printed cold (every clip
   probed) and warm (probes memoised, as after download validation in the pipeline), and
   beside raw concat + ``-movflags +faststart`` (what the film's index placement costs raw).
2. Crossfade path: realtime factor, film seconds / wall seconds, at the default x264 preset.

Run: .venv/bin/python bench/bench_stitch.py [--rounds 5] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ffmpeg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soraflow import media  # noqa: E402

CLIPS = 12
SECONDS = 8
SIZE = (1280, 720)


def make_clips(folder: Path) -> list[Path]:
    paths = []
    for i in range(CLIPS):
        path = folder / f"clip{i:02d}.mp4"
        video = ffmpeg.input(f"testsrc2=s={SIZE[0]}x{SIZE[1]}:r=30:d={SECONDS}", f="lavfi")
        tone = ffmpeg.input(f"sine=f={300 + 40 * i}:r=48000:d={SECONDS}", f="lavfi")
        ffmpeg.output(
            video, tone, str(path), vcodec="libx264", preset="veryfast", pix_fmt="yuv420p", acodec="aac", ac=2
        ).global_args("-loglevel", "error").run(overwrite_output=True)
        paths.append(path)
    return paths


def raw_concat(clips: list[Path], folder: Path, out: Path, *, faststart: bool = False) -> float:
    listing = folder / "raw.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in clips))
    extra = {"movflags": "+faststart"} if faststart else {}
    graph = ffmpeg.input(str(listing), f="concat", safe=0).output(str(out), c="copy", **extra)
    started = time.perf_counter()
    graph.global_args("-loglevel", "error", "-nostdin").run(overwrite_output=True)
    return time.perf_counter() - started


def segments(clips: list[Path], transition: str) -> list[media.FilmSegment]:
    return [
        media.FilmSegment(
            path=p,
            shot_id=f"shot{i // 2}",
            label=f"shot{i // 2} part {i % 2 + 1}",
            transition=transition if i % 2 == 0 else "cut",
            subtitles=[media.SubtitleLine(1.0, 3.0, f"Line {i}.")],
            chapter_title=f"Shot {i // 2}" if i % 2 == 0 else None,
        )
        for i, p in enumerate(clips)
    ]


def timed_stitch(segs, out: Path, spec: media.FilmSpec, *, cold: bool) -> tuple[float, media.StitchResult]:
    if cold:
        media.clear_probe_cache()
    started = time.perf_counter()
    result = media.stitch_film(segs, out, spec)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--preset", default=media.FilmSpec(1, 1).preset)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soraflow-bench-stitch-") as tmp:
        folder = Path(tmp)
        print(f"making {CLIPS} clips of {SECONDS} s {SIZE[0]}x{SIZE[1]} h264+aac ...", flush=True)
        clips = make_clips(folder)
        spec = media.FilmSpec(
            *SIZE, fps=30, title="bench", metadata={"comment": "AI-generated (benchmark)"}, preset=args.preset
        )
        cut = segments(clips, "cut")
        raw, raw_fast, cold, warm = [], [], [], []
        for _ in range(args.rounds):  # interleaved, so drift in the machine hits all alike
            raw.append(raw_concat(clips, folder, folder / "raw.mp4"))
            raw_fast.append(raw_concat(clips, folder, folder / "raw_fast.mp4", faststart=True))
            seconds, result = timed_stitch(cut, folder / "copy.mp4", spec, cold=True)
            assert result.method == "copy", result.reencode_reason
            cold.append(seconds)
            warm.append(timed_stitch(cut, folder / "copy.mp4", spec, cold=False)[0])
        raw_s, fast_s, cold_s, warm_s = (statistics.median(x) for x in (raw, raw_fast, cold, warm))
        print(f"copy path, {CLIPS} clips, median of {args.rounds}:")
        print(f"  raw concat -c copy                 {raw_s:6.3f} s")
        print(f"  raw concat -c copy +faststart      {fast_s:6.3f} s")
        print(f"  stitch_film, probes memoised       {warm_s:6.3f} s   ratio to raw {warm_s / raw_s:4.2f}  (target <= 1.2)")
        print(f"  stitch_film, every clip probed     {cold_s:6.3f} s   ratio to raw {cold_s / raw_s:4.2f}")
        print(f"  (probing {CLIPS} clips costs ~{cold_s - warm_s:.3f} s: ffprobe start-up)")

        seconds, result = timed_stitch(segments(clips, "crossfade"), folder / "crossfade.mp4", spec, cold=False)
        assert result.method == "normalize"
        print(
            f"crossfade path ({len(clips) // 2 - 1} crossfades, x264 {args.preset}): film {result.duration:.2f} s "
            f"in {seconds:.2f} s wall -> realtime factor {result.duration / seconds:.2f}x"
        )


if __name__ == "__main__":
    main()
