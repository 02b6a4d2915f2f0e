"""Characters through the unchanged openai SDK: made from an uploaded clip, fetched by id, and
the uploads and ids the service refuses, in its error envelope."""

from __future__ import annotations

import time

import openai
import pytest

from .conftest import api_client, error_of, sdk_client
from .media import ffmpeg_image, mp4, png

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


def test_create_a_character_then_fetch_it(sim, tmp_path):
    client = sdk_client(sim)
    clip = mp4(tmp_path / "keeper.mp4", 1280, 720, 3)
    created = client.videos.create_character(name="Lighthouse keeper", video=("keeper.mp4", clip, "video/mp4"))
    assert created.id.startswith("char_") and created.name == "Lighthouse keeper"
    assert abs(created.created_at - time.time()) < 60
    fetched = client.videos.get_character(created.id)
    assert (fetched.id, fetched.name, fetched.created_at) == (created.id, created.name, created.created_at)

    other = client.videos.create_character(name="Gull", video=open(tmp_path / "keeper.mp4", "rb"))
    assert other.id != created.id and client.videos.get_character(other.id).name == "Gull"
    stored = sim.state.characters.get(created.id).video
    assert stored.path.read_bytes() == clip and (stored.size, round(stored.duration)) == ("1280x720", 3)
    assert sim.contract_violations == []


def test_an_unknown_character_answers_404(sim):
    with pytest.raises(openai.NotFoundError) as err:
        sdk_client(sim).videos.get_character("char_missing")
    error = error_of(err.value.response)
    assert (error["param"], error["type"]) == ("character_id", "invalid_request_error")
    assert "char_missing" in error["message"]


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: png(1280, 720), "is a png image, not a video"),
        (lambda d: ffmpeg_image(d / "still.jpg", 1280, 720), "is a jpeg image"),  # ffprobe alone calls it a video
        (lambda d: b"plain text, not a clip", "not a video ffprobe can read"),
        (lambda d: mp4(d / "cut.mp4", 1280, 720, 2)[:3000], "not a video ffprobe can read"),
        (lambda d: b"", "is empty"),
    ],
    ids=["png", "jpeg", "text", "truncated", "empty"],
)
def test_an_upload_that_is_not_a_video_is_refused(sim, tmp_path, make, fragment):
    before = len(sim.state.characters.all())
    with pytest.raises(openai.BadRequestError) as err:
        sdk_client(sim).videos.create_character(name="Nobody", video=("clip.mp4", make(tmp_path), "video/mp4"))
    error = error_of(err.value.response)
    assert (error["param"], error["code"]) == ("video", "invalid_video_format") and fragment in error["message"], error
    assert len(sim.state.characters.all()) == before
    assert not [p for p in sim.state.uploads_dir.iterdir() if p.name.startswith(".upload-")]  # nothing half-kept


@pytest.mark.parametrize(
    "name, code",
    [("", "empty_string"), ("x" * 81, "string_above_max_length"), (None, "missing_required_parameter")],
)
def test_the_name_is_checked(start_sim, tmp_path, name, code):
    sim = start_sim()
    parts = {"video": ("keeper.mp4", mp4(tmp_path / "keeper.mp4", 1280, 720, 2), "video/mp4")}
    if name is not None:
        parts["name"] = (None, name)
    with api_client(sim) as api:
        response = api.post("videos/characters", files=parts)
    assert response.status_code == 400
    assert (error_of(response)["param"], error_of(response)["code"]) == ("name", code)
    assert sim.state.characters.all() == []


def test_the_video_must_be_an_uploaded_file(start_sim):
    sim = start_sim()
    with api_client(sim) as api:
        missing = api.post("videos/characters", files={"name": (None, "Keeper")})
        text = api.post("videos/characters", files={"name": (None, "Keeper"), "video": (None, "video_123")})
    assert (missing.status_code, error_of(missing)["code"]) == (400, "missing_required_parameter")
    assert (text.status_code, error_of(text)["param"], error_of(text)["code"]) == (400, "video", "invalid_type")
