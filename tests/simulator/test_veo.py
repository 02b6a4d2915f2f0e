"""Veo as the unchanged google-genai SDK speaks it: generate → poll → fetch the video, in express
mode and with application-default credentials; inputs; every fault kind in Google's envelope;
the safety filter; a model that is gone; videos written to Cloud Storage."""

from __future__ import annotations

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.genai import errors, types

from .media import close_colours, colour_at, png, probe
from .veo import express_client, generate, service_account_file, until_done, wire_errors


def test_express_mode_generate_poll_and_fetch_the_video(start_sim, tmp_path):
    sim = start_sim()
    client = express_client(sim)
    operation = generate(client, aspect_ratio="9:16", resolution="720p", duration_seconds=6, generate_audio=True, seed=7,
                         negative_prompt="rain", person_generation="allow_adult")
    assert operation.name.startswith("projects/") and "/publishers/google/models/veo-3.1-fast-generate-001/operations/" in operation.name
    assert not operation.done
    done = until_done(client, operation)
    assert done.error is None and done.result.rai_media_filtered_count == 0
    [generated] = done.result.generated_videos
    assert generated.video.mime_type == "video/mp4" and generated.video.uri is None
    generated.video.save(str(tmp_path / "clip.mp4"))
    info = probe(tmp_path / "clip.mp4")
    assert (info["video"][0]["width"], info["video"][0]["height"]) == (720, 1280)
    assert abs(info["duration"] - 6) < 0.1 and len(info["audio"]) == 1
    [job] = httpx.get(f"{sim.url}/_sim/jobs").json()["data"]  # Veo work is counted with the rest
    assert job["dialect"] == "google-genai" and job["id"] == operation.name


def test_application_default_credentials_with_project_and_location(start_sim, tmp_path, monkeypatch):
    sim = start_sim()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file(tmp_path, sim)))
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", sim.url)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    from google import genai

    # Credentials and base URL from the SDK's own environment variables; vertexai, project and
    # location passed, as soraflow's provider passes them: with a custom base URL, google-genai
    # 3.6.1 drops a project and location that came from GOOGLE_CLOUD_PROJECT/LOCATION (it takes
    # the URL for a gateway's full path), and reads GOOGLE_VERTEX_BASE_URL only when vertexai=True
    # is given (GOOGLE_GENAI_USE_VERTEXAI alone makes it read GOOGLE_GEMINI_BASE_URL).
    client = genai.Client(vertexai=True, project="sim-project", location="us-central1")
    operation = generate(client, model="veo-3.1-generate-001", resolution="1080p", duration_seconds=8, generate_audio=False)
    assert operation.name.startswith("projects/sim-project/locations/us-central1/publishers/google/models/veo-3.1-generate-001/")
    done = until_done(client, operation)
    path = tmp_path / "clip.mp4"
    done.result.generated_videos[0].video.save(str(path))
    info = probe(path)
    assert (info["video"][0]["width"], info["video"][0]["height"]) == (1920, 1080)
    assert abs(info["duration"] - 8) < 0.1 and "audio" not in info  # no sound unless asked
    assert client._api_client._credentials.token.startswith("ya29.simulated-")  # from the token_uri
    assert sim.stats()["requests_by_route"]["POST /v1beta1/{model}:predictLongRunning"] == 1


def test_the_first_frame_image_is_the_clips_first_frame_and_the_last_frame_its_last(start_sim, tmp_path):
    sim = start_sim()
    client = express_client(sim)
    red, blue = png(64, 36, (230, 20, 20)), png(64, 36, (20, 20, 230))
    done = until_done(client, generate(
        client, image=red, last_frame=types.Image(image_bytes=blue, mime_type="image/png"), duration_seconds=4, generate_audio=False,
    ))
    path = tmp_path / "clip.mp4"
    done.result.generated_videos[0].video.save(str(path))
    first, last = colour_at(path, 0), colour_at(path, 3.95)
    assert first[0] > 180 and first[2] < 60, first
    assert last[2] > 180 and last[0] < 60, last


def test_inputs_each_model_refuses_are_invalid_arguments_naming_the_field(start_sim):
    sim = start_sim()
    client = express_client(sim)
    reference = types.VideoGenerationReferenceImage(image=types.Image(image_bytes=png(32, 32), mime_type="image/png"), reference_type="asset")
    with pytest.raises(errors.ClientError) as err:
        generate(client, model="veo-3.1-fast-generate-001", reference_images=[reference], duration_seconds=8)
    assert err.value.code == 400 and err.value.status == "INVALID_ARGUMENT" and "reference images" in err.value.message
    operation = generate(client, model="veo-3.1-generate-001", reference_images=[reference] * 3, duration_seconds=8)
    assert operation.name  # the standard model takes up to three
    for config, words in (({"duration_seconds": 5}, "4, 6, 8"), ({"resolution": "1080p", "duration_seconds": 4}, "only supported with durationSeconds 8"),
                          ({"aspect_ratio": "1:1"}, "16:9, 9:16"), ({"generate_audio": None}, "generateAudio is required")):
        with pytest.raises(errors.ClientError) as err:
            generate(client, **config)
        assert err.value.status == "INVALID_ARGUMENT" and words in err.value.message, err.value.message
    assert len(sim.jobs()) == 1


def test_quota_refusal_is_resource_exhausted_with_a_retry_delay(start_sim):
    sim = start_sim(faults="429=1", retry_after_seconds=2)
    with pytest.raises(errors.ClientError) as err:
        generate(express_client(sim))
    assert err.value.code == 429 and err.value.status == "RESOURCE_EXHAUSTED"
    [retry] = [d for d in err.value.details["error"]["details"] if d["@type"].endswith("google.rpc.RetryInfo")]
    assert retry["retryDelay"] == "2s" and sim.jobs() == []


@pytest.mark.parametrize("status,name", [(500, "INTERNAL"), (502, "Bad Gateway"), (503, "UNAVAILABLE")])
def test_server_errors_in_googles_words(start_sim, status, name):
    sim = start_sim(faults=f"{status}=1")
    with pytest.raises(errors.ServerError) as err:
        generate(express_client(sim))
    assert err.value.code == status and err.value.status == name
    assert sim.jobs() == []  # refused before anything was accepted


def test_reset_loses_the_answer_not_the_operation(start_sim):
    sim = start_sim(faults="reset=1")
    with pytest.raises(wire_errors("ReadError") + wire_errors("RemoteProtocolError")):
        generate(express_client(sim), prompt="Shot reset")
    [job] = sim.jobs()  # paid for, and nothing on the client names it
    assert job["prompt"] == "Shot reset" and sim.stats()["faults_injected"] == {"reset": 1}


def test_stall_outlasts_the_clients_timeout(start_sim):
    sim = start_sim(faults="stall=1", stall_seconds=1.5)
    with pytest.raises(wire_errors("ReadTimeout")):
        generate(express_client(sim, timeout=300))  # HttpOptions.timeout is in milliseconds
    assert len(sim.jobs()) == 1


def test_truncate_cuts_the_operation_that_carries_the_video(start_sim):
    sim = start_sim()
    client = express_client(sim)
    done = until_done(client, generate(client))
    sim.set_faults("truncate=1")
    with pytest.raises(wire_errors("RemoteProtocolError")):
        client.operations.get(done)
    sim.set_faults("")
    assert client.operations.get(done).result.generated_videos[0].video.video_bytes


def test_safety_filter_ends_the_operation_with_no_video_and_the_reasons(start_sim):
    sim = start_sim(faults="moderation=1")
    client = express_client(sim)
    done = until_done(client, generate(client))
    assert done.error is None and not done.result.generated_videos
    assert done.result.rai_media_filtered_count == 1
    [reason] = done.result.rai_media_filtered_reasons
    assert "usage guidelines" in reason and "Support codes" in reason


def test_a_model_that_is_gone_is_a_publisher_model_not_found(start_sim):
    sim = start_sim(shutdown=True)
    client = express_client(sim)
    with pytest.raises(errors.ClientError) as err:
        generate(client)
    assert err.value.code == 404 and err.value.status == "NOT_FOUND"
    assert "Publisher Model `projects/express-mode/locations/us-central1/publishers/google/models/veo-3.1-fast-generate-001` was not found" in err.value.message
    with pytest.raises(errors.ClientError):
        client.models.get(model="veo-3.1-fast-generate-001")
    assert express_client(start_sim()).models.get(model="veo-3.1-fast-generate-001").name.endswith("veo-3.1-fast-generate-001")


def test_no_credentials_is_unauthenticated(start_sim):
    sim = start_sim()
    answer = httpx.post(f"{sim.url}/v1beta1/publishers/google/models/veo-3.1-generate-001:predictLongRunning", json={})
    assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"


def test_a_storage_uri_gets_gcs_uris_that_google_cloud_storage_downloads(start_sim, tmp_path):
    sim = start_sim()
    client = express_client(sim)
    operation = generate(client, output_gcs_uri="gs://clips/veo/")
    gcs = storage.Client(project="p", credentials=AnonymousCredentials(), client_options={"api_endpoint": sim.url})
    done = until_done(client, operation)
    [generated] = done.result.generated_videos
    op_id = operation.name.rsplit("/", 1)[1]
    assert generated.video.uri == f"gs://clips/veo/{op_id}/sample_0.mp4" and generated.video.video_bytes is None
    blob = gcs.bucket("clips").blob(f"veo/{op_id}/sample_0.mp4")
    blob.download_to_filename(str(tmp_path / "clip.mp4"))  # checks the X-Goog-Hash it is sent
    assert probe(tmp_path / "clip.mp4")["video"][0]["height"] == 720
    blob.reload()
    assert blob.size == (tmp_path / "clip.mp4").stat().st_size
    with pytest.raises(Exception) as err:
        gcs.bucket("clips").blob("veo/none.mp4").download_to_filename(str(tmp_path / "none.mp4"))
    assert "404" in str(err.value)


def _extend(client, source: types.Video, *, prompt: str = "Shot veo\nThe lighthouse, continued", **config) -> types.GenerateVideosOperation:
    config.setdefault("generate_audio", False)
    return client.models.generate_videos(
        model="veo-3.1-fast-generate-001", source=types.GenerateVideosSource(prompt=prompt, video=source),
        config=types.GenerateVideosConfig(**config),
    )


def test_an_extension_plays_its_source_then_seven_new_seconds_inline_and_from_cloud_storage(start_sim, tmp_path):
    sim = start_sim()
    client = express_client(sim)
    red = png(64, 36, (230, 20, 20))
    source = until_done(client, generate(client, image=red, duration_seconds=4, generate_audio=False))
    original = tmp_path / "source.mp4"
    source.result.generated_videos[0].video.save(str(original))

    # As the SDK hands the finished video back (inline bytes), the way Google's docs chain it.
    inline = until_done(client, _extend(client, source.result.generated_videos[0].video, duration_seconds=7))
    clip = tmp_path / "extension.mp4"
    inline.result.generated_videos[0].video.save(str(clip))
    info = probe(clip)
    assert abs(info["duration"] - 11) < 0.1 and "audio" not in info  # the source's 4 s, then 7 new seconds, silent as asked
    assert colour_at(clip, 0)[0] > 180  # the source's first frame (its red image) opens it
    assert close_colours(colour_at(clip, 2), colour_at(original, 2))
    assert not close_colours(colour_at(clip, 8), colour_at(original, 2))  # the new seconds are new pictures

    # An operation that wrote to Cloud Storage is extended by its gs:// object; extensions chain.
    stored = until_done(client, generate(client, image=red, duration_seconds=4, generate_audio=False, output_gcs_uri="gs://clips/veo/"))
    twice = until_done(client, _extend(client, until_done(client, _extend(
        client, stored.result.generated_videos[0].video, output_gcs_uri="gs://clips/veo/")).result.generated_videos[0].video))
    path = tmp_path / "twice.mp4"
    twice.result.generated_videos[0].video.save(str(path))
    assert abs(probe(path)["duration"] - 18) < 0.1 and colour_at(path, 0)[0] > 180
    jobs = {j["id"]: j for j in httpx.get(f"{sim.url}/_sim/jobs").json()["data"]}
    by_gcs = [j for j in jobs.values() if j["kind"] == "extension" and j["source"] == stored.name]
    assert len(by_gcs) == 1 and jobs[twice.name]["seconds"] == "18"


def test_an_extension_is_refused_where_veo_refuses_it(start_sim, tmp_path):
    sim = start_sim()
    client = express_client(sim)
    video = until_done(client, generate(client, duration_seconds=4)).result.generated_videos[0].video
    for config, field in (
        ({"duration_seconds": 8}, "parameters.durationSeconds"),  # Veo extends by 7 s
        ({"aspect_ratio": "9:16"}, "instances[0].video"),  # another size than the video's
    ):
        with pytest.raises(errors.ClientError) as err:
            _extend(client, video, **config)
        assert err.value.code == 400 and field in str(err.value.details), config
    with pytest.raises(errors.ClientError) as err:
        _extend(client, types.Video(video_bytes=png(64, 36), mime_type="video/mp4"))
    assert "not a video" in err.value.message
    with pytest.raises(errors.ClientError) as err:
        _extend(client, types.Video(uri="gs://clips/none.mp4", mime_type="video/mp4"))
    assert "not an object a finished operation wrote" in err.value.message
