"""Simulator fixtures: simulators on free ports sharing one render cache, clients whose every
response is checked against the reference contract."""

from __future__ import annotations

import httpx
import openai
import pytest

from soraflow.simulator import Simulator, SimulatorConfig
from soraflow.simulator.openai.contract import HttpRequest, HttpResponse, reference_openapi, response_problems

# What the simulator's /v1/models lists by default: the built-in profiles of the openai-videos dialect.
SORA_MODELS = ["sora-2", "sora-2-2025-10-06", "sora-2-2025-12-08", "sora-2-pro", "sora-2-pro-2025-10-06"]

@pytest.fixture(scope="session")
def render_cache(tmp_path_factory):
    """Renders are cached by content, so every simulator in the session shares them."""
    return tmp_path_factory.mktemp("sim-renders")


@pytest.fixture(scope="session")
def reference():
    """The reference contract, loaded once per session."""
    return reference_openapi()


@pytest.fixture
def start_sim(render_cache):
    """Start simulators with the given options (latency 0.3 s unless told); stopped after the test."""
    started: list[Simulator] = []

    def start(**options) -> Simulator:
        options.setdefault("latency", 0.3)
        options.setdefault("cache_dir", str(render_cache))
        sim = Simulator(SimulatorConfig(**options)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture(scope="module")
def sim(render_cache):
    """One simulator per module, checking every request it gets against the reference."""
    with Simulator(SimulatorConfig(latency=0.3, validate_requests=True, cache_dir=str(render_cache))) as sim:
        yield sim


def check_contract(response) -> None:
    """Response hook (httpx and the SDK's httpx2): fail the request that breaks the reference."""
    response.read()
    url = response.request.url
    request = HttpRequest(response.request.method, url.path, list(url.params.multi_items()), dict(response.request.headers))
    reply = HttpResponse(response.status_code, response.content, dict(response.headers))
    problems = response_problems(request, reply)
    if problems:
        raise AssertionError(f"{request.method.upper()} {url.path} -> {response.status_code} breaks the reference: {problems}")


def sdk_client(sim: Simulator, *, contract: bool = True, **options) -> openai.OpenAI:
    """The unchanged openai SDK pointed at ``sim``; SDK retries off so each fault is seen."""
    options.setdefault("max_retries", 0)
    hooks = {"response": [check_contract]} if contract else {}
    return openai.OpenAI(
        base_url=sim.base_url, api_key=sim.api_key, http_client=openai.DefaultHttpxClient(event_hooks=hooks), **options
    )


def by_id(video_id: str) -> dict:
    """SDK arguments naming a completed video as the source of ``videos.edit`` / ``videos.extend``.

    openai 3.54 types ``video`` as a file or ``{"id": ...}``, but its form encoder takes only
    files: ``videos.edit(video={"id": ...})`` raises RuntimeError before sending. The reference
    object therefore goes in ``extra_body``, which the SDK sends as the form field ``video[id]``,
    the encoding it uses for every object in a form (``input_reference[image_url]`` too).
    """
    return {"video": openai.omit, "extra_body": {"video": {"id": video_id}}}


def error_of(response) -> dict:
    """The error of a response in the service's envelope, checking the envelope's shape."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def api_client(sim: Simulator, *, key: str | None = "sk-test", contract: bool = True, **options) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    hooks = {"response": [check_contract]} if contract else {}
    return httpx.Client(base_url=sim.base_url + "/", headers=headers, event_hooks=hooks, **options)
