"""Pricing sources: where the watch reads what a generated second costs today.

Providers change prices without a pricing endpoint. A pricing source is read from an https
URL, a file:// URL or a path, in one of two shapes:

- **LiteLLM's price list** (``model_prices_and_context_window.json``, maintained in the open at
  https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json):
  one entry per model key (``vertex_ai/veo-3.1-generate-001``, ``openai/sora-2``), with its
  per-second video price in ``output_cost_per_video_per_second`` (Sora), or in
  ``output_cost_per_second`` with per-resolution tiers ``output_cost_per_second_1080p``,
  ``..._4k`` (Veo and most others). A model profile names its entry with ``price_source_key``,
  and a size may name another one (sora-2-pro's 1024x1792 is ``openai/sora-2-pro-high-res``)
  or none (``price_source_key: false``: that size keeps the profile's price).
- **a table of your own**: ``{model: {WIDTHxHEIGHT: USD per second}}`` (JSON or YAML).

Every value is checked before it is trusted (a number, finite, above 0, at most
``MAX_USD_PER_SECOND``): a missing or malformed entry of the price list is a warning naming the
key, and that size keeps its profile's price; it never crashes the watch and never becomes a
price of 0. Plain data in, plain data out: no Prefect here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol
from urllib.parse import urlsplit

import httpx

from ..documents import MAX_DOCUMENT_BYTES, DocumentError, parse_document, read_bounded
from ..errors import SoraflowError
from ..models import ModelProfile
from ..models.catalog import usd as format_usd
from ..redaction import redact_text, redact_url, register_url_credentials

if TYPE_CHECKING:
    from ..ledger import WatchedPrice
    from ..models import ModelCatalog, Routing

LITELLM_PRICE_LIST_URL = "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
# LiteLLM's list is 3.4 MB in November 2026 and grows with every model; room to grow, no more.
MAX_PRICE_LIST_BYTES = 32 * 1024 * 1024
# No video model costs near this per generated second (the dearest list price is $0.72): a
# larger value is a typo or a unit mix-up (per clip, per minute) and is not trusted.
MAX_USD_PER_SECOND = Decimal("10")
# Profiles keep prices to 6 decimals; LiteLLM derives some (0.141942857) from other units.
_PRICE_QUANTUM = Decimal("0.000001")

# model → size → USD per second, as a decimal string ("0.10") so JSON keeps it exact.
PriceTable = dict[str, dict[str, str]]


class PricingSourceError(SoraflowError):
    """A pricing source could not be read, or is neither a price list nor {model: {size: usd}}."""


@dataclass(frozen=True)
class FoundPrices:
    """The prices a source gives the watched profiles, and what it could not give (worded)."""

    table: PriceTable
    warnings: list[str] = field(default_factory=list)


class PricingSource(Protocol):
    source: str

    def prices_for(self, profiles: Iterable[ModelProfile]) -> FoundPrices: ...


# --- checking one value ---------------------------------------------------------------------


def checked_price(value: Any) -> Decimal | None:
    """``value`` as USD per second when it is one (a number, finite, > 0, <= the bound), else None.

    0 is refused too: a paid model at $0 is a missing price written as a number, and a budget
    computed from it would let anything through.
    """
    # bool is an int in Python; a price of True is a typo, not $1. Text is not a number either.
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        usd = Decimal(str(value))
    except InvalidOperation:
        return None
    if not usd.is_finite() or usd <= 0 or usd > MAX_USD_PER_SECOND:
        return None
    return usd.quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def _describe(value: Any) -> str:
    return "missing" if value is None else f"{value!r} is not a price in USD per second (a number above 0, at most {MAX_USD_PER_SECOND})"


# --- LiteLLM's price list -------------------------------------------------------------------

# The fields LiteLLM prices a generated video second with (litellm/cost_calculator.py,
# video_generation_cost): the flat per-video rate wins over the per-resolution ones.
FLAT_FIELD = "output_cost_per_video_per_second"
BASE_FIELD = "output_cost_per_second"


def is_price_list(data: Any) -> bool:
    """Whether ``data`` is shaped like LiteLLM's list (entries carry ``litellm_provider``/``mode``)."""
    return isinstance(data, dict) and any(
        isinstance(v, dict) and ("litellm_provider" in v or "mode" in v) for v in data.values()
    )


def _video_fields(entry: dict) -> bool:
    return any(isinstance(k, str) and (k == FLAT_FIELD or k == BASE_FIELD or k.startswith(BASE_FIELD + "_")) for k in entry)


@dataclass(frozen=True)
class LiteLLMPriceList:
    """LiteLLM's ``model_prices_and_context_window.json``, kept to its video-priced entries."""

    source: str
    entries: dict[str, dict[str, Any]]

    @classmethod
    def from_data(cls, data: dict, source: str) -> "LiteLLMPriceList":
        return cls(source=source, entries={k: v for k, v in data.items() if isinstance(v, dict) and _video_fields(v)})

    def price(self, key: str, resolution: str) -> tuple[Decimal | None, str]:
        """(USD per second, or None) of entry ``key`` at ``resolution`` ("720p", "4k"), and the
        field it came from or why it did not (worded, naming the key and field)."""
        entry = self.entries.get(key)
        if entry is None:
            return None, f"price list has no per-second video price for {key!r}"
        # The order LiteLLM's own cost calculator reads them in.
        if FLAT_FIELD in entry:
            fields = [FLAT_FIELD]
        else:
            tier = f"{BASE_FIELD}_{resolution}"
            fields = [tier, BASE_FIELD] if tier in entry else [BASE_FIELD]
        name = fields[0]
        value = entry.get(name)
        usd = checked_price(value)
        if usd is None:
            return None, f"price list entry {key!r}: {name} {_describe(value)}"
        return usd, name

    def prices_for(self, profiles: Iterable[ModelProfile]) -> FoundPrices:
        """{model: {size: USD/s}} of the profiles that name an entry; a warning for every size
        whose entry is missing or malformed (that size then keeps its profile's price)."""
        from ..models.profiles import aspect_and_resolution

        table: PriceTable = {}
        warnings: list[str] = []
        for profile in profiles:
            if profile.model in table:
                continue  # the first profile of a model id prices it, as profile_prices does
            prices: dict[str, str] = {}
            for offer in profile.sizes:
                key = profile.price_key(offer.size)
                if key is None:
                    continue
                usd, why = self.price(key, aspect_and_resolution(offer.size)[1])
                if usd is None:
                    warnings.append(f"{profile.name} {offer.size}: {why}; keeping the profile's {format_usd(offer.usd_per_second)}")
                else:
                    prices[offer.size] = format_usd(usd)
            if prices:
                table[profile.model] = prices
        return FoundPrices(table=table, warnings=list(dict.fromkeys(warnings)))


# --- a table of your own --------------------------------------------------------------------


def parse_pricing(data: Any, source: str) -> PriceTable:
    """Validate ``{model: {size: usd_per_second}}``; errors name the source and the entry."""
    if not isinstance(data, dict):
        raise PricingSourceError(f"pricing source {source}: expected a mapping of model to {{size: USD per second}}")
    table: PriceTable = {}
    for model, sizes in data.items():
        if not isinstance(sizes, dict) or not sizes:
            raise PricingSourceError(f"pricing source {source}: {model}: expected a mapping of size to USD per second")
        table[str(model)] = {}
        for size, value in sizes.items():
            width, _, height = str(size).partition("x")
            if not (width.isdigit() and height.isdigit()):
                raise PricingSourceError(f"pricing source {source}: {model}.{size}: a size is WIDTHxHEIGHT, e.g. 1280x720")
            usd = checked_price(value)
            if usd is None:
                raise PricingSourceError(f"pricing source {source}: {model}.{size}: {_describe(value)}")
            table[str(model)][str(size)] = format_usd(usd)
    return table


@dataclass(frozen=True)
class PriceTableSource:
    """A table of prices written by hand (or by a script): every entry is trusted as given."""

    source: str
    table: PriceTable

    def prices_for(self, profiles: Iterable[ModelProfile]) -> FoundPrices:
        return FoundPrices(table={m: dict(s) for m, s in self.table.items()})


# --- an endpoint's own pricing API (fal's) ----------------------------------------------------


@dataclass(frozen=True)
class EndpointPrices:
    """Prices an endpoint gives through its own pricing API: one unit price per model (fal's
    ``GET /v1/models/pricing``), as the provider read it: {model id: (USD per unit, unit)}.

    One price per model cannot say every price a profile has (sizes, sound on or off, 4k): fal
    prices per "the endpoint's billing unit", for a request with its defaults. So it prices the
    profile's first size with sound, the price of that request, and says when the others were
    kept. A unit that is not a second of video (Seedance bills tokens) is a warning, never a
    price; every value is checked as any source's is.
    """

    source: str
    prices: dict[str, tuple[float, str]]

    def prices_for(self, profiles: Iterable[ModelProfile]) -> FoundPrices:
        table: PriceTable = {}
        warnings: list[str] = []
        for profile in profiles:
            if profile.model in table or profile.model not in self.prices:
                continue
            value, unit = self.prices[profile.model]
            if "second" not in unit.lower():
                warnings.append(f"{profile.name}: {self.source} prices {profile.model} per {unit or 'unnamed unit'}, not per "
                                "second of video; keeping the profile's prices")
                continue
            usd = checked_price(value)
            first = profile.sizes[0]
            if usd is None:
                warnings.append(f"{profile.name}: {self.source} gives {profile.model} {_describe(value)}; keeping the profile's prices")
                continue
            table[profile.model] = {first.size: format_usd(usd)}
            if usd != first.usd_per_second and (len(profile.sizes) > 1 or first.usd_per_second_silent is not None):
                warnings.append(f"{profile.name}: {self.source} gives one price for {profile.model} (${format_usd(usd)}/s, its "
                                f"{first.size} clip with sound); its other sizes and its silent price keep the profile's")
        return FoundPrices(table=table, warnings=warnings)


def merged(first: FoundPrices | None, second: FoundPrices | None) -> FoundPrices | None:
    """Two sources' prices, the second's laid over the first's, model by model and size by size."""
    if first is None or second is None:
        return first or second
    table = {m: dict(s) for m, s in first.table.items()}
    for model, sizes in second.table.items():
        table.setdefault(model, {}).update(sizes)
    return FoundPrices(table=table, warnings=[*first.warnings, *second.warnings])


# --- reading --------------------------------------------------------------------------------


def carries_credentials(source: str) -> bool:
    """Whether a pricing source URL holds a credential (userinfo, a token or key in its query):
    such a URL must not be a flow run's parameter, which the Prefect server keeps."""
    return bool(source) and "://" in source and redact_text(source) != source


def _is_loopback(host: str | None) -> bool:
    return host in {"localhost", "127.0.0.1", "::1"}


def _download(source: str, shown: str, timeout: float, transport: httpx.BaseTransport | None) -> tuple[bytes, str]:
    try:
        with httpx.Client(timeout=timeout, transport=transport, follow_redirects=True) as client:
            with client.stream("GET", source) as resp:
                resp.raise_for_status()
                body = bytearray()
                for chunk in resp.iter_bytes():  # bounded: a hostile server cannot fill memory
                    body += chunk
                    if len(body) > MAX_PRICE_LIST_BYTES:
                        raise PricingSourceError(f"pricing source {shown}: larger than {MAX_PRICE_LIST_BYTES // 1024} KiB")
                return bytes(body), resp.headers.get("content-type", "")
    except httpx.HTTPError as err:
        # httpx's message quotes the URL it was given: say the status or the kind of failure only
        what = f"HTTP {err.response.status_code}" if isinstance(err, httpx.HTTPStatusError) else type(err).__name__
        raise PricingSourceError(f"pricing source {shown}: {what}") from None


def _parse(body: bytes, source: str, is_json: bool) -> Any:
    text = body.decode("utf-8", "replace")
    if is_json:
        # The price list is larger than any document soraflow parses as YAML; JSON has no
        # aliases to expand, so the size bound holds the values' count and only depth needs a
        # bound (json raises RecursionError). A NaN is left to the entry's check: one bad entry
        # is a warning naming it, not the end of the whole list.
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as err:
            raise PricingSourceError(f"pricing source {source}: not valid JSON ({str(err)[:200]})") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise PricingSourceError(f"pricing source {source}: larger than {MAX_DOCUMENT_BYTES // 1024} KiB for YAML (a large price list is JSON)")
    try:
        return parse_document(text)
    except DocumentError as err:
        raise PricingSourceError(f"pricing source {source}: {err}") from None


def load_pricing_source(source: str, *, timeout: float = 15.0, transport: httpx.BaseTransport | None = None) -> PricingSource:
    """Read a pricing source from an https URL, a file:// URL or a path: LiteLLM's price list
    (recognised by its entries) or a ``{model: {size: USD per second}}`` table.

    What it says of the source (errors, ``.source``) never holds the URL's userinfo or query,
    and the credentials the URL carries are registered as secrets here, where it is read.
    """
    register_url_credentials(source, "pricing source")
    shown = redact_url(source)
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        # Prices decide budgets: plain http only where nobody can sit in between.
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise PricingSourceError(f"pricing source {shown}: use https (plain http is allowed for loopback only)")
        body, content_type = _download(source, shown, timeout, transport)
        is_json = "json" in content_type or parts.path.endswith(".json")
    else:
        path = Path(parts.path if parts.scheme == "file" else source).expanduser()
        try:
            body = read_bounded(path, MAX_PRICE_LIST_BYTES)
        except DocumentError as err:
            raise PricingSourceError(f"pricing source {shown}: {err}") from None
        is_json = path.suffix.lower() == ".json"
    data = _parse(body, shown, is_json)
    if is_price_list(data):
        return LiteLLMPriceList.from_data(data, shown)
    return PriceTableSource(source=shown, table=parse_pricing(data, shown))


# --- the estimate at watched prices -----------------------------------------------------------


@dataclass(frozen=True)
class PriceUsed:
    """Where the price of one model profile and size in an estimate came from."""

    profile: str
    size: str
    usd_per_second: Decimal
    watched: "WatchedPrice | None" = None  # None: the profile's own price

    def describe(self) -> str:
        price = f"{self.profile} {self.size}: ${format_usd(self.usd_per_second)}/s"
        if self.watched is None:
            return f"{price} from the profile (not watched)"
        w = self.watched
        return f"{price} watched from {w.source} (this price since {_utc(w.since)}, last watched {_utc(w.watched_at)})"


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def with_watched_prices(catalog: "ModelCatalog", routing: "Routing", watched: Iterable["WatchedPrice"]) -> tuple["ModelCatalog", dict[tuple[str, str], PriceUsed]]:
    """The catalog with each size priced as the watch last saw it at the profile's endpoint
    (matched by endpoint identity and the model id the endpoint uses), and where every size's
    price came from. A size the watch has not priced keeps its profile's price and says so."""
    seen = {(w.endpoint, w.model, w.size): w for w in watched}
    profiles, used = {}, {}
    for name, profile in catalog.profiles.items():
        route = routing.routes.get(profile.endpoint)
        offers = []
        for offer in profile.sizes:
            w = seen.get((route.identity, profile.model, offer.size)) if route else None
            if w is not None and checked_price(w.usd_per_second) is not None:
                offer = offer.model_copy(update={"usd_per_second": w.usd_per_second})
            else:
                w = None
            used[(name, offer.size)] = PriceUsed(profile=name, size=offer.size, usd_per_second=offer.usd_per_second, watched=w)
            offers.append(offer)
        profiles[name] = profile.model_copy(update={"sizes": tuple(offers)})
    return catalog.model_copy(update={"profiles": profiles}), used


__all__ = [
    "EndpointPrices",
    "LITELLM_PRICE_LIST_URL",
    "MAX_USD_PER_SECOND",
    "FoundPrices",
    "LiteLLMPriceList",
    "PriceTable",
    "PriceTableSource",
    "PriceUsed",
    "PricingSource",
    "PricingSourceError",
    "checked_price",
    "is_price_list",
    "load_pricing_source",
    "merged",
    "parse_pricing",
    "with_watched_prices",
]
