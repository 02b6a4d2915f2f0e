"""Prepare: storyboard → validated plan, priced, checked against budget and availability."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from soraflow import availability, planning
from soraflow.plan import Plan

from . import runtime
from .watch import last_seen


@task(name="prepare-plan", cache_policy=runtime.NO_CACHE)
def prepare_plan(storyboard_path: str | None, storyboard_inline: dict | None) -> Plan:
    s = runtime.settings()
    return planning.load_plan(storyboard_path, storyboard_inline, settings=s)


@task(name="check-budget", cache_policy=runtime.NO_CACHE)
def check_budget(plan: Plan, budget_usd: float | None) -> None:
    planning.check_budget(plan, budget_usd)


@task(name="check-availability", cache_policy=runtime.NO_CACHE, **runtime.RETRY_OPTIONS)
def check_availability(models: list[str]) -> None:
    """Refuse retired models before anything is spent (the watch's last report, then the live answer)."""
    s = runtime.settings()
    availability.ensure_available(models, runtime.provider(), known=last_seen(s.endpoint_identity), base_url=s.shown_base_url)
