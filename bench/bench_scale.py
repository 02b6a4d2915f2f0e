"""A render at scale: 500 shots of 4 s on the embedded simulator, as a user runs it.

`soraflow render` runs as a real process with no key (the embedded simulator, in the render's own
process), reporting to a Prefect server the benchmark starts beforehand (as a service or a user
with `prefect server start` has one; a temporary server would be a child of the render, about
260 MB of its own, and its start-up would be in the wall time). Beforehand, `soraflow estimate`
of the same storyboard says how long it expects the render to take. A baseline render of 20
shots runs first, to the same server, and the 500-shot figures are printed against it (memory
that stays flat is a ratio near 1). Figures printed, for each:

- the wall time of the render, launch to exit, against the ideal: the clips' latency scheduled
  under the limits alone (the default limits: 4 in flight, 60 creates per minute; so 500 clips
  are 125 waves of the latency, and the rate bounds them at 440 s beyond the first minute's
  60), computed by soraflow's own scheduler with no overhead;
- orchestration seconds per clip: (first create to last clip stored, less the ideal) / clips,
  from the ledger's times;
- the peak resident memory of the render's process tree (the render and its ffmpeg children),
  sampled every 0.2 s, with its parts at that moment; target <= 300 MB (the Prefect server's
  own is printed beside it);
- the number of WARNING (or worse) lines on the terminal; target <= 10;
- `soraflow estimate`'s wall time against the measured one; target within +-25 %.

Run: nice .venv/bin/python bench/bench_scale.py [--shots 500] [--baseline-shots 20] [--latency 2] [--prefect-api URL]
(it takes about ten minutes on 2 cores; run it when the machine is quiet)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import yaml

BIN = Path(sys.executable).parent
SOR = [str(BIN / "soraflow")]
RSS_TARGET_MB = 300
WARNING_TARGET = 10
ESTIMATE_TOLERANCE = 0.25
WARNING_LINE = re.compile(r"\|\s*(WARNING|ERROR|CRITICAL)\s*\||^\s*(warning|error):", re.IGNORECASE)


def environment(home: Path, latency: float, api: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "SORAFLOW_", "GOOGLE_", "GEMINI_"))}
    return env | {
        "PREFECT_HOME": str(home / "prefect-home"),
        "PREFECT_API_URL": api,
        "SORAFLOW_STATE_DIR": str(home / "state"),
        "SORAFLOW_SIMULATOR_LATENCY": str(latency),
        "COLUMNS": "160",
    }


class PrefectServer:
    """`prefect server start` on a free port with a home of its own, outside the render's tree."""

    def __init__(self, home: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        env = environment(home, 0, "") | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL")
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "server.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                                         env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise SystemExit(f"the Prefect server did not start (exit {self.proc.poll()}): {self.log.read_text()[-3000:]}")
            time.sleep(1)

    def rss(self) -> int:
        try:
            return sum(p.memory_info().rss for p in [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)])
        except psutil.Error:
            return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def storyboard(home: Path, shots: int) -> Path:
    data = {
        "title": f"Scale {shots}",
        "size": "1280x720",
        "model": "sora-2",
        "shots": [{"id": f"s{i:03d}", "seconds": 4, "visual": f"scale shot {i}, a lantern in the fog"} for i in range(shots)],
    }
    path = home / "scale.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class TreeMemory:
    """Peak memory of a process and all its descendants, sampled every ``every`` seconds:

    - ``peak``: the sum of their RSS (pages shared between them, the libraries of two ffmpeg
      processes, counted once per process), with the processes that made it up at that moment;
    - ``peak_pss``: the sum of their PSS (a shared page divided among its sharers): what the
      tree takes from the machine;
    - ``peak_own`` / ``peak_own_pss``: the same without the simulator's renders (the ffmpeg
      processes the embedded simulator runs in place of a provider's GPUs, at most one per core:
      soraflow.simulator.render.Renderer), so what the render itself holds: its process, the
      assembly's ffmpeg, a temporary Prefect server if it started one;
    - ``peak_clips``: the RSS of the tree without the simulator's renders and without the
      contact sheet's ffmpeg (the assembly's last step, which tiles every clip's frame into one
      PNG and so grows with the clips);
    - ``peak_root``: the render process alone.
    """

    def __init__(self, pid: int, every: float = 0.5):
        self.root = psutil.Process(pid)
        self.every = every
        self.peak = self.peak_pss = self.peak_own = self.peak_own_pss = self.peak_clips = self.peak_root = 0
        self.peak_sheet = 0
        self.at_peak: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _simulated(proc: psutil.Process) -> bool:
        try:
            return proc.name() == "ffmpeg" and ("sim-renders" in proc.cwd() or "simulator-renders" in proc.cwd())
        except psutil.Error:
            return False

    @staticmethod
    def _sheet(proc: psutil.Process) -> bool:
        try:
            return proc.name() == "ffmpeg" and "soraflow-sheet-" in " ".join(proc.cmdline())
        except psutil.Error:
            return False

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            rss_sum = pss_sum = own = own_pss = clips = 0
            parts = []
            for proc in tree:
                try:
                    if proc.pid != self.root.pid and proc.cmdline() == self.root.cmdline():
                        continue  # a fork of the render not yet exec'd (subprocess): its pages are the render's
                    full = proc.memory_full_info()
                    what = " ".join(proc.cmdline())[:160] or proc.name()
                except psutil.Error:
                    continue
                rss_sum += full.rss
                pss_sum += full.pss
                simulated, sheet = self._simulated(proc), self._sheet(proc)
                if not simulated:
                    own += full.rss
                    own_pss += full.pss
                if not simulated and not sheet:
                    clips += full.rss
                if sheet:
                    self.peak_sheet = max(self.peak_sheet, full.rss)
                label = "simulator: " if simulated else ("contact sheet: " if sheet else "")
                parts.append((full.rss, "render" if proc.pid == self.root.pid else label + what))
                if proc.pid == self.root.pid:
                    self.peak_root = max(self.peak_root, full.rss)
            if rss_sum > self.peak:
                self.peak, self.at_peak = rss_sum, sorted(parts, reverse=True)
            self.peak_pss = max(self.peak_pss, pss_sum)
            self.peak_own = max(self.peak_own, own)
            self.peak_own_pss = max(self.peak_own_pss, own_pss)
            self.peak_clips = max(self.peak_clips, clips)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def estimate(sb: Path, env: dict) -> tuple[float, str]:
    """What `soraflow estimate` says the render will take, in seconds, and its words."""
    out = subprocess.run([*SOR, "estimate", str(sb)], env=env | {"COLUMNS": "1000"}, capture_output=True, text=True, check=True).stdout
    said = next(line.strip() for line in out.splitlines() if "expected wall time" in line)
    found = re.search(r"expected wall time ~(?:(\d+) h )?(?:(\d+) min)? ?(?:(\d+) s)?", said)
    hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return hours * 3600 + minutes * 60 + seconds, said


def ledger_window(state: Path) -> tuple[float, float, int]:
    """(first create, last clip stored, clips stored) from the ledger's times."""
    with sqlite3.connect(state / "ledger.sqlite") as db:
        first = db.execute("select min(submitted_at) from clips").fetchone()[0]
        last, stored = db.execute("select max(updated_at), count(*) from clips where storage_uri is not null").fetchone()
    return first, last, stored


def ideal_seconds(sb: Path, env: dict) -> float:
    """The clips' latency scheduled under the limits alone, first create to last clip fetched,
    with no overhead (soraflow's own scheduler, less the film's assembly)."""
    code = (
        "import sys; from soraflow.settings import Settings; from soraflow.plan import load_plan, model_catalog;"
        "from soraflow.limits import wall_time;"
        "s = Settings(); c = model_catalog(s); p = load_plan(sys.argv[1], None, settings=s, catalog=c);"
        "w = wall_time(p, c, s, overhead_seconds=0.0); print(w.seconds - w.assembly_seconds)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(sb)], env=env, capture_output=True, text=True)
    return float(done.stdout) if done.returncode == 0 else float("nan")


class Render:
    """One `soraflow render` of ``shots`` shots in a home of its own, measured."""

    def __init__(self, root: Path, shots: int, latency: float, api: str):
        self.home = root / f"render-{shots}"
        self.home.mkdir(parents=True)
        self.shots = shots
        self.env = environment(self.home, latency, api)
        self.sb = storyboard(self.home, shots)
        self.expected, self.caption = estimate(self.sb, self.env)
        self.ideal = ideal_seconds(self.sb, self.env)

        started, launched = time.perf_counter(), time.time()
        proc = subprocess.Popen([*SOR, "render", str(self.sb), "--out", str(self.home / "out")], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        memory = TreeMemory(proc.pid)
        output, _ = proc.communicate()
        self.wall = time.perf_counter() - started
        memory.stop()
        (self.home / "render.log").write_text(output)
        if proc.returncode != 0:
            print(output[-4000:])
            raise SystemExit(f"render of {shots} shots failed (exit {proc.returncode}); its output is in {self.home / 'render.log'}")
        first, last, self.stored = ledger_window(self.home / "state")
        self.startup = first - launched
        self.window = last - first
        self.warnings = [line for line in output.splitlines() if WARNING_LINE.search(line)]
        self.peak_mb = memory.peak / 2**20
        self.pss_mb = memory.peak_pss / 2**20
        self.own_mb = memory.peak_own / 2**20
        self.own_pss_mb = memory.peak_own_pss / 2**20
        self.root_mb = memory.peak_root / 2**20
        self.clips_mb = memory.peak_clips / 2**20
        self.sheet_mb = memory.peak_sheet / 2**20
        self.parts = "; ".join(f"{rss / 2**20:.0f} MB {what}" for rss, what in memory.at_peak[:4])

    @property
    def per_clip(self) -> float:
        """Orchestration seconds a clip: first create to last clip stored, less the ideal."""
        return (self.window - self.ideal) / self.shots


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", type=int, default=500)
    parser.add_argument("--baseline-shots", type=int, default=20, help="the baseline render, first, in the same process and server")
    parser.add_argument("--latency", type=float, default=2.0, help="the simulator's seconds from create to completed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--prefect-api", help="a Prefect server's API URL to report to (default: one started here)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="soraflow-bench-scale-"))
    server = None if args.prefect_api else PrefectServer(root / "server")
    api = args.prefect_api or server.url
    try:
        print(f"shots of 4 s on the embedded simulator, latency {args.latency:g} s; the default limits (4 in flight, 60 creates a minute)")
        base = Render(root, args.baseline_shots, args.latency, api)
        big = Render(root, args.shots, args.latency, api)
        for r in (base, big):
            print(f"{r.shots} shots: wall {r.wall:.1f} s launch to exit (start-up to the first create {r.startup:.1f} s); "
                  f"first create to last stored {r.window:.1f} s against the ideal under the limits {r.ideal:.1f} s (x{r.window / r.ideal:.2f}); "
                  f"orchestration {r.per_clip:.3f} s a clip; WARNING lines {len(r.warnings)}; estimate {r.expected:.0f} s")
            print(f"  peak memory of the tree: RSS {r.peak_mb:.0f} MB, PSS {r.pss_mb:.0f} MB; without the simulator's renders: "
                  f"RSS {r.own_mb:.0f} MB, PSS {r.own_pss_mb:.0f} MB; without them and the contact sheet's ffmpeg "
                  f"(peak {r.sheet_mb:.0f} MB): RSS {r.clips_mb:.0f} MB; the render process alone: RSS {r.root_mb:.0f} MB")
        off = big.expected / big.wall - 1
        print(f"{args.shots} against {args.baseline_shots}: peak RSS of the tree x{big.peak_mb / base.peak_mb:.2f} "
              f"({big.peak_mb - base.peak_mb:+.0f} MB for {args.shots - args.baseline_shots} more clips), "
              f"of the render process x{big.root_mb / base.root_mb:.2f} ({big.root_mb - base.root_mb:+.0f} MB); "
              f"orchestration a clip x{big.per_clip / base.per_clip:.2f}; window / ideal {big.window / big.ideal:.2f} "
              f"(baseline {base.window / base.ideal:.2f})")
        print(f"  at the peak: {big.parts}" + (f"; the Prefect server (not in the tree) uses {server.rss() / 2**20:.0f} MB" if server else ""))
        print(f"  estimate: {big.caption}")
        for line in big.warnings[:12]:
            print(f"  warning line: {line[:200]}")
        verdicts = {
            f"peak RSS of the tree {big.peak_mb:.0f} MB <= {RSS_TARGET_MB}": big.peak_mb <= RSS_TARGET_MB,
            f"peak RSS without the simulator's renders {big.own_mb:.0f} MB <= {RSS_TARGET_MB}": big.own_mb <= RSS_TARGET_MB,
            f"peak RSS without them and the contact sheet {big.clips_mb:.0f} MB <= {RSS_TARGET_MB}": big.clips_mb <= RSS_TARGET_MB,
            f"WARNING lines {len(big.warnings)} <= {WARNING_TARGET}": len(big.warnings) <= WARNING_TARGET,
            f"estimate {big.expected:.0f} s vs render {big.wall:.0f} s: {off:+.0%} within +-{ESTIMATE_TOLERANCE:.0%}": abs(off) <= ESTIMATE_TOLERANCE,
        }
        print("targets: " + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in verdicts.items()))
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
