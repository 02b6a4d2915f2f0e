"""Webhook deliveries in the ledger, and how a waiting clip learns of one.

The receiver (``soraflow webhooks serve``) records each verified delivery here, in one
transaction: matched to the clip whose job it names, idempotent by (endpoint, delivery id). On
Postgres the same transaction sends ``NOTIFY`` on ``DELIVERY_CHANNEL`` with the clip key, so a
worker on any host hears of it the moment it commits; on SQLite (one machine) a waiter reads the
new rows of the table, a read of an index, a few times a second.

A delivery is a hint, never an outcome: the clip's own row is changed only by the status call
that confirms it (soraflow/generation.py). Deliveries reach workers through the database, never
through one process's memory: ``DeliveryWatch`` keeps, per process, only which clips wait, and
each waiter reads its delivery from the table itself.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from ._tables import clips, jobs, webhook_deliveries

if TYPE_CHECKING:
    from ._ledger import Ledger

log = logging.getLogger("soraflow.ledger.deliveries")

DELIVERY_CHANNEL = "soraflow_webhook_deliveries"
DeliveryEvent = Literal["completed", "failed"]
# How often a waiter on SQLite looks for new rows (a read of the table's primary key).
SQLITE_LOOK_SECONDS = 0.1
# How long the Postgres listener waits for a notification before it looks whether anyone still waits.
LISTEN_SLICE_SECONDS = 0.5


@dataclass(frozen=True)
class Delivery:
    """One verified delivery, as the ledger keeps it."""

    id: int
    endpoint: str
    delivery_id: str
    job_id: str
    clip_key: str
    event: str  # completed | failed
    detail: Any
    signed_at: float
    received_at: float


@dataclass(frozen=True)
class DeliveryOutcome:
    """What recording a delivery did: ``recorded`` (a new row, and NOTIFY on Postgres), ``seen``
    (its delivery id was already recorded: nothing changed), ``unknown_job`` (no clip of this
    endpoint holds the job: nothing changed)."""

    outcome: Literal["recorded", "seen", "unknown_job"]
    delivery: Delivery | None = None


def _delivery(row) -> Delivery:
    return Delivery(**{c: row._mapping[c] for c in Delivery.__dataclass_fields__})


class Deliveries:
    """The ledger's webhook deliveries."""

    def __init__(self, ledger: "Ledger"):
        self._engine = ledger._engine
        self._reader = ledger._reader
        self._backend = ledger._backend

    @property
    def backend(self) -> str:
        return self._backend.name

    def record(
        self, *, endpoint: str, delivery_id: str, job_id: str, event: DeliveryEvent, signed_at: float, detail: Any = None,
        match: Literal["exact", "suffix"] = "exact",
    ) -> DeliveryOutcome:  # fmt: skip
        """Record a verified delivery about ``job_id`` at ``endpoint``, in one transaction.

        ``match="suffix"``: ``job_id`` is how the ledger's job id ends (fal's request id; the
        ledger's id also names the fal endpoint), and exactly one job must end so. A delivery id
        already recorded changes nothing (``seen``); a job that no clip of that endpoint holds
        changes nothing (``unknown_job``). ``detail`` is JSON-able and holds no secret.
        """
        with self._engine.begin() as conn:
            key = (webhook_deliveries.c.endpoint == endpoint) & (webhook_deliveries.c.delivery_id == delivery_id)
            if conn.execute(select(webhook_deliveries.c.id).where(key)).first() is not None:
                return DeliveryOutcome("seen")
            which = jobs.c.job_id == job_id if match == "exact" else jobs.c.job_id.endswith(job_id, autoescape=True)
            holders = conn.execute(
                select(jobs.c.job_id, jobs.c.clip_key, clips.c.endpoint)
                .select_from(jobs.outerjoin(clips, clips.c.clip_key == jobs.c.clip_key)).where(which).limit(2)
            ).all()  # fmt: skip
            # A job recorded before round 2 has no endpoint on its clip; any other endpoint's
            # delivery about it is not this clip's (a job id is only unique at its endpoint).
            if len(holders) != 1 or (holders[0].endpoint is not None and holders[0].endpoint != endpoint):
                return DeliveryOutcome("unknown_job")
            holder = holders[0]
            job_id = holder.job_id
            now = self._backend.now(conn)
            row = conn.execute(
                self._backend.insert(webhook_deliveries)
                .values(endpoint=endpoint, delivery_id=delivery_id, job_id=job_id, clip_key=holder.clip_key, event=event,
                        detail=detail, signed_at=signed_at, received_at=now)
                .on_conflict_do_nothing(index_elements=["endpoint", "delivery_id"])
                .returning(*webhook_deliveries.c)
            ).first()  # fmt: skip
            if row is None:  # recorded by another receiver between the read and the insert
                return DeliveryOutcome("seen")
            self._backend.notify(conn, DELIVERY_CHANNEL, holder.clip_key)  # sent when this commits
        return DeliveryOutcome("recorded", _delivery(row))

    def latest(self, clip_key: str, job_id: str, *, after: int = 0) -> Delivery | None:
        """The newest delivery about ``job_id`` for the clip, newer than the row ``after``."""
        query = (
            select(webhook_deliveries)
            .where(webhook_deliveries.c.clip_key == clip_key, webhook_deliveries.c.job_id == job_id, webhook_deliveries.c.id > after)
            .order_by(webhook_deliveries.c.id.desc())
            .limit(1)
        )
        with self._reader.connect() as conn:
            row = conn.execute(query).first()
        return _delivery(row) if row else None

    def all(self, clip_key: str | None = None) -> list[Delivery]:
        query = select(webhook_deliveries).order_by(webhook_deliveries.c.id)
        if clip_key is not None:
            query = query.where(webhook_deliveries.c.clip_key == clip_key)
        with self._reader.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def newest_id(self) -> int:
        with self._reader.connect() as conn:
            return conn.execute(select(func.coalesce(func.max(webhook_deliveries.c.id), 0))).scalar_one()

    def clips_after(self, after: int) -> tuple[int, set[str]]:
        """The clip keys of deliveries recorded after the row ``after``, and the newest row id."""
        query = select(webhook_deliveries.c.id, webhook_deliveries.c.clip_key).where(webhook_deliveries.c.id > after)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return max((r.id for r in rows), default=after), {r.clip_key for r in rows}


class DeliveryWatch:
    """Waiting for a clip's delivery: one per process and ledger, shared by every waiting clip.

    ``wait`` reads the table itself before it waits and after every wake-up, so a wake-up is only
    ever a cue to read: a lost notification delays a clip until its caller's safety poll, never
    more. One thread per process wakes the waiters, while any wait: on Postgres it LISTENs on one
    connection, on SQLite it reads the table's new row ids every ``SQLITE_LOOK_SECONDS``.
    """

    def __init__(self, deliveries: Deliveries, *, sqlite_look_seconds: float = SQLITE_LOOK_SECONDS):
        self._deliveries = deliveries
        self._look = sqlite_look_seconds
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def deliveries(self) -> Deliveries:
        return self._deliveries

    def wait(
        self, clip_key: str, job_id: str, *, after: int = 0, timeout: float, give_up: Callable[[], bool] | None = None
    ) -> Delivery | None:
        """The newest delivery about ``job_id`` newer than the row ``after``, as soon as there is
        one; None when ``timeout`` seconds pass first, or at the first wake-up (``interrupt``)
        after ``give_up()`` turns true."""
        deadline = time.monotonic() + max(0.0, timeout)
        woken = threading.Event()
        self._register(clip_key, woken)  # listening before the first read: nothing slips between
        try:
            while True:
                found = self._deliveries.latest(clip_key, job_id, after=after)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0 or (give_up is not None and give_up()):
                    return found
                woken.wait(remaining)
                woken.clear()
        finally:
            self._unregister(clip_key, woken)

    # --- the one thread that wakes waiters ------------------------------------------------------
    def _register(self, clip_key: str, event: threading.Event) -> None:
        with self._lock:
            self._waiters.setdefault(clip_key, set()).add(event)
            if self._thread is None:
                self._ready.clear()
                target = self._listen if self._deliveries.backend == "postgresql" else self._look_at_table
                self._thread = threading.Thread(target=target, name="soraflow-delivery-watch", daemon=True)
                self._thread.start()
        # The thread listens (Postgres) or knows the newest row (SQLite) before the waiter's first
        # read; a thread that cannot is no worse than none (the waiter's safety poll still runs).
        self._ready.wait(10)

    def _unregister(self, clip_key: str, event: threading.Event) -> None:
        with self._lock:
            events = self._waiters.get(clip_key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[clip_key]

    def interrupt(self) -> None:
        """Wake every waiter now, to look at its ``give_up`` (a render asked to stop)."""
        self._wake_all()

    def _wake(self, clip_keys) -> None:
        with self._lock:
            events = [e for key in clip_keys for e in self._waiters.get(key, ())]
        for e in events:
            e.set()

    def _wake_all(self) -> None:
        with self._lock:
            events = [e for es in self._waiters.values() for e in es]
        for e in events:
            e.set()

    def _should_stop(self) -> bool:
        """True when no one waits any more (the thread is then forgotten, and must end)."""
        with self._lock:
            if self._thread is not threading.current_thread():
                return True
            if self._waiters:
                return False
            self._thread = None
            return True

    def _look_at_table(self) -> None:
        try:
            last = self._deliveries.newest_id()
        except DBAPIError as err:
            log.warning("cannot read the webhook deliveries (%s); waiting clips rely on their safety poll", type(err).__name__)
            last = 0
        self._ready.set()
        while not self._should_stop():
            time.sleep(self._look)
            try:
                last, keys = self._deliveries.clips_after(last)
            except DBAPIError as err:  # a busy or briefly unreachable file: look again
                log.debug("reading webhook deliveries failed: %s", type(err).__name__)
                continue
            if keys:
                self._wake(keys)

    def _listen(self) -> None:
        while True:
            raw = None
            try:
                raw = self._deliveries._engine.raw_connection()
                conn = raw.driver_connection  # psycopg's own connection: LISTEN needs autocommit
                conn.rollback()  # the pool's ping may have left a transaction open
                conn.autocommit = True
                conn.execute(f"LISTEN {DELIVERY_CHANNEL}")
                self._ready.set()
                self._wake_all()  # anything committed before this LISTEN is read again by its waiter
                while not self._should_stop():
                    # each notification wakes its waiters as it arrives (the generator ends after the slice)
                    for notification in conn.notifies(timeout=LISTEN_SLICE_SECONDS):
                        self._wake((notification.payload,))
                return
            except Exception as err:  # noqa: BLE001 - a dropped connection: listen again
                log.warning("listening for webhook deliveries failed (%s); listening again", type(err).__name__)
                self._ready.set()
                if self._should_stop():
                    return
                time.sleep(1.0)
            finally:
                if raw is not None:
                    try:
                        raw.invalidate()  # closed, never handed back to the pool in autocommit mode
                    except Exception:  # noqa: BLE001
                        pass


__all__ = ["DELIVERY_CHANNEL", "Deliveries", "Delivery", "DeliveryOutcome", "DeliveryWatch"]
