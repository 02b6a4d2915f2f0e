"""The simulator against the reference description, checked with openapi-core: every operation
it serves answers in the reference's shapes, and the checks themselves can fail."""

from __future__ import annotations

import json

import httpx
import pytest

from soraflow.simulator.openai.contract import REFERENCE_PATH, HttpRequest, HttpResponse, request_problems, response_problems

from .conftest import api_client, sdk_client

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

def reference_operations() -> list[tuple[str, str]]:
    paths = json.loads(REFERENCE_PATH.read_text())["paths"]
    return [(method, path) for path, ops in paths.items() for method in ops if method in ("get", "post", "delete")]


def test_every_videos_and_models_operation_is_served(sim, tmp_path):
    client = sdk_client(sim)
    done = client.videos.create_and_poll(prompt="Shot contract", seconds="4")
    clip = tmp_path / "contract.mp4"
    client.videos.download_content(done.id).write_to_file(clip)
    json_bodies = {
        "/videos": {"prompt": "Shot contract again"},
        "/videos/{video_id}/remix": {"prompt": "Shot contract remix"},
        "/videos/edits": {"prompt": "Shot contract edit", "video": {"id": done.id}},
        "/videos/extensions": {"prompt": "Shot contract extension", "seconds": "4", "video": {"id": done.id}},
    }
    forms = {"/videos/characters": {"name": (None, "Contract keeper"), "video": ("keeper.mp4", clip.read_bytes(), "video/mp4")}}
    ids = {"video_id": done.id, "model": "sora-2"}
    served = []
    # The character is fetched after it is made, the video deleted last.
    order = sorted(reference_operations(), key=lambda op: (op[0] == "delete", "{character_id}" in op[1]))
    with api_client(sim) as api:
        for method, path in order:
            url = path.format(**ids).lstrip("/")
            if path in forms:
                response = api.post(url, files=forms[path])
            elif method == "post":
                response = api.post(url, json=json_bodies[path])
            else:
                response = api.request(method.upper(), url)
            assert response.status_code == 200, (method, path, response.text)
            if path == "/videos/characters":
                ids["character_id"] = response.json()["id"]
            served.append((method, path))
    assert sorted(served) == sorted(reference_operations()) and len(served) == 12
    assert sim.contract_violations == []


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


def form_request(path: str, data: dict, files: dict | None = None) -> HttpRequest:
    """A multipart request as httpx (and so the SDK) encodes it."""
    parts = {name: (None, value) for name, value in data.items()} | (files or {})
    sent = httpx.Request("POST", f"http://simulator/v1{path}", files=parts)
    return HttpRequest("POST", f"/v1{path}", headers={"Authorization": "Bearer k", **dict(sent.headers)}, body=sent.read())


def test_form_objects_are_read_as_the_sdk_writes_them():
    # The SDK writes {"video": {"id": ...}} in a form as the part video[id]: read as that object.
    assert request_problems(form_request("/videos/extensions", {"prompt": "p", "seconds": "4", "video[id]": "video_1"})) == []
    assert request_problems(form_request("/videos/edits", {"prompt": "p", "video[id]": "video_1"})) == []
    # ... and checked against the object's schema, not waved through.
    wrong_member = request_problems(form_request("/videos/edits", {"prompt": "p", "video[name]": "video_1"}))
    assert any("not valid under any of the given schemas" in p for p in wrong_member)
    assert any("'video' is a required property" in p for p in request_problems(form_request("/videos/edits", {"prompt": "p"})))
    upload = {"video": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")}
    assert request_problems(form_request("/videos/characters", {"name": "Keeper"}, upload)) == []
    assert any("should be non-empty" in p for p in request_problems(form_request("/videos/characters", {"name": ""}, upload)))
