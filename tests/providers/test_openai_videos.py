"""The openai-videos provider at endpoints other than the simulator itself: Azure's api-key
header, Entra ID tokens, a gateway's own key, strict content negotiation, a missing /models
route and Azure's DeploymentNotFound. Each endpoint is a proxy in front of a simulator."""

from __future__ import annotations

import time
from datetime import date

import openai
import pytest

from soraflow.watch import availability
from soraflow.errors import EndpointNotConfiguredError, ModelUnavailableError, PermanentProviderError
from soraflow.models import load_catalog, route_endpoints
from soraflow.providers import ModelListUnavailable, build_provider, connect
from soraflow.settings import Settings
from soraflow.simulator import Simulator, SimulatorConfig, simulated_models

from ..fixtures.endpoints import azure_key, bearer, tokens

CATALOG_YAML = """
endpoints:
  gateway: {base_url: http://placeholder/v1, key_env: GATEWAY_KEY}
  azure: {base_url: http://placeholder/openai/v1, auth: api-key, key_env: AZURE_OPENAI_API_KEY, models_route: false}
  azure-entra: {base_url: http://placeholder/openai/v1, auth: entra-id, models_route: false}
models:
  gateway-veo: {endpoint: gateway, model: veo-3.1, seconds: [4, 6, 8], sizes: {1280x720: 0.45}}
  house-video: {endpoint: azure, model: my-video-deployment, seconds: [4, 8], sizes: {1280x720: 0.25}, retires: 2026-01-31}
  entra-video: {endpoint: azure-entra, model: my-video-deployment, seconds: [4, 8], sizes: {1280x720: 0.25}}
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    catalog = load_catalog(text=CATALOG_YAML)
    config = SimulatorConfig(latency=0.2, cache_dir=str(tmp_path_factory.mktemp("renders")), models=simulated_models(catalog))
    with Simulator(config) as sim:
        yield sim


def provider_at(endpoint: str, base_url: str, env: dict, monkeypatch):
    """The provider soraflow builds for ``endpoint`` with the endpoint's URL and ``env``."""
    text = CATALOG_YAML.replace("http://placeholder/openai/v1" if "azure" in endpoint else "http://placeholder/v1", base_url)
    catalog = load_catalog(text=text)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = Settings(transient_retries=0)
    route = route_endpoints(catalog, settings.environment).route(endpoint)
    return build_provider(connect(route, settings.environment), settings)


def finished(provider, job_id: str):
    deadline = time.monotonic() + 20
    while True:
        job, _ = provider.retrieve(job_id)
        if job.terminal:
            return job
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_azure_key_goes_in_the_api_key_header_and_nowhere_else(sim, endpoint_proxy, monkeypatch, tmp_path):
    azure = endpoint_proxy(sim, auth=azure_key("az-key-1"), prefix="/openai/v1", deployments={"my-video-deployment"})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-not-travel")
    provider = provider_at("azure", azure.base_url, {"AZURE_OPENAI_API_KEY": "az-key-1"}, monkeypatch)
    job = provider.create(model="my-video-deployment", size="1280x720", seconds=4, prompt="Shot azure")
    assert finished(provider, job.id).status == "completed"
    got = provider.download(job.id, tmp_path / "clip.mp4")
    assert got.size > 0 and (tmp_path / "clip.mp4").is_file()
    assert azure.seen and all(s.headers.get("api-key") == "az-key-1" and "authorization" not in s.headers for s in azure.seen)
    assert sim.jobs()[-1]["model"] == "my-video-deployment"


def test_an_unknown_azure_deployment_is_a_configuration_error_not_a_retirement(sim, endpoint_proxy, monkeypatch):
    azure = endpoint_proxy(sim, auth=azure_key("az-key-1"), prefix="/openai/v1", deployments={"another-deployment"})
    provider = provider_at("azure", azure.base_url, {"AZURE_OPENAI_API_KEY": "az-key-1"}, monkeypatch)
    jobs_before = len(sim.jobs())
    with pytest.raises(PermanentProviderError) as err:
        provider.create(model="my-video-deployment", size="1280x720", seconds=4, prompt="Shot azure")
    assert not isinstance(err.value, ModelUnavailableError)
    message = str(err.value)
    assert "no deployment named 'my-video-deployment' at endpoint azure" in message and "retire" not in message
    assert len(sim.jobs()) == jobs_before


class FakeCredential:
    """Stands in for DefaultAzureCredential: issues short-lived tokens and counts the calls."""

    issued: list[str] = []
    scopes: list[tuple] = []

    def __init__(self, *args, **kwargs):
        pass

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        FakeCredential.scopes.append(scopes)
        FakeCredential.issued.append(f"entra-token-{len(FakeCredential.issued) + 1}")
        # Expiring within the policy's refresh margin: a new token for every request.
        return AccessToken(FakeCredential.issued[-1], int(time.time()) + 60)


def test_entra_id_tokens_come_from_the_token_provider_on_every_request(sim, endpoint_proxy, monkeypatch, tmp_path):
    import azure.identity

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeCredential)
    FakeCredential.issued, FakeCredential.scopes = [], []
    entra = endpoint_proxy(sim, auth=tokens(FakeCredential.issued), prefix="/openai/v1")
    provider = provider_at("azure-entra", entra.base_url, {}, monkeypatch)
    job = provider.create(model="my-video-deployment", size="1280x720", seconds=4, prompt="Shot entra")
    assert finished(provider, job.id).status == "completed"
    provider.download(job.id, tmp_path / "clip.mp4")
    sent = [s.headers["authorization"] for s in entra.seen]
    assert len(sent) >= 3 and len(set(sent)) == len(sent)  # a fresh token each time: refreshed, never static
    assert set(sent) <= {f"Bearer {t}" for t in FakeCredential.issued}
    assert set(FakeCredential.scopes) == {("https://cognitiveservices.azure.com/.default",)}


def test_a_gateway_gets_its_own_key_never_openais(sim, endpoint_proxy, monkeypatch):
    gateway = endpoint_proxy(sim, auth=bearer("gw-key-1"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-not-travel")
    provider = provider_at("gateway", gateway.base_url, {"GATEWAY_KEY": "gw-key-1"}, monkeypatch)
    job = provider.create(model="veo-3.1", size="1280x720", seconds=6, prompt="Shot gateway")
    assert (job.model, job.seconds) == ("veo-3.1", "6")
    assert {s.headers["authorization"] for s in gateway.seen} == {"Bearer gw-key-1"}


def test_no_key_names_the_variable_to_set(sim, monkeypatch):
    catalog = load_catalog(text=CATALOG_YAML)
    settings = Settings()
    route = route_endpoints(catalog, {"AZURE_OPENAI_API_KEY": "x"}).route("azure")
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    with pytest.raises(EndpointNotConfiguredError, match="endpoint azure .* has no key: set AZURE_OPENAI_API_KEY"):
        build_provider(connect(route, {}), settings)


def test_downloads_ask_for_what_a_strict_server_serves(sim, endpoint_proxy, monkeypatch, tmp_path):
    strict = endpoint_proxy(sim, auth=bearer("gw-key-1"), strict_accept=True)
    provider = provider_at("gateway", strict.base_url, {"GATEWAY_KEY": "gw-key-1"}, monkeypatch)
    job = provider.create(model="veo-3.1", size="1280x720", seconds=4, prompt="Shot strict")
    finished(provider, job.id)
    assert provider.download(job.id, tmp_path / "clip.mp4").size > 0
    assert provider.download(job.id, tmp_path / "thumb.webp", variant="thumbnail").size > 0
    # The SDK's own Accept (application/binary) is what such a server refuses.
    client = openai.OpenAI(base_url=strict.base_url, api_key="gw-key-1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        client.videos.download_content(job.id)
    assert refused.value.status_code == 406


def test_a_406_says_what_happened(sim, endpoint_proxy, monkeypatch, tmp_path):
    picky = endpoint_proxy(sim, auth=bearer("gw-key-1"), strict_accept="video/webm")
    provider = provider_at("gateway", picky.base_url, {"GATEWAY_KEY": "gw-key-1"}, monkeypatch)
    job = provider.create(model="veo-3.1", size="1280x720", seconds=4, prompt="Shot picky")
    finished(provider, job.id)
    with pytest.raises(PermanentProviderError) as err:
        provider.download(job.id, tmp_path / "clip.mp4")
    message = str(err.value)
    assert "406 Not Acceptable" in message and "gateway" in message and "video/mp4" in message
    assert not (tmp_path / "clip.mp4").exists()


def test_a_thumbnail_that_is_the_video_is_refused_naming_the_endpoint(sim, endpoint_proxy, monkeypatch, tmp_path):
    litellm_like = endpoint_proxy(sim, auth=bearer("gw-key-1"), ignores_variant=True)
    provider = provider_at("gateway", litellm_like.base_url, {"GATEWAY_KEY": "gw-key-1"}, monkeypatch)
    job = provider.create(model="veo-3.1", size="1280x720", seconds=4, prompt="Shot variant")
    finished(provider, job.id)
    assert provider.download(job.id, tmp_path / "clip.mp4").size > 0
    with pytest.raises(PermanentProviderError, match=r"endpoint gateway \(http://127.0.0.1:\d+/v1\) answered the thumbnail .* with video/mp4"):
        provider.download(job.id, tmp_path / "thumb.webp", variant="thumbnail")
    assert not (tmp_path / "thumb.webp").exists() and not list(tmp_path.glob(".thumb*"))


def test_without_a_models_route_availability_comes_from_the_profile(sim, endpoint_proxy, monkeypatch):
    gateway = endpoint_proxy(sim, auth=bearer("gw-key-1"), models_route=False)
    provider = provider_at("gateway", gateway.base_url, {"GATEWAY_KEY": "gw-key-1"}, monkeypatch)
    with pytest.raises(ModelListUnavailable, match="does not serve /models"):
        provider.list_models()
    statuses, warning = availability.ensure_available({"veo-3.1": None}, provider, where="gateway")
    assert statuses == {"veo-3.1": "available"}
    assert warning.startswith("endpoint gateway (http://127.0.0.1:") and "from the profiles' retirement dates" in warning
    with pytest.raises(ModelUnavailableError, match="model veo-3.1 was retired on 2026-01-31"):
        availability.ensure_available({"veo-3.1": date(2026, 1, 31)}, provider, where="gateway", today=date(2026, 11, 1))
    # Declared in the profile file (Azure lists base models, not deployments): not even asked.
    azure = provider_at("azure", gateway.base_url, {"AZURE_OPENAI_API_KEY": "k"}, monkeypatch)
    before = len(gateway.seen)
    assert availability.ensure_available({"my-video-deployment": None}, azure)[0] == {"my-video-deployment": "available"}
    assert len(gateway.seen) == before


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("id", "", "id '', not a job id"),
        ("id", "..", "id '..', not a job id"),
        ("id", "video 1", "id 'video 1', not a job id"),
        ("id", "x" * 600, f"id '{'x' * 80}…', not a job id (1-512 printable characters"),
        ("id", None, "id None, not a job id"),
        ("status", 3, "job 'video_1': status 3, not a status"),
        ("created_at", "yesterday", "job 'video_1': created_at 'yesterday', not a Unix time in seconds"),
        ("created_at", True, "job 'video_1': created_at True, not a Unix time"),
        ("expires_at", -5, "job 'video_1': expires_at -5, not a Unix time"),
    ],
)
def test_a_malformed_job_field_is_refused_naming_the_endpoint_route_and_field(field, value, said):
    from types import SimpleNamespace

    from soraflow.errors import UntrustedAnswerError
    from soraflow.providers.openai_videos import _job

    video = SimpleNamespace(**{"id": "video_1", "status": "queued", "created_at": 1_790_000_000, field: value})
    with pytest.raises(UntrustedAnswerError) as err:
        _job(video, "gw (http://gw/v1)", "GET /videos")
    assert str(err.value).startswith(f"endpoint gw (http://gw/v1) answered GET /videos with {said}"), str(err.value)
    assert _job(SimpleNamespace(id="video_1/part=2", status="queued", created_at=1_790_000_000.0), "gw", "GET /videos").created_at == 1_790_000_000


def test_no_credential_header_goes_to_another_origin():
    import httpx

    from soraflow.providers.openai_videos import credentials_stay_at

    hook = credentials_stay_at("https://res.openai.azure.com/openai/v1")
    for url, kept in [("https://res.openai.azure.com:443/openai/v1/videos/x/content", True),
                      ("https://cdn.example.com/x.mp4", False), ("http://res.openai.azure.com/x", False),
                      ("https://res.openai.azure.com:8443/x", False)]:  # fmt: skip
        request = httpx.Request("GET", url, headers={"api-key": "k", "Authorization": "Bearer t", "Accept": "video/mp4"})
        hook(request)
        assert ("api-key" in request.headers, "authorization" in request.headers) == (kept, kept), url
        assert request.headers["accept"] == "video/mp4"
