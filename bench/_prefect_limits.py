"""The design soraflow's limits replaced, reproduced for benchmarks: Prefect's global concurrency
limits, one slot per clip in flight and one rate-limit token per create, taken from the Prefect
server (as tasks/generate.py did before the slots moved beside the ledger).

``PrefectLimits`` has the interface the tasks use (``soraflow.ledger.Slots``), so a benchmark can
put it in place of ``soraflow.tasks.runtime.slots`` and run the real render flow on it.
"""

from __future__ import annotations

from contextlib import contextmanager

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.sync import concurrency, rate_limit
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from soraflow.ledger import LimitState

RATE = "bench-requests"


def _name(limit_name: str) -> str:
    return "bench-" + limit_name.replace("/", "-").replace(":", "-")


class PrefectLimits:
    where = "the Prefect server"

    def __init__(self, lease_seconds: float = 60.0):
        self.lease_seconds = lease_seconds
        self._per_minute = 60

    def configure(self, limits) -> list[str]:
        wanted = {_name(l.name): (l.capacity, 0.0) for l in limits}
        self._per_minute = min((l.per_minute for l in limits if l.per_minute), default=60)
        wanted[RATE] = (self._per_minute, self._per_minute / 60.0)
        with get_client(sync_client=True) as client:
            for name, (size, decay) in wanted.items():
                try:
                    existing = client.read_global_concurrency_limit_by_name(name)
                except ObjectNotFound:
                    try:
                        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=size, slot_decay_per_second=decay))
                    except ObjectAlreadyExists:
                        pass
                    continue
                if existing.limit != size:
                    client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=size, slot_decay_per_second=decay))
        return []

    def state(self, names=None) -> list[LimitState]:
        return []

    @contextmanager
    def hold(self, limits, **_):
        with concurrency([_name(l.name) for l in limits], occupy=1, strict=True, lease_duration=self.lease_seconds,
                         raise_on_lease_renewal_failure=False):  # fmt: skip
            yield

    def take_token(self, limits, on_wait=None) -> None:
        rate_limit(RATE, strict=True)
