"""Commands about models and endpoints: ``models`` (what resolves, where, at what price) and
``watch`` (which models each endpoint serves now, what they cost, what changed)."""

from __future__ import annotations

import os
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import SoraflowError
from ..models import ModelCatalog, profile_table_row, route_endpoints
from ..plan import model_catalog
from ..settings import Settings
from ..terminal import printable
from ._app import SIMULATE_HELP, app, settings_from_env, sigterm_unwinds
from ._output import out, say
from ._prefect import prefect_defaults, quiet_prefect_console, secret_reader


_STATUS_STYLE = {"available": "green", "retiring": "yellow", "gone": "bold red"}


@app.command()
def watch(
    pricing: Optional[str] = typer.Option(
        None, "--pricing", help="LiteLLM's price list or a {model: {size: USD/s}} table (https URL or file) over the profiles' prices (env SORAFLOW_PRICING_SOURCE)"
    ),
    simulate: bool = typer.Option(False, "--simulate", help=SIMULATE_HELP),
) -> None:
    """Check which profiled models each endpoint serves and at what price; report what changed since last time."""
    if pricing:
        # Through the settings, not the flow's parameter: the Prefect server keeps a run's
        # parameters, and the URL may carry a token (the flow run happens in this process).
        os.environ["SORAFLOW_PRICING_SOURCE"] = pricing
    settings_from_env(simulate)
    prefect_defaults()
    from soraflow.flows.watch import watch_models  # Prefect starts here

    quiet_prefect_console()
    with sigterm_unwinds():
        state = watch_models(return_state=True)
    if not state.is_completed():
        error = state.result(raise_on_failure=False)
        if isinstance(error, BaseException):
            raise error
        raise SoraflowError(f"watch {state.name.lower()}: {state.message}")
    for report in state.result():
        table = Table(title=Text(f"Models at {printable(report.endpoint)}"), title_justify="left")
        for col in ("model", "status", "shutdown date", "USD per second"):
            table.add_column(col)
        for row in report.rows():
            style = _STATUS_STYLE.get(row["status"], "")
            cells = (row["model"], row["status"], row["shutdown_date"] or "-", row["prices_usd_per_second"])
            table.add_row(*(Text(printable(cell), style=style if i == 1 else "") for i, cell in enumerate(cells)))
        out.print(table)
        for warning in report.warnings:  # an entry of the pricing source that priced nothing
            say(("warning: ", "bold yellow"), f"pricing source {report.pricing_source}: {warning}")
        for change in report.changes:
            say((f"{change.kind}: ", "bold"), change.message, to=out)
        if not report.changes:
            out.print("no changes since the last check")


@app.command()
def models(
    check: bool = typer.Option(False, "--check", help="Also ask each endpoint whether it offers the model now"),
    simulate: bool = typer.Option(False, "--simulate", help=SIMULATE_HELP),
) -> None:
    """Every model profile that resolves: its endpoint, lengths, sizes and prices (and, with --check, availability)."""
    settings = settings_from_env(simulate)
    catalog = model_catalog(settings)
    routing = route_endpoints(catalog, settings.environment, simulate=settings.simulate)
    offered = _check_offers(catalog, routing, settings) if check else {}
    table = Table(title=Text(f"Model profiles ({' + '.join(printable(s) for s in catalog.sources)})"), title_justify="left")
    columns = ["profile", "model", "endpoint", "seconds", "sizes and USD per second", "retires"] + (["offered now"] if check else [])
    for col in columns:
        table.add_column(col, overflow="fold")
    for profile in catalog.profiles.values():
        row = profile_table_row(profile)
        route = routing.routes.get(profile.endpoint)
        where = f"{profile.endpoint} ({'simulated' if route.simulated else route.identity})" if route else f"{profile.endpoint} (not configured)"
        cells = [row["profile"], row["model"], where, row["seconds"], row["sizes"], row["retires"] or "-"]
        if check:
            cells.append(offered.get(profile.name, "-"))
        table.add_row(*(Text(printable(cell)) for cell in cells))
    out.print(table)
    if routing.simulated_because:
        why = "--simulate" if routing.simulated_because == "forced" else "no endpoint has credentials here"
        say("every endpoint is served by the embedded simulator: ", why)
    for name, what in sorted(routing.unconfigured.items()):
        say(f"endpoint {name} is not configured here: set {what}")


def _check_offers(catalog: ModelCatalog, routing, settings: Settings) -> dict[str, str]:
    """Ask each routed endpoint once; an endpoint that fails is said, and the others still answer."""
    from ..providers import build_provider, connect
    from ..simulator import simulated_models
    from ..watch.availability import offered_now

    offered: dict[str, str] = {}
    read_secret = secret_reader(settings)
    for name, route in sorted(routing.routes.items()):
        profiles = catalog.profiles_at(name)
        if not profiles:
            continue
        try:
            # The same resolution as a render's and the watch's: the same credential, the same refusals.
            connection = connect(
                route, settings.environment, read_secret=read_secret, simulated_models=simulated_models(catalog),
                simulator_latency=settings.simulator_latency, simulator_cache_dir=settings.state_dir / "simulator-renders",
                profiles=profiles,
            )
            offered.update(offered_now(profiles, build_provider(connection, settings)))
        except SoraflowError as err:
            offered.update({p.name: f"error: {err}" for p in profiles})
    return offered
