"""The unchanged openai SDK against the simulator: every Videos and Models call a client makes."""

from __future__ import annotations

import openai
import pytest

from soraflow.simulator.images import image_size

from .conftest import SORA_MODELS, sdk_client
from .media import corner_colour, png, probe, top_level_boxes

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")


def test_create_with_image_reference_then_download_every_variant(sim, tmp_path):
    client = sdk_client(sim)
    video = client.videos.create(
        model="sora-2",
        prompt="Shot dawn — part 1 of 2\n\nVisual: A white lighthouse on a cliff at dawn.",
        seconds="4",
        size="1280x720",
        input_reference=("keeper.png", png(1280, 720), "image/png"),
    )
    assert (video.status, video.progress, video.model, video.size, video.seconds) == ("queued", 0, "sora-2", "1280x720", "4")
    assert video.id.startswith("video_") and video.completed_at is None and video.expires_at is None

    done = client.videos.poll(video.id)
    assert (done.status, done.progress, done.error) == ("completed", 100, None)
    assert done.created_at <= done.completed_at < done.expires_at

    mp4 = tmp_path / "clip.mp4"
    client.videos.download_content(video.id).write_to_file(mp4)
    info = probe(mp4)
    [v], [a] = info["video"], info["audio"]
    assert (v["codec_name"], v["width"], v["height"], v["pix_fmt"], v["r_frame_rate"]) == ("h264", 1280, 720, "yuv420p", "24/1")
    assert (a["codec_name"], a["sample_rate"], a["channels"]) == ("aac", "48000", 2)
    assert abs(info["duration"] - 4) <= 0.1
    boxes = top_level_boxes(mp4)
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: the index first, for streaming

    thumbnail = client.videos.download_content(video.id, variant="thumbnail").read()
    assert image_size(thumbnail) == ("webp", 1280, 720)
    sprites = client.videos.download_content(video.id, variant="spritesheet").read()
    fmt, width, height = image_size(sprites)
    assert fmt == "jpeg" and width > height
    assert sim.contract_violations == []


def test_create_and_poll_portrait_clip(sim, tmp_path):
    client = sdk_client(sim)
    video = client.videos.create_and_poll(model="sora-2-pro", prompt="Shot keeper", seconds="4", size="1024x1792")
    assert video.status == "completed"
    mp4 = tmp_path / "portrait.mp4"
    client.videos.download_content(video.id).write_to_file(mp4)
    [v] = probe(mp4)["video"]
    assert (v["width"], v["height"]) == (1024, 1792)


def test_list_paginates_across_pages_in_both_orders(start_sim):
    sim = start_sim()
    client = sdk_client(sim)
    created = [client.videos.create(prompt=f"Shot list-{i}", seconds="4", size="720x1280").id for i in range(5)]

    first = client.videos.list(limit=2, order="asc")
    assert [v.id for v in first.data] == created[:2]
    assert (first.has_more, first.last_id) == (True, created[1])
    assert [v.id for v in client.videos.list(limit=2, order="asc")] == created  # auto-pagination
    assert [v.id for v in client.videos.list(limit=2, order="desc")] == created[::-1]
    assert [v.id for v in client.videos.list()] == created[::-1]  # newest first by default
    last = client.videos.list(limit=2, order="asc", after=created[3])
    assert ([v.id for v in last.data], last.has_more) == ([created[4]], False)


def test_remix_records_its_source(sim):
    client = sdk_client(sim)
    source = client.videos.create_and_poll(prompt="Shot lamp", seconds="4", size="720x1280")
    remix = client.videos.remix(source.id, prompt="Shot lamp, now at night")
    assert (remix.remixed_from_video_id, remix.size, remix.seconds, remix.model) == (source.id, "720x1280", "4", source.model)
    assert client.videos.poll(remix.id).status == "completed"


def test_a_remix_carries_its_source_s_look_and_a_remix_of_a_remix_too(sim, tmp_path):
    """The remix keeps its source's colour (its new prompt is drawn on it); the same prompt
    created afresh gets a colour of its own."""
    client = sdk_client(sim)
    source = client.videos.create_and_poll(prompt="Shot lamp in the harbour", seconds="4", size="1280x720")
    remix = client.videos.poll(client.videos.remix(source.id, prompt="Shot lamp in the harbour, now at night").id)
    again = client.videos.poll(client.videos.remix(remix.id, prompt="Shot lamp in the harbour, in fog").id)
    fresh = client.videos.create_and_poll(prompt="Shot lamp in the harbour, now at night", seconds="4", size="1280x720")
    colour = {}
    for name, video in (("source", source), ("remix", remix), ("again", again), ("fresh", fresh)):
        path = tmp_path / f"{name}.mp4"
        client.videos.download_content(video.id).write_to_file(path)
        colour[name] = corner_colour(path)
    assert close(colour["remix"], colour["source"]) and close(colour["again"], colour["source"]), colour
    assert not close(colour["fresh"], colour["source"]), colour


def test_remix_of_an_unfinished_video_is_refused(start_sim):
    sim = start_sim(latency=30)
    client = sdk_client(sim)
    pending = client.videos.create(prompt="Shot slow", seconds="4")
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.remix(pending.id, prompt="again")
    assert "only completed videos can be remixed" in err.value.message


def test_delete_removes_the_video(sim):
    client = sdk_client(sim)
    video = client.videos.create_and_poll(prompt="Shot to delete", seconds="4")
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)
    assert video.id not in [v.id for v in client.videos.list(limit=100)]


def test_models_list_and_retrieve(sim):
    client = sdk_client(sim)
    models = client.models.list()
    assert [m.id for m in models] == SORA_MODELS
    assert all(m.owned_by and m.created > 0 and getattr(m, "shutdown_date", None) is None for m in models)
    assert client.models.retrieve("sora-2-pro").id == "sora-2-pro"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("sora-3")
    assert err.value.code == "model_not_found"


def close(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return all(abs(x - y) <= 6 for x, y in zip(a, b))
