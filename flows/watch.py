"""watch-models: is every Sora model still served, and at what price? Scheduled every 6 hours.

A retired model or a changed price becomes a Prefect event (automations react to it), the
state is kept in a Variable that ``render`` reads before anything is spent, and the table of
models lands in a markdown artifact.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from soraflow import watch
from soraflow.settings import Settings
from soraflow.watch import WatchReport
from soraflow.tasks.watch import (
    emit_change_events,
    list_offered_models,
    load_prices,
    publish_watch_report,
    read_last_seen,
    remember_models,
)


@flow(name="watch-models", log_prints=True)
def watch_models(pricing_source: str | None = None) -> WatchReport:
    """Compare the endpoint's models and prices with the last check.

    ``pricing_source``: a JSON/YAML file or https URL of ``{model: {size: usd_per_second}}``
    overriding the catalog's prices (default: ``SORAFLOW_PRICING_SOURCE``, else the catalog).
    """
    log = get_run_logger()
    settings = Settings()
    source = pricing_source or settings.pricing_source
    endpoint = settings.endpoint_identity

    offered = list_offered_models()
    overrides = load_prices(source) if source else None
    report = watch.compare(
        offered, read_last_seen(endpoint), endpoint=endpoint, overrides=overrides, pricing_source=source
    )
    emit_change_events(report)
    remember_models(report)
    publish_watch_report(report)
    for model in report.models:
        log.info("%s: %s%s", model.model, model.status, f" (shutdown {model.shutdown_date})" if model.shutdown_date else "")
    for change in report.changes:
        log.warning("%s", change.message)
    return report


__all__ = ["watch_models"]
