"""Prepare: storyboard → validated plan, priced; the preflight that refuses a run before it pays."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from prefect import get_run_logger, task

from soraflow import archive, budget, choices
from soraflow.plan import Plan, load_plan
from soraflow.watch import availability
from soraflow.errors import StorageError
from soraflow.models import Route
from soraflow.plan import ClipSpec
from soraflow.preflight import Checks, Cleared, preflight

from . import runtime
from .runtime import clean_errors
from .watch import last_seen


@task(name="preflight", cache_policy=runtime.NO_CACHE, **runtime.RETRY_OPTIONS)
@clean_errors
def run_preflight(
    storyboard_path: str | None, storyboard_inline: dict | None, key_secrets: dict[str, str] | None,
    out_dir: str, storage: str | None, budget_usd: float | None, live: bool = True,
) -> Cleared:
    """The storyboard planned and every check before the first create (soraflow.preflight): one
    refusal listing every problem, or the plan with what this run can pay."""
    s = runtime.settings()
    catalog = runtime.model_catalog().with_key_secrets(key_secrets or {})
    checks = Checks(
        settings=s, catalog=catalog, ledger=runtime.ledger(), open_storage=_open_storage, spend_caps=runtime.spend_caps,
        availability=_available, credentials=runtime.credentials_problem, read_secret=runtime.secret_block_value, live=live,
    )
    # the reviews' choices and retakes (in the ledger) are planned too: a retake is a clip of the film
    record = choices.record_reader(runtime.ledger())
    plan = lambda: load_plan(storyboard_path, storyboard_inline, settings=s, catalog=catalog, record=record)  # noqa: E731
    return preflight(plan, out_dir=out_dir, storage=storage, budget_usd=budget_usd, checks=checks, on_warning=get_run_logger().warning)


def _open_storage(url: str):
    try:
        session = runtime.aws_session()
    except Exception as err:  # noqa: BLE001 - a missing block or package: named, no value shown
        raise StorageError(f"the AWS credentials block {runtime.settings().aws_credentials_block!r} cannot be loaded: {type(err).__name__}") from None
    return archive.open_for(url, runtime.settings(), session)


def _available(route: Route, models: dict[str, date | None]) -> str | None:
    provider = runtime.provider(route, next(iter(models)))
    return availability.ensure_available(models, provider, known=last_seen(route.identity), where=route.shown)[1]


@task(name="plan-again", cache_policy=runtime.NO_CACHE)
@clean_errors
def plan_again(storyboard_path: str | None, storyboard_inline: dict | None, key_secrets: dict[str, str] | None) -> Plan:
    """The plan after a review's decision: the same storyboard with the ledger's choices and retakes."""
    catalog = runtime.model_catalog().with_key_secrets(key_secrets or {})
    return load_plan(
        storyboard_path, storyboard_inline, settings=runtime.settings(), catalog=catalog, record=choices.record_reader(runtime.ledger())
    )


@task(name="check-regeneration-budget", cache_policy=runtime.NO_CACHE)
@clean_errors
def check_regeneration_budget(lost: list[ClipSpec], billed_usd: Decimal, budget_usd: float | None) -> None:
    budget.check_regeneration_budget(lost, billed_usd, budget_usd)


@task(name="check-availability", cache_policy=runtime.NO_CACHE, **runtime.RETRY_OPTIONS)
@clean_errors
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
