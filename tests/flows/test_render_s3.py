"""render-storyboard into S3: a real HTTP S3 endpoint (moto's server) behind a proxy that fails
every third write with a 500, the simulator over HTTP, a real Prefect server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.storage import clip_object_key, film_object_key

pytestmark = pytest.mark.usefixtures("prefect_server")

PREFIX = "films/team-a"


def test_render_to_s3_survives_500s_and_a_rerun_uploads_nothing(s3_bucket, s3_client, faulty_s3, sim_env, lighthouse, tmp_path):
    request = RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out"), storage=f"s3://{s3_bucket}/{PREFIX}")

    state = render_storyboard(request, return_state=True)
    assert state.is_completed(), state.message
    assert faulty_s3.injected >= 3, "the proxy should have failed some writes"

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    title = manifest["title"]
    expected = {f"{PREFIX}/{clip_object_key(title, c['shot_id'], c['part'], c['clip_key'])}": c for c in manifest["clips"]}
    outputs = {f"{PREFIX}/{film_object_key(title, name)}" for name in ("film.mp4", "manifest.json", "contact_sheet.png")}
    listed = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert listed == set(expected) | outputs

    for key, clip in expected.items():
        head = s3_client.head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ContentType"] == "video/mp4"
        assert any(k.startswith("Checksum") and k != "ChecksumType" for k in head), head
        meta = head["Metadata"]
        assert meta["sha256"] == clip["sha256"] and meta["clip-key"] == clip["clip_key"]
        assert (meta["model"], meta["size"], meta["seconds"]) == (clip["model"], clip["size"], str(clip["seconds"]))
        assert meta["prompt-sha256"] == clip["prompt_sha256"]
        tags = {t["Key"]: t["Value"] for t in s3_client.get_object_tagging(Bucket=s3_bucket, Key=key)["TagSet"]}
        assert tags == {"ai-generated": "true"}
        assert clip["storage_uri"] == f"s3://{s3_bucket}/{key}"
        assert clip["link"] == f"{faulty_s3.url}/{s3_bucket}/{key}"  # no credential in it
    assert "X-Amz-" not in (tmp_path / "out" / "manifest.json").read_text()

    # Presigned links are made when asked for, never stored: `soraflow link OUT`.
    from typer.testing import CliRunner

    from soraflow.cli import app

    shown = CliRunner().invoke(app, ["link", str(tmp_path / "out"), "--expires", "120"])
    assert shown.exit_code == 0, shown.output
    lines = dict(line.split(": ", 1) for line in shown.output.splitlines())
    assert set(lines) == {"film.mp4", "contact_sheet.png", "dawn part 1", "keeper part 1", "keeper part 2", "lamp part 1"}
    assert "X-Amz-Expires=120" in lines["film.mp4"]
    assert httpx.get(lines["film.mp4"], timeout=30).content == (tmp_path / "out" / "film.mp4").read_bytes()

    for key in outputs:
        head = s3_client.head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
        assert head["Metadata"]["sha256"] and head["Metadata"]["ai-generated"] == "true"
    film_key = f"{PREFIX}/{film_object_key(title, 'film.mp4')}"
    stored_film = tmp_path / "stored.mp4"
    s3_client.download_file(s3_bucket, film_key, str(stored_film))
    assert stored_film.read_bytes() == (tmp_path / "out" / "film.mp4").read_bytes()
    stored_manifest = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=f"{PREFIX}/{film_object_key(title, 'manifest.json')}")["Body"].read())
    assert "run" not in stored_manifest and [c["sha256"] for c in stored_manifest["clips"]] == [c["sha256"] for c in manifest["clips"]]

    # The rerun: nothing is generated, nothing is written to the store.
    writes, requests = list(faulty_s3.writes), sim_env.stats()["requests_total"]
    state = render_storyboard(request, return_state=True)
    assert state.is_completed(), state.message
    assert faulty_s3.writes == writes, f"the rerun wrote {faulty_s3.writes[len(writes):]}"
    assert sim_env.stats()["requests_total"] == requests


def test_a_clip_already_in_s3_is_not_downloaded_from_the_provider_again(s3_bucket, s3_env, sim_env, lighthouse, tmp_path):
    """A render into a new output directory finds no local clips: they come back from S3
    (verified by sha256), not from the provider's content endpoint."""
    storage = f"s3://{s3_bucket}/{PREFIX}"
    first = render_storyboard(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "a"), storage=storage), return_state=True)
    assert first.is_completed(), first.message
    content = "GET /v1/videos/{video_id}/content"
    before = sim_env.stats()["requests_by_route"].get(content, 0)
    second = render_storyboard(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "b"), storage=storage), return_state=True)
    assert second.is_completed(), second.message
    assert sim_env.stats()["requests_by_route"].get(content, 0) == before
    assert Path(second.result().film).stat().st_size > 0


def test_results_cached_in_s3_spare_a_worker_with_an_empty_ledger_every_create_and_poll(
    s3_bucket, s3_client, sim_env, lighthouse, tmp_path, monkeypatch
):
    """SORAFLOW_RESULT_STORAGE=s3://...: the generate results outlive the machine that made them.
    A second worker with its own (empty) state dir reuses every job: it only fetches content."""
    monkeypatch.setenv("SORAFLOW_RESULT_STORAGE", f"s3://{s3_bucket}/prefect-results")
    request = RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out"))
    first = render_storyboard(request, return_state=True)
    assert first.is_completed(), first.message
    results = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="prefect-results/").get("Contents", [])]
    assert len(results) == 4, results  # generate, for each of the 4 clips (store is never cached)

    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "another-worker"))
    before = dict(sim_env.stats()["requests_by_route"])
    second = render_storyboard(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out-2")), return_state=True)
    assert second.is_completed(), second.message
    after = sim_env.stats()["requests_by_route"]
    grew = {route: after[route] - before.get(route, 0) for route in after if after[route] != before.get(route, 0)}
    # No create, no status poll: content only, and the free availability check that an empty
    # ledger makes before anything could be spent.
    assert set(grew) == {"GET /v1/videos/{video_id}/content", "GET /v1/models"}, grew
    assert second.result().billed_usd_this_run == "0.00"


def test_clip_objects_deleted_from_s3_are_restored_by_the_rerun_without_a_create(s3_bucket, s3_client, s3_env, sim_env, tmp_path):
    """Reuse verifies: the rerun checks each stored clip (HEAD: sha256 metadata and checksum)
    instead of trusting a cached answer. A deleted object is uploaded again from the local copy,
    or, with no local copy either, fetched again from the provider (the job is paid already)."""
    import yaml

    sb = tmp_path / "restore.yaml"
    sb.write_text(yaml.safe_dump({"title": "Restore", "shots": [
        {"id": "kept", "seconds": 4, "visual": "a harbour at noon"},
        {"id": "gone", "seconds": 4, "visual": "a harbour at night"},
        {"id": "same", "seconds": 4, "visual": "a harbour at dawn"},
    ]}))
    out = tmp_path / "out"
    request = RenderRequest(storyboard_path=str(sb), out_dir=str(out), storage=f"s3://{s3_bucket}/{PREFIX}")
    assert render_storyboard(request, return_state=True).is_completed()
    clips = {c["shot_id"]: c for c in json.loads((out / "manifest.json").read_text())["clips"]}
    key_of = {shot: c["storage_uri"].removeprefix(f"s3://{s3_bucket}/") for shot, c in clips.items()}
    s3_client.delete_object(Bucket=s3_bucket, Key=key_of["kept"])  # the local copy remains
    s3_client.delete_object(Bucket=s3_bucket, Key=key_of["gone"])
    for local in (out / ".work" / "clips").glob("gone-*.mp4"):
        local.unlink()  # and no local copy of this one

    creates, content = len(sim_env.jobs()), sim_env.stats()["requests_by_route"].get("GET /v1/videos/{video_id}/content", 0)
    state = render_storyboard(request, return_state=True)
    assert state.is_completed(), state.message
    assert len(sim_env.jobs()) == creates, "a stored clip that went missing was paid for again"
    refetched = sim_env.stats()["requests_by_route"].get("GET /v1/videos/{video_id}/content", 0) - content
    assert refetched == 2, refetched  # the missing clip's video and thumbnail, nothing else

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["billed_usd"] == "0.00"
    for clip in manifest["clips"]:
        key = clip["storage_uri"].removeprefix(f"s3://{s3_bucket}/")
        head = s3_client.head_object(Bucket=s3_bucket, Key=key)  # the manifest names what is there
        assert head["Metadata"]["sha256"] == clip["sha256"] == clips[clip["shot_id"]]["sha256"]
        body = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == clip["sha256"]
    listed = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"{PREFIX}/restore/clips/")["Contents"]}
    assert listed == set(key_of.values())
