"""Orchestration cost per clip: soraflow's limits (slots beside the ledger) against the design they
replaced (a Prefect global concurrency slot per clip and a rate-limit token per create, from the
Prefect server: bench/_prefect_limits.py), both running the real render flow in this process
against the same simulator, alternately.

Figures per configuration (clips x simulated latency):
- overhead per clip = (wall - (latency + stitch)) / clips, target <= 0.25 s at 12 x 3 s,
  12 x 20 s and 48 x 5 s with room for every clip;
- wall / (latency + stitch) at 12 x 20 s, target <= 1.15 (on SQLite and on Postgres);
- limit 2, 8 x 20 s: wall / ideal, the ideal being 4 waves of the latency plus the stitch,
  target <= 1.1.

The simulator's media for each measured clip is rendered before the clock starts (see
``prerender``): its ffmpeg renders stand for the provider's GPUs, not for the orchestration.

Run: .venv/bin/python bench/bench_limits.py [--rounds N] [--backend sqlite|postgres] [--only NAME]
(the Prefect server on SQLite is the temporary server's backend; Postgres is the service's.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
TMP = Path(tempfile.mkdtemp(prefix="soraflow-bench-limits-"))
(TMP / "models.yaml").write_text(yaml.safe_dump({"models": {"sora-2": {"concurrency": 64, "requests_per_minute": 600}}}))
os.environ.update(
    {
        "SORAFLOW_MODELS": str(TMP / "models.yaml"),  # room for every clip at the model's own limit
        "SORAFLOW_REQUESTS_PER_MINUTE": "600",
        "SORAFLOW_POLL_MIN_INTERVAL_SECONDS": "0.5",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
)

from _prefect_limits import PrefectLimits  # noqa: E402
from _prefect_servers import BACKENDS, harness_or_env, postgres_server  # noqa: E402
from _render import timed_render  # noqa: E402

from soraflow.simulator import Simulator, SimulatorConfig  # noqa: E402

# name: (clips, latency, limit)
CONFIGS = {
    "12x3": (12, 3.0, 64),
    "12x20": (12, 20.0, 64),
    "48x5": (48, 5.0, 64),
    "limit2-8x20": (8, 20.0, 2),
}
POSTGRES_CONFIGS = ("12x20",)


def storyboard(n: int, tag: str) -> Path:
    data = {"title": f"Bench {tag}", "size": "1280x720", "shots": [{"id": f"s{i:02d}", "seconds": 4, "visual": f"bench {tag} shot {i}"} for i in range(n)]}
    f = TMP / f"{tag}.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def prerender(sim: Simulator, sb: Path) -> None:
    """Make the simulator's media for this storyboard's clips before the clock starts.

    The simulator draws each clip with ffmpeg on this machine's two cores (0.3-0.4 s of CPU a
    clip); a real provider renders on its own GPUs. Left in, those renders would count as
    orchestration (48 clips: about 9 s of the wall) and compete with it for the CPU, in both
    designs. Rendered here, from the plan's final prompts exactly as the create will ask, the
    create finds them in the simulator's render cache."""
    from soraflow.plan import load_plan, model_catalog
    from soraflow.settings import Settings
    from soraflow.simulator.render import render_spec

    settings = Settings()
    plan = load_plan(str(sb), None, settings=settings, catalog=model_catalog(settings))
    for future in [
        sim.state.renderer.submit(render_spec(prompt=c.prompt, model=c.model, size=c.size, seconds=c.seconds)) for c in plan.clips
    ]:
        future.result()


def render_once(sb: Path, state: str, limit: int) -> tuple[float, float]:
    os.environ["SORAFLOW_MAX_CONCURRENT_SUBMISSIONS"] = str(limit)
    return timed_render(sb, TMP / state, TMP / f"out-{state}")


def measure(backend: str, rounds: int, only: list[str]) -> None:
    from soraflow.tasks import runtime

    ledger_slots = runtime.slots
    old = PrefectLimits()
    designs = {"ledger slots": ledger_slots, "Prefect per clip": lambda: old}
    configs = [name for name in CONFIGS if (not only or name in only) and (backend == "sqlite" or name in POSTGRES_CONFIGS)]
    with harness_or_env(backend):
        for name in configs:
            clips, latency, limit = CONFIGS[name]
            waves = -(-clips // limit)
            results: dict[str, list[tuple[float, float]]] = {d: [] for d in designs}
            with Simulator(SimulatorConfig(latency=latency)) as sim:
                os.environ.update({"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": sim.api_key})
                render_once(storyboard(clips, f"warm-{name}"), f"warm-{name}", limit)  # imports, the simulator's render cache
                for r in range(rounds):
                    for design, slots in designs.items():
                        runtime.slots = slots
                        tag = f"{name}-{design.split()[0]}-{r}"
                        sb = storyboard(clips, tag)
                        prerender(sim, sb)
                        results[design].append(render_once(sb, tag, limit))
            runtime.slots = ledger_slots
            line = []
            for design, runs in results.items():
                ideal = [waves * latency + stitch for _, stitch in runs]
                per_clip = [(wall - ideal_) / clips for (wall, _), ideal_ in zip(runs, ideal)]
                ratio = [wall / ideal_ for (wall, _), ideal_ in zip(runs, ideal)]
                spread = f" (spread {min(per_clip):.2f}-{max(per_clip):.2f})" if len(runs) > 1 else ""
                line.append(
                    f"{design}: {statistics.median(per_clip):.2f} s/clip{spread}, wall / ideal {statistics.median(ratio):.2f}, "
                    f"wall {statistics.median(w for w, _ in runs):.1f} s"
                )
            print(f"[{backend}] {name} (limit {limit}, ideal {waves} wave(s) of {latency:.0f} s + stitch): " + " | ".join(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, help="measure one backend in this process (default: each)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", action="append", choices=list(CONFIGS), default=[])
    args = parser.parse_args()
    if args.backend:
        measure(args.backend, args.rounds, args.only)
        return
    # One process per backend: Prefect's clients and slot services are per-process singletons.
    me = [sys.executable, __file__, "--rounds", str(args.rounds), *[a for o in args.only for a in ("--only", o)], "--backend"]
    subprocess.run([*me, "sqlite"], check=True)
    try:
        with postgres_server() as url:
            subprocess.run([*me, "postgres"], check=True, env={**os.environ, "PREFECT_API_URL": url})
    except RuntimeError as err:
        print(f"[postgres] not measured: {err}")


if __name__ == "__main__":
    main()
