"""The watched prices in the ledger: replaced per endpoint, exact, each price's since kept."""

from __future__ import annotations

from decimal import Decimal

from soraflow.ledger import Ledger, WatchedPrices


def test_record_replaces_an_endpoint_and_keeps_since_of_unchanged_prices(ledger_url):
    ledger = Ledger(ledger_url)
    prices = WatchedPrices(ledger)
    prices.record("vertex", {"veo-3.1-fast-generate-001": {"1280x720": "0.10", "1920x1080": "0.12"}}, source="list-a", now=100.0)
    prices.record("openai", {"sora-2": {"1280x720": "0.10"}}, source="the model profiles", now=100.0)
    prices.record("vertex", {"veo-3.1-fast-generate-001": {"1280x720": "0.10", "1920x1080": "0.15"}}, source="list-b", now=200.0)

    rows = {(w.endpoint, w.model, w.size): w for w in prices.read()}
    assert set(rows) == {("openai", "sora-2", "1280x720"), ("vertex", "veo-3.1-fast-generate-001", "1280x720"),
                         ("vertex", "veo-3.1-fast-generate-001", "1920x1080")}
    same, changed = rows[("vertex", "veo-3.1-fast-generate-001", "1280x720")], rows[("vertex", "veo-3.1-fast-generate-001", "1920x1080")]
    assert (same.usd_per_second, same.since, same.watched_at, same.source) == (Decimal("0.10"), 100.0, 200.0, "list-b")
    assert (changed.usd_per_second, changed.since, changed.watched_at) == (Decimal("0.15"), 200.0, 200.0)
    assert rows[("openai", "sora-2", "1280x720")].watched_at == 100.0  # another endpoint's watch leaves it alone

    # a size the watch no longer prices is forgotten; exact decimals come back as they went in
    prices.record("vertex", {"veo-3.1-fast-generate-001": {"1280x720": "0.141942"}}, source="list-b", now=300.0)
    assert [(w.size, w.usd_per_second) for w in prices.read("vertex")] == [("1280x720", Decimal("0.141942"))]
    ledger.close()
