"""Routing: which endpoint is called for real, which is simulated, and what is refused."""

from __future__ import annotations

import pytest

from soraflow.errors import EndpointNotConfiguredError
from soraflow.models import SIMULATOR_IDENTITY, builtin_catalog, load_catalog, route_endpoints
from soraflow.plan import plan_storyboard
from soraflow.storyboard import parse_storyboard

CATALOG = load_catalog(text="""
endpoints:
  gateway: {base_url: http://localhost:4000/v1, key_env: GATEWAY_KEY}
  azure: {base_url: https://res.openai.azure.com/openai/v1, auth: api-key, key_env: AZURE_OPENAI_API_KEY}
models:
  gateway-veo: {endpoint: gateway, seconds: [4, 6, 8], sizes: {1280x720: 0.40}}
  house-sora: {like: sora-2, endpoint: azure}
""")


def board(*models: str) -> dict:
    return {"title": "t", "shots": [{"id": f"s{i}", "seconds": 4, "visual": "v", "model": m} for i, m in enumerate(models)]}


def test_no_credentials_anywhere_simulates_every_endpoint_in_its_dialect():
    routing = route_endpoints(CATALOG, {})
    assert routing.simulated_because == "no-credentials"
    assert {name: (r.simulated, r.identity) for name, r in routing.routes.items()} == {
        "openai": (True, SIMULATOR_IDENTITY),
        "gateway": (True, SIMULATOR_IDENTITY),
        "azure": (True, SIMULATOR_IDENTITY),
        "vertex": (True, "soraflow-simulator:google-genai"),
        "fal": (True, "soraflow-simulator:fal"),
    }


def test_one_configured_endpoint_means_the_others_are_refused_naming_the_variable():
    routing = route_endpoints(CATALOG, {"GATEWAY_KEY": "gk-1"})
    assert routing.simulated_because is None
    assert routing.route("gateway").identity == "http://localhost:4000/v1" and not routing.route("gateway").simulated
    plan = plan_storyboard(parse_storyboard(board("gateway-veo"), catalog=CATALOG), catalog=CATALOG, routing=routing)
    assert [c.endpoint for c in plan.clips] == ["gateway"]
    with pytest.raises(EndpointNotConfiguredError) as info:
        plan_storyboard(parse_storyboard(board("gateway-veo", "house-sora", "sora-2"), catalog=CATALOG), catalog=CATALOG, routing=routing)
    message = str(info.value)
    assert "endpoint 'azure' has no credentials here: set AZURE_OPENAI_API_KEY (needed by shot 's1')" in message
    assert "endpoint 'openai' has no credentials here: set OPENAI_API_KEY (needed by shot 's2')" in message
    assert "Nothing was created" in message and "SORAFLOW_SIMULATE=1" in message and "gk-1" not in message


def test_simulation_can_be_forced():
    routing = route_endpoints(CATALOG, {"GATEWAY_KEY": "gk-1", "SORAFLOW_SIMULATE": "1"})
    assert routing.simulated_because == "forced" and all(r.simulated for r in routing.routes.values())
    assert route_endpoints(CATALOG, {"GATEWAY_KEY": "gk-1"}, simulate=True).simulated_because == "forced"


def test_clip_keys_follow_the_endpoint_identity_not_its_key():
    sb = parse_storyboard(board("gateway-veo"), catalog=CATALOG)
    key = lambda env: plan_storyboard(sb, catalog=CATALOG, routing=route_endpoints(CATALOG, env)).clips[0].clip_key  # noqa: E731
    assert key({"GATEWAY_KEY": "a"}) == key({"GATEWAY_KEY": "b"})
    assert key({"GATEWAY_KEY": "a"}) != key({})  # the simulator is another endpoint


def test_entra_id_and_keyless_endpoints_count_as_configured():
    catalog = load_catalog(text="""
endpoints:
  azure: {base_url: https://res.openai.azure.com/openai/v1, auth: entra-id}
  lan: {base_url: http://10.0.0.5:4000/v1, auth: none}
  vault: {base_url: https://gw.example/v1, key_secret: gateway-key}
""")
    routing = route_endpoints(catalog, {})
    assert set(routing.routes) == {"azure", "lan", "vault"} and set(routing.unconfigured) == {"openai", "vertex", "fal"}


def test_vertex_is_configured_the_way_the_sdk_reads_its_variables():
    catalog = builtin_catalog()
    assert route_endpoints(catalog, {"GOOGLE_CLOUD_PROJECT": "p1"}).route("vertex").identity == "google-genai:default:p1/us-central1"
    env = {"GOOGLE_CLOUD_PROJECT": "p1", "GOOGLE_CLOUD_LOCATION": "europe-west4"}
    assert route_endpoints(catalog, env).route("vertex").identity == "google-genai:default:p1/europe-west4"
    assert route_endpoints(catalog, {"GOOGLE_API_KEY": "k"}).route("vertex").identity == "google-genai:default:vertex-express"
    assert route_endpoints(catalog, {"GOOGLE_API_KEY": "k"}).unconfigured == {"openai": "OPENAI_API_KEY", "fal": "FAL_KEY"}
