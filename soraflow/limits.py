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
