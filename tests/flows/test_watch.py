"""watch-models against the simulator: events, the artifact, the Variable, and render's refusal."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.flows.watch import watch_models
from soraflow.simulator.retirement import OPENAI_SORA_SHUTDOWN_DATE
from soraflow.preflight import PreflightError
from soraflow.watch import WATCH_VARIABLE_NAME
from soraflow.tasks.watch import REPORT_ARTIFACT_KEY

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def retired_simulator():
    """A second simulator that answers as the retired service does."""
    from soraflow.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(latency=0.5, shutdown=True)) as sim:
        yield sim


@pytest.fixture
def endpoint(monkeypatch, tmp_path) -> str:
    """A fresh endpoint identity: the watch's memory and events are keyed by it."""
    identity = f"watch-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SORAFLOW_ENDPOINT_ID", identity)
    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    return identity


def point_at(monkeypatch, sim) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", sim.api_key)


def watch(**params):
    """One watch of the one configured endpoint: its state and its report."""
    state = watch_models(**params, return_state=True)
    assert state.is_completed(), state.message
    [report] = state.result()
    return state, report


def events_for(endpoint: str, expected: int, timeout: float = 30.0) -> list[tuple[str, str, dict]]:
    """(event, model, payload) of every soraflow event about ``endpoint``, once ``expected`` arrived.

    The server persists events asynchronously (a few seconds), hence the wait.
    """
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=datetime.now(timezone.utc) - timedelta(hours=1)),
        event=EventNameFilter(prefix=["soraflow."]),
        resource=EventResourceFilter(labels={"soraflow.endpoint": endpoint}),
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            # The client's default page size (100) is above the server's maximum (50) in 3.8.8.
            events = client.read_events(event_filter, limit=50).events
            # several events of one model (one per size) differ by payload alone: sort by its text
            found = sorted(((e.event, e.resource["prefect.resource.name"], e.payload) for e in events),
                           key=lambda f: (f[0], f[1], json.dumps(f[2], sort_keys=True)))
            if len(found) >= expected or time.monotonic() > deadline:
                return [(name, model, payload) for name, model, payload in found]
            time.sleep(0.5)


def artifact_markdown(flow_run_id) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[REPORT_ARTIFACT_KEY])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )
    assert artifact.type == "markdown"
    return artifact.data


def remembered(endpoint: str) -> dict:
    from prefect.variables import Variable

    return Variable.get(WATCH_VARIABLE_NAME, default={}).get(endpoint, {})


def test_retirement_becomes_events_an_artifact_and_a_refusal(simulator, retired_simulator, endpoint, monkeypatch, lighthouse, tmp_path):
    point_at(monkeypatch, simulator)
    state, report = watch()
    listed = sorted(m for m in simulator_models(simulator) if m.startswith("sora"))
    assert [m.model for m in report.models] == listed
    assert {m.status for m in report.models} == {"available"} and report.changes == []
    assert "| sora-2 | available | - | 1280x720 0.10, 720x1280 0.10 |" in artifact_markdown(state.state_details.flow_run_id)
    assert remembered(endpoint)["sora-2"] == {"status": "available", "shutdown_date": None, "prices": {"1280x720": "0.10", "720x1280": "0.10"}}

    # The same endpoint now answers as the retired service.
    point_at(monkeypatch, retired_simulator)
    state, report = watch()
    assert {(m.model, m.status, m.shutdown_date) for m in report.models} == {(m, "gone", OPENAI_SORA_SHUTDOWN_DATE) for m in listed}
    assert sorted((c.kind, c.model) for c in report.changes) == [("unavailable", m) for m in listed]
    markdown = artifact_markdown(state.state_details.flow_run_id)
    assert f"| sora-2 | gone | {OPENAI_SORA_SHUTDOWN_DATE} |" in markdown
    assert f"**unavailable** sora-2 is unavailable (retired on {OPENAI_SORA_SHUTDOWN_DATE})" in markdown

    events = events_for(endpoint, expected=len(listed))
    assert [(name, model) for name, model, _ in events] == [("soraflow.model.unavailable", m) for m in listed]
    assert all(p["shutdown_date"] == OPENAI_SORA_SHUTDOWN_DATE and p["endpoint"] == endpoint for _, _, p in events)

    # Back on the serving simulator under the same identity: the watch's memory alone refuses
    # the render, before any create, naming the retirement date.
    point_at(monkeypatch, simulator)
    jobs_before = len(simulator.jobs())
    render = render_storyboard(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out")), return_state=True)
    assert render.is_failed()
    with pytest.raises(PreflightError, match=f"endpoint openai: model sora-2 was retired on {OPENAI_SORA_SHUTDOWN_DATE}"):
        render.result()
    assert len(simulator.jobs()) == jobs_before


def test_live_check_refuses_a_retired_model_before_any_create(retired_simulator, endpoint, monkeypatch, lighthouse, tmp_path):
    point_at(monkeypatch, retired_simulator)  # no watch has run for this endpoint
    render = render_storyboard(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out")), return_state=True)
    assert render.is_failed()
    with pytest.raises(PreflightError, match=f"endpoint openai: model sora-2 was retired on {OPENAI_SORA_SHUTDOWN_DATE}"):
        render.result()
    assert retired_simulator.jobs() == []


def test_changed_pricing_source_emits_price_changed(simulator, endpoint, monkeypatch, tmp_path):
    point_at(monkeypatch, simulator)
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"sora-2": {"1280x720": 0.10}}))
    _, first = watch(pricing_source=str(prices))
    assert first.changes == [] and first.pricing_source == str(prices)

    prices.write_text(yaml.safe_dump({"sora-2": {"1280x720": 0.15}, "sora-2-pro": {"1792x1024": 0.5}}))
    monkeypatch.setenv("SORAFLOW_PRICING_SOURCE", str(prices))  # the setting, not the parameter
    state, second = watch()
    [change] = second.changes
    assert (change.kind, change.model) == ("price_changed", "sora-2")
    assert [(p.size, p.old, p.new) for p in change.prices] == [("1280x720", "0.10", "0.15")] and change.size == "1280x720"
    assert remembered(endpoint)["sora-2"]["prices"] == {"1280x720": "0.15", "720x1280": "0.10"}
    assert "**price_changed** sora-2 1280x720 price changed (USD/s): 0.10 → 0.15" in artifact_markdown(state.state_details.flow_run_id)

    [(name, model, payload)] = events_for(endpoint, expected=1)
    assert (name, model) == ("soraflow.price.changed", "sora-2")
    assert payload["prices"] == [{"size": "1280x720", "old": "0.10", "new": "0.15"}]


def test_unreadable_pricing_source_fails_the_watch_and_keeps_the_memory(simulator, endpoint, monkeypatch, tmp_path):
    point_at(monkeypatch, simulator)
    watch()
    before = remembered(endpoint)
    state = watch_models(pricing_source=str(tmp_path / "missing.yaml"), return_state=True)
    assert state.is_failed()
    assert "missing.yaml" in state.message
    assert remembered(endpoint) == before


def simulator_models(sim) -> list[str]:
    import httpx

    resp = httpx.get(f"{sim.base_url}/models", headers={"Authorization": f"Bearer {sim.api_key}"})
    return [m["id"] for m in resp.raise_for_status().json()["data"]]


def point_both_at(monkeypatch, sim, endpoint: str, tmp_path) -> str:
    """Sora's endpoint and Vertex AI (identity ``<endpoint>-vertex``, returned) both at ``sim``."""
    point_at(monkeypatch, sim)
    vertex = f"{endpoint}-vertex"
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"endpoints": {"vertex": {"base_url": sim.url, "identity": vertex}}}))
    monkeypatch.setenv("SORAFLOW_MODELS", str(models))
    monkeypatch.setenv("GOOGLE_API_KEY", sim.api_key)
    return vertex


def test_veo_and_sora_in_one_watch_one_artifact_and_their_events(simulator, endpoint, monkeypatch, tmp_path):
    """Sora at its endpoint and Veo on Vertex AI in one watch: Veo's availability from the SDK's
    model lookup (models.get), its price changes, both in one artifact, events per endpoint."""
    vertex = point_both_at(monkeypatch, simulator, endpoint, tmp_path)
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"veo-3.1-fast-generate-001": {"1280x720": 0.10}}))
    state = watch_models(pricing_source=str(prices), return_state=True)
    assert state.is_completed(), state.message
    first = {r.endpoint: r for r in state.result()}
    assert set(first) == {endpoint, vertex}
    assert {m.model: m.status for m in first[vertex].models} == {"veo-3.1-generate-001": "available", "veo-3.1-fast-generate-001": "available"}
    assert first[vertex].changes == []

    # Google retires the standard model and the fast one's 720p price goes up.
    monkeypatch.setitem(simulator.config.model_shutdown_dates, "veo-3.1-generate-001", "2026-11-01")
    prices.write_text(yaml.safe_dump({"veo-3.1-fast-generate-001": {"1280x720": 0.15}}))
    state = watch_models(pricing_source=str(prices), return_state=True)
    assert state.is_completed(), state.message
    second = {r.endpoint: r for r in state.result()}
    assert sorted((c.kind, c.model) for c in second[vertex].changes) == [
        ("price_changed", "veo-3.1-fast-generate-001"), ("unavailable", "veo-3.1-generate-001"),
    ]
    assert remembered(vertex)["veo-3.1-generate-001"]["status"] == "gone"
    markdown = artifact_markdown(state.state_details.flow_run_id)
    assert f"# Models at {endpoint}" in markdown and f"# Models at {vertex}" in markdown and "| sora-2 |" in markdown
    assert "**unavailable** veo-3.1-generate-001 is unavailable (no longer listed)" in markdown
    assert "**price_changed** veo-3.1-fast-generate-001 1280x720 price changed (USD/s): 0.10 → 0.15" in markdown
    events = events_for(vertex, expected=2)
    assert sorted((name, model) for name, model, _ in events) == [
        ("soraflow.model.unavailable", "veo-3.1-generate-001"), ("soraflow.price.changed", "veo-3.1-fast-generate-001"),
    ]


def test_litellm_price_list_old_then_new_one_event_per_changed_model_and_size(simulator, endpoint, monkeypatch, tmp_path):
    """The watch fed LiteLLM's list as published, then a copy with a few prices changed: one
    soraflow.price.changed per changed model and size (old, new, source), none for the rest;
    the artifact shows the watched prices beside the profiles'."""
    lists = Path(__file__).parent.parent / "fixtures" / "price_lists"
    vertex = point_both_at(monkeypatch, simulator, endpoint, tmp_path)

    old = str(lists / "litellm-1.110.2-video.json")
    monkeypatch.setenv("SORAFLOW_PRICING_SOURCE", old)  # the setting; the parameter below
    state = watch_models(return_state=True)
    assert state.is_completed(), state.message
    assert all(r.changes == [] and r.warnings == [] and r.pricing_source == old for r in state.result())

    new = str(lists / "litellm-next-video.json")
    state = watch_models(pricing_source=new, return_state=True)
    assert state.is_completed(), state.message
    reports = {r.endpoint: r for r in state.result()}
    expected = {
        (endpoint, "sora-2-pro", "1024x1792"), (endpoint, "sora-2-pro", "1792x1024"),
        (endpoint, "sora-2-pro-2025-10-06", "1024x1792"), (endpoint, "sora-2-pro-2025-10-06", "1792x1024"),
        (vertex, "veo-3.1-fast-generate-001", "1080x1920"), (vertex, "veo-3.1-fast-generate-001", "1920x1080"),
    }
    assert sorted((e, c.model, c.size) for e, r in reports.items() for c in r.changes) == sorted(expected)
    assert remembered(vertex)["veo-3.1-fast-generate-001"]["prices"]["1920x1080"] == "0.15"
    # the ledger keeps the watched prices for `soraflow estimate --prices watched`
    from soraflow.ledger import Ledger, WatchedPrices
    from soraflow.settings import Settings

    ledger = Ledger.from_settings(Settings())
    rows = {(w.model, w.size): w for w in WatchedPrices(ledger).read(vertex)}
    ledger.close()
    assert (str(rows[("veo-3.1-fast-generate-001", "1920x1080")].usd_per_second), rows[("veo-3.1-fast-generate-001", "1920x1080")].source) == ("0.15", new)
    assert rows[("veo-3.1-generate-001", "3840x2160")].since < rows[("veo-3.1-generate-001", "3840x2160")].watched_at  # unchanged since the first watch

    events = events_for(endpoint, expected=4) + events_for(vertex, expected=2)
    assert len(events) == 6 and {name for name, _, _ in events} == {"soraflow.price.changed"}
    assert {(p["endpoint"], model, p["size"]) for _, model, p in events} == expected
    for _, model, payload in events:
        assert payload["source"] == new
        assert payload["prices"] == ([{"size": payload["size"], "old": "0.50", "new": "0.60"}] if model.startswith("sora")
                                     else [{"size": payload["size"], "old": "0.12", "new": "0.15"}])

    markdown = artifact_markdown(state.state_details.flow_run_id)
    assert f"## Prices watched beside the profiles' (USD per second, {new})" in markdown
    assert "| sora-2-pro | 1024x1792 | 0.50 | **0.60** |" in markdown
    assert "| veo-3.1-fast-generate-001 | 1280x720 | 0.10 | 0.10 |" in markdown
    assert "**price_changed** veo-3.1-fast-generate-001 1920x1080 price changed (USD/s): 0.12 → 0.15" in markdown


def test_fal_availability_from_its_model_metadata_and_prices_from_its_pricing_api(simulator, endpoint, monkeypatch, tmp_path):
    """fal's endpoint in one watch beside Sora's: its models' status from fal's model metadata,
    today's prices from fal's pricing API (a second real source beside a price list); a changed
    price is one soraflow.price.changed event for that model, a retired one is unavailable."""
    point_at(monkeypatch, simulator)
    fal = f"{endpoint}-fal"
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"endpoints": {"fal": {
        "base_url": simulator.fal_url, "ca_file": str(simulator.fal_ca_file), "identity": fal}}}))
    monkeypatch.setenv("SORAFLOW_MODELS", str(models))
    monkeypatch.setenv("FAL_KEY", "fal-watch-key")
    state = watch_models(return_state=True)
    assert state.is_completed(), state.message
    first = {r.endpoint: r for r in state.result()}[fal]
    assert first.changes == [] and first.pricing_source.startswith("the pricing API of fal")
    assert {m.model: m.status for m in first.models}["fal-ai/veo3.1"] == "available"
    assert {m.model: m.prices for m in first.models}["fal-ai/veo3.1"]["1280x720"] == "0.40"

    # fal raises Veo's price and retires Kling 3.0 standard.
    monkeypatch.setattr(simulator.config, "fal_prices", {"fal-ai/veo3.1": 0.45})
    monkeypatch.setitem(simulator.config.model_shutdown_dates, "fal-ai/kling-video/v3/standard/text-to-video", "2026-11-01")
    state = watch_models(return_state=True)
    assert state.is_completed(), state.message
    second = {r.endpoint: r for r in state.result()}[fal]
    assert sorted((c.kind, c.model, c.size) for c in second.changes) == [
        ("price_changed", "fal-ai/veo3.1", "1280x720"), ("unavailable", "fal-ai/kling-video/v3/standard/text-to-video", None),
    ]
    assert any("gives one price for fal-ai/veo3.1" in w for w in second.warnings)  # the other sizes keep the profile's
    assert remembered(fal)["fal-ai/veo3.1"]["prices"]["1280x720"] == "0.45"
    events = events_for(fal, expected=2)
    assert sorted((name, model) for name, model, _ in events) == [
        ("soraflow.model.unavailable", "fal-ai/kling-video/v3/standard/text-to-video"), ("soraflow.price.changed", "fal-ai/veo3.1"),
    ]
    [price] = [p for name, _, p in events if name == "soraflow.price.changed"]
    assert price["prices"] == [{"size": "1280x720", "old": "0.40", "new": "0.45"}]


def test_a_pricing_url_with_a_token_never_becomes_a_flow_run_parameter(simulator, endpoint, monkeypatch, tmp_path):
    """`soraflow watch --pricing URL?token=...` hands the URL to the flow through the settings: the
    Prefect server keeps a run's parameters. A parameter that carries a credential is refused,
    saying where the URL goes (the worker's setting, or a Secret block, which the watch reads)."""
    from prefect import get_client
    from prefect.blocks.system import Secret
    from typer.testing import CliRunner

    from soraflow.cli import app

    point_at(monkeypatch, simulator)
    monkeypatch.delenv("SORAFLOW_PRICING_SOURCE", raising=False)  # the CLI sets it; restored after the test
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"sora-2": {"1280x720": 0.12}}))
    token = f"pricing-token-{uuid.uuid4().hex[:8]}"
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    result = CliRunner().invoke(app, ["watch", "--pricing", f"{prices.as_uri()}?token={token}"])
    assert result.exit_code == 0, result.output
    assert "0.12" in result.output and token not in result.output
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)))
    assert runs and all(token not in json.dumps(run.parameters) for run in runs)
    assert token not in json.dumps(remembered(endpoint))

    # a run form or a deployment that passes such a URL is refused, naming where it goes instead
    state = watch_models(pricing_source=f"https://prices.example/list.json?token={token}", return_state=True)
    assert state.is_failed() and "SORAFLOW_PRICING_SOURCE_SECRET" in state.message and token not in state.message
    # ... the Secret block it names is read where the watch runs
    block = f"pricing-url-{uuid.uuid4().hex[:8]}"
    Secret(value=f"{prices.as_uri()}?token={token}").save(block)
    monkeypatch.setenv("SORAFLOW_PRICING_SOURCE_SECRET", block)
    _, report = watch()
    assert report.pricing_source == prices.as_uri() and remembered(endpoint)["sora-2"]["prices"]["1280x720"] == "0.12"
