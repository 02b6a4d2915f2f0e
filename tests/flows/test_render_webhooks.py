"""Renders whose endpoint declares webhooks, end to end: real `soraflow render` processes, a
standalone simulator delivering its project's webhooks (with faults), and `soraflow webhooks
serve` as a process of its own, recording into the renders' ledger and emitting Prefect events.

- lost, duplicated and reordered deliveries: every clip completes (the lost ones through the
  safety poll), each delivery is recorded once and told once, nothing is paid twice;
- the receiver killed mid-render and started again: every clip completes, nothing paid twice;
- three workers on one Postgres ledger, the receiver a fourth process: every clip is seen done
  through the ledger (LISTEN/NOTIFY), by one status call per worker waiting for it.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from soraflow.ledger import Deliveries, Ledger
from soraflow.simulator.webhooks import SECRET_ENV, new_secret
from tests.flows.processes import KEY, ReceiverProcess, SimProcess, finish, free_port, render, storyboard

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]

SECRET_VAR = "SORAFLOW_TEST_WEBHOOK_SECRET"
LATENCY = 2.0
SAFETY = 3.0  # the safety poll: at the expected render time (1 s here) + 3 s, then every 3 s


def models_file(tmp_path: Path, receiver_port: int) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({
        "endpoints": {"openai": {"webhooks": {"url": f"http://127.0.0.1:{receiver_port}/webhooks/openai", "secret_env": SECRET_VAR}}},
        "models": {"sora-2": {"render_seconds_per_second": 0.25}},
    }))  # fmt: skip
    return path


@pytest.fixture
def hooked(tmp_path):
    """Start a receiver and a simulator delivering to it: ``start(faults, ledger_url=None)``."""
    from prefect.settings import PREFECT_API_URL

    started = []

    def start(webhook_faults: str = "", *, seed: int = 7, ledger_url: str | None = None, safety: float = SAFETY):
        secret = new_secret()
        port = free_port()
        env = {
            **os.environ,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "SORAFLOW_STATE_DIR": str(tmp_path / "state"),
            "SORAFLOW_MODELS": str(models_file(tmp_path, port)),
            "SORAFLOW_WEBHOOK_SAFETY_POLL_SECONDS": str(safety),
            "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "12",
            "OPENAI_API_KEY": KEY,
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        if ledger_url:
            env["SORAFLOW_LEDGER_URL"] = ledger_url
        receiver = ReceiverProcess(tmp_path, {**env, SECRET_VAR: secret}, port=port)
        started.append(receiver)
        sim = SimProcess(tmp_path, "--latency", str(LATENCY), "--seed", str(seed), "--webhook-url", receiver.delivery_url("openai"),
                         "--webhook-faults", webhook_faults, env={**os.environ, SECRET_ENV: secret})
        started.append(sim)
        env["OPENAI_BASE_URL"] = f"{sim.url}/v1"
        return sim, receiver, env, secret

    yield start
    for proc in reversed(started):
        proc.stop()


def prefect_events(since: datetime) -> list:
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    with get_client(sync_client=True) as client:
        page = client.read_events(EventFilter(occurred=EventOccurredFilter(since=since), event=EventNameFilter(prefix=["soraflow.video."])),
                                  limit=50)
        events = list(page.events)
        while page.next_page:
            page = client.read_events_page(str(page.next_page))
            events += page.events
    return events


def until(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.5)
    raise AssertionError("timed out")


def test_lost_duplicated_and_reordered_deliveries_every_clip_once(tmp_path, hooked):
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    sim, receiver, env, secret = hooked("drop=0.3,duplicate=0.3,reorder=0.2", seed=1)  # 6 draws: 2 drops, a duplicate, 2 reorders
    sb = storyboard(tmp_path, 6, title="Hooked")
    proc = render(sb, tmp_path / "out", env)
    output = finish(proc)
    ended = time.time()
    assert proc.returncode == 0, output

    jobs, records = sim.admin_jobs(), sim.deliveries()
    assert len(jobs) == 6, f"{len(jobs)} creates for 6 clips"
    assert {d["fault"] for d in records.values()} >= {"drop", "duplicate", "reorder"}, records  # the seed hits each
    ledger = Ledger(Path(env["SORAFLOW_STATE_DIR"]) / "ledger.sqlite")
    recorded = Deliveries(ledger).all()
    # one row per delivery that arrived, however many times it came; none for a lost one
    arrived = {job_id for job_id, d in records.items() if d["delivered"]}
    assert sorted(d.job_id for d in recorded) == sorted(arrived)
    assert all(ledger.get(d.clip_key).state == "completed" for d in recorded)
    duplicated = [d for d in records.values() if d["fault"] == "duplicate" and d["delivered"]]
    assert duplicated and all([a["status"] for a in d["attempts"]].count(200) == 2 for d in duplicated)
    for job_id, d in records.items():
        # confirmed by one call, or caught by the safety poll: never more calls than its schedule
        # allows (one every SAFETY seconds) until the delivery came, or, lost, until the render ended
        came = next((a["at"] for a in d["attempts"] if a["status"] == 200), ended)
        calls, allowed = jobs[job_id]["status_calls"], int((came - jobs[job_id]["created_at"]) / SAFETY) + 2
        assert 1 <= calls <= allowed, f"{job_id} ({d['fault']}): {calls} status calls, {allowed} allowed"
    # every clip done: the film is there, and each delivery that came was told once as an event
    assert (tmp_path / "out" / "film.mp4").stat().st_size > 0
    events = until(lambda: (e := prefect_events(since)) and len(e) >= len(arrived) and e)
    assert sorted(e.resource["soraflow.job-id"] for e in events) == sorted(arrived)
    assert {e.event for e in events} == {"soraflow.video.completed"}
    assert secret not in output and secret not in receiver.output()


def test_the_receiver_killed_mid_render_and_started_again(tmp_path, hooked):
    sim, receiver, env, _ = hooked(safety=60.0)  # no safety poll in this test's time: the deliveries end it
    sb = storyboard(tmp_path, 6, title="Receiver restart")
    proc = render(sb, tmp_path / "out", env)
    until(lambda: sim.admin_jobs(), timeout=120)  # the render is under way: a create has been made
    receiver.kill()
    time.sleep(LATENCY * 1.5)  # deliveries come while it is down: refused connections, retried with backoff
    receiver.start()
    output = finish(proc)
    assert proc.returncode == 0, output

    jobs, records = sim.admin_jobs(), sim.deliveries()
    assert len(jobs) == 6, f"{len(jobs)} creates for 6 clips: paid twice"
    assert all(d["delivered"] for d in records.values()) and len(records) == 6
    retried = [d for d in records.values() if any(a["error"] for a in d["attempts"])]
    assert retried, "no delivery came while the receiver was down"
    assert all(jobs[job_id]["status_calls"] == 1 for job_id in records), {j: jobs[j]["status_calls"] for j in records}
    ledger = Ledger(Path(env["SORAFLOW_STATE_DIR"]) / "ledger.sqlite")
    assert len(Deliveries(ledger).all()) == 6


def test_three_workers_on_one_postgres_ledger_the_receiver_a_fourth_process(tmp_path, hooked, postgres_server):
    from tests.flows.test_scale_out import film_and_clips, start_worker

    url = postgres_server.fresh_schema()
    sim, receiver, env, _ = hooked(ledger_url=url, safety=120.0)  # only a delivery can end a clip in this test's time
    env.update({"SORAFLOW_REQUEST_TIMEOUT_SECONDS": "5", "SORAFLOW_LEDGER_LEASE_SECONDS": "35"})
    env.pop("SORAFLOW_LEDGER_PATH", None)
    sb = storyboard(tmp_path, 6, title="Hooked workers")
    workers = {name: start_worker(name, sb, tmp_path, env) for name in ("w1", "w2", "w3")}
    outputs = {name: finish(proc) for name, proc in workers.items()}
    for name, proc in workers.items():
        assert proc.returncode == 0, f"{name}:\n{outputs[name]}"

    jobs, records = sim.admin_jobs(), sim.deliveries()
    assert len(jobs) == 6, f"{len(jobs)} creates for 6 clips"
    films = {name: film_and_clips(tmp_path / name / "out") for name in workers}
    assert len(set(map(repr, films.values()))) == 1
    ledger = Ledger(url)
    assert sorted(d.job_id for d in Deliveries(ledger).all()) == sorted(jobs)
    for job_id, job in jobs.items():
        # every worker waiting on the clip heard of its delivery through the ledger and confirmed
        # it with one status call; none polled (the safety poll is 2 minutes away)
        assert 1 <= job["status_calls"] <= 3, f"{job_id}: {job['status_calls']} status calls"
        assert records[job_id]["delivered"] and [a["status"] for a in records[job_id]["attempts"]] == [200]


def test_fal_deliveries_to_the_url_each_submit_names_verified_with_fals_keys(tmp_path):
    """fal takes the webhook per request: the render's submits name the receiver, the simulator
    signs each request's end with its Ed25519 key, and the receiver verifies it against the JWKS
    it fetches, matching fal's request id to the ledger's job."""
    import re

    from prefect.settings import PREFECT_API_URL

    from tests.flows.test_render_fal import _fal_requests

    sim = SimProcess(tmp_path, "--latency", str(LATENCY), "--fal-port", str(free_port()))
    receiver = None
    try:
        deadline = time.time() + 30
        while not (found := re.search(r'base_url: "(https://[^"]+)", ca_file: "([^"]+)"', sim.log_path.read_text())):
            assert time.time() < deadline, "the simulator did not print its fal endpoint"
            time.sleep(0.1)
        port = free_port()
        models = tmp_path / "fal-models.yaml"
        models.write_text(yaml.safe_dump({
            "endpoints": {"fal": {"base_url": found[1], "ca_file": found[2], "history_settle_seconds": 8, "webhooks": {
                "url": f"http://127.0.0.1:{port}/webhooks/fal", "jwks_url": f"{sim.url}/.well-known/jwks.json"}}},
            "models": {"veo-3.1-fal": {"render_seconds_per_second": 0.25}},
        }))  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env.update({"PREFECT_API_URL": PREFECT_API_URL.value(), "SORAFLOW_STATE_DIR": str(tmp_path / "state"), "FAL_KEY": KEY,
                    "SORAFLOW_MODELS": str(models), "SORAFLOW_WEBHOOK_SAFETY_POLL_SECONDS": "120", "PREFECT_LOGGING_LEVEL": "WARNING"})
        receiver = ReceiverProcess(tmp_path, env, port=port)
        sb = storyboard(tmp_path, 3, title="Fal hooked")
        sb.write_text(sb.read_text().replace("title: Fal hooked", "title: Fal hooked\nmodel: veo-3.1-fal"))
        proc = render(sb, tmp_path / "out", env)
        output = finish(proc)
        assert proc.returncode == 0, output

        requests = {r["id"]: r for r in _fal_requests(sim)}
        assert len(requests) == 3, f"{len(requests)} fal requests for 3 clips"
        records = sim.deliveries()
        assert set(records) == set(requests) and all(d["dialect"] == "fal" and d["delivered"] for d in records.values())
        assert all([a["status"] for a in d["attempts"]] == [200] for d in records.values())
        recorded = Deliveries(Ledger(tmp_path / "state" / "ledger.sqlite")).all()
        # the ledger's job ids name the endpoint and the request; fal's delivery names the request alone
        assert sorted(d.job_id.rsplit("/requests/", 1)[1] for d in recorded) == sorted(requests)
        assert all(d.job_id.startswith("fal-ai/veo3.1") and d.endpoint == "fal" for d in recorded)
        # one status() to confirm (fal-client's result() looks at the status once more before it fetches)
        assert all(r["status_calls"] <= 2 for r in requests.values()), {i: r["status_calls"] for i, r in requests.items()}
        assert "read 1 signing key(s)" in receiver.output() and KEY not in receiver.output()
    finally:
        if receiver is not None:
            receiver.stop()
        sim.stop()
