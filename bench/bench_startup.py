"""Launch to flow start: where the seconds before the first create go.

`soraflow render` is launched as a user launches it (a fresh process, no PREFECT_API_URL)
against a standalone simulator in this process; the moment its first create reaches the
simulator is "flow start" as the user sees it (the flow has begun, planned, checked the
model's availability and claimed the clip). Beside it, in the same run, the floors it is made
of, each a fresh process:

1. baseline: `python -c pass` (the interpreter);
2. `import soraflow.cli` (what every command imports before doing anything);
3. `soraflow estimate` (a whole command that needs no Prefect: imports, settings, the plan);
4. `import soraflow.flows.render` (Prefect and the flow's modules);
5. `soraflow render` to the first create with a Prefect server already running where the CLI
   looks (SORAFLOW_PREFECT_LOCAL_API: `prefect server start` on this machine);
6. `soraflow render` to the first create with no server running: the CLI starts a temporary
   one (the README's command 1 on a machine that runs no server).

Each figure is the median of RUNS runs (after one warm-up run of each, so that the temporary
server's database already exists, as on any machine after its first render), printed in
seconds with its ratio to the baseline.

Run: .venv/bin/python bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
BIN = Path(sys.executable).parent

from _prefect_servers import _free_port, _wait_healthy  # noqa: E402

from soraflow.simulator import Simulator, SimulatorConfig  # noqa: E402


def environment(home: Path, sim: Simulator, local_api: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "SORAFLOW_"))}
    return env | {
        "PREFECT_HOME": str(home / "prefect-home"),
        "SORAFLOW_STATE_DIR": str(home / "state"),
        "OPENAI_BASE_URL": sim.base_url,
        "OPENAI_API_KEY": sim.api_key,
        "SORAFLOW_PREFECT_LOCAL_API": local_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def storyboard(home: Path) -> Path:
    """A new one-shot storyboard each time, so the render always has a clip to create."""
    path = home / f"sb-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump({"title": "Start-up", "size": "1280x720",
                                    "shots": [{"id": "s", "seconds": 4, "visual": f"start-up {path.stem}"}]}))
    return path


def to_first_create(home: Path, sim: Simulator, env: dict[str, str]) -> float:
    """Seconds from launching `soraflow render` to its first create at the simulator; the render
    is then left to finish (its time is not counted)."""
    jobs = f"{sim.url}/_sim/jobs"
    before = len(httpx.get(jobs).json()["data"])
    sb = storyboard(home)
    start = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "soraflow"), "render", str(sb), "--out", str(home / sb.stem)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while len(httpx.get(jobs).json()["data"]) == before:
        if proc.poll() is not None:
            raise RuntimeError(f"render ended before its first create: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"render failed: {err.decode()[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="soraflow-bench-startup-"))
    estimate_sb = storyboard(home)
    server = None
    try:
        with Simulator(SimulatorConfig(latency=1.0, port=0)) as sim:
            env = environment(home, sim)
            port = _free_port()
            local_api = f"http://127.0.0.1:{port}/api"
            server_home = home / "server-home"
            log = home / "prefect-server.log"
            server = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env | {"PREFECT_HOME": str(server_home)}, stdout=open(log, "w"), stderr=subprocess.STDOUT,
            )
            _wait_healthy(local_api, server, log)
            measures = {
                "python -c pass (baseline)": lambda: timed([sys.executable, "-c", "pass"], env),
                "import soraflow.cli": lambda: timed([sys.executable, "-c", "import soraflow.cli"], env),
                "soraflow estimate": lambda: timed([str(BIN / "soraflow"), "estimate", str(estimate_sb)], env),
                "import soraflow.flows.render (Prefect)": lambda: timed([sys.executable, "-c", "import soraflow.flows.render"], env),
                "render to first create, server running": lambda: to_first_create(home, sim, environment(home, sim, local_api)),
                "render to first create, temporary server": lambda: to_first_create(home, sim, env),
            }
            figures: dict[str, list[float]] = {name: [] for name in measures}
            for name, measure in measures.items():
                measure()  # warm-up: the temporary server's database, the page cache
            for _ in range(args.runs):  # interleaved, so that a busy moment touches every figure
                for name, measure in measures.items():
                    figures[name].append(measure())
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(home, ignore_errors=True)
    baseline = statistics.median(figures["python -c pass (baseline)"])
    print(f"launch to flow start, median of {args.runs} runs (2 cores):")
    for name, values in figures.items():
        med = statistics.median(values)
        print(f"  {name:<44} {med:6.2f} s   x{med / baseline:6.1f}   (runs: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
