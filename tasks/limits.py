"""Global concurrency and rate limits: created when missing, because Prefect silently skips
a limit that does not exist on the server (and ``strict=True`` would then fail every run)."""

from __future__ import annotations

from prefect import get_client, task
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from soraflow.settings import Settings

from . import runtime


def ensure_limits_sync(settings: Settings, *, update: bool = False, endpoints: dict[str, int] | None = None) -> dict[str, int]:
    """Create soraflow's limits if missing (``update`` also resets their sizes to the settings).

    ``endpoints``: clips in flight per endpoint, for endpoints whose entry sets ``concurrency``;
    each gets a limit of its own besides the global one (a clip holds a slot of both), sized by
    the entry whenever it changes."""
    wanted = {
        settings.concurrency_limit_name: (settings.max_concurrent_submissions, None, update),
        # A rate limit is a limit whose slots decay: N requests per minute.
        settings.rate_limit_name: (settings.requests_per_minute, settings.requests_per_minute / 60.0, update),
        **{settings.endpoint_limit_name(name): (size, None, True) for name, size in (endpoints or {}).items()},
    }
    with get_client(sync_client=True) as client:
        for name, (limit, decay, resize) in wanted.items():
            try:
                existing = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=name, limit=limit, slot_decay_per_second=decay or 0.0)
                    )
                except ObjectAlreadyExists:  # created meanwhile by a run starting at the same moment
                    pass
                continue
            if resize and existing.limit != limit:
                from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, slot_decay_per_second=decay or 0.0))
    return {name: limit for name, (limit, _, _) in wanted.items()}


@task(name="ensure-limits", cache_policy=runtime.NO_CACHE)
def ensure_limits(endpoints: dict[str, int] | None = None) -> dict[str, int]:
    return ensure_limits_sync(runtime.settings(), endpoints=endpoints)
