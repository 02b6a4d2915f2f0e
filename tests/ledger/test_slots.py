"""Slots beside the ledger: caps that hold across processes, dead holders released, prompt hand-off."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading

import pytest

from soraflow.ledger import Ledger, Limit, Slots

NEVER = 3600.0  # a poll interval no test waits out: only a notification (or a death seen) wakes a waiter


_made: list[Slots] = []


@pytest.fixture(autouse=True)
def _stop_renewing_after_each_test():
    """Slots a test leaves held (a killed holder, a waiter) stop renewing with the test: their
    ledger, a Postgres schema, goes away with it."""
    yield
    while _made:
        _made.pop().close()


def _slots(url: str, **kw) -> Slots:
    slots = Slots(Ledger(url), **kw)
    _made.append(slots)
    return slots


def _acquire_in_thread(slots: Slots, limits, **kw):
    """A clip's thread: it holds what it acquires until the test ends (a slot whose thread has
    ended is free: that clip failed without releasing it)."""
    got, waits = threading.Event(), []

    def run():
        kw.setdefault("on_wait", waits.append)
        got.ids = slots.acquire(limits, clip_key="late", holder="late clip", **kw)
        got.set()
        threading.Event().wait(120)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return got, waits, t


def test_the_cap_holds_and_a_freed_slot_wakes_the_waiter_in_this_process(ledger_url):
    slots = _slots(ledger_url, poll_seconds=NEVER)
    cap = [Limit("all", 2, None, "test")]
    first = slots.acquire(cap, clip_key="a", holder="run r clip a")
    slots.acquire(cap, clip_key="b", holder="run r clip b")
    got, waits, thread = _acquire_in_thread(slots, cap)
    while not waits:  # told why it waits, naming who holds the slots
        thread.join(0.05)
    assert not got.is_set()
    assert "2 of 2 slots of 'all' held" in waits[0].describe()
    assert "run r clip a" in waits[0].describe() and f"pid {os.getpid()}" in waits[0].describe()
    slots.release(first)
    assert got.wait(30), "the waiter was not woken by the release (its own poll is an hour away)"
    assert [len(s.held) for s in slots.state(["all"])] == [2]


def test_all_or_none_of_a_clips_limits(ledger_url):
    slots = _slots(ledger_url, poll_seconds=NEVER)
    wide, narrow = Limit("all", 4), Limit("model:e/m", 1)
    held = slots.acquire([wide, narrow], clip_key="a", holder="a")
    got, waits, thread = _acquire_in_thread(slots, [wide, narrow])
    while not waits:
        thread.join(0.05)
    assert waits[0].limit == "model:e/m"
    # the waiter holds nothing of 'all' meanwhile
    assert {s.name: len(s.held) for s in slots.state()} == {"all": 1, "model:e/m": 1}
    slots.release(held)
    assert got.wait(30)


def _hold_and_wait(url, ready):
    slots = _slots(url)
    slots.acquire([Limit("all", 2)], clip_key="x", holder="run killed clip x")
    slots.acquire([Limit("all", 2)], clip_key="y", holder="run killed clip y")
    ready.set()
    threading.Event().wait(600)


def test_slots_of_a_killed_process_come_back_at_once(ledger_url):
    ready = mp.get_context("fork").Event()
    proc = mp.get_context("fork").Process(target=_hold_and_wait, args=(ledger_url, ready))
    proc.start()
    assert ready.wait(60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    slots = _slots(ledger_url, poll_seconds=NEVER, lease_seconds=NEVER)  # leases far from running out
    reclaimed = []
    slots.acquire([Limit("all", 2)], clip_key="a", holder="a", on_reclaim=reclaimed.extend, on_wait=pytest.fail)
    assert sorted(h.holder for h in reclaimed) == ["run killed clip x", "run killed clip y"]
    assert {h.why_released() for h in reclaimed} == {"its process is gone"}


def _hold_on_another_host(url, ready):
    import socket

    socket.gethostname = lambda: "another-host"  # a worker on another machine sharing the ledger
    _slots(url, lease_seconds=1.0).acquire([Limit("all", 1)], clip_key="x", holder="run far clip x")
    ready.set()
    threading.Event().wait(600)


def test_a_dead_holder_on_another_host_is_waited_for_until_its_lease_runs_out(ledger_url):
    ready = mp.get_context("fork").Event()
    proc = mp.get_context("fork").Process(target=_hold_on_another_host, args=(ledger_url, ready))
    proc.start()
    assert ready.wait(60)
    os.kill(proc.pid, signal.SIGKILL)  # its pid cannot be seen from "this" host: only its lease tells
    proc.join()
    slots = _slots(ledger_url, poll_seconds=0.1)
    waits, reclaimed = [], []
    slots.acquire([Limit("all", 1)], clip_key="a", holder="a", on_wait=waits.append, on_reclaim=reclaimed.extend)
    assert f"run far clip x (pid {proc.pid} on another-host" in waits[0].describe()
    assert [h.why_released() for h in reclaimed] == ["its lease ran out"]


def test_a_live_holders_lease_is_renewed_while_it_holds(ledger_url):
    slots = _slots(ledger_url, lease_seconds=0.4)
    held = slots.acquire([Limit("all", 1)], clip_key="x", holder="x")
    first = slots.state(["all"])[0].held[0].lease_until
    other = _slots(ledger_url, poll_seconds=0.1, tell_every=0.1)
    renewed = threading.Event()

    def watch(wait):  # still told "held" after several lease lengths: renewed each time
        if wait.holders and wait.holders[0].lease_until > first + 1.0:
            renewed.set()
            raise _Stop

    with pytest.raises(_Stop):
        other.acquire([Limit("all", 1)], clip_key="a", holder="a", on_wait=watch)
    assert renewed.is_set()
    slots.release(held)


class _Stop(Exception):
    pass


def test_a_changed_cap_is_applied_and_said(ledger_url):
    slots = _slots(ledger_url)
    assert slots.configure([Limit("all", 4, 60, "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS")]) == []
    assert slots.configure([Limit("all", 4, 60, "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS")]) == []
    changes = slots.configure([Limit("all", 2, 60, "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS")])
    assert changes == [
        "limit 'all' changed to 2 in flight, 60 creates per minute (was 4 in flight, 60 creates per minute), "
        "from SORAFLOW_MAX_CONCURRENT_SUBMISSIONS"
    ]
    assert [(s.capacity, s.per_minute) for s in slots.state(["all"])] == [(2, 60)]


def test_a_rate_lets_a_minutes_worth_through_then_spaces_creates(ledger_url):
    slots = _slots(ledger_url)
    rate = [Limit("model:e/m", 4, 3, "profile m"), Limit("all", 4, None)]
    for _ in range(3):
        slots.take_token(rate, on_wait=pytest.fail)
    told = []

    def stop(limit, seconds):
        told.append((limit, seconds))
        raise _Stop

    with pytest.raises(_Stop):
        slots.take_token(rate, on_wait=stop)
    (limit, seconds), = told
    assert "'model:e/m' (3 creates per minute, from profile m)" == limit
    assert 15 < seconds <= 20  # one token per 20 s; a moment has passed since the last


def test_the_renewing_thread_ends_when_nothing_is_held_and_comes_back_when_needed(ledger_url):
    slots = _slots(ledger_url, lease_seconds=0.4)
    held = slots.acquire([Limit("all", 1)], clip_key="x", holder="x")
    renewer = slots._renewer
    assert renewer is not None and renewer.is_alive()
    slots.release(held)
    renewer.join(5)  # the next round finds nothing to renew
    assert not renewer.is_alive() and slots._renewer is None
    held = slots.acquire([Limit("all", 1)], clip_key="y", holder="y")
    assert slots._renewer is not None and slots._renewer.is_alive()
    slots.release(held)
