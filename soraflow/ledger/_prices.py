"""The watched prices: what the model watch last priced each model and size at, per endpoint.

The watch keeps its memory of statuses in a Prefect Variable; its prices are kept here too, in
the ledger every worker and the CLI already share, so ``soraflow estimate --prices watched``
reads today's prices without a Prefect server. One row per (endpoint identity, model, size),
replaced on every watch of that endpoint: a size the watch no longer prices is forgotten.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Mapping

from sqlalchemy import delete, insert, select

from ._tables import watched_prices

if TYPE_CHECKING:
    from ._ledger import Ledger


@dataclass(frozen=True)
class WatchedPrice:
    endpoint: str
    model: str
    size: str
    usd_per_second: Decimal
    source: str  # the pricing source as shown (no credentials), or "the model profiles"
    since: float  # when the price became this value (seconds since the epoch)
    watched_at: float  # the watch that last saw it


class WatchedPrices:
    """The watched prices in the ledger's database."""

    def __init__(self, ledger: "Ledger"):
        self._engine = ledger._engine

    def record(self, endpoint: str, prices: Mapping[str, Mapping[str, str]], *, source: str, now: float | None = None) -> None:
        """Replace ``endpoint``'s prices with ``prices`` ({model: {size: USD per second}}) in one
        transaction; a price unchanged since the last watch keeps its ``since``."""
        now = time.time() if now is None else now
        with self._engine.begin() as conn:
            before = {
                (r.model, r.size): (r.usd_per_second, r.since)
                for r in conn.execute(select(watched_prices).where(watched_prices.c.endpoint == endpoint))
            }
            conn.execute(delete(watched_prices).where(watched_prices.c.endpoint == endpoint))
            rows = []
            for model, sizes in prices.items():
                for size, usd in sizes.items():
                    old = before.get((model, size))
                    since = old[1] if old is not None and old[0] == Decimal(usd) else now
                    rows.append({"endpoint": endpoint, "model": model, "size": size, "usd_per_second": Decimal(usd),
                                 "source": source, "since": since, "watched_at": now})
            if rows:
                conn.execute(insert(watched_prices), rows)

    def read(self, endpoint: str | None = None) -> list[WatchedPrice]:
        query = select(watched_prices).order_by(watched_prices.c.endpoint, watched_prices.c.model, watched_prices.c.size)
        if endpoint is not None:
            query = query.where(watched_prices.c.endpoint == endpoint)
        with self._engine.connect() as conn:
            return [WatchedPrice(**r._mapping) for r in conn.execute(query)]


__all__ = ["WatchedPrice", "WatchedPrices"]
