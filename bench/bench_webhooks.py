"""Webhooks against polling, in one run: 12 clips whose jobs take 20 s, rendered by the real flow.

Every party is a process of its own, as in service: the render flow in this process (with the
Prefect test server), the provider (``soraflow simulator``, its render cache warmed first), the
receiver (``soraflow webhooks serve``). Passes, on the same simulator and Prefect server:
- polling only: the endpoint declares no webhooks (soraflow's poller, paced by the simulator's
  openai-poll-after-ms hint, as every clip is today);
- webhooks on a SQLite ledger: the simulator delivers its project's webhooks to the receiver,
  which records them into the render's ledger;
- webhooks on a Postgres ledger (when Debian's postgresql is installed): the same, the waiting
  clips woken by LISTEN/NOTIFY.

Printed per pass, from the simulator's own record (``/_sim/jobs``, ``/_sim/webhooks``):
- status calls per job (target with webhooks: <= 2);
- the lag from the simulator's ``completed`` (the job's end; the delivery is sent then) to the
  clip seen done (the answer to its status call saying ``completed``): median and max (target
  <= 1 s), and where it goes: completed -> delivery recorded in the ledger (the receiver) -> the
  clip's status call answered ``completed`` -> that answer checked and recorded (the ledger's
  update, the clip's progress artifact on the Prefect server) -> ``poll_clip`` returned;
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

import subprocess  # noqa: E402
import socket  # noqa: E402

import httpx  # noqa: E402

from _prefect_servers import harness_or_env  # noqa: E402
from _render import timed_render  # noqa: E402

from soraflow import generation  # noqa: E402
from soraflow.ledger import Deliveries, Ledger  # noqa: E402
from soraflow.simulator.webhooks import new_secret  # noqa: E402

KEY = "sk-bench"


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
def seen_done() -> dict[str, dict[str, float]]:
    """By job id: when the endpoint's answer to the clip's status call said ``completed`` (``seen``:
    soraflow knows, the answer still to be checked and recorded), when that answer had been checked
    and recorded (``confirmed``: the ledger's update and the clip's progress artifact on the
    Prefect server done) and when the flow's task moved on (``returned``: ``poll_clip`` returned)."""
    from soraflow.providers.openai_videos import OpenAIVideosProvider

    seen: dict[str, dict[str, float]] = {}
    real_poll, real_ask, real_retrieve = generation.poll_clip, generation._StatusCalls.ask, OpenAIVideosProvider.retrieve

    def timed_retrieve(self, job_id):
        job, hint = real_retrieve(self, job_id)
        if job.status == "completed":
            seen.setdefault(job_id, {}).setdefault("seen", time.time())
        return job, hint

    def timed_ask(self, deadline):
        job, hint = real_ask(self, deadline)
        if job is not None and job.status == "completed":
            seen.setdefault(self.job_id, {})["confirmed"] = time.time()
        return job, hint

    def timed_poll(spec, job_id, **kw):
        done = real_poll(spec, job_id, **kw)
        seen.setdefault(job_id, {})["returned"] = time.time()
        return done

    generation.poll_clip, generation._StatusCalls.ask, OpenAIVideosProvider.retrieve = timed_poll, timed_ask, timed_retrieve
    try:
        yield seen
    finally:
        generation.poll_clip, generation._StatusCalls.ask, OpenAIVideosProvider.retrieve = real_poll, real_ask, real_retrieve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(args: list[str], env: dict, name: str, ready: str) -> subprocess.Popen:
    log = open(TMP / f"{name}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "soraflow.cli", *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(ready, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200:
                return proc
        except httpx.HTTPError:
            assert proc.poll() is None and time.time() < deadline, (TMP / f"{name}.log").read_text()
            time.sleep(0.2)


@contextmanager
def simulator(latency: float):
    """``soraflow simulator`` with this latency, on the shared render cache; its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(["simulator", "--port", str(port), "--latency", str(latency), "--cache-dir", str(TMP / "renders")],
                  dict(os.environ), f"simulator-{port}", f"{url}/v1/models")
    try:
        os.environ.update({"OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": KEY})
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def receiver_on(ledger_url: str, sim: str):
    """``soraflow webhooks serve`` on the render's ledger, the simulator's project webhook pointing at it."""
    secret, port = new_secret(), _free_port()
    env = {**os.environ, SECRET_VAR: secret, "SORAFLOW_LEDGER_URL": ledger_url}
    env.pop("PREFECT_API_URL", None)  # events are not measured here
    proc = _serve(["webhooks", "serve", "--port", str(port)], env, f"receiver-{port}", f"http://127.0.0.1:{port}/health")
    try:
        httpx.post(f"{sim}/_sim/webhooks", json={"url": f"http://127.0.0.1:{port}/webhooks/openai", "secret": secret}).raise_for_status()
        yield Ledger(ledger_url)
    finally:
        httpx.post(f"{sim}/_sim/webhooks", json={"url": None}).raise_for_status()
        proc.terminate()
        proc.wait(30)


def one_pass(name: str, sim: str, sb: Path, *, webhooks: bool, ledger_url: str | None, latency: float) -> dict:
    state = TMP / f"state-{name}"
    os.environ["SORAFLOW_MODELS"] = str(models_file(name, webhooks))
    os.environ.pop("SORAFLOW_LEDGER_URL", None)
    if ledger_url:
        os.environ["SORAFLOW_LEDGER_URL"] = ledger_url
    httpx.post(f"{sim}/_sim/reset").raise_for_status()
    recorded: dict[str, float] = {}
    with (receiver_on(ledger_url or f"sqlite:///{state / 'ledger.sqlite'}", sim) if webhooks else nullcontext()) as ledger, \
            seen_done() as seen:
        wall, stitch = timed_render(sb, state, TMP / f"out-{name}")
        if ledger is not None:
            recorded = {d.job_id: d.received_at for d in Deliveries(ledger).all()}
    jobs = {j["id"]: j for j in httpx.get(f"{sim}/_sim/jobs").json()["data"]}
    assert set(seen) == set(jobs), (len(seen), len(jobs))
    finished = {j: jobs[j]["finished_at"] for j in jobs}
    return {
        "name": name, "wall": wall, "stitch": stitch, "ideal": latency + stitch, "calls": [jobs[j]["status_calls"] for j in jobs],
        "lags": [seen[j]["seen"] - finished[j] for j in jobs],
        "recorded": [recorded[j] - finished[j] for j in jobs if j in recorded],
        "confirmed": [seen[j]["confirmed"] - finished[j] for j in jobs],
        "returned": [seen[j]["returned"] - finished[j] for j in jobs],
    }


def show(r: dict, target: bool) -> None:
    calls, lags = r["calls"], r["lags"]
    per_job = statistics.mean(calls)
    ratio = r["wall"] / r["ideal"]
    line = (f"[{r['name']}] {len(calls)} clips: status calls per job {per_job:.2f} (max {max(calls)})"
            f"{' (target <= 2: ' + ('met' if max(calls) <= 2 else 'NOT met') + ')' if target else ''}; "
            f"completed -> seen done: median {statistics.median(lags):.2f} s, max {max(lags):.2f} s"
            f"{' (target <= 1 s: ' + ('met' if statistics.median(lags) <= 1 else 'NOT met') + ')' if target else ''}; "
            f"wall {r['wall']:.1f} s / ideal {r['ideal']:.1f} s (latency + stitch {r['stitch']:.1f} s) = {ratio:.2f}")
    print(line, flush=True)
    steps = [("delivery recorded by the receiver", r["recorded"]), ("status call answered completed", r["lags"]),
             ("answer checked and recorded", r["confirmed"]), ("poll_clip returned", r["returned"])]
    print("    after completed (median): " + ", ".join(f"{what} {statistics.median(v):.2f} s" for what, v in steps if v), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--latency", type=float, default=20.0)
    args = parser.parse_args()
    sb = storyboard(args.clips)
    results = []
    with harness_or_env("sqlite"):
        with simulator(1.0) as sim:
            one_pass("warm-up", sim, sb, webhooks=False, ledger_url=None, latency=1.0)  # renders cached, imports done
        with simulator(args.latency) as sim:
            results.append(one_pass("polling", sim, sb, webhooks=False, ledger_url=None, latency=args.latency))
            results.append(one_pass("webhooks, sqlite ledger", sim, sb, webhooks=True, ledger_url=None, latency=args.latency))
            try:
                from tests.fixtures.postgres import PostgresServer

                with PostgresServer() as pg:
                    results.append(one_pass("webhooks, postgres ledger", sim, sb, webhooks=True, ledger_url=pg.fresh_schema(),
                                            latency=args.latency))
            except RuntimeError as err:
                print(f"[webhooks, postgres ledger] not measured: {err}")
    print(f"\n{args.clips} clips, jobs of {args.latency:.0f} s, one simulator process and one Prefect server:")
    for r in results:
        show(r, target=r["name"].startswith("webhooks"))
    polling = results[0]
    for r in results[1:]:
        print(f"  {r['name']} vs polling: status calls x{statistics.mean(r['calls']) / statistics.mean(polling['calls']):.2f}, "
              f"median lag x{statistics.median(r['lags']) / max(statistics.median(polling['lags']), 1e-3):.2f}, "
              f"wall x{r['wall'] / polling['wall']:.2f}")


if __name__ == "__main__":
    main()
