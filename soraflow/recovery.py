"""Settling what a render cannot settle alone: the core of ``soraflow jobs``.

A render never creates a clip twice on a guess (docs/architecture.md, rule 4). When a create may
have been paid and the provider cannot prove whether it made a job, the clip is left *in doubt*
and the run names the commands below. Each one checks before it changes anything, changes the
clip's ledger row in one transaction (refusing if a render changed it meanwhile), and records
the action, its time and who took it in the ledger's action record:

- ``adopt REF JOB_ID``: the user found the job at the provider. It is fetched and checked (it
  exists, is the job asked for, has the clip's size and length, and its prompt when shown, and
  no other clip holds it); the next render resumes from it.
- ``re-create REF``: at the user's word, the next render pays for a new job. If the job of the
  doubtful create was never known, that create is counted as possibly paid in the manifest.
- ``release REF``: a claim held by a run that is gone (another host, its lease not yet run
  out): the next render searches the provider for its create at once instead of waiting.
- ``forget REF``: a failed or lost clip leaves the ledger (its jobs stay recorded as paid).

REF is the start of a clip key (at least ``MIN_REF_LENGTH`` characters), as the run prints it.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
import time
from dataclasses import dataclass
from typing import Callable

from .errors import JobLostError, ProviderError, SoraflowError
from .generation import KNOWN_STATUSES, job_mismatch
from .ledger import CLIP_REF_LENGTH, JobHeldError, Ledger, LedgerEntry, owner_alive
from .providers.base import VideoJob, VideoProvider

MIN_REF_LENGTH = 6
# Creates whose job was never known: re-creating such a clip may pay a second time.
UNCONFIRMED_CODES = frozenset({"unanswered_create", "duplicate_job"})


class SettleError(SoraflowError):
    """A ``soraflow jobs`` action refused: says why, and what would settle the clip instead."""


@dataclass(frozen=True)
class Settled:
    entry: LedgerEntry
    said: str  # one line for the user: what was done
    job: VideoJob | None = None


def ref_of(entry: LedgerEntry) -> str:
    return entry.clip_key[:CLIP_REF_LENGTH]


def label_of(entry: LedgerEntry) -> str:
    return f"{entry.shot_id} part {entry.part}"


def actor() -> str:
    """Who settled it, as the action record keeps it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} (soraflow jobs)"


def find_clip(ledger: Ledger, ref: str) -> LedgerEntry:
    ref = ref.strip().lower()
    if len(ref) < MIN_REF_LENGTH:
        raise SettleError(f"clip {ref!r} is too short to name a clip: give at least {MIN_REF_LENGTH} characters of its key")
    found = [entry for key, entry in ledger.entries().items() if key.startswith(ref)]
    if not found:
        raise SettleError(f"no clip in the ledger at {ledger.where} has a key starting {ref!r}; `soraflow jobs` lists them")
    if len(found) > 1:
        names = ", ".join(f"{ref_of(e)} ({label_of(e)})" for e in found[:5])
        raise SettleError(f"{ref!r} names {len(found)} clips: {names}; give more of the key")
    return found[0]


def _refuse_live_claim(entry: LedgerEntry) -> None:
    if entry.state == "creating" and owner_alive(entry.owner) and (entry.lease_until or 0) > time.time():
        host, _, rest = (entry.owner or "").partition(":")
        if host == socket.gethostname():
            raise SettleError(
                f"clip {ref_of(entry)} ({label_of(entry)}) is being created right now by process {rest.split(':')[0]} "
                "on this host; let that render finish or stop it first"
            )


def adopt(ledger: Ledger, provider_for: Callable[[LedgerEntry], VideoProvider], ref: str, job_id: str) -> Settled:
    """``provider_for`` gives the provider of the clip's endpoint (the ledger names it)."""
    entry = find_clip(ledger, ref)
    name = f"clip {ref_of(entry)} ({label_of(entry)})"
    if entry.state not in ("in_doubt", "creating"):
        held = f" with job {entry.job_id}" if entry.job_id else ""
        raise SettleError(f"{name} is {entry.state}{held}: adopt settles a clip in doubt or a claim left by a stopped run")
    if entry.state == "in_doubt" and entry.error_code not in UNCONFIRMED_CODES and entry.job_id:
        raise SettleError(
            f"{name} is in doubt about its job {entry.job_id} itself ({entry.error_message}); "
            f"`soraflow jobs re-create {ref_of(entry)}` pays for a new one"
        )
    _refuse_live_claim(entry)
    provider = provider_for(entry)
    try:
        job, _ = provider.retrieve(job_id)
    except JobLostError as err:
        raise SettleError(f"endpoint {provider.where} has no job {job_id}: {err.detail}; nothing was changed") from None
    except ProviderError as err:
        raise SettleError(f"endpoint {provider.where} could not show job {job_id}: {err.detail}; nothing was changed") from None
    problem = _why_not(entry, job, job_id, provider.where)
    if problem:
        raise SettleError(f"{problem}; {name} was not changed")
    try:
        ledger.adopt_job(entry.clip_key, job, expect=("in_doubt", "creating"), actor=actor(),
                         detail={"endpoint": entry.endpoint, "doubt": entry.error_message})
    except JobHeldError as err:
        raise SettleError(f"job {job_id} is already clip {err.holder}'s; {name} was not changed") from None
    return Settled(entry, f"{name} adopted job {job_id} ({job.status}); the next render resumes from it", job)


def _why_not(entry: LedgerEntry, job: VideoJob, job_id: str, endpoint: str) -> str | None:
    """Why this job cannot be the clip's (checked before it is trusted), or None."""
    if job.id != job_id:
        return f"endpoint {endpoint} answered for job {job_id} with job {job.id}"
    if job.status not in KNOWN_STATUSES:
        return f"endpoint {endpoint} reports job {job_id} as {job.status!r}"
    if job.status == "failed":
        why = f" ({job.error_code}: {job.error_message})" if job.error_code or job.error_message else ""
        return f"job {job_id} failed at endpoint {endpoint}{why}: it cannot make the clip; `soraflow jobs re-create {ref_of(entry)}` pays for a new one"
    if entry.size and entry.seconds and (wrong := job_mismatch(job, size=entry.size, seconds=entry.seconds)):
        return f"job {job_id} has {wrong}"
    if job.prompt and entry.prompt_sha256 and hashlib.sha256(job.prompt.encode()).hexdigest() != entry.prompt_sha256:
        return f"job {job_id} was asked with another prompt than this clip's"
    return None


def re_create(ledger: Ledger, ref: str) -> Settled:
    entry = find_clip(ledger, ref)
    name = f"clip {ref_of(entry)} ({label_of(entry)})"
    if entry.state != "in_doubt":
        raise SettleError(f"{name} is {entry.state}: re-create settles a clip in doubt ({what_settles(entry)})")
    unconfirmed = entry.error_code in UNCONFIRMED_CODES
    ledger.reopen(entry.clip_key, "re-create", expect=("in_doubt",), actor=actor(), detail={"unconfirmed_create": unconfirmed})
    paid = " (the doubtful create is counted as possibly paid)" if unconfirmed else ""
    return Settled(entry, f"{name} will be created again by the next render{paid}")


def release(ledger: Ledger, ref: str) -> Settled:
    entry = find_clip(ledger, ref)
    name = f"clip {ref_of(entry)} ({label_of(entry)})"
    if entry.state != "creating":
        raise SettleError(f"{name} is {entry.state}: release frees a claim left by a stopped run ({what_settles(entry)})")
    _refuse_live_claim(entry)
    ledger.release(entry.clip_key, actor=actor())
    return Settled(entry, f"{name}: claim released; the next render searches the provider for its create before creating")


def forget(ledger: Ledger, ref: str) -> Settled:
    entry = find_clip(ledger, ref)
    name = f"clip {ref_of(entry)} ({label_of(entry)})"
    if entry.state not in ("failed", "lost"):
        raise SettleError(f"{name} is {entry.state}: forget removes a failed or lost clip ({what_settles(entry)})")
    ledger.reopen(entry.clip_key, "forget", expect=("failed", "lost"), actor=actor(), detail={})
    return Settled(entry, f"{name} forgotten; its jobs stay recorded as paid")


def what_settles(entry: LedgerEntry) -> str:
    """What settles a clip in this state (for refusals and the listing)."""
    ref = ref_of(entry)
    return {
        "in_doubt": f"`soraflow jobs adopt {ref} JOB_ID` or `soraflow jobs re-create {ref}` settles it",
        "claimed": "its create was never sent: a render claims it again once its run is gone",
        "creating": f"a render searches for its create; `soraflow jobs release {ref}` if its run is gone",
        "submitted": f"it has a paid job, {entry.job_id}: a render resumes it",
        "completed": f"it has a paid job, {entry.job_id}: nothing to settle",
        "failed": f"a render creates it again; `soraflow jobs forget {ref}` removes it",
        "lost": f"a render creates it again; `soraflow jobs forget {ref}` removes it",
    }.get(entry.state, "nothing to settle")
