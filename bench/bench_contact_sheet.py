"""Contact sheet memory and time: one ffmpeg per shot's frame, then one tiling pass over small
images (soraflow's), against every clip opened in one ffmpeg (the design it replaced,
reproduced below: its input options, the same labelled-frame filters), on the same clips in one run.

Clips: 8 s, 1280x720, H.264 + AAC (x264 veryfast, default keyframe interval), made once; 12 and
48 of them (48 = four copies of the 12 as distinct files). Each measurement runs in a fresh
Python process, so its figures are its own:
- peak RSS of the process tree (this Python and its ffmpeg children, summed), sampled every 5 ms
  with psutil; target for 48 clips < 300 MB;
- the largest single child's peak RSS (``getrusage(RUSAGE_CHILDREN)``, exact, not sampled);
- wall seconds.

Run: .venv/bin/python bench/bench_contact_sheet.py [--rounds 1] [--clips 12 --clips 48]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import ffmpeg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from soraflow import media  # noqa: E402
from soraflow.media import _contact_sheet  # noqa: E402

TARGET_MB = 300


def one_ffmpeg_sheet(frames: list[tuple[Path, str]], out_path: Path, columns: int = 4, tile_size: int = 320) -> None:
    """The replaced design: every clip an input of one ffmpeg, one decoder per clip alive at once."""
    from soraflow.media import _ffmpeg
    from soraflow.media._inputs import own_inputs
    from soraflow.media._probe import probe_clip

    columns = max(1, min(columns, len(frames)))
    rows = math.ceil(len(frames) / columns)
    first = probe_clip(frames[0][0], name=frames[0][1])
    tile_width, tile_height = _contact_sheet._tile((first.width, first.height), tile_size)
    with tempfile.TemporaryDirectory(prefix="bench-sheet-") as work:
        sources = own_inputs([path for path, _ in frames], Path(work))
        tiles = [
            _contact_sheet._labelled_frame(
                ffmpeg.input(source, ss=f"{probe_clip(path, name=label).duration / 2:.3f}")["v:0"], label, tile_width, tile_height
            )
            for (path, label), source in zip(frames, sources)
        ]
        strip = tiles[0] if len(tiles) == 1 else ffmpeg.concat(*tiles, v=1, a=0)
        sheet = strip.filter("tile", f"{columns}x{rows}", padding=4, margin=4, color="black")
        _ffmpeg.run(
            ffmpeg.output(sheet, str(out_path), format="image2", vcodec="png", update=1, **{"frames:v": 1}),
            what="contact sheet",
        )


DESIGNS = {"one ffmpeg per shot (soraflow)": media.contact_sheet, "every clip in one ffmpeg (old)": one_ffmpeg_sheet}


def measure_here(design: str, clips: list[Path], out: Path) -> dict:
    """In this (fresh) process: the tree's sampled peak, the largest child's exact peak, seconds."""
    me = psutil.Process()
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:  # a child that just ended
                    pass
            peak = max(peak, total)
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    media.clear_probe_cache()
    started = time.perf_counter()
    DESIGNS[design]([(p, f"shot {i:02d} part 1") for i, p in enumerate(clips)], out)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"tree_mb": peak / 2**20, "child_mb": child_kib / 1024, "seconds": seconds}


def make_clips(folder: Path, count: int) -> list[Path]:
    from bench_stitch import CLIPS, make_clips as make_twelve

    originals = make_twelve(folder)
    out = []
    for i in range(count):
        copy = folder / f"sheet{i:02d}.mp4"
        shutil.copyfile(originals[i % CLIPS], copy)
        out.append(copy)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--clips", type=int, action="append")
    parser.add_argument("--measure", nargs=3, metavar=("DESIGN", "FOLDER", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        design, folder, count = args.measure
        clips = sorted(Path(folder).glob("sheet*.mp4"))[: int(count)]
        print(json.dumps(measure_here(design, clips, Path(folder) / "sheet.png")))
        return
    counts = args.clips or [12, 48]
    with tempfile.TemporaryDirectory(prefix="soraflow-bench-sheet-") as tmp:
        print(f"making {max(counts)} clips of 8 s 1280x720 ...", flush=True)
        make_clips(Path(tmp), max(counts))
        print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores", flush=True)
        for count in counts:
            results: dict[str, list[dict]] = {d: [] for d in DESIGNS}
            for _ in range(args.rounds):  # alternately, so drift in the machine hits both alike
                for design in DESIGNS:
                    run = subprocess.run(
                        [sys.executable, __file__, "--measure", design, tmp, str(count)], capture_output=True, text=True, check=True
                    )
                    results[design].append(json.loads(run.stdout.strip().splitlines()[-1]))
            print(f"{count} clips, median of {args.rounds}:")
            for design, runs in results.items():
                tree, child, seconds = (statistics.median(r[k] for r in runs) for k in ("tree_mb", "child_mb", "seconds"))
                print(f"  {design:32} peak RSS {tree:7.0f} MB (largest ffmpeg {child:6.0f} MB)  {seconds:6.2f} s")
        print(f"(target: 48 clips under {TARGET_MB} MB, ffmpeg children included; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
