"""Which limits a clip holds, and how big each is.

Every clip in flight holds one slot of each of its limits, and each create takes one token of
their rates (the slots and tokens live in the ledger: ``soraflow.ledger.Slots``):

- ``all``: every clip of every render sharing the ledger; ``SORAFLOW_MAX_CONCURRENT_SUBMISSIONS``
  in flight and ``SORAFLOW_REQUESTS_PER_MINUTE`` creates per minute;
- ``model:ENDPOINT/MODEL``: one model at one endpoint, as its profile says (``concurrency``,
  ``requests_per_minute``; a profiles file overrides them);
- ``endpoint:ENDPOINT``: every model at an endpoint whose entry sets ``concurrency``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable

from .ledger import Limit
from .models import ModelCatalog
from .plan import ClipSpec, Plan
from .settings import Settings

ALL = "all"


def clip_limits(spec: ClipSpec, catalog: ModelCatalog, settings: Settings) -> tuple[Limit, ...]:
    profile = catalog.profile(spec.profile)
    limits = [
        settings_limit(settings),
        Limit(f"model:{spec.endpoint}/{spec.model}", profile.concurrency, profile.requests_per_minute, f"profile {profile.name}"),
    ]
    if spec.route.endpoint.concurrency:
        limits.append(Limit(f"endpoint:{spec.endpoint}", spec.route.endpoint.concurrency, None, f"endpoint {spec.endpoint}"))
    return tuple(limits)


def plan_limits(plan: Plan, catalog: ModelCatalog, settings: Settings) -> tuple[Limit, ...]:
    """The limits of every clip of the plan, each once (``all`` first)."""
    seen: dict[str, Limit] = {}
    for spec in plan.clips:
        for limit in clip_limits(spec, catalog, settings):
            seen.setdefault(limit.name, limit)
    return tuple(sorted(seen.values(), key=lambda l: (l.name != ALL, l.name)))


def settings_limit(settings: Settings) -> Limit:
    """The limit every clip holds, as the settings size it."""
    return Limit(
        ALL, settings.max_concurrent_submissions, settings.requests_per_minute,
        "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS and SORAFLOW_REQUESTS_PER_MINUTE",
    )  # fmt: skip


# --- how long a plan takes under its limits ------------------------------------------------------

# What a clip holds its slots for beyond its render: the create, the poll that sees it done (the
# poll clock looks just past the expected end), the ledger's writes. Measured on the simulator
# (bench/bench_scale.py: about 0.5 s a clip on 2 shared cores).
CLIP_OVERHEAD_SECONDS = 0.5
# After a clip is done: its download, validation and store, before a clip made from it can start.
FETCH_SECONDS = 1.0
# Assembling the film: stitching (stream copy), the contact sheet and the manifest, a fixed part
# and a part per clip (bench/bench_scale.py).
ASSEMBLY_SECONDS = 5.0
ASSEMBLY_SECONDS_PER_CLIP = 0.05


@dataclass(frozen=True)
class WallTime:
    """How long a render of these clips is expected to take, and on what assumptions."""

    seconds: float
    clips: int
    limits: tuple[Limit, ...]  # every limit the clips hold
    in_flight: int  # the most clips the limits let run at once
    render_seconds: float  # the longest clip's render (on the simulator: its latency)
    simulated: bool
    overhead_seconds: float
    assembly_seconds: float

    def describe(self) -> str:
        if not self.clips:
            return "expected wall time ~0 s: every clip is made already"
        per_minute = min((l.per_minute for l in self.limits if l.per_minute), default=None)
        each = "the simulator's latency, SORAFLOW_SIMULATOR_LATENCY" if self.simulated else "its profile's render_seconds_per_second"
        shown = "; ".join(f"{l.name!r} {l.capacity}" + (f", {l.per_minute}/min" if l.per_minute else "") for l in self.limits)
        return (
            f"expected wall time ~{_duration(self.seconds)}: {self.clips} clip(s), at most {self.in_flight} at a time"
            + (f" and {per_minute} creates a minute" if per_minute else "")
            + f" (limits {shown}); each clip ~{self.render_seconds:g} s ({each}) + ~{self.overhead_seconds:g} s of polling and"
            f" orchestration; a part made from another waits for it; ~{self.assembly_seconds:.0f} s to assemble the film;"
            " start-up not counted"
        )


def wall_time(
    plan: Plan, catalog: ModelCatalog, settings: Settings, clips: Iterable[ClipSpec] | None = None,
    *, overhead_seconds: float = CLIP_OVERHEAD_SECONDS,
) -> WallTime:  # fmt: skip
    """The render's expected wall time: ``clips`` (default: all; a rerun makes only those the
    ledger lacks) scheduled under their limits as the flow runs them.

    Each clip holds a slot of each of its limits from before its create until its job is done
    (its render time plus ``overhead_seconds``), takes one token of each rated limit per create
    (token buckets that start full: a ledger no other render is using), and a clip made from
    another starts once that one is fetched. Limits come from the settings and profiles, as the
    flow applies them. Then the film is assembled. An event simulation: linear in the clips.
    """
    todo = list(plan.clips if clips is None else clips)
    keys = {c.clip_key for c in todo}
    limits = {c.clip_key: clip_limits(c, catalog, settings) for c in todo}
    every = {l.name: l for ls in limits.values() for l in ls}
    held = dict.fromkeys(every, 0)
    rate = {name: l.per_minute / 60.0 for name, l in every.items() if l.per_minute}
    tokens = {name: float(l.per_minute) for name, l in every.items() if l.per_minute}
    followers: dict[str, list[ClipSpec]] = {}
    groups: dict[tuple[str, ...], deque[ClipSpec]] = {}  # ready clips by the limits they hold

    def ready(c: ClipSpec) -> None:
        groups.setdefault(tuple(l.name for l in limits[c.clip_key]), deque()).append(c)

    for c in todo:
        if c.follows is not None and c.follows.clip_key in keys:
            followers.setdefault(c.follows.clip_key, []).append(c)
        else:
            ready(c)
    events: list[tuple[float, int, str, ClipSpec]] = []  # (time, order, "done" | "ready", clip)
    waiting: deque[ClipSpec] = deque()  # holding slots, waiting for a token of each rated limit
    now = refilled = last = 0.0
    order = 0
    while groups or waiting or events:
        for names, queue in list(groups.items()):  # admit every ready clip whose limits have room
            while queue and all(held[n] < every[n].capacity for n in names):
                for n in names:
                    held[n] += 1
                waiting.append(queue.popleft())
            if not queue:
                del groups[names]
        for n in tokens:  # the buckets refill with time
            tokens[n] = min(float(every[n].per_minute), tokens[n] + (now - refilled) * rate[n])
        refilled = now
        next_token = None
        while waiting:
            c = waiting[0]
            rated = [l.name for l in limits[c.clip_key] if l.per_minute]
            short = [n for n in rated if tokens[n] < 1]
            if short:
                next_token = now + max((1 - tokens[n]) / rate[n] for n in short)
                break
            for n in rated:
                tokens[n] -= 1
            waiting.popleft()
            order += 1
            heapq.heappush(events, (now + c.expected_render_seconds + overhead_seconds, order, "done", c))
        if not events and next_token is None:
            if groups:  # a limit of 0 slots: nothing can ever start
                return _wall(math.inf, todo, every, settings, overhead_seconds, plan)
            break
        now = min([e[0] for e in events[:1]] + ([next_token] if next_token is not None else []))
        while events and events[0][0] <= now:
            at, _, kind, c = heapq.heappop(events)
            if kind == "ready":
                ready(c)
                continue
            for l in limits[c.clip_key]:
                held[l.name] -= 1
            last = max(last, at + FETCH_SECONDS)
            for f in followers.get(c.clip_key, ()):
                order += 1
                heapq.heappush(events, (at + FETCH_SECONDS, order, "ready", f))
    return _wall(last, todo, every, settings, overhead_seconds, plan)


def _wall(render: float, todo: list[ClipSpec], every: dict[str, Limit], settings: Settings, overhead: float, plan: Plan) -> WallTime:
    assembly = ASSEMBLY_SECONDS + ASSEMBLY_SECONDS_PER_CLIP * len(plan.film_clips) if todo else 0.0
    return WallTime(
        seconds=render + assembly,
        clips=len(todo),
        limits=tuple(sorted(every.values(), key=lambda l: (l.name != ALL, l.name))),
        in_flight=min((l.capacity for l in every.values()), default=0),
        render_seconds=max((c.expected_render_seconds for c in todo), default=0.0),
        simulated=any(c.route.simulated for c in todo),
        overhead_seconds=overhead,
        assembly_seconds=assembly,
    )


def _duration(seconds: float) -> str:
    if math.isinf(seconds):
        return "forever (a limit has 0 slots)"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"
