"""The ledger's claim protocol: one create per clip across threads, processes and crashes."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

from soraflow.ledger import ClaimKind, Ledger, owner_id
from soraflow.providers.base import VideoJob

CLIP = dict(clip_key="k1", shot_id="a", part=1, model="sora-2", size="1280x720", seconds=8, prompt_sha256="p")


def test_first_claim_wins_then_job_is_shared(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.CLAIMED
    # another live owner (this very process, other thread name) must wait
    assert led.claim_create(**CLIP, owner=f"{owner_id()}-other").kind is ClaimKind.WAIT
    led.record_job("k1", VideoJob(id="video_1", status="queued"))
    claim = led.claim_create(**CLIP, owner="anyone")
    assert claim.kind is ClaimKind.HAVE_JOB and claim.job_id == "video_1"
    assert led.jobs_for("k1") == ["video_1"]


def test_same_owner_retry_reconciles(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    me = owner_id()
    led.claim_create(**CLIP, owner=me)
    claim = led.claim_create(**CLIP, owner=me)
    assert claim.kind is ClaimKind.RECONCILE and claim.since is not None


def _claim_and_die(path, ready):
    led = Ledger(path)
    led.claim_create(**CLIP, owner=owner_id())
    ready.set()
    time.sleep(60)


def test_dead_owner_claim_is_taken_over_with_reconciliation(tmp_path):
    path = tmp_path / "l.sqlite"
    ready = mp.Event()
    proc = mp.Process(target=_claim_and_die, args=(path, ready))
    proc.start()
    assert ready.wait(20)
    led = Ledger(path)
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.WAIT
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    claim = led.claim_create(**CLIP, owner=owner_id())
    assert claim.kind is ClaimKind.RECONCILE


def test_expired_lease_of_remote_owner_is_taken_over(tmp_path):
    led = Ledger(tmp_path / "l.sqlite", lease_seconds=0.0)
    led.claim_create(**CLIP, owner="other-host:1:1")
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.RECONCILE


def _race(path, n, results):
    led = Ledger(path)
    results.put(led.claim_create(**CLIP, owner=owner_id()).kind.value)


def test_concurrent_processes_claim_exactly_once(tmp_path):
    path = tmp_path / "l.sqlite"
    Ledger(path)
    results = mp.Queue()
    procs = [mp.Process(target=_race, args=(path, i, results)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    kinds = sorted(results.get() for _ in procs)
    assert kinds.count("claimed") == 1
    # the losers either wait (owner alive) or reconcile (owner already exited): never create
    assert all(k in ("claimed", "wait", "reconcile") for k in kinds)


def test_failed_job_is_regenerated_on_rerun(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    led.claim_create(**CLIP, owner=owner_id())
    led.record_job("k1", VideoJob(id="video_1", status="queued"))
    led.update_job("k1", VideoJob(id="video_1", status="failed", error_code="moderation_blocked"))
    assert led.get("k1").state == "failed"
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.CLAIMED
    assert led.get("k1").job_id is None
