"""Pricing sources: LiteLLM's price list mapped onto the model profiles, every value checked."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from soraflow.models import builtin_catalog, load_catalog
from soraflow.watch.pricing import LiteLLMPriceList, PriceTableSource, PricingSourceError, load_pricing_source
from soraflow.providers.base import ModelInfo
from soraflow.watch import compare, profile_prices

PRICE_LISTS = Path(__file__).parent.parent / "fixtures" / "price_lists"
OLD = PRICE_LISTS / "litellm-1.110.2-video.json"
NEW = PRICE_LISTS / "litellm-next-video.json"
TODAY = date(2026, 8, 1)
CATALOG = builtin_catalog()
SORA = CATALOG.profiles_at("openai")
VEO = CATALOG.profiles_at("vertex")


def test_the_real_list_prices_every_builtin_profile_as_the_profile_does():
    """LiteLLM's list as published maps onto every built-in size (the beyond-spec ones excepted)
    and agrees with the profiles to the cent: the keys and the tiers are read as LiteLLM reads them.
    (fal's profiles name no entry: fal's own pricing API prices them.)"""
    price_list = load_pricing_source(str(OLD))
    assert isinstance(price_list, LiteLLMPriceList) and price_list.source == str(OLD)
    profiles = [p for p in CATALOG.profiles.values() if CATALOG.endpoint_of(p).dialect != "fal"]
    found = price_list.prices_for(profiles)
    assert found.warnings == []
    expected = profile_prices(profiles)
    expected["sora-2-pro"] = {s: p for s, p in expected["sora-2-pro"].items() if s not in ("1080x1920", "1920x1080")}
    expected["sora-2-pro-2025-10-06"] = expected["sora-2-pro"]
    assert found.table == expected
    # the tiers: Veo fast's 1080p and 4k have fields of their own, 720p is the base price
    assert found.table["veo-3.1-fast-generate-001"] == {
        "1280x720": "0.10", "720x1280": "0.10", "1920x1080": "0.12", "1080x1920": "0.12", "3840x2160": "0.30", "2160x3840": "0.30",
    }


def test_old_then_new_list_changes_one_price_per_model_and_size():
    old, new = load_pricing_source(str(OLD)), load_pricing_source(str(NEW))
    changed = set()
    for profiles in (SORA, VEO):
        live = [ModelInfo(id=p.model) for p in profiles]
        first = compare(live, None, endpoint="e", profiles=profiles, overrides=old.prices_for(profiles).table,
                        pricing_source=old.source, today=TODAY)
        second = compare(live, first.seen(), endpoint="e", profiles=profiles, overrides=new.prices_for(profiles).table,
                         pricing_source=new.source, today=TODAY)
        assert first.changes == []
        changed |= {(c.kind, c.model, c.size, c.prices[0].old, c.prices[0].new, c.source) for c in second.changes}
        assert len(second.changes) == len({(c.model, c.size) for c in second.changes})
    src = str(NEW)
    assert changed == {
        ("price_changed", "sora-2-pro", "1024x1792", "0.50", "0.60", src),
        ("price_changed", "sora-2-pro", "1792x1024", "0.50", "0.60", src),
        ("price_changed", "sora-2-pro-2025-10-06", "1024x1792", "0.50", "0.60", src),
        ("price_changed", "sora-2-pro-2025-10-06", "1792x1024", "0.50", "0.60", src),
        ("price_changed", "veo-3.1-fast-generate-001", "1080x1920", "0.12", "0.15", src),
        ("price_changed", "veo-3.1-fast-generate-001", "1920x1080", "0.12", "0.15", src),
    }


def _edited(tmp_path, **entries) -> Path:
    data = json.loads(OLD.read_text())
    for key, entry in entries.items():
        if entry is None:
            del data[key]
        else:
            data[key] = {**data[key], **entry}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data))
    return path


def test_malformed_or_missing_entries_are_named_and_keep_the_profile_price(tmp_path):
    path = _edited(
        tmp_path,
        **{
            "openai/sora-2": {"output_cost_per_video_per_second": "0.12"},  # text, not a number
            "openai/sora-2-pro": {"output_cost_per_video_per_second": 0},  # a price of 0 is a missing price
            "openai/sora-2-pro-high-res": {"output_cost_per_video_per_second": 500},  # per clip, not per second
            "vertex_ai/veo-3.1-fast-generate-001": {"output_cost_per_second_4k": -0.3, "output_cost_per_second_1080p": float("nan")},
            "vertex_ai/veo-3.1-generate-001": None,  # gone from the list
        },
    )
    assert "NaN" in path.read_text()  # as a JSON writer that allows it writes one
    found = load_pricing_source(str(path)).prices_for(list(CATALOG.profiles.values()))
    warnings = "\n".join(found.warnings)
    assert "sora-2 1280x720: price list entry 'openai/sora-2': output_cost_per_video_per_second '0.12' is not a price" in warnings
    assert "sora-2-pro 1280x720: price list entry 'openai/sora-2-pro': output_cost_per_video_per_second 0 is not a price" in warnings
    assert "price list entry 'openai/sora-2-pro-high-res': output_cost_per_video_per_second 500 is not a price" in warnings
    assert "veo-3.1-fast-generate-001 3840x2160: price list entry 'vertex_ai/veo-3.1-fast-generate-001': output_cost_per_second_4k -0.3" in warnings
    assert "veo-3.1-fast-generate-001 1920x1080: price list entry 'vertex_ai/veo-3.1-fast-generate-001': output_cost_per_second_1080p nan is not a price" in warnings
    assert "veo-3.1-generate-001 1280x720: price list has no per-second video price for 'vertex_ai/veo-3.1-generate-001'; keeping the profile's 0.40" in warnings
    # nothing malformed is priced (the profile's price stays), nothing is priced at 0
    assert "sora-2" not in found.table and "veo-3.1-generate-001" not in found.table
    assert "3840x2160" not in found.table["veo-3.1-fast-generate-001"]
    assert found.table["veo-3.1-fast-generate-001"]["1280x720"] == "0.10"
    assert all(float(p) > 0 for sizes in found.table.values() for p in sizes.values())


def test_a_user_profile_maps_its_own_keys_per_size():
    catalog = load_catalog(text="""
endpoints:
  gateway: {dialect: openai-videos, base_url: http://localhost:4000/v1, key_env: GATEWAY_KEY}
models:
  gateway-veo:
    endpoint: gateway
    seconds: [8]
    sizes:
      1280x720: 0.40
      1920x1080: {usd_per_second: 0.40, price_source_key: runwayml/veo3.1}
      1080x1920: {usd_per_second: 0.40, price_source_key: false}
    price_source_key: gemini/veo-3.1-generate-001
""")
    found = load_pricing_source(str(NEW)).prices_for([catalog.profile("gateway-veo")])
    assert found == type(found)(table={"gateway-veo": {"1280x720": "0.40", "1920x1080": "0.45"}}, warnings=[])
    # a profile with no key is not priced by the list
    assert load_pricing_source(str(NEW)).prices_for([catalog.profile("gateway-veo").model_copy(update={"price_source_key": None})]).table == {
        "gateway-veo": {"1920x1080": "0.45"}
    }


def test_the_list_over_https_without_its_credentials_in_what_is_said(tmp_path):
    body = OLD.read_bytes()
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, content=body, headers={"content-type": "text/plain; charset=utf-8"})

    url = "https://user:s3cret@prices.example/model_prices_and_context_window.json?token=abc"
    price_list = load_pricing_source(url, transport=httpx.MockTransport(handler))
    assert isinstance(price_list, LiteLLMPriceList)
    assert price_list.source == "https://prices.example/model_prices_and_context_window.json"
    assert seen[0].params["token"] == "abc"  # the URL as given is what is fetched
    failing = httpx.MockTransport(lambda request: httpx.Response(404))
    with pytest.raises(PricingSourceError) as err:
        load_pricing_source(url, transport=failing)
    assert "s3cret" not in str(err.value) and "abc" not in str(err.value) and "HTTP 404" in str(err.value)


def test_a_table_of_your_own_is_still_a_pricing_source(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("sora-2:\n  1280x720: 0.12\n")
    source = load_pricing_source(str(path))
    assert isinstance(source, PriceTableSource)
    assert source.prices_for(SORA).table == {"sora-2": {"1280x720": "0.12"}}
    path.write_text("sora-2:\n  1280x720: 0\n")
    with pytest.raises(PricingSourceError, match=r"sora-2\.1280x720: 0 is not a price"):
        load_pricing_source(str(path))


def test_estimate_catalog_at_watched_prices_matches_endpoint_identity_and_model():
    from soraflow.ledger import WatchedPrice
    from soraflow.models import route_endpoints, simulator_identity
    from soraflow.watch.pricing import with_watched_prices

    routing = route_endpoints(CATALOG, {}, simulate=True)
    videos = simulator_identity("openai-videos")
    watched = [
        WatchedPrice(videos, "sora-2", "1280x720", Decimal("0.15"), "list", 1.0, 2.0),
        WatchedPrice("https://elsewhere.example/v1", "sora-2", "720x1280", Decimal("0.99"), "list", 1.0, 2.0),  # another endpoint
        WatchedPrice(videos, "sora-2-pro", "1280x720", Decimal("0"), "list", 1.0, 2.0),  # never trusted at 0
    ]
    catalog, used = with_watched_prices(CATALOG, routing, watched)
    assert catalog.profile("sora-2").price("1280x720", 8) == Decimal("1.20")
    assert catalog.profile("sora-2").price("720x1280", 8) == Decimal("0.80")
    assert catalog.profile("sora-2-pro").price("1280x720", 4) == Decimal("1.20")
    assert used[("sora-2", "1280x720")].watched == watched[0]
    assert used[("sora-2", "720x1280")].watched is None and used[("sora-2-pro", "1280x720")].watched is None
    assert used[("sora-2", "720x1280")].describe() == "sora-2 720x1280: $0.10/s from the profile (not watched)"
    assert CATALOG.profile("sora-2").price("1280x720", 8) == Decimal("0.80")  # the built-in catalog is untouched


def test_the_report_shows_watched_prices_beside_the_profiles_and_the_warnings():
    profiles = [CATALOG.profile("sora-2")]
    report = compare([ModelInfo(id="sora-2")], None, endpoint="e", profiles=profiles, overrides={"sora-2": {"1280x720": "0.12"}},
                     pricing_source="list.json", warnings=["sora-2 720x1280: price list entry 'openai/sora-2': output_cost_per_video_per_second missing"],
                     today=TODAY)
    text = report.markdown()
    assert "## Prices watched beside the profiles' (USD per second, list.json)" in text
    assert "| sora-2 | 1280x720 | 0.10 | **0.12** |" in text and "| sora-2 | 720x1280 | 0.10 | 0.10 |" in text
    assert "## Pricing source warnings (1)\n\n- sora-2 720x1280: price list entry 'openai/sora-2'" in text


def test_an_endpoint_s_own_pricing_api_prices_each_model_s_default_request_and_says_what_it_kept():
    """fal's pricing API gives one price per endpoint: the profile's first size with sound (the
    request with fal's defaults) takes it; other sizes and the silent price are kept, and said;
    a unit that is not a second of video, or a value that is no price, prices nothing."""
    from soraflow.watch.pricing import EndpointPrices, merged

    fal = CATALOG.profiles_at("fal")
    api = EndpointPrices(source="the pricing API of fal", prices={
        "fal-ai/veo3.1": (0.45, "second"),
        "fal-ai/kling-video/v3/standard/text-to-video": (0.126, "video_second"),
        "bytedance/seedance-2.0/text-to-video": (0.014, "1k tokens"),
        "fal-ai/wan-25-preview/image-to-video": (float("nan"), "second"),
    })
    found = api.prices_for(fal)
    assert found.table == {"fal-ai/veo3.1": {"1280x720": "0.45"}, "fal-ai/kling-video/v3/standard/text-to-video": {"1280x720": "0.126"}}
    assert len(found.warnings) == 3, found.warnings
    assert any("gives one price for fal-ai/veo3.1 ($0.45/s, its 1280x720 clip with sound)" in w for w in found.warnings)
    assert any("per 1k tokens, not per second of video" in w for w in found.warnings)
    assert any(w.startswith("wan-2.5-i2v:") for w in found.warnings)  # NaN is no price: nothing for Wan
    # laid over a price list: the endpoint's own API wins, size by size
    table = merged(PriceTableSource("t", {"fal-ai/veo3.1": {"1280x720": "0.40", "720x1280": "0.40"}}).prices_for(fal), found)
    assert table.table["fal-ai/veo3.1"] == {"1280x720": "0.45", "720x1280": "0.40"}
