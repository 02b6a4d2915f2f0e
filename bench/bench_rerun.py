"""What an unchanged rerun of `soraflow render` costs, against what it used to cost.

README command 1, as a user repeats it: `soraflow render examples/lighthouse/storyboard.yaml
--out OUT` with no key (the embedded simulator), no PREFECT_API_URL and no Prefect server
running. The first render makes the film; then, in the same fresh state:

1. baseline: `soraflow estimate` of the same storyboard (the floor of any command: Python,
   imports, the plan);
2. the unchanged rerun through the CLI: its outputs are up to date, so it needs neither the
   provider, nor ffmpeg, nor a Prefect server;
3. the same rerun forced through the flow (`render_storyboard` in a fresh process on a
   temporary Prefect server): what every rerun cost before (caches answer every clip, the
   film is not stitched again).

Every figure is the median of RUNS runs, printed with its ratio to the baseline. The target:
the rerun under 5 s on this machine (2 cores, shared).

Run: .venv/bin/python bench/bench_rerun.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STORYBOARD = ROOT / "examples" / "lighthouse" / "storyboard.yaml"
RUNS = 3
TARGET_SECONDS = 5.0

FORCED_FLOW = """
import sys
from soraflow.cli._prefect import prefect_api as _prefect_api, prefect_defaults as _prefect_defaults
from soraflow.settings import Settings
_prefect_defaults()
from soraflow.flows.render import RenderRequest, render_storyboard
with _prefect_api(Settings()):
    state = render_storyboard(RenderRequest(storyboard_path=sys.argv[1], out_dir=sys.argv[2]), return_state=True)
assert state.is_completed(), state.message
assert state.result().billed_usd_this_run == "0.00"
"""


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "SORAFLOW_"))}
    return env | {
        "PREFECT_HOME": str(home / "prefect-home"),
        "SORAFLOW_STATE_DIR": str(home / "state"),
        "SORAFLOW_SIMULATOR_LATENCY": "1",
        "SORAFLOW_PREFECT_LOCAL_API": "",  # never a server someone else runs on this machine
    }


def timed(command: list[str], env: dict[str, str], expect: str | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    output = done.stdout + done.stderr
    if done.returncode != 0 or (expect and expect not in output):
        raise SystemExit(f"{' '.join(command[:3])} failed ({done.returncode}):\n{output[-3000:]}")
    return elapsed


def median(command: list[str], env: dict[str, str], expect: str | None = None) -> float:
    return statistics.median(timed(command, env, expect) for _ in range(RUNS))


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="soraflow-bench-rerun-"))
    try:
        env, out = environment(home), home / "out"
        render = [str(BIN / "soraflow"), "render", str(STORYBOARD), "--out", str(out)]
        first = timed(render, env)
        estimate = median([str(BIN / "soraflow"), "estimate", str(STORYBOARD)], env)
        rerun = median(render, env, expect="up to date")
        flow = median([sys.executable, "-c", FORCED_FLOW, str(STORYBOARD), str(out)], env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"first render (4 clips, 28 s film, simulator latency 1 s): {first:.1f} s")
    print(f"baseline `soraflow estimate`:                 {estimate:5.2f} s  (1.00)")
    print(f"unchanged rerun, `soraflow render`:           {rerun:5.2f} s  ({rerun / estimate:.2f} x the baseline)")
    print(f"the same rerun through the flow (as before):  {flow:5.2f} s  ({flow / estimate:.2f} x the baseline, "
          f"{flow / rerun:.1f} x the rerun)")
    verdict = "under" if rerun < TARGET_SECONDS else "OVER"
    print(f"unchanged rerun {verdict} the {TARGET_SECONDS:g} s target on {os.cpu_count()} cores (median of {RUNS})")


if __name__ == "__main__":
    main()
