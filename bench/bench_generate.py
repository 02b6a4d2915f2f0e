"""Generation throughput and polling economy, as ratios against baselines run in this process.

1. 12 shots at 3 s simulated latency, concurrency limit 12: the render flow's wall time divided
   by (latency + stitch time) — target <= 1.3 — beside a sequential `create_and_poll` loop.
2. Status calls per clip for a 20 s job: soraflow's poller (target <= 6, completion seen within
   2 s) beside the openai SDK's 1 s polling.

Run: .venv/bin/python bench/bench_generate.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="soraflow-bench-"))
os.environ.update(
    {
        "SORAFLOW_STATE_DIR": str(TMP / "state-warm"),
        "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "12",
        "SORAFLOW_REQUESTS_PER_MINUTE": "600",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
)

import openai  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from soraflow.simulator import Simulator, SimulatorConfig  # noqa: E402

LATENCY = 3.0


def storyboard(n: int) -> Path:
    data = {"title": "Bench", "size": "1280x720", "shots": [{"id": f"s{i:02d}", "seconds": 4, "visual": f"bench shot {i}"} for i in range(n)]}
    f = TMP / "bench.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def render_once(sb: Path, state: str) -> tuple[float, float]:
    from flows.render import RenderRequest, render_storyboard
    from soraflow import assembly

    os.environ["SORAFLOW_STATE_DIR"] = str(TMP / state)
    t0 = time.perf_counter()
    stitch = {}
    real_assemble = assembly.assemble

    def timed(*a, **kw):
        s = time.perf_counter()
        try:
            return real_assemble(*a, **kw)
        finally:
            stitch["s"] = time.perf_counter() - s

    assembly.assemble = timed
    try:
        state_ = render_storyboard(RenderRequest(storyboard_path=str(sb), out_dir=str(TMP / f"out-{state}")), return_state=True)
    finally:
        assembly.assemble = real_assemble
    assert state_.is_completed(), state_.message
    return time.perf_counter() - t0, stitch["s"]


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
    from soraflow.plan import clip_key, ClipSpec
    from soraflow.providers import OpenAIVideosProvider
    from soraflow.settings import Settings
    from decimal import Decimal

    for hint in (True, False):
        with Simulator(SimulatorConfig(latency=sim_latency, poll_after_hint=hint)) as sim:
            os.environ.update({"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": sim.api_key})
            settings = Settings(state_dir=TMP / f"poll-{hint}")
            provider = OpenAIVideosProvider(settings)
            spec = ClipSpec(
                shot_id="p", shot_index=0, part=1, parts=1, model="sora-2", size="1280x720", seconds=8,
                prompt="Shot p\n\nVisual: poll", clip_key=clip_key(endpoint="b", model="sora-2", size="1280x720", seconds=8, prompt="p"),
                price_usd=Decimal("0.8"),
            )
            job = provider.create(model="sora-2", size="1280x720", seconds=8, prompt=spec.prompt)
            created = time.time()
            ledger = Ledger(settings.resolved_ledger_path)
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


def main() -> None:
    with prefect_test_harness(server_startup_timeout=120):
        with Simulator(SimulatorConfig(latency=LATENCY)) as sim:
            os.environ.update({"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": sim.api_key})
            sb = storyboard(12)
            render_once(sb, "state-warm")  # fills the simulator's render cache and Prefect's imports
            wall, stitch = render_once(sb, "state-measured")
            seq = sequential_baseline(sim, 12)
            print(f"12 clips, latency {LATENCY:.1f} s: soraflow wall {wall:.2f} s, stitch {stitch:.2f} s, "
                  f"wall / (latency + stitch) = {wall / (LATENCY + stitch):.2f} (target <= 1.3)")
            print(f"sequential create_and_poll loop: {seq:.2f} s; speed-up {seq / wall:.2f}x")
    status_calls(20.0)


if __name__ == "__main__":
    main()
