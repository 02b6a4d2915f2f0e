"""The simulator delivers each job's end as its dialect's service does: Standard Webhooks for the
openai-videos project (verified here by the openai SDK's own verify_signature, a second
implementation), fal's Ed25519 against the JWKS it publishes; with every delivery fault and
retries with backoff."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time

import httpx
import openai
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from soraflow.simulator.faults import FaultSpecError
from soraflow.simulator.jobs import Job
from soraflow.simulator.webhooks import FalSigner, parse_webhook_faults
from soraflow.webhooks.jwks import parse_jwks

SECRET = "whsec_" + "c2ltdWxhdG9yLXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLW9r"


class Capture:
    """A receiver that keeps every request and answers 401 to a signature the openai SDK refuses,
    503 while ``down`` is set, else 200."""

    def __init__(self):
        self.requests: list[dict] = []
        self.down = threading.Event()
        self.verifier = openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9")

        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            try:
                self.verifier.webhooks.verify_signature(body, headers, secret=SECRET)
                good = True
            except openai.InvalidWebhookSignatureError:
                good = False
            self.requests.append({"at": time.time(), "body": body, "headers": headers, "good": good})
            if not good:
                return Response(status_code=401)
            return Response(status_code=503 if self.down.is_set() else 200)

        config = uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), port=0, log_config=None, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/hook"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def capture():
    c = Capture()
    yield c
    c.stop()


def _records(sim) -> dict[str, dict]:
    return {d["job_id"]: d for d in httpx.get(f"{sim.url}/_sim/webhooks").json()["deliveries"]}


def _until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_every_fault_kind_and_retries_as_the_service_does(start_sim, capture):
    sim = start_sim(latency=0.4, webhook_url=capture.url, webhook_secret=SECRET, seed=11,
                    webhook_faults="drop=0.2,duplicate=0.2,delay=0.15,reorder=0.15,bad_signature=0.2")
    client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
    capture.down.set()  # the receiver is down at first: deliveries are retried until it is back
    videos = [client.videos.create(prompt="webhook shot", seconds="4", size="720x1280") for _ in range(16)]
    client.videos.retrieve(videos[0].id)
    _until(lambda: len(_records(sim)) == 16)
    time.sleep(0.6)
    capture.down.clear()
    records = _until(lambda: (r := _records(sim)) and all(d["delivered"] or d["fault"] == "drop" for d in r.values()) and r)

    jobs = {j["id"]: j for j in httpx.get(f"{sim.url}/_sim/jobs").json()["data"]}
    assert jobs[videos[0].id]["status_calls"] == 1 and jobs[videos[1].id]["status_calls"] == 0
    faults = {d["fault"] for d in records.values()}
    assert {"drop", "duplicate", "delay", "reorder", "bad_signature", None} <= faults, faults  # the seed hits every kind

    received: dict[str, list[dict]] = {}
    for r in capture.requests:
        received.setdefault(json.loads(r["body"])["data"]["id"], []).append(r)
    for video in videos:
        d = records[video.id]
        got = received.get(video.id, [])
        assert d["event"] == "completed" and d["dialect"] == "openai-videos"
        assert d["job_finished_at"] == pytest.approx(jobs[video.id]["finished_at"])
        if d["fault"] == "drop":
            assert d["attempts"] == [] and got == []
            continue
        # every attempt is one request; the same webhook-id each time, each signed afresh
        assert len(got) == len(d["attempts"]) and {r["headers"]["webhook-id"] for r in got} == {d["delivery_id"]}
        assert [r["good"] for r in got] == [a["signature"] == "good" for a in d["attempts"]]
        statuses = [a["status"] for a in d["attempts"]]
        if d["fault"] == "bad_signature":
            assert statuses[0] == 401 and not got[0]["good"]
        assert 503 in statuses  # the receiver was down when it first came: retried, with growing pauses
        retried = d["attempts"][: statuses.index(200) + 1]  # up to the first delivery (a duplicate follows at once)
        gaps = [b["at"] - a["at"] for a, b in zip(retried, retried[1:])]
        # backoff latency/4 * 2^n, capped at 16 latencies: no pause shorter than its step (pauses are
        # lower bounds on a busy machine, where the receiver may stay down long enough to reach the cap)
        assert gaps and all(g >= min(0.1 * 2**n, 16 * 0.4) - 0.01 for n, g in enumerate(gaps)), gaps
        delivered = [a for a in d["attempts"] if a["status"] == 200]
        assert len(delivered) == (2 if d["fault"] == "duplicate" else 1)
        event = json.loads(got[-1]["body"])
        assert event["type"] == "video.completed" and event["object"] == "event" and event["id"].startswith("evt_")
        if d["fault"] == "delay":
            assert d["first_sent_at"] - d["job_finished_at"] >= 0.35


def test_reorder_holds_a_delivery_until_the_next_has_gone(start_sim, capture):
    sim = start_sim(latency=0.5, webhook_url=capture.url, webhook_secret=SECRET, webhook_faults="reorder=1")
    client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
    first = client.videos.create(prompt="webhook shot", seconds="4", size="720x1280")
    _until(lambda: first.id in _records(sim))  # its end came, and it is held back
    httpx.post(f"{sim.url}/_sim/webhooks", json={"faults": ""}).raise_for_status()
    second = client.videos.create(prompt="webhook shot", seconds="4", size="720x1280")
    records = _until(lambda: (r := _records(sim)) and len(r) == 2 and all(d["delivered"] for d in r.values()) and r)
    order = [json.loads(r["body"])["data"]["id"] for r in capture.requests]
    assert records[first.id]["job_finished_at"] < records[second.id]["job_finished_at"]
    assert (records[first.id]["fault"], records[second.id]["fault"]) == ("reorder", None)
    assert order == [second.id, first.id]


def test_a_failed_job_is_delivered_as_video_failed(start_sim, capture):
    sim = start_sim(latency=0.3, webhook_url=capture.url, webhook_secret=SECRET, moderation_terms=["forbidden"])
    client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
    video = client.videos.create(prompt="a forbidden shot", seconds="4", size="720x1280")
    _until(lambda: _records(sim).get(video.id, {}).get("delivered"))
    assert json.loads(capture.requests[-1]["body"])["type"] == "video.failed"


def test_fal_deliveries_verify_with_the_published_jwks_and_only_with_it(start_sim):
    sim = start_sim()
    keys = parse_jwks(httpx.get(f"{sim.url}/.well-known/jwks.json").json())
    job = Job(id="req-123", seq=1, model="m", size="1280x720", seconds=5, prompt="p", latency=1, ttl=60, created_wall=0, created_mono=0)
    signer = FalSigner(sim.state.webhooks.fal_key)
    body = signer.body(job, "completed", time.time(), None)
    for good in (True, False):
        headers = signer.sign("req-123", body, good=good)
        message = "\n".join((headers["x-fal-webhook-request-id"], headers["x-fal-webhook-user-id"], headers["x-fal-webhook-timestamp"],
                             hashlib.sha256(body).hexdigest())).encode()
        assert isinstance(keys[0], Ed25519PublicKey)
        verified = False
        try:
            keys[0].verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message)
            verified = True
        except Exception:  # noqa: BLE001 - InvalidSignature
            pass
        assert verified is good
    delivered = json.loads(body)
    assert (delivered["request_id"], delivered["status"]) == ("req-123", "OK")
    failed = json.loads(signer.body(job, "failed", time.time(), {"message": "bad input"}))
    assert failed["status"] == "ERROR" and "error" in failed


def test_a_bad_fault_spec_is_refused_with_what_is_allowed():
    with pytest.raises(FaultSpecError, match="drop, duplicate, delay, reorder, bad_signature"):
        parse_webhook_faults("lose=0.3")
    with pytest.raises(FaultSpecError, match="add up to 1.2"):
        parse_webhook_faults("drop=0.6,delay=0.6")
    assert parse_webhook_faults(" drop=0.3 , duplicate=0.1") == {"drop": 0.3, "duplicate": 0.1}
