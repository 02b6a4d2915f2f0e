"""Spend caps: USD per UTC day and month, over every endpoint and per endpoint.

Plain data on the ground floor: the settings set them, the Prefect Variable
``soraflow-spend-caps`` may set them too (the lower wins), and the ledger's spend rows are
reserved under them before each create (``soraflow.ledger.Spend``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from .errors import SpendCapError

Period = Literal["day", "month"]


@dataclass(frozen=True)
class SpendCaps:
    """USD per UTC day and month, over every endpoint and per endpoint name; None: no cap."""

    day: Decimal | None = None
    month: Decimal | None = None
    endpoints: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.day is not None or self.month is not None or any(self.endpoints.values())

    def applying(self, endpoint: str) -> list[tuple[str | None, Period, Decimal]]:
        """The caps a create at ``endpoint`` must fit: (endpoint or None for all, period, USD)."""
        caps: list[tuple[str | None, Period, Decimal]] = [(None, p, v) for p, v in (("day", self.day), ("month", self.month)) if v is not None]
        for period in ("day", "month"):
            if (v := self.endpoints.get(endpoint, {}).get(period)) is not None:
                caps.append((endpoint, period, v))  # type: ignore[arg-type]
        return caps

    def tightest(self, other: "SpendCaps") -> "SpendCaps":
        """Both sets of caps at once: where both cap the same thing, the lower wins."""

        def low(a: Decimal | None, b: Decimal | None) -> Decimal | None:
            return b if a is None else a if b is None else min(a, b)

        endpoints = {}
        for name in set(self.endpoints) | set(other.endpoints):
            mine, theirs = self.endpoints.get(name, {}), other.endpoints.get(name, {})
            endpoints[name] = {p: v for p in ("day", "month") if (v := low(mine.get(p), theirs.get(p))) is not None}
        return SpendCaps(low(self.day, other.day), low(self.month, other.month), endpoints)

    def rows(self) -> list[dict[str, str]]:
        return [
            {"endpoint": endpoint or "all", "period": period, "cap_usd": f"{usd:.2f}"}
            for endpoint, period, usd in [(None, "day", self.day), (None, "month", self.month)]
            + [(e, p, v) for e, caps in sorted(self.endpoints.items()) for p, v in caps.items()]
            if usd is not None
        ]


def parse_caps(data: object, source: str) -> SpendCaps:
    """``{"day": 10, "month": 100, "endpoints": {"vertex": {"day": 5}}}`` (USD) → SpendCaps;
    a value that is not a finite amount of 0 or more is refused, naming the source and field."""
    if data is None:
        return SpendCaps()
    if not isinstance(data, dict):
        raise SpendCapError(f"{source}: expected a mapping like {{\"day\": 10, \"month\": 100, \"endpoints\": {{NAME: {{\"day\": 5}}}}}}")

    def usd(value: object, where: str) -> Decimal | None:
        if value is None:
            return None
        try:
            amount = Decimal(str(value)) if isinstance(value, (int, float, str, Decimal)) and not isinstance(value, bool) else None
        except ArithmeticError:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            raise SpendCapError(f"{source}: {where}: {value!r} is not allowed: give a finite amount of USD, 0 or more")
        return amount

    unknown = set(data) - {"day", "month", "endpoints"}
    if unknown:
        raise SpendCapError(f"{source}: {sorted(unknown)[0]}: unknown key (allowed: day, month, endpoints)")
    endpoints = data.get("endpoints") or {}
    if not isinstance(endpoints, dict):
        raise SpendCapError(f"{source}: endpoints: expected a mapping of endpoint name to {{day, month}}")
    per_endpoint = {}
    for name, caps in endpoints.items():
        if not isinstance(caps, dict) or set(caps) - {"day", "month"}:
            raise SpendCapError(f"{source}: endpoints.{name}: expected {{\"day\": USD, \"month\": USD}}")
        per_endpoint[str(name)] = {p: v for p in ("day", "month") if (v := usd(caps.get(p), f"endpoints.{name}.{p}")) is not None}
    return SpendCaps(usd(data.get("day"), "day"), usd(data.get("month"), "month"), per_endpoint)
