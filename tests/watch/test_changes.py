"""The model watch's core: statuses, price sources, and what counts as a change."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest

from soraflow.watch import changes
from soraflow.models import builtin_catalog
from soraflow.providers.base import ModelInfo
from soraflow.watch.pricing import PricingSourceError, load_pricing_source
from soraflow.watch.changes import compare, remember

TODAY = date(2026, 8, 1)
LIVE = [ModelInfo(id="sora-2"), ModelInfo(id="sora-2-pro"), ModelInfo(id="gpt-4o")]
# The profiles of the endpoint being watched: its other models (gpt-4o) are not the watch's business.
SORA = [builtin_catalog().profile("sora-2"), builtin_catalog().profile("sora-2-pro")]


def by_model(report):
    return {m.model: m for m in report.models}


def test_first_check_lists_profiled_models_only_and_reports_nothing_new():
    report = compare(LIVE, None, endpoint="e", profiles=SORA, today=TODAY)
    assert [m.model for m in report.models] == ["sora-2", "sora-2-pro"]
    assert {m.status for m in report.models} == {"available"}
    assert by_model(report)["sora-2"].prices == {"1280x720": "0.10", "720x1280": "0.10"}
    assert by_model(report)["sora-2-pro"].prices["1792x1024"] == "0.50"
    assert report.changes == []


def test_retirement_announced_then_past_then_delisted():
    first = compare(LIVE, None, endpoint="e", profiles=SORA, today=TODAY)
    announced = [ModelInfo(id="sora-2", shutdown_date="2026-09-24"), ModelInfo(id="sora-2-pro")]
    second = compare(announced, first.seen(), endpoint="e", profiles=SORA, today=TODAY)
    assert [(c.kind, c.model, c.shutdown_date) for c in second.changes] == [("retiring", "sora-2", "2026-09-24")]
    assert "will be retired on 2026-09-24" in second.changes[0].message

    third = compare(announced, second.seen(), endpoint="e", profiles=SORA, today=date(2026, 9, 24))
    assert [(c.kind, c.model) for c in third.changes] == [("unavailable", "sora-2")]
    assert "retired on 2026-09-24" in third.changes[0].message

    # The endpoint stops listing it: still gone, the date it announced is kept, nothing new.
    fourth = compare([ModelInfo(id="sora-2-pro")], third.seen(), endpoint="e", profiles=SORA, today=date(2026, 10, 1))
    assert (by_model(fourth)["sora-2"].status, by_model(fourth)["sora-2"].shutdown_date) == ("gone", "2026-09-24")
    assert fourth.changes == []


def test_first_check_of_a_retired_endpoint_is_news():
    retired = [ModelInfo(id=m, shutdown_date="2026-09-24") for m in ("sora-2", "sora-2-pro")]
    report = compare(retired, None, endpoint="e", profiles=SORA, today=date(2026, 11, 1))
    assert [(c.kind, c.model) for c in report.changes] == [("unavailable", "sora-2"), ("unavailable", "sora-2-pro")]
    assert report.seen()["sora-2"] == {"status": "gone", "shutdown_date": "2026-09-24", "prices": {"1280x720": "0.10", "720x1280": "0.10"}}


def test_model_back_after_being_gone():
    gone = compare([], None, endpoint="e", profiles=SORA, today=TODAY)
    assert {c.model for c in gone.changes if c.kind == "unavailable"} == {"sora-2", "sora-2-pro"}
    back = compare(LIVE, gone.seen(), endpoint="e", profiles=SORA, today=TODAY)
    assert sorted((c.kind, c.model) for c in back.changes) == [("available", "sora-2"), ("available", "sora-2-pro")]


def test_price_changes_name_each_size_and_ignore_formatting():
    first = compare(LIVE, None, endpoint="e", profiles=SORA, today=TODAY)
    same = compare(LIVE, first.seen(), endpoint="e", profiles=SORA, overrides={"sora-2": {"1280x720": "0.1"}}, today=TODAY)
    assert same.changes == []

    overrides = {"sora-2": {"1280x720": "0.12", "1920x1080": "0.25"}}
    changed = compare(LIVE, first.seen(), endpoint="e", profiles=SORA, overrides=overrides, today=TODAY)
    # one change per model and size, each naming its source
    assert [(c.kind, c.model, c.size, [(p.old, p.new) for p in c.prices]) for c in changed.changes] == [
        ("price_changed", "sora-2", "1280x720", [("0.10", "0.12")]),
        ("price_changed", "sora-2", "1920x1080", [(None, "0.25")]),
    ]
    assert changed.changes[0].message == "sora-2 1280x720 price changed (USD/s): 0.10 → 0.12 (the model profiles)"


def test_remember_keeps_the_current_endpoint_and_fits_a_prefect_variable():
    state = {}
    for i in range(40):
        state = remember(state, compare(LIVE, None, endpoint=f"https://gw{i}.example/v1", profiles=SORA, today=TODAY))
    assert len(json.dumps(state, separators=(",", ":"))) < changes.VARIABLE_VALUE_LIMIT
    assert list(state)[-1] == "https://gw39.example/v1"
    assert "https://gw0.example/v1" not in state
    assert changes.seen_for(state, "https://gw39.example/v1")["sora-2"]["status"] == "available"
    assert changes.seen_for(None, "x") == {} and changes.seen_for({"x": "junk"}, "x") == {}


def test_markdown_report_is_a_table_with_the_changes():
    report = compare([ModelInfo(id="sora-2-pro")], None, endpoint="https://gw.example/v1", profiles=SORA, today=TODAY)
    text = report.markdown()
    assert "| sora-2 | gone | - |" in text
    assert "| sora-2-pro | available | - | 1024x1792 0.50" in text
    assert "- **unavailable** sora-2 is unavailable (no longer listed)" in text


# --- pricing sources ------------------------------------------------------------------------


def test_pricing_source_from_yaml_and_json_files(tmp_path):
    (tmp_path / "p.yaml").write_text("sora-2:\n  1280x720: 0.12\n  720x1280: 0.125\n")
    (tmp_path / "p.json").write_text(json.dumps({"sora-2-pro": {"1792x1024": 1}}))
    assert load_pricing_source(str(tmp_path / "p.yaml")).table == {"sora-2": {"1280x720": "0.12", "720x1280": "0.125"}}
    assert load_pricing_source((tmp_path / "p.json").as_uri()).table == {"sora-2-pro": {"1792x1024": "1.00"}}


def test_pricing_source_over_https():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url == "https://prices.example/sora.json"
        return httpx.Response(200, json={"sora-2": {"1280x720": 0.2}}, headers={"content-type": "application/json"})

    table = load_pricing_source("https://prices.example/sora.json", transport=httpx.MockTransport(handler)).table
    assert table == {"sora-2": {"1280x720": "0.20"}}


@pytest.mark.parametrize(
    "text,message",
    [
        ("- 1\n- 2\n", "expected a mapping of model to"),
        ("sora-2: 0.1\n", "sora-2: expected a mapping of size to USD per second"),
        ("sora-2:\n  720p: 0.1\n", "sora-2.720p: a size is WIDTHxHEIGHT"),
        ("sora-2:\n  1280x720: cheap\n", "sora-2.1280x720: 'cheap' is not a price"),
        ("sora-2:\n  1280x720: -1\n", "sora-2.1280x720: -1 is not a price"),
        ("sora-2:\n  1280x720: true\n", "sora-2.1280x720: True is not a price"),
        ("sora-2: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_pricing_sources_name_the_entry(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PricingSourceError, match=message.replace(".", r"\.").replace("[", r"\[")) as err:
        load_pricing_source(str(path))
    assert str(path) in str(err.value)


def test_unreachable_or_plain_http_pricing_sources_are_refused(tmp_path):
    with pytest.raises(PricingSourceError, match="no such file"):
        load_pricing_source(str(tmp_path / "missing.yaml"))
    with pytest.raises(PricingSourceError, match="use https"):
        load_pricing_source("http://prices.example/sora.json")
    failing = httpx.MockTransport(lambda request: httpx.Response(503))
    with pytest.raises(PricingSourceError, match="HTTP 503"):
        load_pricing_source("https://prices.example/sora.json", transport=failing)


def test_hostile_pricing_sources_are_refused_within_limits(tmp_path):
    import os

    os.mkfifo(tmp_path / "p.yaml")
    with pytest.raises(PricingSourceError, match="FIFO"):
        load_pricing_source(str(tmp_path / "p.yaml"))
    (tmp_path / "dup.yaml").write_text("sora-2:\n  1280x720: 0.1\n  1280x720: 0.01\n")
    with pytest.raises(PricingSourceError, match="'1280x720' appears twice, on line 2 and on line 3"):
        load_pricing_source(str(tmp_path / "dup.yaml"))
    endless = httpx.MockTransport(lambda request: httpx.Response(200, content=iter([b"#" * 65536] * 100)))
    with pytest.raises(PricingSourceError, match="larger than 512 KiB for YAML"):
        load_pricing_source("https://prices.example/sora.yaml", transport=endless)
    endless = httpx.MockTransport(lambda request: httpx.Response(200, content=iter([b" " * 1048576] * 40)))
    with pytest.raises(PricingSourceError, match="larger than 32768 KiB"):
        load_pricing_source("https://prices.example/prices.json", transport=endless)
