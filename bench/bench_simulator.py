"""What the simulator costs: rendering media, and how jobs overlap.

1. Render time of 12 distinct 8 s clips at 1280x720 (H.264 + AAC + thumbnail + spritesheet),
   on a fresh cache with the default pool (one worker per core), then the same 12 from cache.
2. 24 jobs of latency L created at once through the openai SDK and polled to completion, their
   renders cached: wall time / L (time-based jobs: about 1, not 24).

Run: .venv/bin/python bench/bench_simulator.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks the Videos API deprecated

import openai  # noqa: E402

from soraflow.simulator import Simulator, SimulatorConfig  # noqa: E402
from soraflow.simulator.render import Renderer, render_spec  # noqa: E402

CLIPS, SECONDS, SIZE = 12, 8, "1280x720"
LATENCY, JOBS = 3.0, 24


def prompt(i: int) -> str:
    return f"Shot s{i:02d} — part 1 of 1\n\nVisual: bench clip number {i}, a lighthouse at dawn."


def render_bench() -> None:
    cache = tempfile.mkdtemp(prefix="soraflow-bench-renders-")
    renderer = Renderer(cache)
    specs = [render_spec(prompt=prompt(i), model="sora-2", size=SIZE, seconds=SECONDS) for i in range(CLIPS)]
    t0 = time.perf_counter()
    for future in [renderer.submit(s) for s in specs]:
        future.result()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for future in [renderer.submit(s) for s in specs]:
        future.result()
    warm = time.perf_counter() - t0
    renderer.close()
    generated = CLIPS * SECONDS
    print(f"render {CLIPS} x {SECONDS} s at {SIZE} on {os.cpu_count()} cores: {cold:.2f} s cold "
          f"({cold / CLIPS:.2f} s per clip, {generated / cold:.1f} s of video per second), {warm * 1000:.1f} ms from cache")


def overlap_bench() -> None:
    with Simulator(SimulatorConfig(latency=LATENCY)) as sim:
        client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key, max_retries=0)
        # Warm the render cache with every job's video, then start the simulator's counts afresh:
        # a request asked again is another video (another render), as a model makes a new one each
        # time, so only first requests after a reset find their render cached.
        with ThreadPoolExecutor(JOBS) as pool:
            list(pool.map(lambda i: client.videos.create_and_poll(prompt=prompt(i), seconds="4", size=SIZE), range(JOBS)))
        sim.reset()

        def one(i: int) -> str:
            return client.videos.create_and_poll(prompt=prompt(i), seconds="4", size=SIZE).status

        t0 = time.perf_counter()
        with ThreadPoolExecutor(JOBS) as pool:
            statuses = list(pool.map(one, range(JOBS)))
        wall = time.perf_counter() - t0
        peak = sim.stats()["peak_active_jobs"]
    assert statuses == ["completed"] * JOBS, statuses
    print(f"{JOBS} jobs of latency {LATENCY:g} s at once: wall {wall:.2f} s, wall / latency = {wall / LATENCY:.2f} "
          f"(sequential would be {JOBS}); peak active jobs {peak}")


if __name__ == "__main__":
    render_bench()
    overlap_bench()
