"""The run's limits, sized from the settings and the profiles, applied in the ledger and shown.

A changed figure (``SORAFLOW_MAX_CONCURRENT_SUBMISSIONS``, a profile's ``concurrency``...) is
applied when the next run starts, and the run says so; the limits and who holds their slots are
published as a table artifact, so the UI shows them.
"""

from __future__ import annotations

from prefect import get_run_logger, task

from soraflow.limits import plan_limits
from soraflow.plan import Plan

from . import outbound, runtime
from .runtime import clean_errors


@task(name="apply-limits", cache_policy=runtime.NO_CACHE)
@clean_errors
def apply_limits(plan: Plan) -> dict[str, int]:
    log = get_run_logger()
    limits = plan_limits(plan, runtime.model_catalog(), runtime.settings())
    slots = runtime.slots()
    for change in slots.configure(limits):
        log.warning(change)
    states = slots.state([limit.name for limit in limits])
    outbound.table_artifact(
        key="soraflow-limits",
        table=[
            {
                "limit": s.name,
                "in flight": f"{len(s.held)} of {s.capacity}",
                "creates per minute": s.per_minute or "",
                "from": s.source,
                "held by": "; ".join(h.holder for h in s.held),
            }
            for s in states
        ],
        description=f"Limits of this run, in the ledger at {slots.where}",
    )
    return {s.name: s.capacity for s in states}
