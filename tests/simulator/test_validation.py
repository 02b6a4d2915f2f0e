"""Requests the service refuses, refused the same way, in the service's error envelope; and the
beyond-spec values the live service accepted, accepted. Every response is checked against
the reference contract by the client's response hook."""

from __future__ import annotations

import base64
import json

import pytest

from soraflow.models import builtin_catalog

from .conftest import api_client, error_of, sdk_client
from .media import ffmpeg_image, png

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


def multipart(api, files=None, **fields):
    """POST /videos as the SDK sends it: multipart/form-data, optionally with a file part."""
    parts = {name: (None, value) for name, value in fields.items()}
    parts.update(files or {})
    return api.post("videos", files=parts)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}])
def test_a_bearer_key_is_required(sim, headers):
    with api_client(sim, key=None) as api:
        response = api.get("videos", headers=headers)
    assert response.status_code == 401
    assert "API key" in error_of(response)["message"]


def test_any_non_empty_key_is_accepted(sim):
    with api_client(sim, key="sk-anything-at-all") as api:
        assert api.get("models").status_code == 200


def test_defaults_are_the_services(sim):
    with api_client(sim) as api:
        video = multipart(api, prompt="Shot defaults").json()
    assert (video["model"], video["seconds"], video["size"]) == ("sora-2", "4", "720x1280")


def test_json_body_with_a_data_url_reference(sim):
    image = base64.b64encode(png(720, 1280)).decode()
    with api_client(sim) as api:
        response = api.post(
            "videos",
            json={"prompt": "Shot json", "seconds": "4", "size": "720x1280", "input_reference": {"image_url": f"data:image/png;base64,{image}"}},
        )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"


@pytest.mark.parametrize(
    "fields, param, code",
    [
        ({"prompt": "x", "model": "sora-3"}, "model", "invalid_value"),
        ({"prompt": "x", "seconds": "5"}, "seconds", "invalid_value"),
        ({"prompt": "x", "size": "640x480"}, "size", "invalid_value"),
        ({"prompt": "x", "model": "sora-2", "size": "1792x1024"}, "size", "invalid_value"),
        ({"prompt": "x", "model": "sora-2", "size": "1920x1080"}, "size", "invalid_value"),
        ({"prompt": ""}, "prompt", "empty_string"),
        ({"prompt": "x" * 32001}, "prompt", "string_above_max_length"),
        ({"model": "sora-2"}, "prompt", "missing_required_parameter"),
        ({"prompt": "x", "quality": "high"}, "quality", "unknown_parameter"),
    ],
)
def test_invalid_create_parameters_are_refused(sim, fields, param, code):
    before = len(sim.jobs())
    with api_client(sim) as api:
        response = multipart(api, **fields)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert len(sim.jobs()) == before


def test_refusals_name_the_allowed_values(sim):
    with api_client(sim) as api:
        seconds = error_of(multipart(api, prompt="x", seconds="5"))["message"]
        size = error_of(multipart(api, prompt="x", model="sora-2", size="1920x1080"))["message"]
    assert all(f"'{s}'" in seconds for s in ("4", "8", "12", "16", "20"))
    assert "sora-2" in size and "'1280x720'" in size and "'720x1280'" in size


def test_json_seconds_must_be_a_string(sim):
    with api_client(sim) as api:
        response = api.post("videos", json={"prompt": "x", "seconds": 8})
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_type"


@pytest.mark.parametrize(
    "model, seconds, size",
    [("sora-2", "16", "720x1280"), ("sora-2", "20", "1280x720"), ("sora-2-pro", "12", "1792x1024"), ("sora-2-2025-12-08", "8", "1280x720")],
)
def test_profile_values_are_accepted(sim, model, seconds, size):
    with api_client(sim) as api:
        response = multipart(api, prompt=f"Shot accepted {model} {seconds} {size}", model=model, seconds=seconds, size=size)
    assert response.status_code == 200, response.text
    assert (response.json()["seconds"], response.json()["size"]) == (seconds, size)


def test_beyond_spec_1080p_on_pro_is_accepted(start_sim):
    # The reference's VideoSize enum has no 1080p, so this response cannot pass the contract
    # check: the live service was ahead of its published description here.
    sim = start_sim()
    with api_client(sim, contract=False) as api:
        response = multipart(api, prompt="Shot pro 1080p", model="sora-2-pro", seconds="4", size="1920x1080")
    assert response.status_code == 200 and response.json()["size"] == "1920x1080"
    assert sim.jobs()[0]["size"] == "1920x1080"
    assert sorted(builtin_catalog().profile("sora-2-pro").size_names(allow_beyond_spec=True)) == sorted(
        ["720x1280", "1280x720", "1024x1792", "1792x1024", "1080x1920", "1920x1080"]
    )


def test_prompt_of_32000_characters_is_accepted(sim):
    with api_client(sim) as api:
        response = multipart(api, prompt="Shot long\n" + "y" * (32000 - 10))
    assert response.status_code == 200


@pytest.mark.parametrize("suffix, extra", [(".jpg", ()), (".webp", ()), (".webp", ("-lossless", "1"))])
def test_jpeg_and_webp_references_of_the_right_size_are_accepted(sim, tmp_path, suffix, extra):
    image = ffmpeg_image(tmp_path / f"ref{suffix}", 720, 1280, *extra)
    with api_client(sim) as api:
        response = multipart(api, files={"input_reference": (f"ref{suffix}", image, "image/webp")}, prompt="Shot ref", size="720x1280")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "image, fragment",
    [(png(1280, 720), "1280x720"), (png(720, 1279), "720x1279"), (b"GIF89a" + b"\x00" * 40, "not a supported image")],
)
def test_a_reference_that_is_not_an_image_of_the_size_is_refused(sim, image, fragment):
    before = len(sim.jobs())
    with api_client(sim) as api:
        response = multipart(api, files={"input_reference": ("ref.png", image, "image/png")}, prompt="Shot ref", size="720x1280")
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "input_reference" and fragment in error["message"]
    assert len(sim.jobs()) == before


def test_unknown_ids_answer_404(sim):
    with api_client(sim) as api:
        for response in (
            api.get("videos/video_missing"),
            api.delete("videos/video_missing"),
            api.get("videos/video_missing/content"),
            api.post("videos/video_missing/remix", json={"prompt": "x"}),
        ):
            assert response.status_code == 404
            assert "video_missing" in error_of(response)["message"]


def test_content_of_an_unfinished_video_answers_404_not_ready(start_sim):
    sim = start_sim(latency=30)
    with api_client(sim) as api:
        video = multipart(api, prompt="Shot pending").json()
        response = api.get(f"videos/{video['id']}/content")
        delete = api.delete(f"videos/{video['id']}")
    assert response.status_code == 404 and "not ready" in error_of(response)["message"]
    assert delete.status_code == 400 and "only completed or failed" in error_of(delete)["message"]


def test_list_parameters_are_checked(sim):
    with api_client(sim) as api:
        assert error_of(api.get("videos", params={"limit": 101}))["param"] == "limit"
        assert error_of(api.get("videos", params={"order": "sideways"}))["param"] == "order"
        assert api.get("videos", params={"after": "video_nope"}).status_code == 404
        empty = api.get("videos", params={"limit": 0}).json()
    assert empty["data"] == [] and empty["first_id"] is None and empty["last_id"] is None


def test_content_variant_is_checked(sim):
    with api_client(sim) as api:
        video = multipart(api, prompt="Shot variant").json()
        response = api.get(f"videos/{video['id']}/content", params={"variant": "gif"})
    assert response.status_code == 400 and error_of(response)["param"] == "variant"


def test_unknown_urls_answer_in_the_envelope(sim):
    with api_client(sim, contract=False) as api:  # not in the reference, so nothing to check against
        response = api.get("videos/video_1/frames")
        post = api.post("engines", json={})
    assert response.status_code == 404 and error_of(response)["message"] == "Invalid URL (GET /v1/videos/video_1/frames)"
    assert post.status_code == 404 and error_of(post)["message"] == "Invalid URL (POST /v1/engines)"


def test_malformed_json_is_refused(sim):
    with api_client(sim) as api:
        response = api.post("videos", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in error_of(response)["message"]
    assert json.loads(response.text)["error"]["type"] == "invalid_request_error"


def test_a_broken_multipart_body_is_refused_in_the_envelope(sim):
    with api_client(sim) as api:
        response = api.post("videos", content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 400 and error_of(response)["message"] == "Invalid multipart data."


@pytest.fixture(scope="module")
def completed(sim) -> str:
    return sdk_client(sim).videos.create_and_poll(prompt="Shot source", seconds="4").id


@pytest.mark.parametrize("path, extra", [("videos/edits", {}), ("videos/extensions", {"seconds": "4"})])
def test_the_source_may_be_a_json_object_or_a_form_part_holding_it(sim, completed, path, extra):
    with api_client(sim) as api:
        as_json = api.post(path, json={"prompt": "Shot json source", "video": {"id": completed}, **extra})
        as_part = api.post(path, files={"prompt": (None, "Shot part source"), "video": (None, f'{{"id": "{completed}"}}'),
                                        **{k: (None, v) for k, v in extra.items()}})
    assert as_json.status_code == as_part.status_code == 200, (as_json.text, as_part.text)
    assert as_json.json()["status"] == as_part.json()["status"] == "queued"


@pytest.mark.parametrize(
    "path, body, param, code",
    [
        ("videos/edits", {"prompt": "x", "video": "video_1"}, "video", "invalid_type"),
        ("videos/edits", {"prompt": "x", "video": {}}, "video.id", "missing_required_parameter"),
        ("videos/edits", {"prompt": "x", "video": {"id": "video_1", "name": "y"}}, "video.name", "unknown_parameter"),
        ("videos/edits", {"prompt": "x"}, "video", "missing_required_parameter"),
        ("videos/edits", {"video": {"id": "video_1"}}, "prompt", "missing_required_parameter"),
        ("videos/edits", {"prompt": "x", "video": {"id": "video_1"}, "model": "sora-2-pro"}, "model", "unknown_parameter"),
        ("videos/extensions", {"prompt": "x", "video": {"id": "video_1"}}, "seconds", "missing_required_parameter"),
        ("videos/extensions", {"prompt": "x", "video": {"id": "video_1"}, "seconds": 8}, "seconds", "invalid_type"),
        ("videos/extensions", {"prompt": "", "video": {"id": "video_1"}, "seconds": "4"}, "prompt", "empty_string"),
        ("videos/extensions", {"prompt": "x", "video": {"id": "video_1"}, "size": "1280x720", "seconds": "4"}, "size",
         "unknown_parameter"),
    ],
)
def test_invalid_edit_and_extension_parameters_are_refused(sim, path, body, param, code):
    before = len(sim.jobs())
    with api_client(sim) as api:
        response = api.post(path, json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert len(sim.jobs()) == before


@pytest.mark.parametrize("path", ["videos/edits", "videos/extensions", "videos/characters"])
def test_a_key_is_required_on_the_new_routes(sim, path):
    with api_client(sim, key=None) as api:
        response = api.post(path, json={})
    assert response.status_code == 401 and "API key" in error_of(response)["message"]
