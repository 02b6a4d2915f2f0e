"""Edits and extensions through the unchanged openai SDK: new jobs made from a completed video
(named by id) or from an uploaded video file, and the sources the service refuses."""

from __future__ import annotations

import openai
import pytest

from .conftest import by_id, error_of, sdk_client
from .media import close_colours, colour_at, mp4, png, probe

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


def test_extend_a_completed_video_plays_it_then_the_new_seconds(sim, tmp_path):
    client = sdk_client(sim)
    source = client.videos.create_and_poll(model="sora-2-pro", prompt="Shot harbour — part 1", seconds="4", size="1280x720")
    extension = client.videos.extend(prompt="Shot harbour — the boat leaves", seconds="8", **by_id(source.id))
    # The reference: "For extensions, this is the stitched total duration."
    assert (extension.status, extension.model, extension.size, extension.seconds) == ("queued", "sora-2-pro", "1280x720", "12")
    assert extension.id != source.id and extension.prompt == "Shot harbour — the boat leaves"
    assert extension.remixed_from_video_id is None

    done = client.videos.poll(extension.id)
    assert (done.status, done.progress, done.error) == ("completed", 100, None)
    clip, original = tmp_path / "extension.mp4", tmp_path / "source.mp4"
    client.videos.download_content(extension.id).write_to_file(clip)
    client.videos.download_content(source.id).write_to_file(original)
    info = probe(clip)
    [video], [audio] = info["video"], info["audio"]
    assert abs(info["duration"] - float(done.seconds)) <= 0.1
    assert (video["codec_name"], video["width"], video["height"], audio["codec_name"]) == ("h264", 1280, 720, "aac")
    # The source plays first, then the new segment (each render has its own background colour).
    assert close_colours(colour_at(clip, 2), colour_at(original, 2))
    assert not close_colours(colour_at(clip, 8), colour_at(original, 2))
    assert extension.id in [v.id for v in client.videos.list(limit=100)]
    assert sim.stats()["extensions"] >= 1
    assert sim.contract_violations == []


def test_extend_an_uploaded_video(sim, tmp_path):
    client = sdk_client(sim)
    upload = mp4(tmp_path / "upload.mp4", 720, 1280, 4, audio=False)
    extension = client.videos.extend(prompt="Shot upload — continued", seconds="4", video=("upload.mp4", upload, "video/mp4"))
    assert (extension.model, extension.size, extension.seconds) == ("sora-2", "720x1280", "8")
    assert client.videos.poll(extension.id).status == "completed"
    clip = tmp_path / "extension.mp4"
    client.videos.download_content(extension.id).write_to_file(clip)
    info = probe(clip)
    assert abs(info["duration"] - 8) <= 0.1 and len(info["audio"]) == 1  # a silent upload gains a sound track
    assert sim.contract_violations == []


def test_edit_a_completed_video_renders_its_size_and_length_anew(sim, tmp_path):
    client = sdk_client(sim)
    source = client.videos.create_and_poll(prompt="Shot garden at noon", seconds="8", size="720x1280")
    edit = client.videos.edit(prompt="Shot garden at noon, now in snow", **by_id(source.id))
    assert (edit.status, edit.model, edit.size, edit.seconds) == ("queued", source.model, "720x1280", "8")
    assert edit.prompt == "Shot garden at noon, now in snow" and edit.remixed_from_video_id is None
    done = client.videos.poll(edit.id)
    assert done.status == "completed"
    clip = tmp_path / "edit.mp4"
    client.videos.download_content(edit.id).write_to_file(clip)
    info = probe(clip)
    [video] = info["video"]
    assert (video["width"], video["height"]) == (720, 1280) and abs(info["duration"] - 8) <= 0.1
    assert [v.id for v in client.videos.list(limit=2).data] == [edit.id, source.id]  # listed like any job
    assert sim.contract_violations == []


def test_edit_an_uploaded_video(sim, tmp_path):
    client = sdk_client(sim)
    mp4(path := tmp_path / "upload.mp4", 1280, 720, 4)
    with open(path, "rb") as upload:  # an open file, as an SDK user would pass it
        edit = client.videos.edit(prompt="Shot upload, recoloured", video=upload)
    assert (edit.model, edit.size, edit.seconds) == ("sora-2", "1280x720", "4")
    assert client.videos.poll(edit.id).status == "completed"
    assert sim.contract_violations == []


@pytest.mark.parametrize("operation", ["edit", "extend"])
def test_an_unknown_source_id_answers_404(sim, operation):
    client = sdk_client(sim)
    before = len(sim.jobs())
    with pytest.raises(openai.NotFoundError) as err:
        _derive(client, operation, "video_missing")
    error = error_of(err.value.response)
    assert (error["param"], error["type"]) == ("video", "invalid_request_error")
    assert "video_missing" in error["message"]
    assert len(sim.jobs()) == before


@pytest.mark.parametrize("operation, done", [("edit", "edited"), ("extend", "extended")])
def test_an_unfinished_source_is_refused_as_remix_refuses_it(start_sim, operation, done):
    sim = start_sim(latency=30)
    client = sdk_client(sim)
    pending = client.videos.create(prompt="Shot slow", seconds="4")
    with pytest.raises(openai.BadRequestError) as err:
        _derive(client, operation, pending.id)
    error = error_of(err.value.response)
    assert error["param"] == "video" and f"is queued; only completed videos can be {done}" in error["message"]
    assert len(sim.jobs()) == 1


@pytest.mark.parametrize("operation", ["edit", "extend"])
def test_a_failed_source_is_refused(start_sim, operation):
    sim = start_sim(moderation_terms=["forbidden"])
    client = sdk_client(sim)
    failed = client.videos.poll(client.videos.create(prompt="Shot forbidden", seconds="4").id)
    assert failed.status == "failed"
    with pytest.raises(openai.BadRequestError) as err:
        _derive(client, operation, failed.id)
    assert "is failed; only completed videos" in error_of(err.value.response)["message"]


@pytest.mark.parametrize(
    "make, code, fragment",
    [
        (lambda d: png(720, 1280), "invalid_video_format", "is a png image, not a video"),
        (lambda d: b"not a video at all", "invalid_video_format", "not a video ffprobe can read"),
        (lambda d: mp4(d / "cut.mp4", 720, 1280, 4)[:4000], "invalid_video_format", "not a video ffprobe can read"),
        (lambda d: mp4(d / "small.mp4", 320, 240, 4), "invalid_video_size", "is 320x240; supported sizes for sora-2"),
        (lambda d: mp4(d / "short.mp4", 720, 1280, 2), "invalid_video_duration", "2.00 s long"),
    ],
    ids=["image", "text", "truncated", "size", "length"],
)
def test_a_bad_upload_is_refused(sim, tmp_path, make, code, fragment):
    client = sdk_client(sim)
    before = len(sim.jobs())
    for operation in ("edit", "extend"):
        with pytest.raises(openai.BadRequestError) as err:
            _derive(client, operation, upload=("source.mp4", make(tmp_path), "video/mp4"))
        error = error_of(err.value.response)
        assert (error["param"], error["code"]) == ("video", code) and fragment in error["message"], error
    assert len(sim.jobs()) == before


def test_extension_seconds_are_checked_against_the_catalog(start_sim):
    sim = start_sim()
    client = sdk_client(sim)
    source = client.videos.create_and_poll(prompt="Shot lengths", seconds="4")
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.extend(prompt="Shot longer", seconds="5", **by_id(source.id))
    error = error_of(err.value.response)
    assert (error["param"], error["code"]) == ("seconds", "invalid_value") and "'20'" in error["message"]
    # The reference lists 16 and 20 for extensions, as the live service accepted them.
    assert client.videos.extend(prompt="Shot longer", seconds="20", **by_id(source.id)).seconds == "24"


def _derive(client, operation: str, video_id: str | None = None, upload=None):
    source = by_id(video_id) if video_id else {"video": upload}
    if operation == "edit":
        return client.videos.edit(prompt="Shot derived", **source)
    return client.videos.extend(prompt="Shot derived", seconds="4", **source)


