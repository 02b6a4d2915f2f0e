"""The job ledger: a durable record, keyed by clip key, of every paid job.

It is what makes "never pay twice" hold across crashes, retries and concurrent runs
(docs/architecture.md, rule 3):
- before a create, a run *claims* the clip (state ``creating``, with its owner and start time);
  another run that finds a live claim waits for the job id instead of creating;
- the job id is written the moment ``create`` returns, before any polling;
- a claim left behind by a dead owner (kill -9, lost answer) is *reconciled* against the
  provider's job list before anyone may create again.

SQLite in WAL mode with ``BEGIN IMMEDIATE`` makes the claim atomic across processes on one
machine (several workers sharing a state directory included).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Iterator

from .providers.base import VideoJob

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    clip_key        TEXT PRIMARY KEY,
    shot_id         TEXT NOT NULL,
    part            INTEGER NOT NULL,
    model           TEXT NOT NULL,
    size            TEXT NOT NULL,
    seconds         INTEGER NOT NULL,
    prompt_sha256   TEXT NOT NULL,
    state           TEXT NOT NULL,      -- creating | submitted | completed | failed | lost
    owner           TEXT,
    create_started  REAL,
    lease_until     REAL,
    job_id          TEXT,
    submitted_at    REAL,
    job_status      TEXT,
    progress        INTEGER DEFAULT 0,
    error_code      TEXT,
    error_message   TEXT,
    local_path      TEXT,
    sha256          TEXT,
    storage_uri     TEXT,
    updated_at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    clip_key    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    how         TEXT NOT NULL           -- created | reconciled
);
"""


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


def owner_id() -> str:
    """Who holds a claim: host, process and thread (a thread can outlive a failed attempt)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname():
        return True  # cannot see another host's processes: trust the lease instead
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) still answers kill(0): it is dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class Ledger:
    def __init__(self, path: Path, *, lease_seconds: float = 300.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease_seconds = lease_seconds
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per operation: safe across threads and processes.
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- reads ---------------------------------------------------------------------------
    def get(self, clip_key: str) -> LedgerEntry | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM clips WHERE clip_key=?", (clip_key,)).fetchone()
        return _entry(row) if row else None

    def entries(self, clip_keys: list[str]) -> dict[str, LedgerEntry]:
        if not clip_keys:
            return {}
        marks = ",".join("?" * len(clip_keys))
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM clips WHERE clip_key IN ({marks})", clip_keys).fetchall()
        return {r["clip_key"]: _entry(r) for r in rows}

    def known_job_ids(self) -> set[str]:
        with self._connect() as db:
            return {r[0] for r in db.execute("SELECT job_id FROM jobs")}

    def jobs_for(self, clip_key: str) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT job_id FROM jobs WHERE clip_key=? ORDER BY created_at", (clip_key,))]

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
    ) -> Claim:
        now = time.time()
        lease = now + self.lease_seconds
        with self._write() as db:
            row = db.execute("SELECT * FROM clips WHERE clip_key=?", (clip_key,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO clips (clip_key, shot_id, part, model, size, seconds, prompt_sha256, state,"
                    " owner, create_started, lease_until, updated_at) VALUES (?,?,?,?,?,?,?,'creating',?,?,?,?)",
                    (clip_key, shot_id, part, model, size, seconds, prompt_sha256, owner, now, lease, now),
                )
                return Claim(ClaimKind.CLAIMED)
            state = row["state"]
            if row["job_id"] and state in ("submitted", "completed"):
                return Claim(ClaimKind.HAVE_JOB, job_id=row["job_id"])
            if state in ("failed", "lost"):
                # A failed or vanished job is regenerated: this is a new, deliberate create.
                db.execute(
                    "UPDATE clips SET state='creating', owner=?, create_started=?, lease_until=?, job_id=NULL,"
                    " job_status=NULL, progress=0, error_code=NULL, error_message=NULL, local_path=NULL,"
                    " sha256=NULL, storage_uri=NULL, updated_at=? WHERE clip_key=?",
                    (owner, now, lease, now, clip_key),
                )
                return Claim(ClaimKind.CLAIMED)
            # state == creating: someone started a create whose answer we have not recorded.
            if row["owner"] == owner:
                return Claim(ClaimKind.RECONCILE, since=row["create_started"])
            if _owner_alive(row["owner"]) and (row["lease_until"] or 0) > now:
                return Claim(ClaimKind.WAIT)
            db.execute(
                "UPDATE clips SET owner=?, lease_until=?, updated_at=? WHERE clip_key=?",
                (owner, lease, now, clip_key),
            )
            return Claim(ClaimKind.RECONCILE, since=row["create_started"])

    def renew_claim(self, clip_key: str, owner: str) -> None:
        """Restart the claim's clock just before sending a create."""
        now = time.time()
        with self._write() as db:
            db.execute(
                "UPDATE clips SET create_started=?, lease_until=?, updated_at=? WHERE clip_key=? AND owner=? AND state='creating'",
                (now, now + self.lease_seconds, now, clip_key, owner),
            )

    def release_claim(self, clip_key: str, owner: str) -> None:
        """Give up a claim whose create certainly did not reach the provider."""
        with self._write() as db:
            db.execute("DELETE FROM clips WHERE clip_key=? AND owner=? AND state='creating' AND job_id IS NULL", (clip_key, owner))

    def record_job(self, clip_key: str, job: VideoJob, *, how: str = "created") -> None:
        now = time.time()
        with self._write() as db:
            db.execute(
                "UPDATE clips SET state='submitted', job_id=?, submitted_at=?, job_status=?, progress=?,"
                " owner=NULL, lease_until=NULL, updated_at=? WHERE clip_key=?",
                (job.id, now, job.status, job.progress, now, clip_key),
            )
            db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, clip_key, created_at, how) VALUES (?,?,?,?)",
                (job.id, clip_key, now, how),
            )

    # --- progress and outcomes -------------------------------------------------------------
    def update_job(self, clip_key: str, job: VideoJob) -> None:
        state = {"completed": "completed", "failed": "failed"}.get(job.status, "submitted")
        with self._write() as db:
            db.execute(
                "UPDATE clips SET state=?, job_status=?, progress=?, error_code=?, error_message=?, updated_at=?"
                " WHERE clip_key=? AND job_id=?",
                (state, job.status, job.progress, job.error_code, job.error_message, time.time(), clip_key, job.id),
            )

    def mark_failed(self, clip_key: str, code: str | None, message: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE clips SET state='failed', error_code=?, error_message=?, owner=NULL, updated_at=? WHERE clip_key=?",
                (code, message, time.time(), clip_key),
            )

    def mark_lost(self, clip_key: str, message: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE clips SET state='lost', error_message=?, updated_at=? WHERE clip_key=?",
                (message, time.time(), clip_key),
            )

    def record_download(self, clip_key: str, local_path: Path, sha256: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE clips SET local_path=?, sha256=?, updated_at=? WHERE clip_key=?",
                (str(local_path), sha256, time.time(), clip_key),
            )

    def record_stored(self, clip_key: str, uri: str) -> None:
        with self._write() as db:
            db.execute("UPDATE clips SET storage_uri=?, updated_at=? WHERE clip_key=?", (uri, time.time(), clip_key))


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        clip_key=row["clip_key"],
        shot_id=row["shot_id"],
        part=row["part"],
        state=row["state"],
        job_id=row["job_id"],
        job_status=row["job_status"],
        progress=row["progress"] or 0,
        submitted_at=row["submitted_at"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        local_path=row["local_path"],
        sha256=row["sha256"],
        storage_uri=row["storage_uri"],
        owner=row["owner"],
    )
