"""Create what soraflow's deployments expect on a Prefect server. Safe to run any number of times.

- the process work pool the deployments run on;
- the limit ``all`` in the ledger (clips in flight and creates per minute over every worker
  sharing it), sized from the settings (``SORAFLOW_MAX_CONCURRENT_SUBMISSIONS``,
  ``SORAFLOW_REQUESTS_PER_MINUTE``); each render also applies it, and its models' limits;
- the model watch's Variable, so ``render`` and the UI find it before the first watch.

No block is created: the API key and S3 credentials come from the worker's environment.

    python -m soraflow.deployments.bootstrap
"""

from __future__ import annotations

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.variables import Variable

from soraflow.ledger import Ledger, Slots
from soraflow.limits import settings_limit
from soraflow.settings import Settings
from soraflow.watch import WATCH_VARIABLE_NAME

WORK_POOL_NAME = "soraflow-pool"


def ensure_work_pool(name: str = WORK_POOL_NAME) -> str:
    """The process work pool, created with the process worker's default job template."""
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            try:
                pool = client.create_work_pool(
                    WorkPoolCreate(
                        name=name,
                        type=ProcessWorker.type,
                        description="soraflow: renders and model watches (process worker)",
                        base_job_template=ProcessWorker.get_default_base_job_template(),
                    )
                )
            except ObjectAlreadyExists:  # created concurrently by another bootstrap
                pool = client.read_work_pool(name)
    if pool.type != ProcessWorker.type:
        raise RuntimeError(f"work pool {name!r} exists with type {pool.type!r}; soraflow's deployments expect 'process'")
    return pool.name


def ensure_watch_variable() -> None:
    if Variable.get(WATCH_VARIABLE_NAME, default=None) is not None:
        return
    try:
        Variable.set(WATCH_VARIABLE_NAME, {}, tags=["soraflow"])
    except (ValueError, ObjectAlreadyExists):  # set meanwhile by a watch or another bootstrap
        pass


def ensure_limit(settings: Settings) -> tuple[dict[str, int], list[str]]:
    """The ledger's limit ``all`` sized to the settings: its size, and what changed."""
    limit = settings_limit(settings)
    ledger = Ledger(settings.resolved_ledger_url)
    try:
        changes = Slots(ledger, lease_seconds=settings.slot_lease_seconds).configure([limit])
    finally:
        ledger.close()
    return {limit.name: limit.capacity}, changes


def bootstrap(settings: Settings | None = None, *, work_pool: str = WORK_POOL_NAME) -> dict:
    """Create the work pool and Variable where missing; size the ledger's limit to the settings."""
    settings = settings or Settings()
    pool = ensure_work_pool(work_pool)
    limits, changes = ensure_limit(settings)
    ensure_watch_variable()
    return {"work_pool": pool, "limits": limits, "changes": changes, "variables": [WATCH_VARIABLE_NAME]}


if __name__ == "__main__":  # pragma: no cover - `python -m soraflow.deployments.bootstrap`
    print(bootstrap())
