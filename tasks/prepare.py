"""Prepare: storyboard → validated plan, priced, checked against budget and availability."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from prefect import get_run_logger, task

from soraflow import availability, planning
from soraflow.models import Route
from soraflow.plan import ClipSpec, Plan

from . import runtime
from .watch import last_seen


@task(name="prepare-plan", cache_policy=runtime.NO_CACHE)
def prepare_plan(storyboard_path: str | None, storyboard_inline: dict | None, key_secrets: dict[str, str] | None = None) -> Plan:
    """The storyboard checked against the run's profiles (file or Variable), routed and priced.
    ``key_secrets``: endpoints whose keys are in the named Prefect Secret blocks (the run form's)."""
    s = runtime.settings()
    catalog = runtime.model_catalog().with_key_secrets(key_secrets or {})
    return planning.load_plan(storyboard_path, storyboard_inline, settings=s, catalog=catalog)


@task(name="check-budget", cache_policy=runtime.NO_CACHE)
def check_budget(plan: Plan, budget_usd: float | None) -> planning.Payable:
    """What this run can pay, against the budget (the ledger says which clips are done)."""
    return planning.check_budget(plan, budget_usd, runtime.ledger())


@task(name="check-regeneration-budget", cache_policy=runtime.NO_CACHE)
def check_regeneration_budget(lost: list[ClipSpec], billed_usd: Decimal, budget_usd: float | None) -> None:
    planning.check_regeneration_budget(lost, billed_usd, budget_usd)


@task(name="check-availability", cache_policy=runtime.NO_CACHE, **runtime.RETRY_OPTIONS)
def check_availability(clips: list[ClipSpec]) -> dict[str, dict[str, str]]:
    """Refuse retired models before anything is spent, endpoint by endpoint (the watch's last
    report, then the live answer, or the profiles' dates where an endpoint lists no models)."""
    log = get_run_logger()
    wanted: dict[Route, dict[str, date | None]] = {}
    for c in clips:
        wanted.setdefault(c.route, {})[c.model] = c.retires
    statuses = {}
    for route, models in wanted.items():
        provider = runtime.provider(route, next(iter(models)))
        statuses[route.name], warning = availability.ensure_available(
            models, provider, known=last_seen(route.identity), where=route.shown
        )
        if warning:
            log.warning("%s", warning)
    return statuses
