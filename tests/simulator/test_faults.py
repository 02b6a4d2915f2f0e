"""Every fault kind as a client sees it, faults changed at run time, and seeded repeatability."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from .conftest import api_client, by_id, sdk_client

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


def completed_video(sim) -> str:
    return sdk_client(sim).videos.create_and_poll(prompt="Shot faults", seconds="4").id


def test_429_carries_retry_after_and_the_services_body(start_sim):
    sim = start_sim(faults="429=1", retry_after_seconds=2)
    with pytest.raises(openai.RateLimitError) as err:
        sdk_client(sim).videos.list()  # the contract hook checks the error envelope too
    assert err.value.response.headers["retry-after"] == "2"
    assert err.value.code == "rate_limit_exceeded" and err.value.type == "requests"
    assert sim.stats()["faults_injected"] == {"429": 1}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(start_sim, status):
    sim = start_sim(faults=f"{status}=1")
    with pytest.raises(openai.InternalServerError) as err:
        sdk_client(sim).videos.create(prompt="Shot 5xx", seconds="4")
    assert err.value.status_code == status and err.value.type == "server_error"
    assert sim.jobs() == []  # refused before anything was accepted


def test_reset_closes_the_connection_after_the_job_was_accepted(start_sim):
    sim = start_sim(faults="reset=1")
    with pytest.raises(openai.APIConnectionError) as err:
        sdk_client(sim).videos.create(prompt="Shot reset", seconds="4")
    assert not isinstance(err.value, openai.APITimeoutError)
    assert isinstance(err.value.__cause__, (httpx.ReadError, httpx.RemoteProtocolError)) or "reset" in repr(err.value.__cause__).lower()
    [job] = sim.jobs()  # the answer was lost, the job was not: what a ledger must reconcile
    assert job["prompt"] == "Shot reset"
    assert sim.stats()["faults_injected"] == {"reset": 1}


def test_stall_outlasts_a_client_timeout_then_answers_normally(start_sim):
    sim = start_sim(faults="stall=1", stall_seconds=1.5)
    with pytest.raises(openai.APITimeoutError):
        sdk_client(sim, timeout=0.3).models.list()
    sim.set_faults("stall=1")
    models = sdk_client(sim, timeout=10).models.list()
    assert [m.id for m in models][:1] == ["sora-2"]
    assert sim.stats()["faults_injected"] == {"stall": 2}


def test_truncate_sends_a_short_body_under_a_full_content_length(start_sim):
    sim = start_sim()
    video_id = completed_video(sim)
    sim.set_faults("truncate=1")
    with api_client(sim, contract=False) as api:
        assert api.get("models").status_code == 200  # only content downloads are truncated
        received = 0
        with pytest.raises(httpx.RemoteProtocolError):
            with api.stream("GET", f"videos/{video_id}/content") as response:
                announced = int(response.headers["content-length"])
                for chunk in response.iter_raw():
                    received += len(chunk)
    assert 0 < received < announced
    with pytest.raises(openai.APIConnectionError):
        sdk_client(sim, contract=False).videos.download_content(video_id).read()
    assert sim.stats()["faults_injected"] == {"truncate": 2}


def test_moderation_fails_the_job_with_moderation_blocked(start_sim):
    sim = start_sim(faults="moderation=1")
    client = sdk_client(sim)
    video = client.videos.create(prompt="Shot blocked", seconds="4")
    assert video.status == "queued"
    failed = client.videos.poll(video.id)  # poll returns (does not raise) on failed
    assert failed.status == "failed" and failed.error.code == "moderation_blocked" and failed.completed_at is None
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)
    assert sim.stats()["faults_injected"] == {"moderation": 1}


def derived_call(client, operation: str, video_id: str, clip: bytes):
    """One call to an edit, extension or character route, made from a completed video."""
    if operation == "edit":
        return client.videos.edit(prompt="Shot faulted edit", **by_id(video_id))
    if operation == "extend":
        return client.videos.extend(prompt="Shot faulted extension", seconds="4", **by_id(video_id))
    return client.videos.create_character(name="Faulted keeper", video=("keeper.mp4", clip, "video/mp4"))


@pytest.mark.parametrize("operation", ["edit", "extend", "create_character"])
def test_edit_extension_and_character_routes_get_the_same_wire_faults(start_sim, operation):
    sim = start_sim()
    client = sdk_client(sim)
    video_id = completed_video(sim)
    clip = client.videos.download_content(video_id).read()

    def accepted() -> int:
        return len(sim.jobs()) + len(sim.state.characters.all())

    before = accepted()
    sim.set_faults("429=1")
    with pytest.raises(openai.RateLimitError) as limited:
        derived_call(client, operation, video_id, clip)
    assert limited.value.response.headers["retry-after"] == "1"
    sim.set_faults("503=1")
    with pytest.raises(openai.InternalServerError):
        derived_call(client, operation, video_id, clip)
    assert accepted() == before  # refused before anything was accepted
    sim.set_faults("reset=1")
    with pytest.raises(openai.APIConnectionError):
        derived_call(client, operation, video_id, clip)
    assert accepted() == before + 1  # the answer was lost, what it made was not
    assert sim.stats()["faults_injected"] == {"429": 1, "503": 1, "reset": 1}


def test_fetching_a_character_gets_faults_too(start_sim, tmp_path):
    sim = start_sim()
    client = sdk_client(sim)
    clip = client.videos.download_content(completed_video(sim)).read()
    character = client.videos.create_character(name="Keeper", video=("keeper.mp4", clip, "video/mp4"))
    sim.set_faults("500=1")
    with pytest.raises(openai.InternalServerError):
        client.videos.get_character(character.id)
    sim.set_faults("")
    assert client.videos.get_character(character.id).name == "Keeper"
    assert sim.stats()["requests_by_route"]["GET /v1/videos/characters/{character_id}"] == 2


@pytest.mark.parametrize("operation", ["edit", "extend"])
def test_moderation_fails_edits_and_extensions(start_sim, operation):
    sim = start_sim()
    client = sdk_client(sim)
    video_id = completed_video(sim)
    sim.set_faults("moderation=1")
    job = derived_call(client, operation, video_id, b"")
    failed = client.videos.poll(job.id)
    assert failed.status == "failed" and failed.error.code == "moderation_blocked"
    assert sim.stats()["faults_injected"] == {"moderation": 1}


def test_faults_never_touch_admin_routes(start_sim):
    sim = start_sim(faults="500=1")
    for _ in range(5):
        assert httpx.get(f"{sim.url}/_sim/stats").status_code == 200
    stats = httpx.get(f"{sim.url}/_sim/stats").json()
    assert stats["requests_total"] == 0 and stats["faults_injected"] == {}


def test_faults_change_at_run_time_over_http(start_sim):
    sim = start_sim()
    with api_client(sim, contract=False) as api:
        assert api.get("models").status_code == 200
        assert httpx.post(f"{sim.url}/_sim/faults", json={"faults": "503=1", "seed": 4}).json() == {"faults": "503=1", "seed": 4}
        assert api.get("models").status_code == 503
        refused = httpx.post(f"{sim.url}/_sim/faults", json={"faults": "418=1"})
        assert refused.status_code == 400 and "'418'" in refused.json()["error"]["message"]
        assert api.get("models").status_code == 503  # a refused spec leaves the old one in force
        httpx.post(f"{sim.url}/_sim/faults", json={"faults": ""})
        assert api.get("models").status_code == 200


def outcomes(sim, requests: int = 40) -> list[str]:
    """A fixed sequence of requests (lists and creates) and what each got, moderation included."""
    seen, created = [], []
    with api_client(sim, contract=False) as api:
        for i in range(requests):
            try:
                if i % 4 == 0:
                    response = api.post("videos", files={"prompt": (None, f"Shot seeded {i}")})
                    if response.status_code == 200:
                        created.append(response.json()["id"])
                else:
                    response = api.get("videos", params={"limit": 1})
                seen.append(str(response.status_code))
            except httpx.TransportError:
                seen.append("reset")
    sim.set_faults("", seed=None)
    deadline = time.monotonic() + 120  # renders are slow under a loaded machine; a render unfinished at the deadline would differ by luck, not by seed
    with api_client(sim, contract=False) as api:
        while True:
            statuses = [api.get(f"videos/{job}").json()["status"] for job in created]
            if all(s in ("completed", "failed") for s in statuses) or time.monotonic() > deadline:
                return seen + statuses
            time.sleep(0.1)


def test_a_seed_repeats_the_same_faults_for_the_same_requests(start_sim):
    spec = "429=0.15,500=0.1,502=0.05,503=0.05,reset=0.1,moderation=0.5"
    sim = start_sim(faults=spec, seed=11, latency=0.2)
    first = outcomes(sim)
    sim.reset()
    sim.set_faults(spec, seed=11)
    second = outcomes(sim)
    sim.reset()
    sim.set_faults(spec, seed=12)
    other = outcomes(sim)
    assert first == second
    assert {"200", "429", "500", "reset", "completed", "failed"} <= set(first)  # the run really had faults
    assert other != first
