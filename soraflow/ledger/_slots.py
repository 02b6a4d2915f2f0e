"""Slots: caps on clips in flight and creates per minute, kept in the ledger's database.

Why here and not in Prefect's global concurrency limits (measured in bench/bench_generate.py):
Prefect serialises slot requests per limit, and on the SQLite server of an ad-hoc render
concurrent slot writes fail with "database is locked", answered 503 and retried after 2-4 s,
which cost about a second of orchestration per clip; a waiting request retries only after the
server's Retry-After (3-9 s lost per hand-off); and a killed render's slots stayed taken in the
temporary server's database for ever. Beside the claims, a slot costs one short write
transaction, and its holder is judged exactly as a claim's is (``_owners``):

- on this host, a holder whose process is gone is released at once, by the next one who looks;
- on another host (a shared Postgres ledger), its lease decides, by the database's clock; a live
  holder renews its leases from a background thread;
- a slot freed in this process wakes the clips waiting in it at once (a condition variable);
  clips waiting in other processes look again every ``poll_seconds``.

Acquisitions are serialised per database (SQLite's ``BEGIN IMMEDIATE``) or per limit row
(Postgres ``SELECT ... FOR UPDATE``, in name order so two clips cannot deadlock).

A rate (creates per minute) is a token bucket on the limit's row: ``per_minute`` tokens at most,
refilled at ``per_minute / 60`` per second; each create takes one token of each of its limits.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

from sqlalchemy import Connection, delete, select, update

from .. import stop
from ._owners import owner_alive, owner_id
from ._tables import slot_holders, slot_limits

log = logging.getLogger("soraflow.slots")


@dataclass(frozen=True)
class Limit:
    """A cap on clips in flight (``capacity``) and, optionally, on creates per minute."""

    name: str
    capacity: int
    per_minute: int | None = None
    source: str = ""  # where the figures come from: a setting, a profile, an endpoint entry


@dataclass(frozen=True)
class Holding:
    """One slot held."""

    id: str
    limit_name: str
    owner: str
    holder: str  # what a waiting render shows: the run and the clip
    clip_key: str | None
    acquired_at: float
    lease_until: float

    @property
    def pid(self) -> str:
        host, _, rest = self.owner.partition(":")
        return f"pid {rest.split(':', 1)[0]} on {host}"

    @property
    def in_this_process(self) -> bool:
        """Held by this process (this run's own clips, where a process runs one render)."""
        return self.owner.rsplit(":", 1)[0] == owner_id().rsplit(":", 1)[0]

    def why_released(self) -> str:
        """Why this slot was taken back from its holder."""
        return "its process is gone" if not owner_alive(self.owner) else "its lease ran out"


@dataclass(frozen=True)
class LimitState:
    """A limit as the ledger has it now (``soraflow limits``, the run's artifact)."""

    name: str
    capacity: int
    per_minute: int | None
    source: str
    held: tuple[Holding, ...] = ()


@dataclass(frozen=True)
class Wait:
    """Why a clip waits: the limit that is full, its holders, and for how long it has waited."""

    limit: str
    capacity: int
    holders: tuple[Holding, ...]
    waited: float
    now: float = field(default=0.0, compare=False)

    def describe(self) -> str:
        who = "; ".join(f"{h.holder} ({h.pid}, for {max(0.0, self.now - h.acquired_at):.0f} s)" for h in self.holders[:6])
        more = f"; and {len(self.holders) - 6} more" if len(self.holders) > 6 else ""
        return f"{len(self.holders)} of {self.capacity} slots of {self.limit!r} held, waited {self.waited:.0f} s so far: {who}{more}"


WaitCallback = Callable[[Wait], None]
ReclaimCallback = Callable[[list[Holding]], None]  # slots taken back from dead holders


class Slots:
    """Slots of the ledger's limits. One per process and ledger: its in-process waiters share
    one condition, and one thread renews the leases of every slot this process holds."""

    def __init__(self, ledger, *, lease_seconds: float = 60.0, poll_seconds: float = 0.5, tell_every: float = 30.0):
        self._engine = ledger._engine
        self._reader = ledger._reader
        self._backend = ledger._backend
        self.where = ledger.where
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.tell_every = tell_every
        self._freed = threading.Condition()
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._closed = threading.Event()

    # --- configuration --------------------------------------------------------------------
    def configure(self, limits: Iterable[Limit]) -> list[str]:
        """Create missing limits and apply changed figures; one line per change, to be said aloud."""
        changes = []
        with self._engine.begin() as conn:
            now = self._backend.now(conn)
            for limit in _unique(limits):
                row = conn.execute(select(slot_limits).where(slot_limits.c.name == limit.name).with_for_update()).one_or_none()
                if row is None:
                    self._insert_limit(conn, limit, now)
                    continue
                if (row.capacity, row.per_minute) == (limit.capacity, limit.per_minute):
                    continue
                conn.execute(
                    update(slot_limits)
                    .where(slot_limits.c.name == limit.name)
                    .values(capacity=limit.capacity, per_minute=limit.per_minute, source=limit.source, updated_at=now,
                            tokens=None if row.per_minute != limit.per_minute else row.tokens)
                )  # fmt: skip
                changes.append(
                    f"limit {limit.name!r} changed to {_figures(limit.capacity, limit.per_minute)} "
                    f"(was {_figures(row.capacity, row.per_minute)}), from {limit.source}"
                )
        return changes

    def state(self, names: Sequence[str] | None = None) -> list[LimitState]:
        """Every limit (or these), with the slots held by live owners."""
        with self._reader.connect() as conn:
            now = self._backend.now(conn)
            query = select(slot_limits).order_by(slot_limits.c.name)
            if names is not None:
                query = query.where(slot_limits.c.name.in_(list(names)))
            rows = list(conn.execute(query))
            held = self._holdings(conn, [r.name for r in rows])
        return [
            LimitState(r.name, r.capacity, r.per_minute, r.source, tuple(h for h in held.get(r.name, []) if self._alive(h, now)))
            for r in rows
        ]

    # --- slots ----------------------------------------------------------------------------
    @contextmanager
    def hold(
        self, limits: Sequence[Limit], *, clip_key: str | None, holder: str,
        on_wait: WaitCallback | None = None, on_reclaim: ReclaimCallback | None = None,
    ) -> Iterator[None]:  # fmt: skip
        """Hold one slot of each limit for the block (all or none, waiting while any is full)."""
        ids = self.acquire(limits, clip_key=clip_key, holder=holder, on_wait=on_wait, on_reclaim=on_reclaim)
        try:
            yield
        finally:
            self.release(ids)

    def acquire(
        self, limits: Sequence[Limit], *, clip_key: str | None, holder: str,
        on_wait: WaitCallback | None = None, on_reclaim: ReclaimCallback | None = None,
    ) -> list[str]:  # fmt: skip
        limits = _unique(limits)
        owner = owner_id()
        started = time.monotonic()
        told = None
        while True:
            with self._freed:
                wait = self._survey(limits)  # a read: no write lock while the limits are full
                if wait is None:
                    ids, wait, reclaimed = self._try_acquire(limits, owner=owner, clip_key=clip_key, holder=holder)
                    if reclaimed and on_reclaim is not None:
                        on_reclaim(reclaimed)
                    if ids is not None:
                        self._keep(ids)
                        return ids
                waited = time.monotonic() - started
                if on_wait is not None and (told is None or waited - told >= self.tell_every):
                    told = waited
                    on_wait(Wait(wait.limit, wait.capacity, wait.holders, waited, wait.now))
                # Woken at once by a release in this process; otherwise look again shortly
                # (another process's release, a holder's death or its lease running out).
                self._freed.wait(timeout=self.poll_seconds)
            stop.check(f"{holder} did not get a slot of {wait.limit!r}")

    def release(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._held_lock:
            self._held.difference_update(ids)
        with self._engine.begin() as conn:
            conn.execute(delete(slot_holders).where(slot_holders.c.id.in_(list(ids))))
        with self._freed:
            self._freed.notify_all()

    # --- rates ----------------------------------------------------------------------------
    def take_token(self, limits: Sequence[Limit], *, on_wait: Callable[[str, float], None] | None = None) -> None:
        """Take one create's token of each rated limit, waiting until every one has a token."""
        rated = [limit for limit in _unique(limits) if limit.per_minute]
        if not rated:
            return
        while True:
            with self._engine.begin() as conn:
                now = self._backend.now(conn)
                rows = self._lock_limits(conn, rated, now)
                need, full = 0.0, {}
                for row in rows:
                    if not row.per_minute:
                        continue
                    rate = row.per_minute / 60.0
                    tokens = row.per_minute if row.tokens is None else min(row.per_minute, row.tokens + (now - (row.refilled_at or now)) * rate)
                    full[row.name] = tokens
                    if tokens < 1:
                        need = max(need, (1 - tokens) / rate)
                        slowest = f"{row.name!r} ({row.per_minute} creates per minute, from {row.source})"
                if need == 0:
                    for name, tokens in full.items():
                        conn.execute(update(slot_limits).where(slot_limits.c.name == name).values(tokens=tokens - 1, refilled_at=now))
                    return
            if on_wait is not None and need >= 1:
                on_wait(slowest, need)
            stop.sleep(need, f"no token of {slowest}")

    # --- inside ---------------------------------------------------------------------------
    def _insert_limit(self, conn: Connection, limit: Limit, now: float) -> None:
        conn.execute(
            self._backend.insert(slot_limits)
            .values(name=limit.name, capacity=limit.capacity, per_minute=limit.per_minute, source=limit.source, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )

    def _lock_limits(self, conn: Connection, limits: list[Limit], now: float) -> list:
        """The limits' rows, created when missing, locked until the transaction ends (Postgres;
        on SQLite the transaction holds the database's write lock already)."""
        for limit in limits:
            self._insert_limit(conn, limit, now)
        names = sorted(limit.name for limit in limits)
        return list(conn.execute(select(slot_limits).where(slot_limits.c.name.in_(names)).order_by(slot_limits.c.name).with_for_update()))

    def _holdings(self, conn: Connection, names: list[str]) -> dict[str, list[Holding]]:
        out: dict[str, list[Holding]] = {}
        query = select(slot_holders).where(slot_holders.c.limit_name.in_(names)).order_by(slot_holders.c.acquired_at)
        for r in conn.execute(query):
            out.setdefault(r.limit_name, []).append(
                Holding(r.id, r.limit_name, r.owner, r.holder, r.clip_key, r.acquired_at, r.lease_until)
            )
        return out

    @staticmethod
    def _alive(h: Holding, now: float) -> bool:
        return h.lease_until > now and owner_alive(h.owner)

    def _full(self, conn: Connection, limits: list[Limit], capacities: dict[str, int], now: float) -> tuple[Wait | None, dict]:
        held = self._holdings(conn, [limit.name for limit in limits])
        for limit in limits:
            live = [h for h in held.get(limit.name, []) if self._alive(h, now)]
            capacity = capacities.get(limit.name, limit.capacity)
            if len(live) >= capacity:
                return Wait(limit.name, capacity, tuple(live), 0.0, now), held
        return None, held

    def _survey(self, limits: list[Limit]) -> Wait | None:
        """A full limit (seen without taking a write lock), or None when all seem to have room."""
        with self._reader.connect() as conn:
            now = self._backend.now(conn)
            rows = conn.execute(select(slot_limits.c.name, slot_limits.c.capacity).where(slot_limits.c.name.in_([l.name for l in limits])))
            wait, _ = self._full(conn, limits, {r.name: r.capacity for r in rows}, now)
        return wait

    def _try_acquire(self, limits: list[Limit], *, owner: str, clip_key: str | None, holder: str):
        """(ids, None, reclaimed) when taken; (None, the full limit, reclaimed) otherwise."""
        with self._engine.begin() as conn:
            now = self._backend.now(conn)
            rows = self._lock_limits(conn, limits, now)
            wait, held = self._full(conn, limits, {r.name: r.capacity for r in rows}, now)
            # Slots of dead owners go back now, whatever this clip gets.
            reclaimed = [h for hs in held.values() for h in hs if not self._alive(h, now)]
            if reclaimed:
                conn.execute(delete(slot_holders).where(slot_holders.c.id.in_([h.id for h in reclaimed])))
            if wait is not None:
                return None, wait, reclaimed
            ids = [uuid.uuid4().hex for _ in limits]
            conn.execute(
                slot_holders.insert(),
                [
                    dict(id=i, limit_name=l.name, owner=owner, clip_key=clip_key, holder=holder, acquired_at=now,
                         lease_until=now + self.lease_seconds)
                    for i, l in zip(ids, limits)
                ],
            )  # fmt: skip
        return ids, None, reclaimed

    def _keep(self, ids: list[str]) -> None:
        """Remember ``ids`` for lease renewal, starting the renewing thread if none runs."""
        with self._held_lock:
            self._held.update(ids)
            if self._renewer is None and not self._closed.is_set():
                self._renewer = threading.Thread(target=self._renew_while_held, name="soraflow-slot-leases", daemon=True)
                self._renewer.start()

    def close(self) -> None:
        """Stop renewing leases (what is held stays held until its lease runs out)."""
        self._closed.set()

    def _renew_while_held(self) -> None:
        while not self._closed.wait(self.lease_seconds / 4):
            with self._held_lock:
                ids = list(self._held)
                if not ids:  # nothing left to renew: the thread ends; the next slot kept starts one
                    self._renewer = None
                    return
            try:
                with self._engine.begin() as conn:
                    now = self._backend.now(conn)
                    renewed = conn.execute(
                        update(slot_holders).where(slot_holders.c.id.in_(ids)).values(lease_until=now + self.lease_seconds)
                        .returning(slot_holders.c.id)
                    ).scalars().all()  # fmt: skip
                if len(renewed) < len(ids):
                    # Taken back while this process could not renew (suspended past its lease):
                    # the clips go on (their jobs are paid for), and the cap is briefly exceeded.
                    log.warning("%d slot lease(s) ran out before renewal and were given to others", len(ids) - len(renewed))
            except Exception as err:  # noqa: BLE001 - a failed renewal is retried; the clips go on
                log.warning("could not renew slot leases in the ledger at %s: %s", self.where, type(err).__name__)


def _unique(limits: Iterable[Limit]) -> list[Limit]:
    seen: dict[str, Limit] = {}
    for limit in limits:
        seen.setdefault(limit.name, limit)
    return sorted(seen.values(), key=lambda l: l.name)


def _figures(capacity: int, per_minute: int | None) -> str:
    return f"{capacity} in flight" + (f", {per_minute} creates per minute" if per_minute else "")


__all__ = ["Holding", "Limit", "LimitState", "Slots", "Wait"]
