"""What signing the film (C2PA) adds to its stitching, for a 48-clip film, side by side.

48 clips of 4 s at 1280x720 (H.264 veryfast + AAC, like provider output, about 3 Mbit/s), made
once. Each round, interleaved so that drift in the machine hits both alike, the film step
``assembly.assemble`` (stitch, contact sheet, hashes) runs into a fresh folder
- unsigned, and
- signed with a development chain (the stitched film signed into film.mp4 as its last write,
  with 48 ingredients, then read back and validated with c2pa's Reader),
and the ratio of the medians is printed, with the parts of the signing timed on their own
(``sign_film``: ingredients + c2pa's hashing and rewrite of the film; the read-back) against
``media.stitch_film`` alone. Each in wall seconds and in CPU seconds (this process, where c2pa
runs, plus its ffmpeg children): on a machine shared with other work the wall time swings with
the load, the CPU time is the work itself. Two films:
- ``copy``: every shot joined by cut, clips as they are (the stitch is a stream copy: the
  cheapest stitch, so the largest share for signing);
- ``normalize``: a crossfade between shots, the film re-encoded (what a storyboard with
  transitions, subtitles burned in or clips of another size gets).

Target (issue 30): signing adds <= 5% to the stitch time of a 48-clip film.

Run: .venv/bin/python bench/bench_provenance.py [--rounds 3] [--normalize-rounds 1] [--clips 48]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ffmpeg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soraflow import assembly, media, provenance  # noqa: E402
from soraflow.archive import StoredClip  # noqa: E402
from soraflow.models import builtin_catalog, route_endpoints  # noqa: E402
from soraflow.plan import plan_storyboard, sha256_file  # noqa: E402
from soraflow.settings import Settings  # noqa: E402
from soraflow.storyboard import parse_storyboard  # noqa: E402

SECONDS = 4
SIZE = (1280, 720)


def make_clip(path: Path, i: int) -> Path:
    video = ffmpeg.input(f"testsrc2=s={SIZE[0]}x{SIZE[1]}:r=30:d={SECONDS}", f="lavfi")
    tone = ffmpeg.input(f"sine=f={300 + 7 * i}:r=48000:d={SECONDS}", f="lavfi")
    ffmpeg.output(video, tone, str(path), vcodec="libx264", preset="veryfast", pix_fmt="yuv420p", acodec="aac", ac=2).global_args(
        "-loglevel", "error"
    ).run(overwrite_output=True)
    return path


def film_of(clips: list[Path], transition: str):
    board = {
        "title": f"Bench {transition}",
        "model": "sora-2",
        "size": f"{SIZE[0]}x{SIZE[1]}",
        "transition": transition,
        "shots": [{"id": f"s{i:02d}", "seconds": SECONDS, "visual": f"shot {i}"} for i in range(len(clips))],
    }
    catalog = builtin_catalog()
    routing = route_endpoints(catalog, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-bench"})
    plan = plan_storyboard(parse_storyboard(board), catalog=catalog, routing=routing)
    stored = [
        StoredClip(
            clip_key=spec.clip_key, job_id=f"video_{i}", local_path=str(path), sha256=sha256_file(path), size=path.stat().st_size,
            duration=float(SECONDS), uri=path.as_uri(), key=path.name, uploaded=False,
        )
        for i, (spec, path) in enumerate(zip(plan.clips, clips))
    ]
    return plan, stored


class Clock:
    """Wall seconds, and CPU seconds of this process (every thread: c2pa runs in it) plus its
    finished children (ffmpeg, ffprobe). On a machine shared with other work the wall time
    swings with the load; the CPU time is what the step itself costs."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu() - self.cpu


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def assemble_once(plan, stored, out: Path, signing) -> tuple[Clock, assembly.AssembledFilm]:
    shutil.rmtree(out, ignore_errors=True)
    with Clock() as clock:
        film = assembly.assemble(plan, stored, out, transition_seconds=0.5, burn_subtitles=False, signing=signing)
    return clock, film


def parts(plan, stored, film: assembly.AssembledFilm, folder: Path, signing) -> dict[str, Clock]:
    """The stitch alone, and each part of signing alone, on the film just made."""
    segments = [
        media.FilmSegment(path=Path(s.local_path), shot_id=spec.shot_id, label=spec.label, transition=spec.transition, chapter_title=spec.shot_id)
        for spec, s in zip(plan.film_clips, stored)
    ]
    spec = media.FilmSpec(*plan.film_width_height, transition_seconds=0.5, title=plan.title, metadata={})
    with Clock() as stitch:
        media.stitch_film(segments, folder / "stitched.mp4", spec)
    clips = provenance.film_clips(plan, {s.clip_key: (Path(s.local_path), s.sha256) for s in stored})
    with Clock() as sign:
        provenance.sign_film(
            folder / "stitched.mp4", folder / "signed.mp4", title=plan.title, clips=clips,
            stitching=provenance.Stitching(film.method, plan.size), credentials=signing,
        )
    with Clock() as read:
        assert provenance.read_film(folder / "signed.mp4").ok
    return {"stitch_film": stitch, "sign_film": sign, "read back": read}


def run(name: str, plan, stored, folder: Path, signing, rounds: int) -> None:
    unsigned, signed, pieces = [], [], []
    for _ in range(rounds):
        clock, film = assemble_once(plan, stored, folder / "unsigned", None)
        unsigned.append(clock)
        clock, film_signed = assemble_once(plan, stored, folder / "signed", signing)
        assert film_signed.c2pa_manifest and provenance.read_film(folder / "signed" / "film.mp4").ok
        signed.append(clock)
        pieces.append(parts(plan, stored, film, folder, signing))
    size = (folder / "signed" / "film.mp4").stat().st_size
    print(f"{name}: {len(stored)} clips, film {film.duration:.0f} s, {size / 1e6:.1f} MB, assembly {film.method}; median of {rounds}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for what in ("wall", "cpu"):
        u, s = (statistics.median(getattr(c, what) for c in clocks) for clocks in (unsigned, signed))
        med = {k: statistics.median(getattr(p[k], what) for p in pieces) for k in pieces[0]}
        print(f"  {what:4}  film step (stitch, contact sheet, hashes) unsigned {u:7.2f} s, signed {s:7.2f} s: "
              f"ratio {s / u:5.3f} ({(s - u) / u:+.1%}; target <= +5%)")
        print(f"        stitch_film alone {med['stitch_film']:6.2f} s; sign_film alone {med['sign_film']:5.2f} s "
              f"({med['sign_film'] / med['stitch_film']:.1%} of it); read back {med['read back']:5.2f} s "
              f"({med['read back'] / med['stitch_film']:.1%}); signing and read back: "
              f"{(med['sign_film'] + med['read back']) / med['stitch_film']:+.1%} over the stitch alone")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--normalize-rounds", type=int, default=1)
    parser.add_argument("--clips", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soraflow-bench-provenance-") as tmp:
        folder = Path(tmp)
        print(f"making {args.clips} clips of {SECONDS} s {SIZE[0]}x{SIZE[1]} h264+aac ...", flush=True)
        (folder / "clips").mkdir()
        with ThreadPoolExecutor(2) as pool:
            clips = list(pool.map(lambda i: make_clip(folder / "clips" / f"c{i:02d}.mp4", i), range(args.clips)))
        chain = provenance.make_dev_chain(folder / "chain")
        signing = provenance.load_credentials(Settings(provenance_cert_chain=chain.chain, provenance_private_key=chain.private_key))
        print(f"{os.cpu_count()} cores; wall and CPU seconds (this process and its ffmpeg children)", flush=True)
        run("copy", *film_of(clips, "cut"), folder, signing, args.rounds)
        if args.normalize_rounds:
            run("normalize (crossfades)", *film_of(clips, "crossfade"), folder, signing, args.normalize_rounds)
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
