"""Webhooks against polling, in one run: 12 clips whose jobs take 20 s, rendered by the real flow.

Passes, in this process, on the same simulator (its render cache warmed first) and Prefect server:
- polling only: the endpoint declares no webhooks (soraflow's poller, paced by the simulator's
  openai-poll-after-ms hint, as every clip is today);
- webhooks on a SQLite ledger: the simulator delivers its project's webhooks to a receiver
  (``soraflow.webhooks.Receiver``, a thread here) recording into the render's ledger;
- webhooks on a Postgres ledger (when Debian's postgresql is installed): the same, the waiting
  clips woken by LISTEN/NOTIFY.

Printed per pass, from the simulator's own record (``/_sim/jobs``, ``/_sim/webhooks``):
- status calls per job (target with webhooks: <= 2);
- the lag from the simulator's ``completed`` (the job's end; the delivery is sent then) to the
  clip seen done (``poll_clip`` returning in the flow's task): median and max (target <= 1 s);
- wall / ideal, ideal = the job latency + the film's stitch (the rest is orchestration, downloads).

Run: .venv/bin/python bench/bench_webhooks.py [--clips 12] [--latency 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
TMP = Path(tempfile.mkdtemp(prefix="soraflow-bench-webhooks-"))
SECRET_VAR = "BENCH_WEBHOOK_SECRET"
os.environ.update(
    {
        "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "12",
        "SORAFLOW_REQUESTS_PER_MINUTE": "600",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
)

import httpx  # noqa: E402

from _prefect_servers import harness_or_env  # noqa: E402
from _render import timed_render  # noqa: E402

from soraflow import generation  # noqa: E402
from soraflow.ledger import Deliveries, Ledger  # noqa: E402
from soraflow.models import load_catalog  # noqa: E402
from soraflow.settings import Settings  # noqa: E402
from soraflow.simulator import Simulator, SimulatorConfig  # noqa: E402
from soraflow.simulator.webhooks import new_secret  # noqa: E402
from soraflow.webhooks import Receiver, receiver_endpoints  # noqa: E402


def models_file(name: str, webhooks: bool) -> Path:
    data: dict = {"models": {"sora-2": {"concurrency": 12, "requests_per_minute": 600}}}
    if webhooks:
        data["endpoints"] = {"openai": {"webhooks": {"url": "http://127.0.0.1/webhooks/openai", "secret_env": SECRET_VAR}}}
    path = TMP / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def storyboard(n: int) -> Path:
    data = {"title": "Bench webhooks", "size": "1280x720",
            "shots": [{"id": f"s{i:02d}", "seconds": 4, "visual": f"webhook bench shot {i}"} for i in range(n)]}
    path = TMP / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def seen_done() -> dict[str, float]:
    """When the flow's task saw each job done (``poll_clip`` returned), by job id."""
    seen: dict[str, float] = {}
    real = generation.poll_clip

    def timed(spec, job_id, **kw):
        done = real(spec, job_id, **kw)
        seen[job_id] = time.time()
        return done

    generation.poll_clip = timed
    try:
        yield seen
    finally:
        generation.poll_clip = real


@contextmanager
def receiver_on(ledger_url: str, sim: Simulator):
    """A receiver on the render's ledger, the simulator's project webhook pointing at it."""
    secret = new_secret()
    os.environ[SECRET_VAR] = secret
    settings = Settings()
    ledger = Ledger(ledger_url)
    endpoints = receiver_endpoints(load_catalog(settings.models), settings.environment)
    with Receiver(endpoints, Deliveries(ledger)) as receiver:
        sim.state.webhooks.configure_project(receiver.delivery_url("openai"), secret)
        try:
            yield ledger
        finally:
            sim.state.webhooks.configure_project(None)


def one_pass(name: str, sim: Simulator, sb: Path, *, webhooks: bool, ledger_url: str | None, latency: float) -> dict:
    state = TMP / f"state-{name}"
    os.environ["SORAFLOW_MODELS"] = str(models_file(name, webhooks))
    os.environ.pop("SORAFLOW_LEDGER_URL", None)
    if ledger_url:
        os.environ["SORAFLOW_LEDGER_URL"] = ledger_url
    sim.reset()
    with (receiver_on(ledger_url or f"sqlite:///{state / 'ledger.sqlite'}", sim) if webhooks else nullcontext()), seen_done() as seen:
        wall, stitch = timed_render(sb, state, TMP / f"out-{name}")
    jobs = {j["id"]: j for j in httpx.get(f"{sim.url}/_sim/jobs").json()["data"]}
    deliveries = {d["job_id"]: d for d in httpx.get(f"{sim.url}/_sim/webhooks").json()["deliveries"]}
    assert set(seen) == set(jobs), (len(seen), len(jobs))
    lags = [seen[j] - jobs[j]["finished_at"] for j in jobs]
    calls = [jobs[j]["status_calls"] for j in jobs]
    sent = [deliveries[j]["first_sent_at"] - jobs[j]["finished_at"] for j in jobs if j in deliveries]
    return {"name": name, "wall": wall, "stitch": stitch, "ideal": latency + stitch, "calls": calls, "lags": lags, "sent": sent}


def show(r: dict, target: bool) -> None:
    calls, lags = r["calls"], r["lags"]
    per_job = statistics.mean(calls)
    ratio = r["wall"] / r["ideal"]
    line = (f"[{r['name']}] {len(calls)} clips: status calls per job {per_job:.2f} (max {max(calls)})"
            f"{' (target <= 2: ' + ('met' if max(calls) <= 2 else 'NOT met') + ')' if target else ''}; "
            f"completed -> seen done: median {statistics.median(lags):.2f} s, max {max(lags):.2f} s"
            f"{' (target <= 1 s: ' + ('met' if statistics.median(lags) <= 1 else 'NOT met') + ')' if target else ''}; "
            f"wall {r['wall']:.1f} s / ideal {r['ideal']:.1f} s (latency + stitch {r['stitch']:.1f} s) = {ratio:.2f}")
    if r["sent"]:
        line += f"; delivery sent {statistics.median(r['sent']):.3f} s after completed (median)"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--latency", type=float, default=20.0)
    args = parser.parse_args()
    sb = storyboard(args.clips)
    results = []
    with harness_or_env("sqlite"), Simulator(SimulatorConfig(latency=1.0, cache_dir=str(TMP / "renders"))) as sim:
        os.environ.update({"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": sim.api_key})
        one_pass("warm-up", sim, sb, webhooks=False, ledger_url=None, latency=1.0)  # renders cached, imports done
        sim.config.latency = args.latency
        results.append(one_pass("polling", sim, sb, webhooks=False, ledger_url=None, latency=args.latency))
        results.append(one_pass("webhooks, sqlite ledger", sim, sb, webhooks=True, ledger_url=None, latency=args.latency))
        try:
            from tests.fixtures.postgres import PostgresServer

            with PostgresServer() as pg:
                results.append(one_pass("webhooks, postgres ledger", sim, sb, webhooks=True, ledger_url=pg.fresh_schema(),
                                        latency=args.latency))
        except RuntimeError as err:
            print(f"[webhooks, postgres ledger] not measured: {err}")
    print(f"\n{args.clips} clips, jobs of {args.latency:.0f} s, one simulator and one Prefect server:")
    for r in results:
        show(r, target=r["name"].startswith("webhooks"))
    polling = results[0]
    for r in results[1:]:
        print(f"  {r['name']} vs polling: status calls x{statistics.mean(r['calls']) / statistics.mean(polling['calls']):.2f}, "
              f"median lag x{statistics.median(r['lags']) / max(statistics.median(polling['lags']), 1e-3):.2f}, "
              f"wall x{r['wall'] / polling['wall']:.2f}")


if __name__ == "__main__":
    main()
