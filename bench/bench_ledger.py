"""Ledger throughput, Postgres against SQLite, with 1, 4 and 16 concurrent writers.

One operation is what a create costs the ledger: ``claim_create`` (a new clip, CLAIMED) then
``record_job``. Each writer is a process of its own (a worker), with its own ``Ledger``; all
start together on a barrier and the throughput is operations / (last end - first start). Two
workloads:
- distinct: every writer claims clips no other writer touches (workers on different storyboards);
- same storyboard: every writer claims every clip, in its own order (N workers given one
  storyboard); one claim per clip wins, the others get WAIT or HAVE_JOB; an operation here is
  one claim attempt.

The baseline, measured in this process, is SQLite with one writer. Both backends are durable:
SQLite in WAL with synchronous=FULL (the ledger's setting), Postgres with fsync on (the tests'
cluster, started here from Debian's postgresql). Wall times on a shared 2-core machine are
noisy: each figure is the median of --rounds.

Run: .venv/bin/python bench/bench_ledger.py [--ops 480] [--rounds 3] [--writers 1 4 16]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soraflow.ledger import ClaimKind, Ledger, owner_id  # noqa: E402
from soraflow.providers.base import VideoJob  # noqa: E402


def _clip(key: str) -> dict:
    return dict(clip_key=key, shot_id="s", part=1, model="sora-2", size="1280x720", seconds=8, prompt_sha256="p")


def _writer(url: str, keys: list[str], start, times) -> None:
    led = Ledger(url)
    me = owner_id()
    led.get("warm-up")  # the connection is open before the clock starts
    start.wait()
    t0 = time.perf_counter()
    for key in keys:
        claim = led.claim_create(**_clip(key), owner=me)
        if claim.kind is ClaimKind.CLAIMED:
            led.record_job(key, VideoJob(id=f"job-{key}", status="queued"))
    times.put((t0, time.perf_counter()))


def measure(url: str, writers: int, ops: int, same_storyboard: bool) -> float:
    """Operations per second with ``writers`` processes on a fresh ledger at ``url``."""
    Ledger(url).close()  # migrate before the race
    tag = uuid.uuid4().hex[:8]
    if same_storyboard:
        clips = [f"{tag}-{i}" for i in range(max(ops // writers, 1))]
        plans = [clips[w:] + clips[:w] for w in range(writers)]  # each in its own order
    else:
        plans = [[f"{tag}-{w}-{i}" for i in range(max(ops // writers, 1))] for w in range(writers)]
    ctx = mp.get_context("fork")
    start, times = ctx.Barrier(writers), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, plan, start, times)) for plan in plans]
    for p in procs:
        p.start()
    spans = [times.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a writer failed with exit code {p.exitcode}")
    done = sum(len(plan) for plan in plans)
    return done / (max(e for _, e in spans) - min(s for s, _ in spans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=480, help="claim + record operations per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()

    from tests.fixtures.postgres import PostgresServer

    tmp = Path(tempfile.mkdtemp(prefix="soraflow-bench-ledger-"))
    with PostgresServer(durable=True) as pg:
        urls = {
            "sqlite": lambda: f"sqlite:///{tmp / (uuid.uuid4().hex + '.sqlite')}",
            "postgres": pg.fresh_schema,
        }
        results: dict[tuple[str, str, int], float] = {}
        for workload in ("distinct", "same storyboard"):
            for writers in args.writers:
                for backend, fresh in urls.items():
                    rates = [measure(fresh(), writers, args.ops, workload == "same storyboard") for _ in range(args.rounds)]
                    results[(workload, backend, writers)] = statistics.median(rates)

    base = results[("distinct", "sqlite", args.writers[0])]
    print(f"ledger throughput: claim + record, {args.ops} operations, median of {args.rounds} rounds")
    print(f"baseline: sqlite, distinct clips, {args.writers[0]} writer = {base:.0f} ops/s\n")
    print(f"{'workload':<16}{'writers':>8}{'sqlite ops/s':>14}{'postgres ops/s':>16}{'pg / sqlite':>13}"
          f"{'sqlite / base':>15}{'pg / base':>11}")  # fmt: skip
    for workload in ("distinct", "same storyboard"):
        for writers in args.writers:
            lite, pg_rate = results[(workload, "sqlite", writers)], results[(workload, "postgres", writers)]
            print(f"{workload:<16}{writers:>8}{lite:>14.0f}{pg_rate:>16.0f}{pg_rate / lite:>13.2f}"
                  f"{lite / base:>15.2f}{pg_rate / base:>11.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
