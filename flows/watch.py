"""watch-models: is every profiled model still served, and at what price? Scheduled every 6 hours.

Every endpoint this worker can reach (the Videos API shape for Sora and gateways, Vertex AI
for Veo, fal's model metadata and pricing API) is checked for the models of its profiles, in
one report. A retired
model or a changed price becomes a Prefect event (automations react to it), the state is kept
in a Variable (per endpoint identity) that ``render`` reads before anything is spent, the prices
in the ledger (``soraflow estimate --prices watched`` reads them), and the table of models lands
in a markdown artifact.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from soraflow import watch
from soraflow.models import route_endpoints
from soraflow.redaction import redact_url
from soraflow.watch import pricing
from soraflow.watch.pricing import PricingSourceError
from soraflow.providers import PROVIDERS
from soraflow.settings import Settings
from soraflow.tasks import runtime
from soraflow.tasks.runtime import clean_errors
from soraflow.tasks.watch import (
    emit_change_events,
    list_offered_models,
    load_prices,
    publish_watch_report,
    read_endpoint_prices,
    read_last_seen,
    record_watched_prices,
    remember_models,
)
from soraflow.watch import WatchReport, pricing


@flow(name="watch-models", log_prints=True)
@clean_errors
def watch_models(pricing_source: str = "") -> list[WatchReport]:
    """Compare each endpoint's models and prices with the last check; one report per endpoint.

    Args:
        pricing_source: Today's prices, over the profiles' own: LiteLLM's price list
            (model_prices_and_context_window.json, mapped by each profile's price_source_key) or a
            table {model: {size: USD per second}}, as an https URL or a file on the worker, with no
            credential in it. Empty: SORAFLOW_PRICING_SOURCE, else the URL in the Prefect Secret
            block SORAFLOW_PRICING_SOURCE_SECRET names, else the profiles' prices.
    """
    log = get_run_logger()
    settings = Settings()
    if pricing.carries_credentials(pricing_source):
        # The Prefect server keeps a flow run's parameters: refuse, and say where the URL goes.
        raise PricingSourceError(
            f"pricing source {redact_url(pricing_source)}: its URL carries a credential, which must not be a flow run "
            "parameter; set SORAFLOW_PRICING_SOURCE on the worker, or put the URL in a Prefect Secret block and name it "
            "in SORAFLOW_PRICING_SOURCE_SECRET"
        )
    price_list = load_prices(pricing_source)
    catalog = runtime.model_catalog()
    routing = route_endpoints(catalog, settings.environment, simulate=settings.simulate)

    # Endpoints of one identity (all simulated ones of a dialect) are one check.
    by_identity: dict[str, tuple] = {}
    for name, route in sorted(routing.routes.items()):
        profiles = catalog.profiles_at(name)
        if not profiles:
            continue
        if route.dialect not in PROVIDERS:
            log.warning("endpoint %s speaks %s, which this soraflow has no provider for: not checked", name, route.dialect)
            continue
        first, known = by_identity.get(route.identity, (route, []))
        by_identity[route.identity] = (first, known + profiles)

    reports = []
    for identity, (route, profiles) in by_identity.items():
        seen = read_last_seen(identity)
        found = price_list.prices_for(profiles) if price_list else None
        # An endpoint with a pricing API of its own (fal's) prices its models over the source's.
        own = read_endpoint_prices(route, sorted({p.model for p in profiles}))
        found = pricing.merged(found, own.prices_for(profiles) if own else None)
        sources = [s.source for s in (price_list, own) if s is not None]
        overrides = found.table if found else None
        offered = list_offered_models(route, watch.watched_models(profiles, seen, overrides))
        report = watch.compare(offered, seen, endpoint=identity, profiles=profiles, overrides=overrides,
                               pricing_source=" and ".join(sources) or None,
                               warnings=found.warnings if found else None)
        for warning in report.warnings:
            log.warning("pricing source %s: %s", report.pricing_source, warning)
        emit_change_events(report)
        remember_models(report)
        record_watched_prices(report)
        for model in report.models:
            log.info("%s at %s: %s%s", model.model, identity, model.status,
                     f" (shutdown {model.shutdown_date})" if model.shutdown_date else "")
        for change in report.changes:
            log.warning("%s", change.message)
        reports.append(report)
    publish_watch_report(reports)
    return reports


__all__ = ["watch_models"]
