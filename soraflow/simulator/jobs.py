"""Video jobs and their lifecycle, derived from the clock rather than driven by workers.

A job's status is a function of time since its creation (queued for the first tenth of the
latency, then in_progress with progress rising to 99, completed once the latency has passed
and its render is on disk), so any number of jobs progress at once: N jobs of latency L all
finish at about L. A job picked for moderation fails half-way with ``moderation_blocked``.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Literal

from .render import RenderedMedia

QUEUED_SHARE = 0.1  # share of the latency a job spends queued
MODERATION_AT = 0.5  # share of the latency after which a blocked job fails
POLL_AFTER_MIN_MS, POLL_AFTER_MAX_MS, POLL_AFTER_MARGIN_MS = 250, 5000, 50

# How a job came to be: POST /videos, /videos/{id}/remix, /videos/edits, /videos/extensions
# (or a Veo predictLongRunning, which is a create too).
JobKind = Literal["create", "remix", "edit", "extension"]
# Which API accepted the job: each dialect sees only its own jobs; /_sim/jobs sees them all.
Dialect = Literal["openai-videos", "google-genai", "fal"]
OPENAI_VIDEOS: Dialect = "openai-videos"

MODERATION_ERROR = {
    "code": "moderation_blocked",
    "message": "Your request was blocked by our moderation system.",
}


@dataclass
class Job:
    id: str
    seq: int
    model: str
    size: str
    seconds: int
    prompt: str
    latency: float
    ttl: float
    created_wall: float
    created_mono: float
    kind: JobKind = "create"
    source: str | None = None  # the video a remix, edit or extension started from (None: an upload)
    moderated: bool = False
    dialect: Dialect = OPENAI_VIDEOS
    request: object = field(default=None, repr=False)  # what the dialect keeps of the request (a Veo request)
    render: Future | None = None
    render_done_mono: float | None = None
    look: str = ""  # the colour key of its render (a remix takes its source's)
    deleted: bool = False
    status_calls: int = 0  # retrieves of this job (its dialect's status route): what polling cost

    # --- lifecycle ---------------------------------------------------------------------
    def state(self, now: float) -> tuple[str, int, float | None, dict | None]:
        """``(status, progress, finished_mono, error)`` at monotonic time ``now``."""
        elapsed = now - self.created_mono
        if self.moderated:
            fail_at = self.latency * MODERATION_AT
            if elapsed >= fail_at:
                return "failed", int(100 * MODERATION_AT), self.created_mono + fail_at, dict(MODERATION_ERROR)
        if elapsed >= self.latency and self.render is not None and self.render.done():
            rendered = now if self.render_done_mono is None else self.render_done_mono
            finished = max(self.created_mono + self.latency, rendered)
            if self.render.cancelled() or self.render.exception() is not None:
                return "failed", 99, finished, {"code": "internal_error", "message": f"rendering failed: {self._render_problem()}"}
            return "completed", 100, finished, None
        if elapsed < self.latency * QUEUED_SHARE:
            return "queued", 0, None, None
        progress = 99 if self.latency <= 0 else min(99, int(100 * elapsed / self.latency))
        return "in_progress", progress, None, None

    def _render_problem(self) -> str:
        if self.render is None or self.render.cancelled():
            return "cancelled"
        return str(self.render.exception())

    def poll_after_ms(self, now: float) -> int:
        """When to look again: just after the job should be done, at most 5 s from now.

        Polling at ``remaining + 50 ms`` sees completion within one request of it happening,
        the 5 s cap keeps progress fresh on long jobs, the 250 ms floor stops busy loops while
        a render runs late.
        """
        due = self.latency * (MODERATION_AT if self.moderated else 1.0)
        remaining_ms = max(0.0, due - (now - self.created_mono)) * 1000
        return int(min(POLL_AFTER_MAX_MS, max(POLL_AFTER_MIN_MS, remaining_ms + POLL_AFTER_MARGIN_MS)))

    def finished_at(self, now: float) -> float | None:
        """When it reached its end (wall clock, to the millisecond), if it has."""
        status, _, finished, _ = self.state(now)
        return self.to_wall(finished) if status in ("completed", "failed") and finished is not None else None

    def to_wall(self, mono: float) -> float:
        return self.created_wall + (mono - self.created_mono)

    def media(self, now: float) -> RenderedMedia | None:
        status, _, _, _ = self.state(now)
        return self.render.result() if status == "completed" and self.render is not None else None

    def expired(self, now: float) -> bool:
        status, _, finished, _ = self.state(now)
        return status == "completed" and finished is not None and now >= finished + self.ttl

    def created_resource(self) -> dict:
        """The job as its create (remix, edit, extension) answers it: as it was made, queued.
        Taken at the moment of creation, not when the answer is written, so that a response
        delayed on a busy machine does not show a job already under way."""
        return self.resource(self.created_mono)

    def resource(self, now: float) -> dict:
        """The job as the API's ``VideoResource``."""
        status, progress, finished, error = self.state(now)
        completed_at = int(self.to_wall(finished)) if status == "completed" and finished is not None else None
        expires_at = int(self.to_wall(finished + self.ttl)) if completed_at is not None else None
        return {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": status,
            "progress": progress,
            "created_at": int(self.created_wall),
            "completed_at": completed_at,
            "expires_at": expires_at,
            "prompt": self.prompt,
            "size": self.size,
            "seconds": str(self.seconds),
            "remixed_from_video_id": self.source if self.kind == "remix" else None,
            "error": error,
        }


class UnknownCursor(KeyError):
    """``after`` names no listed job."""


@dataclass
class JobStore:
    """Every job the simulator accepted, in creation order; thread-safe."""

    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _jobs: dict[str, Job] = field(default_factory=dict)
    _maybe_active: set[str] = field(default_factory=set)
    peak_active: int = 0
    _seq: int = 0

    def new_job(self, *, id: str | None = None, **fields) -> Job:
        """Create, store and count a job; its creation time is now."""
        with self._lock:
            self._seq += 1
            job = Job(
                id=id or f"video_{uuid.uuid4().hex}",
                seq=self._seq,
                created_wall=self.wall(),
                created_mono=self.clock(),
                **fields,
            )
            self._jobs[job.id] = job
            # Activity only rises at a create, so checking here finds the true peak.
            now = self.clock()
            self._maybe_active = {j for j in self._maybe_active if self._jobs[j].state(now)[0] in ("queued", "in_progress")}
            self._maybe_active.add(job.id)
            self.peak_active = max(self.peak_active, len(self._maybe_active))
            return job

    def attach_render(self, job: Job, render: Future) -> None:
        def done(_f: Future, job: Job = job) -> None:
            job.render_done_mono = self.clock()

        job.render = render
        render.add_done_callback(done)

    def get(self, job_id: str, dialect: Dialect = OPENAI_VIDEOS) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return None if job is None or job.deleted or job.dialect != dialect else job

    def delete(self, job: Job) -> None:
        with self._lock:
            job.deleted = True
            self._maybe_active.discard(job.id)

    def page(self, *, after: str | None, limit: int, order: Literal["asc", "desc"]) -> tuple[list[Job], bool]:
        """A page of the Videos API's list (the Veo API has no list of operations)."""
        with self._lock:
            listed = [j for j in self._jobs.values() if not j.deleted and j.dialect == OPENAI_VIDEOS]
        listed.sort(key=lambda j: j.seq, reverse=order == "desc")
        start = 0
        if after is not None:
            ids = [j.id for j in listed]
            if after not in ids:
                raise UnknownCursor(after)
            start = ids.index(after) + 1
        chunk = listed[start : start + limit]
        return chunk, start + len(chunk) < len(listed)

    def all(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.seq)

    def counts(self) -> dict:
        now = self.clock()
        by_status: dict[str, int] = {}
        jobs = self.all()
        for job in jobs:
            status = "deleted" if job.deleted else job.state(now)[0]
            by_status[status] = by_status.get(status, 0) + 1
        by_dialect: dict[str, int] = {}
        for job in jobs:
            by_dialect[job.dialect] = by_dialect.get(job.dialect, 0) + 1
        return {
            "jobs_total": len(jobs),
            "jobs_by_dialect": by_dialect,
            "jobs_by_status": by_status,
            "active_jobs": by_status.get("queued", 0) + by_status.get("in_progress", 0),
            "peak_active_jobs": self.peak_active,
        }

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._maybe_active.clear()
            self.peak_active = 0
