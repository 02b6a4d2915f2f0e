"""Webhook deliveries in the ledger: recorded once per delivery id, only for a clip's own job, and
heard by a waiting clip through the database (Postgres NOTIFY, SQLite's new rows), on both backends."""

from __future__ import annotations

import threading
import time

from soraflow.ledger import Deliveries, DeliveryWatch, Ledger, owner_id
from soraflow.providers.base import VideoJob

CLIP = dict(shot_id="a", part=1, model="sora-2", size="1280x720", seconds=8, prompt_sha256="p")


def _with_job(led: Ledger, clip_key: str, job_id: str, endpoint: str = "openai") -> None:
    led.claim_create(clip_key=clip_key, **CLIP, owner=owner_id(), endpoint=endpoint)
    led.record_job(clip_key, VideoJob(id=job_id, status="queued"))


def test_a_delivery_is_recorded_once_and_only_for_the_clip_that_holds_its_job(ledger_url):
    led = Ledger(ledger_url)
    _with_job(led, "k1", "video_1")
    deliveries = Deliveries(led)
    before = led.get("k1")

    unknown = deliveries.record(endpoint="openai", delivery_id="evt_0", job_id="video_404", event="completed", signed_at=1.0)
    other_endpoint = deliveries.record(endpoint="gateway", delivery_id="evt_1", job_id="video_1", event="completed", signed_at=1.0)
    assert (unknown.outcome, other_endpoint.outcome) == ("unknown_job", "unknown_job")
    assert deliveries.all() == []

    first = deliveries.record(endpoint="openai", delivery_id="evt_1", job_id="video_1", event="completed", signed_at=1.0)
    again = deliveries.record(endpoint="openai", delivery_id="evt_1", job_id="video_1", event="failed", signed_at=2.0)
    assert first.outcome == "recorded" and again.outcome == "seen"
    rows = deliveries.all()
    assert [(d.clip_key, d.job_id, d.event, d.delivery_id) for d in rows] == [("k1", "video_1", "completed", "evt_1")]
    assert first.delivery == rows[0]
    # A delivery is a hint: the clip's own row is not touched by it.
    assert led.get("k1") == before
    assert deliveries.latest("k1", "video_1") == rows[0] and deliveries.latest("k1", "video_1", after=rows[0].id) is None


def test_a_waiting_clip_hears_of_its_delivery_from_another_ledger_connection(ledger_url):
    """The receiver and the worker share only the database: the waiter wakes as the delivery
    commits (Postgres: NOTIFY; SQLite: its new rows), never by the receiver's memory."""
    worker = Ledger(ledger_url)
    for i in range(3):
        _with_job(worker, f"k{i}", f"video_{i}")
    watch = DeliveryWatch(Deliveries(worker))
    receiver = Deliveries(Ledger(ledger_url))  # another engine: another set of connections

    assert watch.wait("k0", "video_0", timeout=0.3) is None  # nothing yet: it times out
    seen: dict[str, tuple[float, object]] = {}

    def wait(i: int) -> None:
        found = watch.wait(f"k{i}", f"video_{i}", timeout=20)
        seen[f"k{i}"] = (time.monotonic(), found)

    waiters = [threading.Thread(target=wait, args=(i,)) for i in range(3)]
    for t in waiters:
        t.start()
    time.sleep(0.5)
    recorded_at = {}
    for i in (2, 0, 1):
        receiver.record(endpoint="openai", delivery_id=f"evt_{i}", job_id=f"video_{i}", event="completed", signed_at=time.time())
        recorded_at[f"k{i}"] = time.monotonic()
        time.sleep(0.3)
    for t in waiters:
        t.join(25)
    assert set(seen) == {"k0", "k1", "k2"}
    for key, (at, found) in seen.items():
        assert found is not None and found.clip_key == key and found.event == "completed"
        assert at - recorded_at[key] < 5, f"{key} heard of its delivery {at - recorded_at[key]:.2f} s after it was recorded"
    # a delivery already there is found at once, without waiting
    t0 = time.monotonic()
    assert watch.wait("k1", "video_1", timeout=10).delivery_id == "evt_1"
    assert time.monotonic() - t0 < 1.0
