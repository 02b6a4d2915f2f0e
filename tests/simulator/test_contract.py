"""The simulator against the reference description, checked with openapi-core: every operation
it serves answers in the reference's shapes, and the checks themselves can fail."""

from __future__ import annotations

import json

import pytest

from soraflow.simulator.contract import REFERENCE_PATH, HttpRequest, HttpResponse, request_problems, response_problems

from .conftest import api_client, sdk_client

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

NOT_SIMULATED = {("post", "/videos/characters"), ("get", "/videos/characters/{character_id}"), ("post", "/videos/edits"),
                 ("post", "/videos/extensions")}


def reference_operations() -> list[tuple[str, str]]:
    paths = json.loads(REFERENCE_PATH.read_text())["paths"]
    return [(method, path) for path, ops in paths.items() for method in ops if method in ("get", "post", "delete")]


def test_every_videos_and_models_operation_is_served(sim):
    client = sdk_client(sim)
    done = client.videos.create_and_poll(prompt="Shot contract", seconds="4")
    bodies = {"/videos": {"prompt": "Shot contract again"}, "/videos/{video_id}/remix": {"prompt": "Shot contract remix"}}
    served = []
    with api_client(sim) as api:
        for method, path in sorted(reference_operations(), key=lambda op: op[0] == "delete"):  # delete last
            if (method, path) in NOT_SIMULATED:
                continue
            url = path.format(video_id=done.id, model="sora-2").lstrip("/")
            response = api.request(method.upper(), url, json=bodies.get(path)) if method == "post" else api.request(method.upper(), url)
            assert response.status_code == 200, (method, path, response.text)
            served.append((method, path))
    assert len(served) == len(reference_operations()) - len(NOT_SIMULATED) == 8
    assert sim.contract_violations == []


@pytest.mark.parametrize("method, path", sorted(NOT_SIMULATED))
def test_characters_edits_and_extensions_are_not_simulated(sim, method, path):
    with api_client(sim, contract=False) as api:
        response = api.request(method.upper(), path.format(character_id="char_1").lstrip("/"), json={})
    assert response.status_code == 404 and response.json()["error"]["message"].startswith("Invalid URL")


def test_the_response_check_catches_a_broken_body():
    request = HttpRequest("GET", "/v1/videos/video_1", headers={"Authorization": "Bearer k"})
    video = {"id": "video_1", "object": "video", "model": "sora-2", "status": "completed", "progress": 100, "created_at": 1,
             "completed_at": 2, "expires_at": 3, "prompt": "p", "size": "1280x720", "seconds": "4",
             "remixed_from_video_id": None, "error": None}
    ok = HttpResponse(200, json.dumps(video).encode(), {"content-type": "application/json"})
    assert response_problems(request, ok) == []
    for broken in ({**video, "status": "done"}, {k: v for k, v in video.items() if k != "progress"}, {**video, "size": "640x480"}):
        assert response_problems(request, HttpResponse(200, json.dumps(broken).encode(), {"content-type": "application/json"}))
    no_param = {"error": {"message": "m", "type": "invalid_request_error", "code": None}}
    assert response_problems(request, HttpResponse(404, json.dumps(no_param).encode(), {"content-type": "application/json"}))
    assert response_problems(request, HttpResponse(500, b"<html>oops</html>", {"content-type": "text/html"}))


def test_the_request_check_catches_what_the_reference_forbids():
    auth = {"Authorization": "Bearer k", "content-type": "application/json"}
    assert request_problems(HttpRequest("POST", "/v1/videos", headers=auth, body=b'{"prompt": "p", "seconds": "8"}')) == []
    assert any("'16' is not one of" in p for p in request_problems(HttpRequest("POST", "/v1/videos", headers=auth, body=b'{"prompt": "p", "seconds": "16"}')))
    assert request_problems(HttpRequest("GET", "/v1/videos"))  # no key
    assert request_problems(HttpRequest("GET", "/v1/videos", query=[("limit", "500")], headers=auth))


def test_validating_simulator_records_requests_beyond_the_reference(start_sim):
    sim = start_sim(validate_requests=True)
    client = sdk_client(sim, contract=False)
    client.videos.create(prompt="Shot within spec", seconds="12", size="1280x720")
    assert sim.contract_violations == []
    client.videos.create(prompt="Shot beyond spec", seconds="16", size="1280x720")  # accepted, as the live service did
    [violation] = sim.contract_violations
    assert violation["route"] == "POST /v1/videos" and any("'16'" in p for p in violation["problems"])
    assert sim.stats()["contract_violations"] == [violation]
