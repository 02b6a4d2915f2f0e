"""render-storyboard end to end: a real Prefect server, the simulator over HTTP, real ffmpeg."""

from __future__ import annotations

import json
from pathlib import Path

import ffmpeg
import pytest
import yaml

from soraflow.flows.render import RenderRequest, render_storyboard

pytestmark = pytest.mark.usefixtures("prefect_server")


def creates(sim) -> int:
    return len(sim.jobs())


def api_requests(sim) -> int:
    return sim.stats()["requests_total"]


def run(request: RenderRequest):
    return render_storyboard(request, return_state=True)


def streams(path: Path) -> dict:
    info = ffmpeg.probe(str(path))
    by_type: dict[str, list] = {}
    for s in info["streams"]:
        by_type.setdefault(s["codec_type"], []).append(s)
    return {"duration": float(info["format"]["duration"]), **by_type}


def test_example_renders_into_a_film(sim_env, lighthouse, tmp_path):
    before = creates(sim_env)
    state = run(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out")))
    assert state.is_completed(), state.message
    result = state.result()
    film = Path(result.film)
    info = streams(film)
    assert [s["codec_name"] for s in info["video"]] == ["h264"]
    assert [s["codec_name"] for s in info["audio"]] == ["aac"]
    assert abs(info["duration"] - 28) <= 0.2
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [(c["shot_id"], c["part"]) for c in manifest["clips"]] == [("dawn", 1), ("keeper", 1), ("keeper", 2), ("lamp", 1)]
    assert all(c["job_id"] and c["sha256"] and c["storage_uri"] for c in manifest["clips"])
    assert manifest["totals"]["estimated_usd"] == "2.80" and manifest["totals"]["billed_usd"] == "2.80"
    assert manifest["run"]["billed_usd"] == "2.80" and result.billed_usd_this_run == "2.80"
    assert (tmp_path / "out" / "contact_sheet.png").stat().st_size > 0
    assert creates(sim_env) - before == 4
    assert sim_env.stats().get("contract_violations", []) == []
    # One film, one manifest, one contact sheet in OUT: the default storage is OUT itself, so
    # nothing is copied again under it (only the clips are kept, by clip key).
    outputs = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.suffix in (".mp4", ".json", ".png") and "clips" not in p.parts and "references" not in p.parts)
    assert outputs == ["contact_sheet.png", "film.mp4", "manifest.json"]
    assert manifest["outputs"]["film.mp4"]["uri"] == (tmp_path / "out" / "film.mp4").resolve().as_uri()
    assert manifest["film"]["size"] == "1280x720" and manifest["film"]["fitted"] == []


def test_rerun_of_finished_storyboard_makes_no_request(sim_env, lighthouse, tmp_path):
    request = RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out"))
    assert run(request).is_completed()
    film = tmp_path / "out" / "film.mp4"
    made = (film.stat().st_mtime_ns, film.read_bytes())
    before = api_requests(sim_env)
    state = run(request)
    assert state.is_completed(), state.message
    assert api_requests(sim_env) == before
    assert (film.stat().st_mtime_ns, film.read_bytes()) == made  # its inputs did not change: not stitched again
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["run"]["film_stitched"] is False
    assert manifest["run"]["billed_usd"] == "0.00" and state.result().billed_usd_this_run == "0.00"
    assert manifest["run"]["reused_clips"] == 4
    assert manifest["totals"]["billed_usd"] == "2.80"  # what the film cost, paid once


def test_a_clip_gone_everywhere_is_generated_again_once_and_billed(sim_env, tmp_path):
    """The outputs were deleted and the provider no longer has one job (its content expired, or
    the embedded simulator restarted): that clip is created again, the other is fetched again."""
    import shutil

    import openai

    sb = _write(tmp_path, {"title": "Gone", "shots": [{"id": "kept", "seconds": 4, "visual": "a quay"}, {"id": "gone", "seconds": 4, "visual": "a pier"}]})
    request = RenderRequest(storyboard_path=str(sb), out_dir=str(tmp_path / "out"))
    assert run(request).is_completed()
    first = {c["shot_id"]: c["job_id"] for c in json.loads((tmp_path / "out" / "manifest.json").read_text())["clips"]}
    openai.OpenAI(base_url=sim_env.base_url, api_key=sim_env.api_key).videos.delete(first["gone"])
    shutil.rmtree(tmp_path / "out")
    before = creates(sim_env)

    state = run(request)
    assert state.is_completed(), state.message
    assert creates(sim_env) - before == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    again = {c["shot_id"]: c["job_id"] for c in manifest["clips"]}
    assert again["kept"] == first["kept"] and again["gone"] != first["gone"]
    assert manifest["run"]["billed_usd"] == "0.40"  # the one clip paid again, said in the manifest
    assert abs(streams(tmp_path / "out" / "film.mp4")["duration"] - 8) <= 0.2

    before = api_requests(sim_env)
    assert run(request).is_completed()  # and the new job is what the next rerun reuses
    assert api_requests(sim_env) == before


def _write(tmp_path: Path, data, name="s.yaml") -> Path:
    f = tmp_path / name
    f.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return f


SHOT = {"id": "a", "seconds": 4, "visual": "v"}
BAD = {
    "unknown key": ({"title": "t", "shots": [{**SHOT, "zoom": 2}]}, "shots[0].zoom: unknown key"),
    "seconds zero": ({"title": "t", "shots": [{**SHOT, "seconds": 0}]}, "shots[0].seconds: 0 is not allowed"),
    "unreachable seconds": ({"title": "t", "shots": [{**SHOT, "seconds": 6}]}, "shots[0].seconds: 6 cannot be made"),
    "size not offered": ({"title": "t", "shots": [{**SHOT, "size": "1024x1792"}]}, "shots[0].size: '1024x1792' is not offered by sora-2"),
    "missing reference": ({"title": "t", "shots": [{**SHOT, "input_reference": "gone.png"}]}, "shots[0].input_reference: 'gone.png': no such file"),
    "no shots": ({"title": "t", "shots": []}, "no shots"),
    "duplicate ids": ({"title": "t", "shots": [SHOT, SHOT]}, "shots[1].id: 'a' is already used"),
    "not yaml": ("title: [x\nshots: {", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_storyboard_fails_before_any_job(sim_env, tmp_path, case):
    data, message = BAD[case]
    before = creates(sim_env)
    state = run(RenderRequest(storyboard_path=str(_write(tmp_path, data)), out_dir=str(tmp_path / "out")))
    assert state.is_failed()
    with pytest.raises(Exception, match=".*") as info:
        state.result()
    assert message in str(info.value)
    assert creates(sim_env) == before


def test_non_utf8_storyboard_fails_before_any_job(sim_env, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_bytes(b"title: caf\xe9\n")
    before = creates(sim_env)
    state = run(RenderRequest(storyboard_path=str(f), out_dir=str(tmp_path / "out")))
    with pytest.raises(Exception) as info:
        state.result()
    assert "not UTF-8" in str(info.value)
    assert creates(sim_env) == before


def test_budget_refuses_before_any_job(sim_env, lighthouse, tmp_path):
    before = creates(sim_env)
    state = run(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out"), budget_usd=2.79))
    with pytest.raises(Exception, match=r"estimated cost \$2.80 exceeds the budget \$2.79 \(this run can pay up to \$2.80 \(4 clip"):
        state.result()
    assert creates(sim_env) == before


def test_a_budget_is_what_the_run_can_pay_not_the_whole_film(sim_env, tmp_path):
    """2 of 4 clips done: a budget between the remaining cost ($0.80) and the film's ($1.60)
    renders the rest; a rerun of the finished film with a budget of 0 bills $0.00."""
    shots = [{"id": f"s{i}", "seconds": 4, "visual": f"a harbour, view {i}"} for i in range(4)]
    half = _write(tmp_path, {"title": "Harbour", "shots": shots[:2]}, "half.yaml")
    whole = _write(tmp_path, {"title": "Harbour", "shots": shots}, "whole.yaml")
    assert run(RenderRequest(storyboard_path=str(half), out_dir=str(tmp_path / "half"))).is_completed()

    before = creates(sim_env)
    state = run(RenderRequest(storyboard_path=str(whole), out_dir=str(tmp_path / "out"), budget_usd=1.00))
    assert state.is_completed(), state.message
    assert state.result().billed_usd_this_run == "0.80" and state.result().estimated_usd == "1.60"
    assert creates(sim_env) - before == 2

    state = run(RenderRequest(storyboard_path=str(whole), out_dir=str(tmp_path / "out"), budget_usd=0))
    assert state.is_completed(), state.message
    assert state.result().billed_usd_this_run == "0.00"
    assert creates(sim_env) - before == 2


def test_dry_run_creates_nothing(sim_env, lighthouse, tmp_path):
    before = api_requests(sim_env)
    state = run(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out"), dry_run=True))
    assert state.is_completed() and state.result().estimated_usd == "2.80"
    assert api_requests(sim_env) == before


def test_moderation_on_one_shot_fails_that_shot_only_and_is_not_retried(sim_env, tmp_path, monkeypatch):
    monkeypatch.setattr(sim_env.config, "moderation_terms", ["contraband"])
    shots = [
        {"id": "harbour", "seconds": 4, "visual": "A quiet harbour at dawn, moderation test"},
        {"id": "smuggler", "seconds": 4, "visual": "A smuggler unloading contraband on the pier"},
        {"id": "gulls", "seconds": 4, "visual": "Gulls over the pier, moderation test"},
    ]
    storyboard = {"title": "Harbour", "model": "sora-2", "size": "1280x720", "shots": shots}
    before = creates(sim_env)
    state = run(RenderRequest(storyboard_path=str(_write(tmp_path, storyboard)), out_dir=str(tmp_path / "out")))

    assert state.is_failed()
    assert "1 of 3 clips failed" in state.message and "shot 'smuggler' part 1" in state.message
    assert "moderation" in state.message
    assert "harbour" not in state.message and "gulls" not in state.message
    assert creates(sim_env) - before == 3, "the blocked job must not be created again"
    blocked = [j for j in sim_env.jobs() if "contraband" in j["prompt"]]
    assert [j["status"] for j in blocked] == ["failed"]

    # The user rewrites the shot: the rerun creates only that clip and the film is made.
    shots[1]["visual"] = "A fisherman unloading crates on the pier"
    state = run(RenderRequest(storyboard_path=str(_write(tmp_path, storyboard)), out_dir=str(tmp_path / "out")))
    assert state.is_completed(), state.message
    assert creates(sim_env) - before == 4
    assert abs(streams(Path(state.result().film))["duration"] - 12) <= 0.2


def test_a_key_named_in_the_run_form_is_read_from_its_secret_block(sim_env, tmp_path, monkeypatch):
    """A worker with the endpoint's URL but not its key: the run form names the Prefect Secret
    block that holds it, and the endpoint is called for real with it. Without that name the
    same run renders on the embedded simulator (no credentials for any endpoint)."""
    import uuid

    from prefect.blocks.system import Secret

    monkeypatch.delenv("OPENAI_API_KEY")
    tag = uuid.uuid4().hex[:8]
    Secret(value=sim_env.api_key).save(f"key-{tag}", overwrite=True)
    sb = _write(tmp_path, {"title": f"Secret {tag}", "shots": [{"id": "quay", "seconds": 4, "visual": f"A quay at dawn {tag}"}]})

    before = creates(sim_env)
    state = run(RenderRequest(storyboard_path=str(sb), out_dir=str(tmp_path / "real"), key_secrets={"openai": f"key-{tag}"}))
    assert state.is_completed(), state.message
    assert creates(sim_env) - before == 1  # the endpoint itself, with the block's key
    manifest = (tmp_path / "real" / "manifest.json").read_text()
    assert json.loads(manifest)["endpoints"] == {"openai": sim_env.base_url}
    assert sim_env.api_key not in manifest

    state = run(RenderRequest(storyboard_path=str(sb), out_dir=str(tmp_path / "simulated")))
    assert state.is_completed(), state.message
    assert creates(sim_env) - before == 1
    assert json.loads((tmp_path / "simulated" / "manifest.json").read_text())["endpoints"] == {"openai": "soraflow-simulator"}

    refused = run(RenderRequest(storyboard_path=str(sb), out_dir=str(tmp_path / "x"), key_secrets={"azure": f"key-{tag}"}))
    assert refused.is_failed() and "no endpoint named 'azure'" in str(refused.result(raise_on_failure=False))
