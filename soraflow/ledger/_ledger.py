"""The Ledger: claims, job ids, progress and outcomes, as SQLAlchemy Core statements.

The claim protocol:
- before a create, a run *claims* the clip (state ``creating``, its owner, a lease); another run
  that finds a live claim waits for the job id instead of creating;
- the job id is written the moment ``create`` returns, before any polling;
- a claim whose owner is gone (a dead process on this host, or a lease run out for a host we
  cannot see) is taken over, and the new owner *reconciles* against the provider's job list
  before anyone may create again.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import OperationalError

from ..errors import LedgerError
from ..providers.base import VideoJob
from . import _migrate
from ._backends import backend_for, open_engine, redacted
from ._owners import owner_alive, owner_id
from ._tables import clips, jobs, ledger_actions


class ClaimKind(str, Enum):
    HAVE_JOB = "have_job"  # a job exists: poll it, never create
    CLAIMED = "claimed"  # this owner may create now
    RECONCILE = "reconcile"  # an earlier create may have landed: search the job list first
    WAIT = "wait"  # another live run is creating this clip right now


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    job_id: str | None = None
    since: float | None = None  # when the ambiguous create started (for reconciliation)


@dataclass(frozen=True)
class LedgerEntry:
    clip_key: str
    shot_id: str
    part: int
    state: str
    job_id: str | None
    job_status: str | None
    progress: int
    submitted_at: float | None
    error_code: str | None
    error_message: str | None
    local_path: str | None
    sha256: str | None
    storage_uri: str | None
    owner: str | None
    model: str | None = None
    size: str | None = None
    seconds: int | None = None
    endpoint: str | None = None
    profile: str | None = None
    price_usd: Decimal | None = None
    lease_until: float | None = None
    updated_at: float | None = None


@dataclass(frozen=True)
class LedgerAction:
    """One row of the append-only action record."""

    id: int
    at: float
    clip_key: str | None
    action: str
    detail: Any
    actor: str


# A claim of a failed or lost clip starts the clip afresh: these go back to their defaults.
_FRESH = dict(
    job_id=None, job_status=None, progress=0, error_code=None, error_message=None,
    local_path=None, sha256=None, storage_uri=None,
)  # fmt: skip


class Ledger:
    """The job ledger on SQLite (a path, or ``sqlite:///PATH``) or Postgres (``postgresql+psycopg://``)."""

    def __init__(self, target: str | Path, *, lease_seconds: float = 300.0):
        self.lease_seconds = lease_seconds
        self._backend = backend_for(target)
        self.where = redacted(self._backend.url)  # for messages: never a user or password
        self._engine = open_engine(self._backend)
        # Reads take no write lock on SQLite (WAL readers run beside the writer).
        self._reader = self._engine.execution_options(ledger_read_only=True)
        try:
            _migrate.upgrade(self._engine, self._backend, self.where)
        except OperationalError as err:
            raise LedgerError(f"cannot open the ledger at {self.where}: {self._scrub(err.orig)}") from None

    def _scrub(self, err: BaseException | None) -> str:
        """The driver's first line of complaint, without the URL's user or password."""
        text = str(err).strip().splitlines()[0] if err and str(err).strip() else type(err).__name__
        for secret in (self._backend.url.password, self._backend.url.username):
            if secret:
                text = text.replace(str(secret), "***")
        return text

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.name

    def close(self) -> None:
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"Ledger({self.where!r})"

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    # --- reads ---------------------------------------------------------------------------
    def get(self, clip_key: str) -> LedgerEntry | None:
        with self._reader.connect() as conn:
            row = conn.execute(select(clips).where(clips.c.clip_key == clip_key)).one_or_none()
        return _entry(row) if row else None

    def entries(self, clip_keys: list[str] | None = None) -> dict[str, LedgerEntry]:
        """The entries of these clips (those the ledger has); every entry when ``None``."""
        query = select(clips).order_by(clips.c.updated_at)
        if clip_keys is not None:
            if not clip_keys:
                return {}
            query = query.where(clips.c.clip_key.in_(clip_keys))
        with self._reader.connect() as conn:
            return {r.clip_key: _entry(r) for r in conn.execute(query)}

    def known_job_ids(self) -> set[str]:
        with self._reader.connect() as conn:
            return set(conn.execute(select(jobs.c.job_id)).scalars())

    def jobs_for(self, clip_key: str) -> list[str]:
        query = select(jobs.c.job_id).where(jobs.c.clip_key == clip_key).order_by(jobs.c.created_at)
        with self._reader.connect() as conn:
            return list(conn.execute(query).scalars())

    def actions(self, clip_key: str | None = None) -> list[LedgerAction]:
        """The recorded actions, oldest first; those of one clip when given."""
        query = select(ledger_actions).order_by(ledger_actions.c.id)
        if clip_key is not None:
            query = query.where(ledger_actions.c.clip_key == clip_key)
        with self._reader.connect() as conn:
            return [LedgerAction(**row._mapping) for row in conn.execute(query)]

    # --- the claim protocol ----------------------------------------------------------------
    def claim_create(
        self,
        *,
        clip_key: str,
        shot_id: str,
        part: int,
        model: str,
        size: str,
        seconds: int,
        prompt_sha256: str,
        owner: str,
        endpoint: str | None = None,
        profile: str | None = None,
        price_usd: Decimal | None = None,
    ) -> Claim:
        while True:
            with self._write() as conn:
                now = self._backend.now(conn)
                lease = now + self.lease_seconds
                described = dict(shot_id=shot_id, part=part, model=model, size=size, seconds=seconds, prompt_sha256=prompt_sha256)
                if price_usd is not None:
                    described["price_usd"] = price_usd
                for column, value in (("endpoint", endpoint), ("profile", profile)):
                    if value is not None:
                        described[column] = value
                claiming = dict(state="creating", owner=owner, create_started=now, lease_until=lease, updated_at=now)
                # The clip is new: the insert is the claim (atomic: the primary key decides).
                # (RETURNING, not rowcount: psycopg reports -1 for a single-row insert here.)
                inserted = conn.execute(
                    self._backend.insert(clips)
                    .values(clip_key=clip_key, **described, **claiming)
                    .on_conflict_do_nothing(index_elements=["clip_key"])
                    .returning(clips.c.clip_key)
                ).first()
                if inserted is not None:
                    return Claim(ClaimKind.CLAIMED)
                # The clip is known: decide on its row, locked until this transaction ends.
                row = conn.execute(select(clips).where(clips.c.clip_key == clip_key).with_for_update()).one_or_none()
                if row is None:
                    continue  # released between the insert and the select: claim again
                return self._claim_known(conn, row, described, claiming, owner, now, lease)

    def _claim_known(self, conn: Connection, row, described: dict, claiming: dict, owner: str, now: float, lease: float) -> Claim:
        key = clips.c.clip_key == row.clip_key
        if row.job_id and row.state in ("submitted", "completed"):
            return Claim(ClaimKind.HAVE_JOB, job_id=row.job_id)
        if row.state in ("failed", "lost"):
            # A failed or vanished job is regenerated: this is a new, deliberate create.
            conn.execute(update(clips).where(key).values(**described, **claiming, **_FRESH))
            self._act(conn, row.clip_key, "regenerate", {"was": row.state, "job_id": row.job_id}, owner, now)
            return Claim(ClaimKind.CLAIMED)
        # state == creating: someone started a create whose answer is not recorded.
        if row.owner == owner:
            return Claim(ClaimKind.RECONCILE, since=row.create_started)
        if owner_alive(row.owner) and (row.lease_until or 0) > now:
            return Claim(ClaimKind.WAIT)
        conn.execute(update(clips).where(key).values(owner=owner, lease_until=lease, updated_at=now))
        self._act(conn, row.clip_key, "takeover", {"from": row.owner, "lease_until": row.lease_until}, owner, now)
        return Claim(ClaimKind.RECONCILE, since=row.create_started)

    def renew_claim(self, clip_key: str, owner: str) -> None:
        """Restart the claim's clock just before sending a create."""
        with self._write() as conn:
            now = self._backend.now(conn)
            conn.execute(
                update(clips)
                .where(clips.c.clip_key == clip_key, clips.c.owner == owner, clips.c.state == "creating")
                .values(create_started=now, lease_until=now + self.lease_seconds, updated_at=now)
            )

    def release_claim(self, clip_key: str, owner: str) -> None:
        """Give up a claim whose create certainly did not reach the provider."""
        with self._write() as conn:
            conn.execute(
                delete(clips).where(
                    clips.c.clip_key == clip_key, clips.c.owner == owner, clips.c.state == "creating", clips.c.job_id.is_(None)
                )
            )

    def record_job(self, clip_key: str, job: VideoJob, *, how: str = "created") -> None:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                update(clips)
                .where(clips.c.clip_key == clip_key)
                .values(state="submitted", job_id=job.id, submitted_at=now, job_status=job.status, progress=job.progress,
                        owner=None, lease_until=None, updated_at=now)
            )  # fmt: skip
            conn.execute(
                self._backend.insert(jobs)
                .values(job_id=job.id, clip_key=clip_key, created_at=now, how=how)
                .on_conflict_do_nothing(index_elements=["job_id"])
            )
            if how != "created":
                self._act(conn, clip_key, how, {"job_id": job.id}, owner_id(), now)

    # --- progress and outcomes -------------------------------------------------------------
    def update_job(self, clip_key: str, job: VideoJob) -> None:
        state = {"completed": "completed", "failed": "failed"}.get(job.status, "submitted")
        with self._write() as conn:
            conn.execute(
                update(clips)
                .where(clips.c.clip_key == clip_key, clips.c.job_id == job.id)
                .values(state=state, job_status=job.status, progress=job.progress, error_code=job.error_code,
                        error_message=job.error_message, updated_at=time.time())
            )  # fmt: skip

    def mark_failed(self, clip_key: str, code: str | None, message: str) -> None:
        self._update(clip_key, state="failed", error_code=code, error_message=message, owner=None)

    def mark_lost(self, clip_key: str, message: str) -> None:
        self._update(clip_key, state="lost", error_message=message)

    def record_download(self, clip_key: str, local_path: Path, sha256: str) -> None:
        self._update(clip_key, local_path=str(local_path), sha256=sha256)

    def record_stored(self, clip_key: str, uri: str) -> None:
        self._update(clip_key, storage_uri=uri)

    def _update(self, clip_key: str, **values) -> None:
        with self._write() as conn:
            conn.execute(update(clips).where(clips.c.clip_key == clip_key).values(**values, updated_at=time.time()))

    # --- the action record ---------------------------------------------------------------
    def record_action(self, clip_key: str | None, action: str, detail: Any = None, *, actor: str | None = None) -> None:
        """Append one action (a user's adopt, re-create, release, forget; or a notable event).

        ``detail`` is JSON-able data; it must never hold a secret.
        """
        with self._write() as conn:
            self._act(conn, clip_key, action, detail, actor or owner_id(), time.time())

    @staticmethod
    def _act(conn: Connection, clip_key: str | None, action: str, detail: Any, actor: str, now: float) -> None:
        conn.execute(ledger_actions.insert().values(at=now, clip_key=clip_key, action=action, detail=detail, actor=actor))


def _entry(row) -> LedgerEntry:
    m = row._mapping
    return LedgerEntry(
        clip_key=m["clip_key"],
        shot_id=m["shot_id"],
        part=m["part"],
        state=m["state"],
        job_id=m["job_id"],
        job_status=m["job_status"],
        progress=m["progress"] or 0,
        submitted_at=m["submitted_at"],
        error_code=m["error_code"],
        error_message=m["error_message"],
        local_path=m["local_path"],
        sha256=m["sha256"],
        storage_uri=m["storage_uri"],
        owner=m["owner"],
        model=m["model"],
        size=m["size"],
        seconds=m["seconds"],
        endpoint=m["endpoint"],
        profile=m["profile"],
        price_usd=m["price_usd"],
        lease_until=m["lease_until"],
        updated_at=m["updated_at"],
    )

