"""The model watch: which profiled models an endpoint still serves, and what they cost.

Providers retire models (OpenAI shut Sora down on 2026-09-24) and change prices without a
pricing endpoint, so the watch compares two things against the state it saw last time, for
the model profiles of one endpoint:
- the endpoint's ``/models`` list (a missing model, or a ``shutdown_date``), or, where the
  endpoint lists no models, the profiles' retirement dates; and
- the price table: the profiles' prices, overridden by a pricing source (``soraflow.pricing``:
  LiteLLM's public price list mapped onto the profiles, or a table of your own). A changed
  price is one change per model and size, naming the old price, the new one and the source.

Everything here is plain data in, plain data out; the Prefect flow stores the state in a
Variable and turns the changes into events.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .availability import model_status, profile_status
from ..models import ModelProfile
from ..models.catalog import usd as format_usd
from .pricing import PriceTable
from ..providers.base import ModelInfo

# The Prefect Variable holding the last seen state, keyed by endpoint identity.
WATCH_VARIABLE_NAME = "soraflow-model-watch"
# Prefect refuses Variable values longer than this many characters of JSON.
VARIABLE_VALUE_LIMIT = 5000

Status = Literal["available", "retiring", "gone"]
ChangeKind = Literal["unavailable", "retiring", "available", "price_changed"]
# What the watch remembers per endpoint: model → {"status", "shutdown_date", "prices"}.
SeenModels = dict[str, dict[str, Any]]


class ModelReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    status: Status
    shutdown_date: str | None = None
    # What the watch priced each size at (the pricing source over the profile), and the profile's own.
    prices: dict[str, str] = {}
    profile_prices: dict[str, str] = {}
    previous_status: str | None = None


class PriceChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    size: str
    old: str | None
    new: str | None


class Change(BaseModel):
    """One thing that differs from the last check, worded for a person."""

    model_config = ConfigDict(frozen=True)

    kind: ChangeKind
    model: str
    message: str
    status: Status
    previous_status: str | None = None
    shutdown_date: str | None = None
    # price_changed: the one size whose price changed, and where the new price came from.
    prices: list[PriceChange] = []
    size: str | None = None
    source: str | None = None


class WatchReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    endpoint: str
    checked_at: str
    pricing_source: str | None = None
    models: list[ModelReport]
    changes: list[Change]
    # Entries of the pricing source that could not price a size (that size kept its profile's price).
    warnings: list[str] = []

    def seen(self) -> SeenModels:
        """What to remember for the next check (and what ``ensure_available`` reads)."""
        return {
            m.model: {"status": m.status, "shutdown_date": m.shutdown_date, "prices": dict(m.prices)}
            for m in self.models
        }

    def rows(self) -> list[dict[str, str]]:
        return [
            {
                "model": m.model,
                "status": m.status,
                "shutdown_date": m.shutdown_date or "",
                "prices_usd_per_second": ", ".join(f"{size} {usd}" for size, usd in m.prices.items()) or "unknown",
            }
            for m in self.models
        ]

    def markdown(self) -> str:
        lines = [
            f"# Models at {self.endpoint}",
            "",
            f"Checked {self.checked_at}; prices in USD per generated second"
            + (f" from {self.pricing_source}." if self.pricing_source else " from the model profiles."),
            "",
            "| model | status | shutdown date | prices (USD/s) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['model']} | {r['status']} | {r['shutdown_date'] or '-'} | {r['prices_usd_per_second']} |"
            for r in self.rows()
        ]
        lines += ["", f"## Changes since the last check ({len(self.changes)})", ""]
        lines += [f"- **{c.kind}** {c.message}" for c in self.changes] or ["- none"]
        if self.pricing_source:
            lines += ["", f"## Prices watched beside the profiles' (USD per second, {self.pricing_source})", "",
                      "| model | size | profile | watched |", "|---|---|---|---|"]
            for m in self.models:
                for size in sorted(set(m.prices) | set(m.profile_prices)):
                    profile, watched = m.profile_prices.get(size, "-"), m.prices.get(size, "-")
                    differs = profile == "-" or watched == "-" or Decimal(profile) != Decimal(watched)
                    lines.append(f"| {m.model} | {size} | {profile} | {f'**{watched}**' if differs else watched} |")
        if self.warnings:
            lines += ["", f"## Pricing source warnings ({len(self.warnings)})", ""]
            lines += [f"- {w}" for w in self.warnings]
        return "\n".join(lines)


def watch_markdown(reports: list[WatchReport]) -> str:
    """One document for one watch: every endpoint's models (Sora's and Veo's alike) and changes."""
    changes = sum(len(r.changes) for r in reports)
    head = [f"Checked {len(reports)} endpoint(s): {changes} change(s).", ""]
    return "\n\n".join(["\n".join(head)] + [r.markdown() for r in reports]) if reports else "No endpoint has model profiles to check."


# --- prices ---------------------------------------------------------------------------------


def profile_prices(profiles: list[ModelProfile]) -> PriceTable:
    """{model id: {size: USD per second}} of the profiles (the first profile of a model id wins)."""
    table: PriceTable = {}
    for profile in profiles:
        table.setdefault(profile.model, {o.size: format_usd(o.usd_per_second) for o in profile.sizes})
    return table


def effective_prices(model: str, prices: PriceTable, overrides: PriceTable | None) -> dict[str, str]:
    """The profile's prices of ``model`` with the pricing source's sizes laid over them."""
    merged = dict(prices.get(model, {}))
    merged.update((overrides or {}).get(model, {}))
    return dict(sorted(merged.items()))


# --- comparing against the last check --------------------------------------------------------


def watched_models(profiles: list[ModelProfile], last_seen: SeenModels | None, overrides: PriceTable | None) -> list[str]:
    """The endpoint's profiled models, priced ones and ones seen before.

    An endpoint such as a gateway lists every model it serves; only the profiled ones matter.
    """
    return sorted({p.model for p in profiles} | set(overrides or {}) | set(last_seen or {}))


def _price_changes(old: dict[str, str], new: dict[str, str]) -> list[PriceChange]:
    changes = []
    for size in sorted(set(old) | set(new)):
        before, after = old.get(size), new.get(size)
        if before is None or after is None or Decimal(before) != Decimal(after):
            changes.append(PriceChange(size=size, old=before, new=after))
    return changes


def _status_change(m: ModelReport, previous: dict[str, Any]) -> Change | None:
    before = previous.get("status")
    if m.status == "gone" and before != "gone":
        when = f"retired on {m.shutdown_date}" if m.shutdown_date else "no longer listed"
        return Change(kind="unavailable", model=m.model, status=m.status, previous_status=before, shutdown_date=m.shutdown_date,
                      message=f"{m.model} is unavailable ({when}); renders with it are refused")
    if m.status == "retiring" and (before != "retiring" or previous.get("shutdown_date") != m.shutdown_date):
        return Change(kind="retiring", model=m.model, status=m.status, previous_status=before, shutdown_date=m.shutdown_date,
                      message=f"{m.model} will be retired on {m.shutdown_date}")
    if m.status == "available" and before in ("gone", "retiring"):
        return Change(kind="available", model=m.model, status=m.status, previous_status=before,
                      message=f"{m.model} is available again (was {before})")
    return None


def compare(
    offered: list[ModelInfo] | None,
    last_seen: SeenModels | None,
    *,
    endpoint: str,
    profiles: list[ModelProfile],
    overrides: PriceTable | None = None,
    pricing_source: str | None = None,
    warnings: list[str] | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> WatchReport:
    """The report of one check of ``endpoint``: every watched model's status and prices, and what changed.

    ``offered`` is what the endpoint lists, or None where it lists no models: then each
    model's status comes from its profile's retirement date. The first check of an endpoint
    reports models that are already gone or retiring (that is news), but no price changes:
    there is nothing to compare prices against yet.
    """
    by_id = {m.id: m for m in offered or ()}
    retires = {p.model: p.retires for p in profiles}
    prices = profile_prices(profiles)
    last_seen = last_seen or {}
    models, changes = [], []
    for name in watched_models(profiles, last_seen, overrides):
        previous = last_seen.get(name) or {}
        if offered is None:
            status, shutdown_date = profile_status(retires.get(name), today)
        else:
            status, shutdown_date = model_status(name, by_id, today)
        # A model that vanished from the list keeps the retirement date announced earlier.
        shutdown_date = shutdown_date or (previous.get("shutdown_date") if status == "gone" else None)
        report = ModelReport(
            model=name,
            status=status,
            shutdown_date=shutdown_date,
            prices=effective_prices(name, prices, overrides),
            profile_prices=prices.get(name, {}),
            previous_status=previous.get("status"),
        )
        models.append(report)
        if (change := _status_change(report, previous)) is not None:
            changes.append(change)
        old_prices = previous.get("prices")
        for p in _price_changes(old_prices, report.prices) if old_prices else ():
            source = pricing_source or "the model profiles"
            changes.append(Change(kind="price_changed", model=name, status=status, prices=[p], size=p.size, source=source,
                                  message=f"{name} {p.size} price changed (USD/s): {p.old or '-'} → {p.new or '-'} ({source})"))
    return WatchReport(
        endpoint=endpoint,
        checked_at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        pricing_source=pricing_source,
        models=models,
        changes=changes,
        warnings=list(warnings or ()),
    )


def remember(state: dict[str, SeenModels] | None, report: WatchReport, *, limit: int = VARIABLE_VALUE_LIMIT) -> dict[str, SeenModels]:
    """The Variable's next value: this endpoint's state, most recently checked last.

    Prefect caps a Variable at ``limit`` characters of JSON, so the endpoints checked longest
    ago are forgotten first; the current one is always kept.
    """
    state = {k: v for k, v in (state or {}).items() if k != report.endpoint and isinstance(v, dict)}
    state[report.endpoint] = report.seen()
    while len(state) > 1 and len(json.dumps(state, separators=(",", ":"))) >= limit:
        state.pop(next(iter(state)))
    return state


def seen_for(state: Any, endpoint: str) -> SeenModels:
    """One endpoint's last seen models from the Variable's value (tolerates a missing value)."""
    if not isinstance(state, dict):
        return {}
    seen = state.get(endpoint)
    return seen if isinstance(seen, dict) else {}


__all__ = [
    "WATCH_VARIABLE_NAME",
    "Change",
    "ModelReport",
    "PriceChange",
    "WatchReport",
    "compare",
    "effective_prices",
    "profile_prices",
    "remember",
    "seen_for",
    "watched_models",
]
