"""Generation throughput and polling economy, as ratios against baselines run in this process.

1. 12 shots at 3 s simulated latency, concurrency limit 12: the render flow's wall time divided
   by (latency + stitch time), target <= 1.3, on each Prefect backend:
   - sqlite: the backend of the temporary server `soraflow render` starts by default;
   - postgres: the service backend (infra/compose.yaml), on a throwaway cluster (needs Debian's
     postgresql package; the row says so when it is missing).
   Beside it, in the same process and on the same server:
   - the Prefect floor: a flow of the same shape (three tasks per clip, with the Prefect
     concurrency slot and rate-limit token soraflow took before its limits moved beside the
     ledger: bench/_prefect_limits.py) whose tasks only sleep the latency: what any Prefect flow of
     this shape costs here, before soraflow does any work; and the same floor without the slot
     and the token, which splits that cost between the limits and the flow run itself;
   - a sequential `create_and_poll` loop through the openai SDK (sqlite run only).
2. Status calls per clip for a 20 s job: soraflow's poller (target <= 6, completion seen within
   2 s) beside the openai SDK's 1 s polling.

Run: .venv/bin/python bench/bench_generate.py [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
TMP = Path(tempfile.mkdtemp(prefix="soraflow-bench-"))
(TMP / "models.yaml").write_text(yaml.safe_dump({"models": {"sora-2": {"concurrency": 12, "requests_per_minute": 600}}}))
os.environ.update(
    {
        "SORAFLOW_MODELS": str(TMP / "models.yaml"),  # the model's own limit: room for all 12 too
        "SORAFLOW_STATE_DIR": str(TMP / "state-warm"),
        "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "12",
        "SORAFLOW_REQUESTS_PER_MINUTE": "600",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
)

import logging  # noqa: E402

import openai  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.futures import wait  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from _prefect_limits import PrefectLimits  # noqa: E402
from _prefect_servers import BACKENDS, harness_or_env, postgres_server  # noqa: E402
from _render import timed_render  # noqa: E402

from soraflow.ledger import Limit  # noqa: E402
from soraflow.simulator import Simulator, SimulatorConfig  # noqa: E402

LATENCY = 3.0


def storyboard(n: int) -> Path:
    data = {"title": "Bench", "size": "1280x720", "shots": [{"id": f"s{i:02d}", "seconds": 4, "visual": f"bench shot {i}"} for i in range(n)]}
    f = TMP / "bench.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


class ServerBusyCounter(logging.Handler):
    """Counts the Prefect client's retries after a 503 from the server.

    On the SQLite-backed test server, concurrent slot increments fail with "database is locked"
    (a stale read snapshot cannot be upgraded to a write); the server answers 503 and the client
    backs off about 2 s. The count makes that cost visible beside the ratio.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retryable status code 503" in record.getMessage():
            self.count += 1


def render_once(sb: Path, state: str) -> tuple[float, float]:
    return timed_render(sb, TMP / state, TMP / f"out-{state}")


FLOOR_LIMIT = Limit("all", 12, 600)
PREFECT_LIMITS = PrefectLimits()  # the per-clip Prefect slot and token soraflow used to take


@task
def _hold_slot_for_latency(i: int, limits: bool = True) -> int:
    if not limits:
        time.sleep(LATENCY)
        return i
    with PREFECT_LIMITS.hold([FLOOR_LIMIT]):
        PREFECT_LIMITS.take_token([FLOOR_LIMIT])
        time.sleep(LATENCY)
    return i


@task
def _follow(x: int) -> int:
    return x


@flow(name="prefect-floor", task_runner=ThreadPoolTaskRunner(max_workers=64))
def _prefect_floor(n: int, limits: bool = True) -> None:
    """render-storyboard's shape with no work in it: generate (slot + token + latency) → download → store."""
    wait([_follow.submit(_follow.submit(_hold_slot_for_latency.submit(i, limits))) for i in range(n)])


def prefect_floor(n: int, limits: bool = True) -> float:
    PREFECT_LIMITS.configure([FLOOR_LIMIT])
    t0 = time.perf_counter()
    _prefect_floor(n, limits)
    return time.perf_counter() - t0


def sequential_baseline(sim, n: int) -> float:
    client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
    t0 = time.perf_counter()
    for i in range(n):
        v = client.videos.create_and_poll(model="sora-2", prompt=f"Shot s{i:02d}\n\nVisual: baseline {i}", seconds="4", size="1280x720")
        assert v.status == "completed"
    return time.perf_counter() - t0


def status_calls(sim_latency: float) -> None:
    from soraflow.generation import poll_clip
    from soraflow.ledger import Ledger
    from soraflow.models import builtin_catalog, route_endpoints
    from soraflow.plan import clip_key, ClipSpec
    from soraflow.providers import build_provider, connect
    from soraflow.settings import Settings
    from decimal import Decimal

    for hint in (True, False):
        with Simulator(SimulatorConfig(latency=sim_latency, poll_after_hint=hint)) as sim:
            os.environ.update({"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": sim.api_key})
            settings = Settings(state_dir=TMP / f"poll-{hint}")
            route = route_endpoints(builtin_catalog(), settings.environment).route("openai")
            provider = build_provider(connect(route, settings.environment), settings)
            spec = ClipSpec(
                shot_id="p", shot_index=0, part=1, parts=1, profile="sora-2", model="sora-2", route=route, size="1280x720", seconds=8,
                prompt="Shot p\n\nVisual: poll", clip_key=clip_key(endpoint="b", model="sora-2", size="1280x720", seconds=8, prompt="p"),
                price_usd=Decimal("0.8"), expected_render_seconds=builtin_catalog().profile("sora-2").expected_render_seconds(8),
            )
            job = provider.create(model="sora-2", size="1280x720", seconds=8, prompt=spec.prompt)
            created = time.time()
            ledger = Ledger.from_settings(settings)
            ledger.claim_create(clip_key=spec.clip_key, shot_id="p", part=1, model="sora-2", size="1280x720", seconds=8, prompt_sha256="x", owner="bench")
            ledger.record_job(spec.clip_key, job)
            before = sim.stats()["requests_by_route"].get("GET /v1/videos/{video_id}", 0)
            poll_clip(spec, job.id, provider=provider, ledger=ledger, settings=settings)
            seen_late = time.time() - created - sim_latency
            ours = sim.stats()["requests_by_route"].get("GET /v1/videos/{video_id}", 0) - before

            client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
            v = client.videos.create(model="sora-2", prompt="sdk poll", seconds="8", size="1280x720")
            before = sim.stats()["requests_by_route"].get("GET /v1/videos/{video_id}", 0)
            client.videos.poll(v.id, poll_interval_ms=1000)
            sdk = sim.stats()["requests_by_route"].get("GET /v1/videos/{video_id}", 0) - before
            label = "with openai-poll-after-ms" if hint else "without a hint (adaptive)"
            print(f"status calls for a {sim_latency:.0f} s job {label}: soraflow {ours} (seen {seen_late:+.2f} s after completion), "
                  f"SDK 1 s polling {sdk}; ratio {ours / sdk:.2f}")


def measure(backend: str) -> None:
    """One backend, in this process: soraflow's render, the Prefect floor, the sequential loop."""
    with harness_or_env(backend):
        with Simulator(SimulatorConfig(latency=LATENCY)) as sim:
            os.environ.update({"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": sim.api_key})
            sb = storyboard(12)
            render_once(sb, "state-warm")  # fills the simulator's render cache and Prefect's imports
            prefect_floor(12)
            busy = ServerBusyCounter()
            client_logger = logging.getLogger("prefect.client")
            client_logger.addHandler(busy)
            client_logger.setLevel(logging.DEBUG)
            wall, stitch = render_once(sb, "state-measured")
            render_busy = busy.count
            floor = prefect_floor(12)
            client_logger.removeHandler(busy)
            ratio, floor_ratio = wall / (LATENCY + stitch), (floor + stitch) / (LATENCY + stitch)
            print(f"[{backend}] 12 clips, latency {LATENCY:.1f} s: soraflow wall {wall:.2f} s, stitch {stitch:.2f} s, "
                  f"wall / (latency + stitch) = {ratio:.2f} (target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'})")
            print(f"[{backend}] Prefect floor (same flow shape and limits, tasks only sleep {LATENCY:.0f} s): {floor:.2f} s, "
                  f"(floor + stitch) / (latency + stitch) = {floor_ratio:.2f}; soraflow's own work beyond the floor and "
                  f"the stitch: {wall - floor - stitch:.2f} s")
            bare = prefect_floor(12, limits=False)
            print(f"[{backend}] the same floor without the slot and the token: {bare:.2f} s, "
                  f"(floor + stitch) / (latency + stitch) = {(bare + stitch) / (LATENCY + stitch):.2f}: "
                  f"the limits cost {floor - bare:.2f} s, the flow run itself {bare - LATENCY:.2f} s")
            print(f"[{backend}] Prefect API calls retried after 503 ('database is locked', ~2 s back-off each): "
                  f"{render_busy} in the render, {busy.count - render_busy} in the floor")
            if backend == "sqlite":
                seq = sequential_baseline(sim, 12)
                print(f"[{backend}] sequential create_and_poll loop: {seq:.2f} s; soraflow speed-up {seq / wall:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, help="measure one backend in this process (default: each, then polling)")
    args = parser.parse_args()
    if args.backend:
        measure(args.backend)
        return
    # One process per backend: Prefect's clients and slot services are per-process singletons.
    me = [sys.executable, __file__, "--backend"]
    subprocess.run([*me, "sqlite"], check=True)
    try:
        with postgres_server() as url:
            subprocess.run([*me, "postgres"], check=True, env={**os.environ, "PREFECT_API_URL": url})
    except RuntimeError as err:
        print(f"[postgres] not measured: {err}")
    status_calls(20.0)


if __name__ == "__main__":
    main()
