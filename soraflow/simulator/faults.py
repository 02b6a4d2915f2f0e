"""Fault injection: which requests fail, and how, drawn from one seeded random stream.

A fault spec is a string such as ``"429=0.1,500=0.05,reset=0.05,stall=0.02,moderation=0.1"``.
Every /v1 request draws exactly one number in arrival order; the request-level kinds occupy
consecutive slices of [0, 1) in the fixed order of ``REQUEST_KINDS``, so each kind happens with
its own probability and the same seed with the same request sequence gives the same faults.
Every accepted create draws one more number for ``moderation`` (a per-job fault).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Literal, Sequence

FaultKind = Literal["429", "500", "502", "503", "reset", "stall", "truncate", "moderation"]

# Order matters for repeatability: it fixes which slice of [0, 1) each kind owns.
REQUEST_KINDS: tuple[str, ...] = ("429", "500", "502", "503", "reset", "stall", "truncate")
JOB_KINDS: tuple[str, ...] = ("moderation",)
ALL_KINDS: tuple[str, ...] = REQUEST_KINDS + JOB_KINDS


class FaultSpecError(ValueError):
    """A fault spec entry that cannot be understood; names the entry and what is allowed."""


def parse_probabilities(spec: str | None, kinds: Sequence[str], what: str) -> dict[str, float]:
    """``"KIND=P,KIND=P"`` → {kind: probability}, each kind one of ``kinds`` at most once, each
    probability in [0, 1]; a ``FaultSpecError`` names the ``what`` entry and what is allowed."""
    probabilities: dict[str, float] = {}
    allowed = ", ".join(kinds)
    for raw in (spec or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        kind, sep, value = (part.strip() for part in entry.partition("="))
        if not sep:
            raise FaultSpecError(f"{what} entry {entry!r} is not KIND=PROBABILITY; kinds: {allowed}")
        if kind not in kinds:
            raise FaultSpecError(f"{what} entry {entry!r}: unknown kind {kind!r}; kinds: {allowed}")
        if kind in probabilities:
            raise FaultSpecError(f"{what} entry {entry!r}: kind {kind!r} is given twice")
        try:
            p = float(value)
        except ValueError:
            raise FaultSpecError(f"{what} entry {entry!r}: {value!r} is not a probability between 0 and 1") from None
        if not 0.0 <= p <= 1.0:
            raise FaultSpecError(f"{what} entry {entry!r}: probability must be between 0 and 1")
        probabilities[kind] = p
    return probabilities


@dataclass(frozen=True)
class FaultPlan:
    """Parsed probabilities per fault kind (kinds not named have probability 0)."""

    probabilities: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str | None) -> "FaultPlan":
        probabilities = parse_probabilities(spec, ALL_KINDS, "fault")
        request_total = sum(p for k, p in probabilities.items() if k in REQUEST_KINDS)
        if request_total > 1.0 + 1e-9:
            raise FaultSpecError(
                f"fault spec {spec!r}: request-level probabilities ({', '.join(REQUEST_KINDS)}) add up to "
                f"{request_total:g}; at most one fault hits a request, so they must add up to 1 or less"
            )
        return cls(probabilities)

    def __str__(self) -> str:
        return ",".join(f"{k}={self.probabilities[k]:g}" for k in ALL_KINDS if self.probabilities.get(k))

    def request_fault(self, draw: float) -> str | None:
        """The request-level kind that owns ``draw`` in [0, 1), if any."""
        edge = 0.0
        for kind in REQUEST_KINDS:
            edge += self.probabilities.get(kind, 0.0)
            if draw < edge:
                return kind
        return None


class FaultInjector:
    """Decides faults for requests and jobs; thread-safe, replaceable at run time."""

    def __init__(self, spec: str = "", seed: int | None = None):
        self._lock = threading.Lock()
        self.configure(spec, seed)

    def configure(self, spec: str, seed: int | None) -> None:
        plan = FaultPlan.parse(spec)  # parse first: a bad spec leaves the old one in force
        with self._lock:
            self.plan = plan
            self.seed = seed
            self._rng = random.Random(seed)

    def reseed(self) -> None:
        with self._lock:
            self._rng = random.Random(self.seed)

    def for_request(self, *, is_content: bool) -> str | None:
        """One draw per request; ``truncate`` only has an effect on content downloads."""
        with self._lock:
            kind = self.plan.request_fault(self._rng.random())
        if kind == "truncate" and not is_content:
            return None
        return kind

    def for_job(self) -> bool:
        """One draw per accepted create: does moderation block this job?"""
        with self._lock:
            return self._rng.random() < self.plan.probabilities.get("moderation", 0.0)
