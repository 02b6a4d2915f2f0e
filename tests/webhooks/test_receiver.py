"""Hostile deliveries change nothing: the receiver over HTTP, signed by the simulator's signers
(written apart from the receiver's verifiers), recording into a real ledger.

Each refusal leaves every ledger table as it was, tells no one (no event), and answers the
status it should; the one good delivery of each dialect changes exactly one row, once.
"""

from __future__ import annotations

import json
import time
import httpx
import pytest
from sqlalchemy import select

from soraflow.ledger import Deliveries, Ledger, owner_id
from soraflow.ledger._tables import metadata
from soraflow.models import load_catalog
from soraflow.providers.base import VideoJob
from soraflow.simulator.jobs import Job
from soraflow.simulator.webhooks import FalSigner, JWKS_PATH, StandardWebhooksSigner, new_secret
from soraflow.webhooks import MAX_BODY_BYTES, FalVerifier, Receiver, ReceiverEndpoint, receiver_endpoints
from soraflow.webhooks.jwks import JwksKeys

SECRET = new_secret()
FAL_REQUEST = "7c0e4bd5-2f1e-4d7a-9a44-1b1f5e1e2a10"
FAL_JOB = f"fal-ai/veo3.1/requests/{FAL_REQUEST}"  # the fal provider's job id: its endpoint and request id
CLIP = dict(shot_id="a", part=1, model="sora-2", size="1280x720", seconds=8, prompt_sha256="p")
MODELS = """
endpoints:
  openai: {webhooks: {url: https://hooks.example.com/webhooks/openai, secret_env: TEST_WEBHOOK_SECRET}}
"""


def _job(job_id: str) -> Job:
    return Job(id=job_id, seq=1, model="m", size="1280x720", seconds=4, prompt="p", latency=1, ttl=60, created_wall=0, created_mono=0)


def snapshot(led: Ledger) -> dict:
    """Every row of every ledger table."""
    with led._engine.connect() as conn:
        return {t.name: sorted(map(repr, conn.execute(select(t)).all())) for t in metadata.sorted_tables}


@pytest.fixture
def world(tmp_path, simulator):
    led = Ledger(tmp_path / "ledger.sqlite")
    for key, job_id, endpoint in (("k-openai", "video_1", "openai"), ("k-fal", FAL_JOB, "fal")):
        led.claim_create(clip_key=key, **CLIP, owner=owner_id(), endpoint=endpoint)
        led.record_job(key, VideoJob(id=job_id, status="queued"))
    endpoints = receiver_endpoints(load_catalog(text=MODELS), {"TEST_WEBHOOK_SECRET": SECRET})
    keys = JwksKeys(simulator.url + JWKS_PATH, min_refresh_seconds=3600)
    # fal's dialect is configured the same way once its endpoints exist; its verifier is built here
    endpoints["fal"] = ReceiverEndpoint("fal", "fal", FalVerifier(keys), "https://hooks.example.com/webhooks/fal")
    told = []
    with Receiver(endpoints, Deliveries(led), on_delivery=told.append) as receiver:
        yield led, receiver, told, keys, simulator


def post(receiver: Receiver, endpoint: str, body: bytes, headers: dict) -> httpx.Response:
    return httpx.post(receiver.delivery_url(endpoint), content=body, headers=headers)


def test_hostile_deliveries_change_nothing_and_the_good_ones_are_recorded_once(world):
    led, receiver, told, keys, sim = world
    openai_signer = StandardWebhooksSigner(SECRET)
    fal_signer = FalSigner(sim.state.webhooks.fal_key)

    def openai_delivery(job_id="video_1", event="completed"):
        delivery_id = f"msg_{job_id}_{event}"
        body = openai_signer.body(_job(job_id), event, time.time(), None)
        return body, openai_signer.sign(delivery_id, body, good=True)

    def fal_delivery(job_id=FAL_REQUEST):
        body = fal_signer.body(_job(job_id), "completed", time.time(), None)
        return body, fal_signer.sign(job_id, body, good=True)

    good_openai, good_fal = openai_delivery(), fal_delivery()
    # well signed, ten minutes ago (a captured delivery replayed late)
    stale_openai = openai_signer.sign("msg_stale", good_openai[0], good=True, at=time.time() - 600)
    fal_stale_headers = fal_signer.sign(FAL_REQUEST, good_fal[0], good=True, at=time.time() - 600)
    tampered_openai = good_openai[0].replace(b'"video.completed"', b'"video.failed"')
    tampered_fal = good_fal[0].replace(b'"OK"', b'"ERROR"')
    oversized = b'{"pad": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    forged_openai = openai_signer.body(_job("video_1"), "completed", time.time(), None)
    forged_fal = fal_signer.body(_job(FAL_REQUEST), "completed", time.time(), None)
    unknown_body = openai_signer.body(_job("video_404"), "completed", time.time(), None)

    def chunked_oversized():
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"x" * 4096

    hostile = [
        ("wrong secret", "openai", forged_openai, StandardWebhooksSigner(new_secret()).sign("msg_forged", forged_openai, good=True), 401),
        ("wrong key", "fal", forged_fal, fal_signer.sign(FAL_REQUEST, forged_fal, good=False), 401),
        ("stale timestamp", "openai", good_openai[0], stale_openai, 401),
        ("stale timestamp (fal)", "fal", good_fal[0], fal_stale_headers, 401),
        ("tampered body", "openai", tampered_openai, good_openai[1], 401),
        ("tampered body (fal)", "fal", tampered_fal, good_fal[1], 401),
        ("no signature", "openai", good_openai[0], {"content-type": "application/json"}, 401),
        ("oversized", "openai", oversized, good_openai[1], 413),
        ("wrong content type", "openai", good_openai[0], {**good_openai[1], "content-type": "text/plain"}, 415),
        ("unknown endpoint", "vertex", good_openai[0], good_openai[1], 404),
        ("unknown job", "openai", unknown_body, openai_signer.sign("msg_unknown", unknown_body, good=True), 202),
        ("another endpoint's job", "openai", *openai_delivery(FAL_JOB), 202),
        ("unknown fal request", "fal", *fal_delivery("0b0e4bd5-2f1e-4d7a-9a44-1b1f5e1e2a10"), 202),
    ]
    before = snapshot(led)
    for name, endpoint, body, headers, status in hostile:
        got = post(receiver, endpoint, body, headers)
        assert got.status_code == status, (name, got.status_code, got.text)
        assert snapshot(led) == before, f"{name} changed the ledger"
    streamed = httpx.post(receiver.delivery_url("openai"), content=chunked_oversized(), headers=good_openai[1])  # no Content-Length
    assert streamed.status_code == 413 and snapshot(led) == before
    assert told == [], "a refused delivery was told about"
    assert keys.fetches == 1  # forged signatures made no more requests for keys than the first read (rate-limited)

    for endpoint, (body, headers), clip in (("openai", good_openai, "k-openai"), ("fal", good_fal, "k-fal")):
        first = post(receiver, endpoint, body, headers)
        after_first = snapshot(led)
        replayed = post(receiver, endpoint, body, headers)
        assert (first.status_code, first.json()["outcome"]) == (200, "recorded")
        assert (replayed.status_code, replayed.json()["outcome"]) == (200, "seen")
        assert snapshot(led) == after_first
        assert [d.clip_key for d in told][-1] == clip
    assert [(d.endpoint, d.job_id, d.event) for d in told] == [("openai", "video_1", "completed"), ("fal", FAL_JOB, "completed")]
    changed = {t for t, rows in snapshot(led).items() if rows != before[t]}
    assert changed == {"webhook_deliveries"} and len(snapshot(led)["webhook_deliveries"]) == 2
    assert led.get("k-openai").state == "submitted"  # a delivery is a hint: the clip is unchanged


def test_a_verified_event_not_about_a_video_is_acknowledged_and_ignored(world):
    led, receiver, told, _, _ = world
    body = json.dumps({"id": "evt_1", "object": "event", "created_at": 1, "type": "batch.completed", "data": {"id": "batch_1"}}).encode()
    before = snapshot(led)
    got = post(receiver, "openai", body, StandardWebhooksSigner(SECRET).sign("msg_batch", body, good=True))
    assert (got.status_code, got.json()["outcome"]) == (200, "ignored") and snapshot(led) == before and told == []


def test_a_secret_must_keep_its_prefix_and_be_set():
    from soraflow.errors import CatalogError
    from soraflow.redaction import redact_text

    catalog = load_catalog(text=MODELS)
    bare = SECRET.removeprefix("whsec_")
    with pytest.raises(CatalogError, match="does not start with whsec_") as info:
        receiver_endpoints(catalog, {"TEST_WEBHOOK_SECRET": bare})
    assert bare not in str(info.value)
    with pytest.raises(CatalogError, match="set TEST_WEBHOOK_SECRET"):
        receiver_endpoints(catalog, {})
    with pytest.raises(CatalogError, match="no endpoint declares webhooks"):
        receiver_endpoints(load_catalog(), {})
    receiver_endpoints(catalog, {"TEST_WEBHOOK_SECRET": SECRET})
    assert redact_text(f"echoed {SECRET} and {bare}") == "echoed REDACTED and REDACTED"  # registered where read
