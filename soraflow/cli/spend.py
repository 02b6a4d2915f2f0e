"""The ledger's money and limits: ``spend`` (paid, reserved, released; the caps) and ``limits``
(clips in flight and creates per minute, and who holds their slots)."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from ..ledger import Ledger
from ..settings import Settings
from ..terminal import printable
from ._app import app
from ._output import out, say


@app.command()
def spend(
    days: int = typer.Option(30, "--days", min=1, max=3660, help="Show spend of the last DAYS days (UTC)"),
    by: str = typer.Option("day,storyboard,model,endpoint", "--by", help="Group by any of: day, storyboard, model, endpoint"),
) -> None:
    """What was spent (paid), is reserved (in flight or in doubt) and was released, from the ledger; and the caps."""
    from datetime import datetime, timedelta, timezone

    from ..ledger import Spend, cap_rows, summarize

    columns = {"day": "day", "storyboard": "storyboard", "model": "profile", "endpoint": "endpoint"}
    wanted = [c.strip() for c in by.split(",") if c.strip()]
    if not wanted or (unknown := [c for c in wanted if c not in columns]):
        raise typer.BadParameter(f"{printable(repr((unknown or [by])[0]))} is not allowed: give any of day, storyboard, model, endpoint", param_hint="--by")
    settings = Settings()
    spend_rows = Spend(Ledger.from_settings(settings))
    since = (datetime.now(timezone.utc) - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    rows = summarize(spend_rows.rows(since_day=since), by=tuple(columns[c] for c in wanted))
    table = Table(title=Text(f"Spend since {since} (UTC)"), title_justify="left")
    for col in [*wanted, "clips", "paid USD", "reserved USD", "released USD"]:
        table.add_column(col, overflow="fold")
    for row in rows:
        cells = [row[columns[c]] for c in wanted] + [row["clips"], row["paid_usd"], row["reserved_usd"], row["released_usd"]]
        table.add_row(*(Text(printable(cell)) for cell in cells))
    out.print(table)
    caps = settings.spend_caps
    if not caps:
        say("no spend caps set here (SORAFLOW_SPEND_CAP_DAY_USD, SORAFLOW_SPEND_CAP_MONTH_USD, SORAFLOW_SPEND_CAPS_BY_ENDPOINT; "
            "deployments also read the Prefect Variable soraflow-spend-caps)", to=out)
        return
    cap_table = Table(title=Text("Caps (settings here)"), title_justify="left")
    for col in ["endpoint", "period", "cap USD", "reserved or paid", "left"]:
        cap_table.add_column(col)
    for row in cap_rows(caps, spend_rows.totals()):
        cap_table.add_row(row["endpoint"], row["period"], row["cap_usd"], row["counted_usd"], row["left_usd"])
    out.print(cap_table)


@app.command()
def limits() -> None:
    """The caps on clips in flight and creates per minute, as the ledger holds them, and who holds their slots."""
    from ..ledger import Slots
    from ..limits import settings_limit

    settings = Settings()
    ledger = Ledger(settings.resolved_ledger_url)
    slots = Slots(ledger, lease_seconds=settings.slot_lease_seconds)
    states = {s.name: s for s in slots.state()}
    wanted = settings_limit(settings)
    table = Table(title=Text(f"Limits (ledger at {printable(ledger.where)})"), title_justify="left")
    for col in ["limit", "in flight", "creates per minute", "from", "held by"]:
        table.add_column(col, overflow="fold")
    for name, state in sorted(states.items(), key=lambda kv: (kv[0] != wanted.name, kv[0])):
        held = "; ".join(f"{h.holder} ({h.pid})" for h in state.held) or "-"
        cells = [name, f"{len(state.held)} of {state.capacity}", str(state.per_minute or "-"), state.source, held]
        table.add_row(*(Text(printable(cell)) for cell in cells))
    out.print(table)
    if wanted.name not in states:
        say(f"limit {wanted.name!r} is not in the ledger yet; the next render creates it with {wanted.capacity} in flight "
            f"and {wanted.per_minute} creates per minute")
    elif (states[wanted.name].capacity, states[wanted.name].per_minute) != (wanted.capacity, wanted.per_minute):
        say(f"the settings here size {wanted.name!r} to {wanted.capacity} in flight and {wanted.per_minute} creates per "
            "minute: the next render applies that")
