"""The user's profile file: adding, inheriting, overriding, and errors that name the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from soraflow.errors import ModelsFileError, StoryboardError
from soraflow.models import load_catalog
from soraflow.storyboard import parse_storyboard

GATEWAY = """
endpoints:
  gateway: {base_url: http://localhost:4000/v1, key_env: GATEWAY_KEY, models_route: false}
  azure: {base_url: https://res.openai.azure.com/openai/v1, auth: entra-id}
models:
  gateway-veo:
    endpoint: gateway
    model: vertex_ai/veo-3.1-generate-001
    seconds: [4, 6, 8]
    sizes: {1280x720: 0.40, 1920x1080: {usd_per_second: 0.45, seconds: [8]}}
    prompt_max_chars: 4000
  house-sora: {like: sora-2, endpoint: azure, retires: 2026-10-15}
  sora-2-pro: {concurrency: 1}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ModelsFileError) as info:
        load_catalog(text=text, source="models.yaml")
    return [str(p) for p in info.value.problems]


def test_a_gateway_profile_an_azure_deployment_and_an_override():
    catalog = load_catalog(text=GATEWAY, source="models.yaml")
    veo = catalog.profile("gateway-veo")
    assert (veo.model, veo.endpoint, veo.clip_seconds()) == ("vertex_ai/veo-3.1-generate-001", "gateway", (4, 6, 8))
    assert veo.price("1280x720", 6) == Decimal("2.40") and veo.clip_seconds("1920x1080") == (8,)
    assert catalog.endpoints["gateway"].models_route is False

    house = catalog.profile("house-sora")  # everything of sora-2, its own deployment name and date
    assert (house.model, house.endpoint, str(house.retires)) == ("house-sora", "azure", "2026-10-15")
    assert house.sizes == catalog.profile("sora-2").sizes and house.prompt_max_chars == 32000

    pro = catalog.profile("sora-2-pro")  # laid over the built-in one, field by field
    assert pro.concurrency == 1 and pro.price("1792x1024", 4) == Decimal("2.00") and pro.endpoint == "openai"
    assert catalog.sources == ("soraflow/models/builtin.yaml", "models.yaml")


def test_an_endpoint_override_keeps_the_built_in_fields():
    catalog = load_catalog(text="endpoints:\n  openai: {models_route: false}\n")
    openai = catalog.endpoints["openai"]
    assert openai.models_route is False and openai.key_env == "OPENAI_API_KEY" and openai.base_url_env == "OPENAI_BASE_URL"


def test_mistakes_are_all_named_by_field():
    found = problems_of("""
endpoints:
  gw: {base_url: localhost:4000, key_env: GW_KEY, retries: 3}
  nokey: {base_url: http://gw/v1, auth: api-key}
  vertex2: {dialect: google-genai, auth: bearer, project: p}
models:
  gateway-veo:
    endpoint: gw
    seconds: [4, six, 8]
    sizes: {1280x720: cheap, 720x1280: {usd_per_second: 0.4, seconds: [10]}}
  lost: {endpoint: nowhere, seconds: [4], sizes: {1280x720: 0.1}}
  copy: {like: sora-9}
  loop-a: {like: loop-b}
  loop-b: {like: loop-a}
  neg: {like: sora-2, sizes: {1280x720: -1}}
  typo: {like: sora-2, secnds: [4]}
""")
    expected = [
        "endpoints.gw.retries: unknown key; allowed keys: ",
        "endpoints.nokey: auth 'api-key' needs key_env",
        "endpoints.vertex2: auth 'bearer' is not used with dialect google-genai",
        "models.gateway-veo.sizes.1280x720: 'cheap' is not a price",
        "models.lost.endpoint: 'nowhere' is not a defined endpoint; known endpoints: ",
        "models.copy.like: 'sora-9' is not a known profile; known profiles: ",
        "models.loop-b.like: 'loop-a' inherits from itself (loop-a → loop-b → loop-a)",
        "models.neg.sizes.1280x720.usd_per_second: -1 is not allowed",
        "models.typo.secnds: unknown key; allowed keys: ",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in found), (start, found)
    # the endpoint's own problem first: a URL without a scheme
    assert any(p.startswith("endpoints.gw: base_url 'localhost:4000'") or "endpoints.gw" in p for p in found)


def test_a_bad_length_is_named_by_its_index():
    found = problems_of("models:\n  gateway-veo: {like: sora-2, seconds: [4, six, 8]}\n")
    assert found == ["models.gateway-veo.seconds[1]: 'six' is not allowed: Input should be a valid integer, unable to parse string as an integer"]


def test_a_size_limited_to_lengths_the_profile_lacks():
    [p] = problems_of("models:\n  x: {like: sora-2, sizes: {1280x720: {usd_per_second: 0.1, seconds: [10]}}}\n")
    assert p == "models.x.sizes.1280x720.seconds: 10 is not one of the profile's clip lengths (4, 8, 12, 16, 20)"


def test_credentials_in_a_url_are_refused():
    [p] = problems_of("endpoints:\n  gw: {base_url: 'https://user:hunter2@gw.example/v1', key_env: K}\n")
    assert p.startswith("endpoints.gw: ") and "key_env" in p and "hunter2" not in p and "user" not in p.split("key_env")[0]


def test_not_a_mapping_and_not_yaml():
    assert problems_of("- a\n- b\n") == ["the top level must be a mapping with endpoints and/or models, not list"]
    assert problems_of("models: {a: [\n")[0].startswith("not valid YAML at line")
    assert problems_of("modles: {}\n") == ["modles: unknown key; allowed keys: endpoints, models"]


def test_a_file_that_is_not_there_is_named(tmp_path):
    with pytest.raises(ModelsFileError, match="no such file: .*missing.yaml"):
        load_catalog(tmp_path / "missing.yaml")


def test_an_unknown_profile_in_a_storyboard_lists_the_known_ones():
    catalog = load_catalog(text=GATEWAY)
    with pytest.raises(StoryboardError) as info:
        parse_storyboard({"title": "t", "model": "gateway-ve0", "shots": [{"id": "a", "seconds": 6, "visual": "v"}]}, catalog=catalog)
    [p] = [str(p) for p in info.value.problems]
    assert p.startswith("model: 'gateway-ve0' is not a known model profile; known profiles: ")
    assert "gateway-veo" in p and "house-sora" in p and "sora-2" in p


def test_a_storyboard_checked_against_a_gateway_profile():
    catalog = load_catalog(text=GATEWAY)
    sb = parse_storyboard({"title": "t", "model": "gateway-veo", "shots": [{"id": "a", "seconds": 6, "visual": "v"}]}, catalog=catalog)
    assert sb.model == "gateway-veo"
    with pytest.raises(StoryboardError) as info:
        parse_storyboard({"title": "t", "model": "gateway-veo", "size": "1920x1080", "shots": [{"id": "a", "seconds": 6, "visual": "v"}]},
                         catalog=catalog)
    [p] = [str(p) for p in info.value.problems]
    assert p.startswith("shots[0].seconds: 6 cannot be made from gateway-veo clip lengths at 1920x1080 8 s")


def test_a_veo_profile_offers_only_sizes_the_google_genai_wire_can_name():
    """google-genai names a size by aspect ratio and resolution: the profile owns which sizes a
    model makes, and a size that wire cannot name is refused with what is allowed."""
    [p] = problems_of("models:\n  square-veo: {like: veo-3.1-generate-001, sizes: {1280x720: 0.4, 1024x1024: 0.4}}\n")
    assert p == (
        "models.square-veo.sizes.1024x1024: google-genai names sizes by aspect ratio (16:9, 9:16) and resolution "
        "(720p, 1080p, 4k); 1024x1024 is 1:1 at 1024p. Allowed sizes: 1280x720, 720x1280, 1920x1080, 1080x1920, "
        "3840x2160, 2160x3840"
    )
    # the same size on an endpoint that takes pixels is the profile's to offer
    assert load_catalog(text="models:\n  square: {like: sora-2, sizes: {1024x1024: 0.4}}\n").profile("square").size_names() == ("1024x1024",)


def test_a_storyboard_size_a_veo_profile_does_not_make_is_refused_with_what_it_makes():
    catalog = load_catalog(text="models:\n  veo-720: {like: veo-3.1-fast-generate-001, sizes: {1280x720: 0.1, 720x1280: 0.1}}\n")
    with pytest.raises(StoryboardError) as info:
        parse_storyboard({"title": "t", "model": "veo-720", "size": "1920x1080", "shots": [{"id": "a", "seconds": 8, "visual": "v"}]},
                         catalog=catalog)
    assert [str(p) for p in info.value.problems] == ["size: '1920x1080' is not offered by veo-720; allowed: 1280x720, 720x1280"]


def test_an_endpoint_declares_its_webhooks_and_each_mistake_is_named():
    catalog = load_catalog(text="""
endpoints:
  openai: {webhooks: {url: https://hooks.example.com/openai, secret_env: OPENAI_WEBHOOK_SECRET}}
  local: {base_url: http://127.0.0.1:4000/v1, auth: none, webhooks: {url: 'http://127.0.0.1:21001/webhooks/local', secret_block: local-whsec}}
""")
    hooks = catalog.endpoints["openai"].webhooks
    assert (hooks.url, hooks.secret_env, hooks.secret({"OPENAI_WEBHOOK_SECRET": "whsec_x"})) == (
        "https://hooks.example.com/openai", "OPENAI_WEBHOOK_SECRET", "whsec_x")
    assert catalog.endpoints["openai"].webhook_signing == "standard-webhooks" and catalog.endpoints["vertex"].webhook_signing is None
    assert catalog.endpoints["local"].webhooks.secret_block == "local-whsec"  # loopback may be plain http

    found = problems_of("""
endpoints:
  plain: {base_url: http://gw/v1, auth: none, webhooks: {url: http://hooks.example.com/plain, secret_env: S}}
  nosecret: {base_url: http://gw/v1, auth: none, webhooks: {url: https://hooks.example.com/n}}
  creds: {base_url: http://gw/v1, auth: none, webhooks: {url: 'https://u:hunter2@hooks.example.com/c?t=1', secret_env: S}}
  vertex: {webhooks: {url: https://hooks.example.com/v, secret_env: S}}
  jwks: {base_url: http://gw/v1, auth: none, webhooks: {url: https://h.example.com/j, secret_env: S, jwks_url: https://k.example.com/j}}
  typo: {base_url: http://gw/v1, auth: none, webhooks: {url: https://h.example.com/t, secret: whsec_abc}}
""")
    expected = [
        "endpoints.plain.webhooks: url 'http://hooks.example.com/plain' must be https:// (plain http only on loopback",
        "endpoints.nosecret: webhooks: dialect openai-videos signs deliveries with a shared whsec_ secret: name where it is",
        "endpoints.creds.webhooks: url 'https://hooks.example.com/c' must carry no credentials, query or fragment",
        "endpoints.vertex: webhooks: dialect google-genai delivers no webhooks (Vertex AI publishes to Pub/Sub)",
        "endpoints.jwks: webhooks.jwks_url is for fal's Ed25519 keys",
        "endpoints.typo.webhooks.secret: unknown key; allowed keys: jwks_url, secret_block, secret_env, url",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in found), (start, found)
    assert len(found) == len(expected) and not any("hunter2" in p for p in found)
