"""The claim protocol: one create per clip across threads, processes, hosts and crashes."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
import time

import pytest
from sqlalchemy import select

from soraflow.ledger import ClaimKind, JobHeldError, Ledger, owner_id
from soraflow.ledger._tables import clips
from soraflow.providers.base import VideoJob

CLIP = dict(clip_key="k1", shot_id="a", part=1, model="sora-2", size="1280x720", seconds=8, prompt_sha256="p")


def _clip(key: str) -> dict:
    return {**CLIP, "clip_key": key}


def test_first_claim_wins_then_job_is_shared(ledger_url):
    led = Ledger(ledger_url)
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.CLAIMED
    # another live owner (this very process, other thread name) must wait
    assert led.claim_create(**CLIP, owner=f"{owner_id()}-other").kind is ClaimKind.WAIT
    led.record_job("k1", VideoJob(id="video_1", status="queued"))
    claim = led.claim_create(**CLIP, owner="anyone")
    assert claim.kind is ClaimKind.HAVE_JOB and claim.job_id == "video_1"
    assert led.jobs_for("k1") == ["video_1"]
    assert led.known_job_ids() == {"video_1"}
    entry = led.get("k1")
    assert (entry.state, entry.job_id, entry.owner, entry.lease_until) == ("submitted", "video_1", None, None)


def test_a_clip_with_its_job_is_answered_while_a_writer_holds_the_ledger(ledger_url):
    """HAVE_JOB (a rerun, the workers that lost the race) needs no lock: it is not held up by a
    writer that holds the clip's row (Postgres) or the whole file (SQLite)."""
    led = Ledger(ledger_url)
    led.claim_create(**CLIP, owner=owner_id())
    led.record_job("k1", VideoJob(id="video_1", status="queued"))
    answers = []
    with led._engine.connect() as writer, writer.begin():  # BEGIN IMMEDIATE on SQLite
        writer.execute(select(clips).where(clips.c.clip_key == "k1").with_for_update())
        asker = threading.Thread(target=lambda: answers.append(led.claim_create(**CLIP, owner="other-host:9:9")))
        asker.start()
        asker.join(5)
        answered_while_held = bool(answers)
    asker.join(60)
    assert answered_while_held, "the claim waited for the writer"
    assert (answers[0].kind, answers[0].job_id) == (ClaimKind.HAVE_JOB, "video_1")


def test_same_owner_retry_reconciles_once_the_create_was_sent(ledger_url):
    led = Ledger(ledger_url)
    me = owner_id()
    led.claim_create(**CLIP, owner=me)
    assert led.get("k1").state == "claimed"
    assert led.claim_create(**CLIP, owner=me).kind is ClaimKind.CLAIMED  # nothing was sent yet
    assert led.renew_claim("k1", me)  # the last step before the request goes out
    assert led.get("k1").state == "creating"
    claim = led.claim_create(**CLIP, owner=me)
    assert claim.kind is ClaimKind.RECONCILE and claim.since is not None


def test_released_claim_can_be_claimed_again(ledger_url):
    led = Ledger(ledger_url)
    led.claim_create(**CLIP, owner="a:1:1")
    led.release_claim("k1", "someone-else:2:2")  # only the owner can release
    assert led.get("k1") is not None
    led.release_claim("k1", "a:1:1")
    assert led.get("k1") is None
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.CLAIMED


def _claim_and_die(url, ready, send):
    led = Ledger(url)
    led.claim_create(**CLIP, owner=owner_id())
    if send:
        led.renew_claim("k1", owner_id())  # killed while its create was on the wire
    ready.set()
    time.sleep(60)


def _claimed_by_a_killed_process(ledger_url, *, sent: bool) -> tuple[Ledger, int]:
    """A claim left by a process killed with -9 (waited for while it lived), and its pid."""
    ready = mp.Event()
    proc = mp.Process(target=_claim_and_die, args=(ledger_url, ready, sent))
    proc.start()
    assert ready.wait(20)
    led = Ledger(ledger_url)
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.WAIT
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    return led, proc.pid


def test_a_dead_owner_s_claim_never_sent_is_claimed_again_without_reconciling(ledger_url):
    """Killed between its claim and its request (preparing a reference, waiting for a slot):
    provably nothing was created, so nothing is in doubt."""
    led, _ = _claimed_by_a_killed_process(ledger_url, sent=False)
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.CLAIMED
    [takeover] = led.actions("k1")
    assert takeover.action == "takeover" and takeover.detail["sent"] is False
    assert (led.get("k1").state, led.get("k1").owner) == ("claimed", owner_id())


def test_dead_owner_claim_is_taken_over_with_reconciliation(ledger_url):
    led, pid = _claimed_by_a_killed_process(ledger_url, sent=True)
    claim = led.claim_create(**CLIP, owner=owner_id())
    assert claim.kind is ClaimKind.RECONCILE
    [takeover] = led.actions("k1")
    assert takeover.action == "takeover" and takeover.detail["from"].endswith(f":{pid}:" + takeover.detail["from"].rsplit(":", 1)[1])
    assert takeover.actor == owner_id()


def test_remote_owner_waits_out_its_lease_then_is_taken_over(ledger_url):
    live = Ledger(ledger_url, lease_seconds=300.0)
    live.claim_create(**CLIP, owner="other-host:1:1")
    # another host's process cannot be seen: while its lease runs, it is presumed alive
    assert live.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.WAIT
    expired = Ledger(ledger_url, lease_seconds=0.0)
    expired.renew_claim("k1", "other-host:1:1")  # the owner's last renewal, with no lease left
    assert expired.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.RECONCILE
    assert expired.get("k1").owner == owner_id()


def test_renewal_tells_whether_the_claim_is_still_ours(ledger_url):
    led = Ledger(ledger_url, lease_seconds=0.0)
    led.claim_create(**CLIP, owner="a-host:1:1")
    assert led.renew_claim("k1", "a-host:1:1") is True
    led.claim_create(**CLIP, owner="b-host:2:2")  # a-host's lease ran out: b-host took the claim
    assert led.renew_claim("k1", "a-host:1:1") is False
    assert led.renew_claim("k1", "b-host:2:2") is True
    led.record_job("k1", VideoJob(id="video_1", status="queued"))
    assert led.renew_claim("k1", "b-host:2:2") is False  # nothing left to create


def test_failed_job_is_regenerated_on_rerun(ledger_url):
    led = Ledger(ledger_url)
    led.claim_create(**CLIP, owner=owner_id())
    led.record_job("k1", VideoJob(id="video_1", status="queued"))
    led.update_job("k1", VideoJob(id="video_1", status="failed", error_code="moderation_blocked"))
    assert led.get("k1").state == "failed"
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.CLAIMED
    assert led.get("k1").job_id is None
    assert [a.action for a in led.actions("k1")] == ["regenerate"]
    assert led.jobs_for("k1") == ["video_1"]  # the paid job stays on record


def test_progress_and_outcomes_are_recorded(ledger_url, tmp_path):
    led = Ledger(ledger_url)
    led.claim_create(**CLIP, owner=owner_id())
    led.record_job("k1", VideoJob(id="video_1", status="queued"))
    led.update_job("k1", VideoJob(id="video_1", status="in_progress", progress=40))
    led.update_job("k1", VideoJob(id="video_other", status="completed", progress=100))  # not this clip's job
    assert (led.get("k1").state, led.get("k1").progress) == ("submitted", 40)
    led.update_job("k1", VideoJob(id="video_1", status="completed", progress=100))
    led.record_download("k1", tmp_path / "a.mp4", "ab" * 32)
    led.record_stored("k1", "s3://bucket/a.mp4")
    e = led.get("k1")
    assert (e.state, e.progress, e.local_path, e.sha256, e.storage_uri) == (
        "completed", 100, str(tmp_path / "a.mp4"), "ab" * 32, "s3://bucket/a.mp4",
    )  # fmt: skip
    led.mark_lost("k1", "expired at the provider")
    assert led.get("k1").state == "lost"
    assert set(led.entries()) == {"k1"} and led.entries([]) == {} and set(led.entries(["k1", "nope"])) == {"k1"}


def test_reconciled_job_is_recorded_as_an_action(ledger_url):
    led = Ledger(ledger_url)
    led.claim_create(**CLIP, owner=owner_id())
    led.record_job("k1", VideoJob(id="video_9", status="in_progress"), how="reconciled")
    [adopted] = led.actions()
    assert (adopted.clip_key, adopted.action, adopted.detail) == ("k1", "reconciled", {"job_id": "video_9"})


def _race(url, keys, start, results):
    """Claim every clip in a random order; create (record a job) only on CLAIMED."""
    led = Ledger(url)
    me = owner_id()
    seen = {}
    start.wait(30)
    for key in random.sample(keys, len(keys)):
        while True:
            claim = led.claim_create(**_clip(key), owner=me)
            if claim.kind is ClaimKind.CLAIMED:
                time.sleep(0.02)  # the create's round trip: others race for this clip meanwhile
                led.record_job(key, VideoJob(id=f"job-{os.getpid()}-{key}", status="queued"))
                seen[key] = f"job-{os.getpid()}-{key}"
                break
            if claim.kind is ClaimKind.HAVE_JOB:
                seen[key] = claim.job_id
                break
            assert claim.kind is ClaimKind.WAIT, claim  # every owner is alive: never reconcile
            time.sleep(0.005)
    results.put(seen)


@pytest.mark.parametrize("before", ["new", "failed"])
def test_concurrent_processes_create_each_clip_exactly_once(ledger_url, before):
    """New clips race on the insert; failed clips (regenerated) race on the row lock."""
    keys = [f"clip-{i}" for i in range(12)]
    led = Ledger(ledger_url)  # the schema, before the race
    if before == "failed":
        for key in keys:
            led.claim_create(**_clip(key), owner=owner_id())
            led.record_job(key, VideoJob(id=f"failed-{key}", status="queued"))
            led.update_job(key, VideoJob(id=f"failed-{key}", status="failed", error_code="internal"))
    start, results = mp.Event(), mp.Queue()
    procs = [mp.Process(target=_race, args=(ledger_url, keys, start, results)) for _ in range(6)]
    for p in procs:
        p.start()
    start.set()
    seen = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    for key in keys:
        [job] = [j for j in led.jobs_for(key) if not j.startswith("failed-")]  # exactly one create per clip
        assert {s[key] for s in seen} == {job}  # and every process polls that one job


def test_two_clips_recording_one_job_id_at_once_one_is_refused(ledger_url):
    """A provider that answers two creates with one id: however the two records interleave, one
    clip gets the job and the other is refused (JobHeldError), never both holding it."""
    led = Ledger(ledger_url)
    for rnd in range(25):
        keys = [f"dup-{rnd}-a", f"dup-{rnd}-b"]
        for key in keys:
            assert led.claim_create(**_clip(key), owner=f"{owner_id()}-{key}").kind is ClaimKind.CLAIMED
        start, outcomes = threading.Barrier(2), {}

        def record(key: str, rnd: int = rnd) -> None:
            start.wait(10)
            try:
                led.record_job(key, VideoJob(id=f"same-{rnd}", status="queued"))
                outcomes[key] = "recorded"
            except JobHeldError:
                outcomes[key] = "refused"

        threads = [threading.Thread(target=record, args=(key,)) for key in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes.values()) == ["recorded", "refused"], (rnd, outcomes)
        winner = next(k for k, v in outcomes.items() if v == "recorded")
        loser = next(k for k in keys if k != winner)
        assert led.get(winner).job_id == f"same-{rnd}" and led.get(loser).job_id is None
        assert led.jobs_for(loser) == []
