"""From a route to a provider: with no credentials anywhere, every profile — whatever its model
name, lengths and sizes, in either dialect — is served by the process's embedded simulator."""

from __future__ import annotations

import time

import pytest

from soraflow.models import load_catalog, route_endpoints
from soraflow.providers import build_provider, connect
from soraflow.settings import Settings
from soraflow.simulator import simulated_models
from soraflow.simulator.embedded import running_simulator

CATALOG = load_catalog(text="""
endpoints:
  gateway: {base_url: http://127.0.0.1:9/v1, key_env: GATEWAY_KEY}
models:
  gateway-clip: {endpoint: gateway, model: house-clip-v2, seconds: [3, 6], sizes: {960x540: 0.05}}
  house-veo: {like: veo-3.1-fast-generate-001, model: house-veo-fast}
""")


def finished(provider, job_id: str):
    deadline = time.monotonic() + 30
    while True:
        job, _ = provider.retrieve(job_id)
        if job.terminal:
            return job
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize("profile, size, seconds", [("gateway-clip", "960x540", 6), ("house-veo", "720x1280", 6)])
def test_the_embedded_simulator_serves_any_profile(profile, size, seconds, tmp_path):
    routing = route_endpoints(CATALOG, {})
    p = CATALOG.profile(profile)
    route = routing.route(p.endpoint)
    settings = Settings(state_dir=tmp_path, simulator_latency=0.3, transient_retries=0)
    connection = connect(route, {}, simulated_models=simulated_models(CATALOG), simulator_latency=0.3)
    provider = build_provider(connection, settings)
    assert connection.base_url.startswith(running_simulator().url) and route.simulated
    job = provider.create(model=p.model, size=size, seconds=seconds, prompt=f"Shot {profile}")
    assert finished(provider, job.id).status == "completed"
    assert provider.download(job.id, tmp_path / "clip.mp4").size > 0
    made = [j for j in running_simulator().jobs() if j["model"] == p.model]
    assert made and (made[-1]["size"], made[-1]["seconds"]) == (size, str(seconds))


def test_a_length_the_profile_does_not_offer_is_refused_by_the_simulator_too(tmp_path):
    from soraflow.errors import PermanentProviderError

    route = route_endpoints(CATALOG, {}).route("gateway")
    provider = build_provider(connect(route, {}, simulated_models=simulated_models(CATALOG)), Settings(state_dir=tmp_path))
    with pytest.raises(PermanentProviderError, match="Supported values for house-clip-v2 are: '3', '6'"):
        provider.create(model="house-clip-v2", size="960x540", seconds=4, prompt="Shot four")


def test_each_dialect_is_registered_under_its_class_s_name_and_its_sdk_imported_only_when_built():
    import subprocess
    import sys

    from soraflow.providers import PROVIDERS, FalQueueProvider, GoogleVeoProvider, OpenAIVideosProvider

    assert set(PROVIDERS) == {OpenAIVideosProvider.dialect, GoogleVeoProvider.dialect, FalQueueProvider.dialect}
    # Commands that reach no endpoint (estimate, an up-to-date rerun) do not pay for the SDKs.
    probe = "import sys, soraflow.cli; print(sorted(m for m in ('openai', 'google.genai', 'fal_client') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
