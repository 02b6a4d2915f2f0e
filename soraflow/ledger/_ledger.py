"""The Ledger: claims, job ids, progress and outcomes, as SQLAlchemy Core statements.

The claim protocol:
- before a create, a run *claims* the clip (state ``claimed``, its owner, a lease); another run
  that finds a live claim waits for the job id instead of creating;
- right before the request goes out (after the references are prepared and a rate-limit slot
  is taken), ``renew_claim`` marks it ``creating``: from then on a create may exist;
- the job id is written the moment ``create`` returns, before any polling;
- a claim whose owner is gone (a dead process on this host, or a lease run out for a host we
  cannot see) is taken over. A ``claimed`` one was provably never sent, so it is simply claimed
  again; a ``creating`` one makes the new owner *reconcile* against the provider (its job list)
  before anyone may create again, and where the provider cannot list its jobs (Veo) the clip is
  in doubt. Only a stop during the request itself can leave a clip in doubt.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import Connection, delete, or_, select, update
from sqlalchemy.exc import DBAPIError

from ..errors import LedgerError
from ..providers.base import VideoJob
from . import _migrate
from ._backends import backend_for, open_engine, redacted
from ._owners import owner_alive, owner_id
from ._tables import clips, jobs, ledger_actions

if TYPE_CHECKING:
    from ..settings import Settings


CLIP_REF_LENGTH = 16  # how many characters of a clip key name it to the user


class ClaimKind(str, Enum):
    HAVE_JOB = "have_job"  # a job exists: poll it, never create
    CLAIMED = "claimed"  # this owner may create now
    RECONCILE = "reconcile"  # an earlier create may have landed: search the job list first
    WAIT = "wait"  # another live run is creating this clip right now
    IN_DOUBT = "in_doubt"  # a create may have been paid, unproven either way: only the user settles it


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    job_id: str | None = None
    since: float | None = None  # when the ambiguous create started (for reconciliation)
    code: str | None = None  # IN_DOUBT: why, as a code and as a sentence
    reason: str | None = None


class JobHeldError(Exception):
    """A job id being recorded for one clip is already another clip's (rule 7)."""

    def __init__(self, job_id: str, holder: str):
        self.job_id = job_id
        self.holder = holder
        super().__init__(f"job {job_id} is already held by clip {holder}")


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
    prompt_sha256: str | None = None


@dataclass(frozen=True)
class LedgerAction:
    """One row of the append-only action record."""

    id: int
    at: float
    clip_key: str | None
    action: str
    detail: Any
    actor: str


_HAS_JOB = ("submitted", "completed")  # states whose job id a claim hands out (HAVE_JOB)

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
        except DBAPIError as err:  # unreachable, refused, or no right to create the tables
            raise LedgerError(f"cannot open the ledger at {self.where}: {self._scrub(err.orig)}") from None

    def _scrub(self, err: BaseException | None) -> str:
        """The driver's first line of complaint, without the URL's user or password."""
        text = str(err).strip().splitlines()[0] if err and str(err).strip() else type(err).__name__
        url = self._backend.url
        if url.password:
            text = text.replace(str(url.password), "***")
        if url.username:  # libpq quotes it ('for user "NAME"'); a bare name may be any word
            text = text.replace(f'"{url.username}"', '"***"')
        return text

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Ledger":
        """The ledger the settings name (``SORAFLOW_LEDGER_URL``, else the SQLite file), with their lease."""
        return cls(settings.resolved_ledger_url, lease_seconds=settings.ledger_lease_seconds)

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

    def jobs_recorded_since(self, since: float, *, endpoint: str | None = None) -> dict[str, str]:
        """Job ids recorded since ``since`` (at ``endpoint``, when given; rows of round 1 have
        none and always count), with the sha256 of the prompt each was asked with."""
        query = select(jobs.c.job_id, clips.c.prompt_sha256).join(clips, clips.c.clip_key == jobs.c.clip_key).where(jobs.c.created_at >= since)
        if endpoint is not None:
            query = query.where(or_(clips.c.endpoint == endpoint, clips.c.endpoint.is_(None)))
        with self._reader.connect() as conn:
            return {job_id: prompt for job_id, prompt in conn.execute(query)}

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
        # The common answer first, with no write: the clip already has its job (a rerun, or the
        # workers that lost the race for it). A job id, once recorded, only leads to polling, so
        # a plain read may give it; everything that may lead to a create takes the write path.
        # (Measured by bench/bench_ledger.py: on Postgres a locking read is a transaction that
        # writes and flushes its commit; on SQLite a write transaction takes the file's lock.)
        row = self._current(clip_key)
        if row is not None and row.job_id and row.state in _HAS_JOB:
            return Claim(ClaimKind.HAVE_JOB, job_id=row.job_id)
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
                claiming = dict(state="claimed", owner=owner, create_started=now, lease_until=lease, updated_at=now)
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

    def _current(self, clip_key: str):
        with self._reader.connect() as conn:
            return conn.execute(select(clips.c.job_id, clips.c.state).where(clips.c.clip_key == clip_key)).first()

    def _claim_known(self, conn: Connection, row, described: dict, claiming: dict, owner: str, now: float, lease: float) -> Claim:
        key = clips.c.clip_key == row.clip_key
        if row.job_id and row.state in _HAS_JOB:
            return Claim(ClaimKind.HAVE_JOB, job_id=row.job_id)
        if row.state == "in_doubt":
            return Claim(ClaimKind.IN_DOUBT, code=row.error_code, reason=row.error_message)
        if row.state in ("failed", "lost"):
            # A failed or vanished job is regenerated: this is a new, deliberate create.
            conn.execute(update(clips).where(key).values(**described, **claiming, **_FRESH))
            self._act(conn, row.clip_key, "regenerate", {"was": row.state, "job_id": row.job_id}, owner, now)
            return Claim(ClaimKind.CLAIMED)
        if row.state == "claimed":
            # Claimed, but its create was never sent (renew_claim marks that): nothing can exist.
            if row.owner != owner and owner_alive(row.owner) and (row.lease_until or 0) > now:
                return Claim(ClaimKind.WAIT)
            conn.execute(update(clips).where(key).values(**described, **claiming))
            if row.owner != owner:
                self._act(conn, row.clip_key, "takeover", {"from": row.owner, "lease_until": row.lease_until, "sent": False}, owner, now)
            return Claim(ClaimKind.CLAIMED)
        # state == creating: someone sent a create whose answer is not recorded.
        if row.owner == owner:
            return Claim(ClaimKind.RECONCILE, since=row.create_started)
        if owner_alive(row.owner) and (row.lease_until or 0) > now:
            return Claim(ClaimKind.WAIT)
        conn.execute(update(clips).where(key).values(owner=owner, lease_until=lease, updated_at=now))
        self._act(conn, row.clip_key, "takeover", {"from": row.owner, "lease_until": row.lease_until}, owner, now)
        return Claim(ClaimKind.RECONCILE, since=row.create_started)

    def renew_claim(self, clip_key: str, owner: str) -> bool:
        """Mark the claim ``creating`` (about to send) and restart its clock, the last thing before
        the request goes out; False if the claim is no longer ours.

        A claim can be taken over while its owner waits (another host saw its lease run out):
        then the owner must not create, but ask the ledger again.
        """
        with self._write() as conn:
            now = self._backend.now(conn)
            renewed = conn.execute(
                update(clips)
                .where(clips.c.clip_key == clip_key, clips.c.owner == owner, clips.c.state.in_(("claimed", "creating")))
                .values(state="creating", create_started=now, lease_until=now + self.lease_seconds, updated_at=now)
                .returning(clips.c.clip_key)
            ).first()
        return renewed is not None

    def release_claim(self, clip_key: str, owner: str) -> None:
        """Give up a claim whose create certainly did not reach the provider."""
        with self._write() as conn:
            conn.execute(
                delete(clips).where(
                    clips.c.clip_key == clip_key, clips.c.owner == owner, clips.c.state.in_(("claimed", "creating")),
                    clips.c.job_id.is_(None),
                )
            )

    def record_job(self, clip_key: str, job: VideoJob, *, how: str = "created") -> None:
        """Record the clip's job; raise ``JobHeldError`` (recording nothing) if another clip has it."""
        now = time.time()
        with self._write() as conn:
            self._record_job(conn, clip_key, job, how, now)
            if how != "created":
                self._act(conn, clip_key, how, {"job_id": job.id}, owner_id(), now)

    def _record_job(self, conn: Connection, clip_key: str, job: VideoJob, how: str, now: float) -> None:
        # Insert first, then read who holds the id: two clips recording one id at once (a provider
        # that answers two creates with one id) meet at the unique index, where the second waits
        # for the first to commit and then sees it, on Postgres as on SQLite. A plain read before
        # the insert would let both pass.
        conn.execute(
            self._backend.insert(jobs)
            .values(job_id=job.id, clip_key=clip_key, created_at=now, how=how)
            .on_conflict_do_nothing(index_elements=["job_id"])
        )
        holder = conn.execute(select(jobs.c.clip_key).where(jobs.c.job_id == job.id)).scalar()
        if holder != clip_key:
            row = conn.execute(select(clips.c.shot_id, clips.c.part).where(clips.c.clip_key == holder)).first()
            raise JobHeldError(job.id, f"{row.shot_id} part {row.part}" if row else str(holder)[:CLIP_REF_LENGTH])
        conn.execute(
            update(clips)
            .where(clips.c.clip_key == clip_key)
            .values(state="submitted", job_id=job.id, submitted_at=now, job_status=job.status, progress=job.progress,
                    error_code=None, error_message=None, owner=None, lease_until=None, updated_at=now)
        )  # fmt: skip

    # --- settling by the user's word (``soraflow jobs``) ---------------------------------------
    # Each checks the row's state under a row lock, changes it and records the action with its
    # time, in one transaction: a render that changed the clip meanwhile makes it refuse.
    def adopt_job(self, clip_key: str, job: VideoJob, *, expect: tuple[str, ...], detail: dict, actor: str) -> None:
        """The user names the job a create made: the clip resumes from it (never created again)."""
        with self._write() as conn:
            now = self._backend.now(conn)
            row = self._locked(conn, clip_key, expect)
            self._record_job(conn, clip_key, job, "adopted", now)
            self._act(conn, clip_key, "adopt", {"job_id": job.id, "was": row.state, **detail}, actor, now)

    def reopen(self, clip_key: str, action: str, *, expect: tuple[str, ...], detail: dict, actor: str) -> None:
        """Drop the clip's row at the user's word: the next render creates it afresh. Its jobs
        stay recorded (they were paid); the action says what was settled and why."""
        with self._write() as conn:
            now = self._backend.now(conn)
            row = self._locked(conn, clip_key, expect)
            conn.execute(delete(clips).where(clips.c.clip_key == clip_key))
            was = {"was": row.state, "job_id": row.job_id, "error_code": row.error_code, "error": row.error_message}
            self._act(conn, clip_key, action, {**was, **detail}, actor, now)

    def release(self, clip_key: str, *, actor: str) -> None:
        """Free a stale claim: the next render searches the provider for its create at once,
        instead of waiting for the claim's lease."""
        with self._write() as conn:
            now = self._backend.now(conn)
            row = self._locked(conn, clip_key, ("creating",))
            conn.execute(update(clips).where(clips.c.clip_key == clip_key).values(owner=None, lease_until=None, updated_at=now))
            self._act(conn, clip_key, "release", {"owner": row.owner, "lease_until": row.lease_until}, actor, now)

    def _locked(self, conn: Connection, clip_key: str, expect: tuple[str, ...]):
        row = conn.execute(select(clips).where(clips.c.clip_key == clip_key).with_for_update()).one_or_none()
        if row is None or row.state not in expect:
            now = "gone from the ledger" if row is None else row.state
            raise LedgerError(f"clip {clip_key[:CLIP_REF_LENGTH]} changed meanwhile (now {now}); look again with `soraflow jobs`")
        return row

    def paid_creates(self, clip_keys: list[str]) -> dict[str, int]:
        """How many creates may have been paid for each clip: every job recorded for it, and
        every create in doubt the user chose to make again (its job was never known)."""
        if not clip_keys:
            return {}
        counts = dict.fromkeys(clip_keys, 0)
        with self._reader.connect() as conn:
            for key in conn.execute(select(jobs.c.clip_key).where(jobs.c.clip_key.in_(clip_keys))).scalars():
                counts[key] += 1
            unknown = select(ledger_actions.c.clip_key, ledger_actions.c.detail).where(
                ledger_actions.c.clip_key.in_(clip_keys), ledger_actions.c.action == "re-create"
            )
            for key, detail in conn.execute(unknown):
                counts[key] += 1 if (detail or {}).get("unconfirmed_create") else 0
        return counts

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

    def mark_in_doubt(self, clip_key: str, code: str, reason: str) -> None:
        """The clip's create may have been paid and nothing proves whether it made a job: no
        run creates it again until the user settles it (``soraflow jobs``)."""
        with self._write() as conn:
            now = time.time()
            conn.execute(
                update(clips).where(clips.c.clip_key == clip_key)
                .values(state="in_doubt", error_code=code, error_message=reason, owner=None, lease_until=None, updated_at=now)
            )  # fmt: skip
            self._act(conn, clip_key, "in_doubt", {"code": code, "reason": reason}, owner_id(), now)

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
        prompt_sha256=m["prompt_sha256"],
    )

