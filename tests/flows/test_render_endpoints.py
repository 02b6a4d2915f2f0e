"""render-storyboard across endpoints: a gateway with its own model names and 6 s clips, an
Azure deployment behind the api-key header, both in one film; the embedded simulator when
nothing is configured; and a refusal, before anything is spent, when one endpoint lacks its key."""

from __future__ import annotations

import json
from pathlib import Path

import ffmpeg
import pytest
import yaml

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.preflight import PreflightError
from soraflow.ledger import Ledger, Slots
from soraflow.models import load_catalog
from soraflow.simulator import Simulator, SimulatorConfig, simulated_models

from ..fixtures.endpoints import azure_key, bearer

pytestmark = pytest.mark.usefixtures("prefect_server")

MODELS = """
endpoints:
  gateway: {{base_url: "{gateway}", key_env: GATEWAY_KEY, concurrency: 2}}
  azure: {{base_url: "{azure}", auth: api-key, key_env: AZURE_OPENAI_API_KEY, models_route: false}}
models:
  gateway-veo:
    endpoint: gateway
    model: veo-3.1
    seconds: [4, 6, 8]
    sizes: {{1280x720: 0.45, 1920x1080: {{usd_per_second: 0.45, seconds: [8]}}}}
  house-video: {{endpoint: azure, model: my-video-deployment, seconds: [4, 8], sizes: {{1280x720: 0.25}}}}
"""
BOARD = {
    "title": "Two Endpoints",
    "size": "1280x720",
    "model": "gateway-veo",
    "shots": [
        {"id": "harbour", "seconds": 6, "visual": "Fishing boats in a grey harbour at dawn."},
        {"id": "storm", "seconds": 12, "visual": "A squall crosses the bay, rain on the water."},
        {"id": "quay", "seconds": 4, "visual": "A wet stone quay, one lamp.", "model": "house-video"},
    ],
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The models' real home, behind the proxies: it serves exactly what the profiles offer."""
    catalog = load_catalog(text=MODELS.format(gateway="http://x/v1", azure="http://x/openai/v1"))
    config = SimulatorConfig(latency=0.4, cache_dir=str(tmp_path_factory.mktemp("renders")), models=simulated_models(catalog))
    with Simulator(config) as sim:
        yield sim


@pytest.fixture
def env(monkeypatch, tmp_path):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GATEWAY_KEY", "AZURE_OPENAI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SORAFLOW_MAX_CONCURRENT_SUBMISSIONS", "8")
    return monkeypatch


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def render(tmp_path: Path, board: dict = BOARD):
    request = RenderRequest(storyboard_path=str(write(tmp_path, "board.yaml", yaml.safe_dump(board))), out_dir=str(tmp_path / "out"))
    return render_storyboard(request, return_state=True)


def test_a_gateway_and_an_azure_deployment_make_one_film_paid_once(sim, endpoint_proxy, env, tmp_path):
    sim.reset()
    gateway = endpoint_proxy(sim, auth=bearer("gw-key-1"), models_route=False, strict_accept=True)
    azure = endpoint_proxy(sim, auth=azure_key("az-key-1"), prefix="/openai/v1", deployments={"my-video-deployment"})
    env.setenv("SORAFLOW_MODELS", str(write(tmp_path, "models.yaml", MODELS.format(gateway=gateway.base_url, azure=azure.base_url))))
    env.setenv("GATEWAY_KEY", "gw-key-1")
    env.setenv("AZURE_OPENAI_API_KEY", "az-key-1")

    state = render(tmp_path)
    assert state.is_completed(), state.message
    result = state.result()
    assert result.estimated_usd == "9.10"  # 18 s at $0.45 through the gateway, 4 s at $0.25 on Azure
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    clips = [(c["shot_id"], c["part"], c["profile"], c["model"], c["endpoint"], c["seconds"], c["price_usd"]) for c in manifest["clips"]]
    assert clips == [
        ("harbour", 1, "gateway-veo", "veo-3.1", "gateway", 6, "2.70"),
        ("storm", 1, "gateway-veo", "veo-3.1", "gateway", 6, "2.70"),
        ("storm", 2, "gateway-veo", "veo-3.1", "gateway", 6, "2.70"),
        ("quay", 1, "house-video", "my-video-deployment", "azure", 4, "1.00"),
    ]
    assert manifest["endpoints"] == {"azure": azure.base_url, "gateway": gateway.base_url}
    assert manifest["totals"]["estimated_usd"] == manifest["totals"]["billed_usd"] == manifest["run"]["billed_usd"] == "9.10"
    assert abs(float(ffmpeg.probe(result.film)["format"]["duration"]) - 22) <= 0.3
    assert sorted((j["model"], j["seconds"]) for j in sim.jobs()) == [("my-video-deployment", "4")] + [("veo-3.1", "6")] * 3
    # each endpoint got its own credential, and only its own
    assert {s.headers.get("authorization") for s in gateway.seen} == {"Bearer gw-key-1"}
    assert {(s.headers.get("api-key"), s.headers.get("authorization")) for s in azure.seen} == {("az-key-1", None)}
    # the gateway's entry asks for 2 clips in flight there: a limit of its own beside the global one
    ledger = Ledger(str(tmp_path / "state" / "ledger.sqlite"))
    assert [s.capacity for s in Slots(ledger).state(["endpoint:gateway"])] == [2]
    assert sim.stats()["peak_active_jobs"] <= 3
    assert sorted(e.endpoint for e in ledger.entries([c["clip_key"] for c in manifest["clips"]]).values()) == ["azure"] + ["gateway"] * 3

    seen = (len(gateway.seen), len(azure.seen), sim.stats()["requests_total"])
    again = render(tmp_path)
    assert again.is_completed(), again.message
    assert (len(gateway.seen), len(azure.seen), sim.stats()["requests_total"]) == seen  # the rerun asks neither
    assert again.result().billed_usd_this_run == "0.00"


def test_one_endpoint_without_its_key_refuses_the_plan_before_anything_is_spent(sim, endpoint_proxy, env, tmp_path):
    gateway = endpoint_proxy(sim, auth=bearer("gw-key-1"))
    env.setenv("SORAFLOW_MODELS", str(write(tmp_path, "models.yaml", MODELS.format(gateway=gateway.base_url, azure="http://127.0.0.1:9/openai/v1"))))
    env.setenv("GATEWAY_KEY", "gw-key-1")
    jobs = len(sim.jobs())
    state = render(tmp_path)
    assert state.is_failed()
    with pytest.raises(PreflightError) as err:  # the plan's refusal, among the preflight's problems
        state.result()
    assert "endpoint 'azure' has no credentials here: set AZURE_OPENAI_API_KEY (needed by shot 'quay')" in str(err.value)
    assert gateway.seen == [] and len(sim.jobs()) == jobs


def test_with_no_credentials_a_flow_run_renders_every_profile_on_the_embedded_simulator(env, tmp_path):
    """A worker with no key at all: the flow itself starts the simulator, which takes the
    gateway's own model name and its 6 s clips because the profile says so."""
    from soraflow.simulator.embedded import running_simulator

    env.setenv("SORAFLOW_MODELS", str(write(tmp_path, "models.yaml", MODELS.format(gateway="http://127.0.0.1:9/v1", azure="http://127.0.0.1:9/openai/v1"))))
    env.setenv("SORAFLOW_SIMULATOR_LATENCY", "0.4")
    board = {**BOARD, "title": "Simulated Endpoints", "shots": BOARD["shots"][:1] + BOARD["shots"][2:]}
    state = render(tmp_path, board)
    assert state.is_completed(), state.message
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["endpoints"] == {"azure": "soraflow-simulator", "gateway": "soraflow-simulator"}
    embedded = running_simulator()
    made = {(j["model"], j["seconds"]) for j in embedded.jobs() if j["id"] in {c["job_id"] for c in manifest["clips"]}}
    assert made == {("veo-3.1", "6"), ("my-video-deployment", "4")}
