"""The model watch's Prefect side: the last seen state in a Variable, events, the artifact."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.variables import Variable

from soraflow import watch
from soraflow.watch import availability, pricing
from soraflow.models import Route
from soraflow.watch.pricing import PricingSource
from soraflow.providers import ModelInfo, ModelListUnavailable
from soraflow.watch import SeenModels, WatchReport

from . import outbound, runtime
from .runtime import clean_errors

EVENT_BY_CHANGE = {
    "unavailable": "soraflow.model.unavailable",
    "retiring": "soraflow.model.retiring",
    "available": "soraflow.model.available",
    "price_changed": "soraflow.price.changed",
}
REPORT_ARTIFACT_KEY = "soraflow-model-watch"


def read_watch_state() -> dict:
    """The Variable's value: {endpoint identity: {model: {"status", "shutdown_date", "prices"}}}."""
    value = Variable.get(watch.WATCH_VARIABLE_NAME, default=None)
    return value if isinstance(value, dict) else {}


def last_seen(endpoint: str) -> SeenModels:
    """What the last watch saw at ``endpoint`` ({} before the first watch)."""
    return watch.seen_for(read_watch_state(), endpoint)


@task(name="list-models", task_run_name="list models at {route.name}", cache_policy=runtime.NO_CACHE, **runtime.RETRY_OPTIONS)
@clean_errors
def list_offered_models(route: Route, models: list[str]) -> list[ModelInfo] | None:
    """What the endpoint says of ``models``, or None (said in one line) where it cannot say."""
    try:
        return list(availability.offered_models(runtime.provider(route), models).values())
    except ModelListUnavailable as err:
        get_run_logger().warning("%s: statuses come from the profiles' retirement dates", err.provider_message)
        return None


@task(name="read-endpoint-prices", task_run_name="read prices at {route.name}", cache_policy=runtime.NO_CACHE, **runtime.RETRY_OPTIONS)
@clean_errors
def read_endpoint_prices(route: Route, models: list[str]) -> pricing.EndpointPrices | None:
    """The endpoint's own pricing API (fal's), where its provider has one; None elsewhere."""
    provider = runtime.provider(route)
    prices = getattr(provider, "prices", None)  # a provider with a pricing API offers prices(models)
    if prices is None:
        return None
    return pricing.EndpointPrices(source=f"the pricing API of {provider.where}", prices=prices(models))


@task(name="load-pricing-source", cache_policy=runtime.NO_CACHE, retries=2, retry_delay_seconds=5)
@clean_errors
def load_prices(source: str = "") -> PricingSource | None:
    """LiteLLM's price list or a table of prices, from a URL or a file on the worker: ``source``
    (a flow parameter, credential-free), else SORAFLOW_PRICING_SOURCE, else the Prefect Secret
    block SORAFLOW_PRICING_SOURCE_SECRET names; None when none is set. A URL with a token is read
    here, from the settings or the block, and never passed as a parameter."""
    s = runtime.settings()
    if not source:
        source = s.pricing_source or (str(runtime.secret_block_value(s.pricing_source_secret)) if s.pricing_source_secret else "")
    return pricing.load_pricing_source(source) if source else None


@task(name="read-last-seen", cache_policy=runtime.NO_CACHE)
@clean_errors
def read_last_seen(endpoint: str) -> SeenModels:
    return last_seen(endpoint)


@task(name="remember-models", cache_policy=runtime.NO_CACHE)
@clean_errors
def remember_models(report: WatchReport) -> None:
    Variable.set(watch.WATCH_VARIABLE_NAME, watch.remember(read_watch_state(), report), overwrite=True)


@task(name="record-watched-prices", cache_policy=runtime.NO_CACHE)
@clean_errors
def record_watched_prices(report: WatchReport) -> None:
    """The prices this watch saw at the endpoint, in the ledger: ``soraflow estimate --prices
    watched`` reads them there (no Prefect server needed), with their source and since when."""
    runtime.watched_prices().record(
        report.endpoint,
        {m.model: m.prices for m in report.models},
        source=report.pricing_source or "the model profiles",
    )


@task(name="emit-model-events", cache_policy=runtime.NO_CACHE)
@clean_errors
def emit_change_events(report: WatchReport) -> list[str]:
    """One Prefect event per change; automations react to these (deployments/automations)."""
    emitted = []
    for change in report.changes:
        name = EVENT_BY_CHANGE[change.kind]
        outbound.event(
            event=name,
            resource={
                "prefect.resource.id": f"soraflow.model.{change.model}",
                "prefect.resource.name": change.model,
                "soraflow.endpoint": report.endpoint,
                "soraflow.model.status": change.status,
                # price changes come one per size: automations can match a size
                **({"soraflow.size": change.size} if change.size else {}),
            },
            payload={"endpoint": report.endpoint, **change.model_dump(mode="json")},
        )
        emitted.append(name)
    return emitted


@task(name="publish-model-watch", cache_policy=runtime.NO_CACHE)
@clean_errors
def publish_watch_report(reports: list[WatchReport]) -> None:
    """One artifact per watch, every endpoint in it (one per endpoint would keep only the last
    under the artifact's key)."""
    changes = sum(len(r.changes) for r in reports)
    outbound.markdown_artifact(
        key=REPORT_ARTIFACT_KEY,
        markdown=watch.watch_markdown(reports),
        description=f"Models and prices at {', '.join(r.endpoint for r in reports) or 'no endpoint'}: {changes} change(s)",
    )
