"""Veo through the whole journey: the example on the embedded default, a film mixing Sora and
Veo, and a safety-filtered shot. A real Prefect server, the simulator over HTTP (google-genai
and openai SDKs unchanged), real ffmpeg."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.models import builtin_catalog
from soraflow.simulator.embedded import running_simulator

from .test_render import streams

pytestmark = pytest.mark.usefixtures("prefect_server")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "veo" / "storyboard.yaml"
CREDENTIALS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "SORAFLOW_MODELS")


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """A machine with no key at all: every profile renders on the embedded simulator."""
    for var in CREDENTIALS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SORAFLOW_SIMULATOR_LATENCY", "0.5")
    monkeypatch.setenv("SORAFLOW_MAX_CONCURRENT_SUBMISSIONS", "8")
    return monkeypatch


def render(path: Path, out: Path):
    return render_storyboard(RenderRequest(storyboard_path=str(path), out_dir=str(out)), return_state=True)


def clip_file(clip: dict) -> Path:
    return Path(clip["storage_uri"].removeprefix("file://"))


def made_jobs(manifest: dict) -> list[dict]:
    ids = {c["job_id"] for c in manifest["clips"]}
    return [j for j in running_simulator().jobs() if j["id"] in ids]


def test_the_veo_example_renders_on_the_embedded_default_at_the_asked_size_length_and_sound(no_credentials, tmp_path):
    state = render(EXAMPLE, tmp_path / "out")
    assert state.is_completed(), state.message
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["endpoints"] == {"vertex": "soraflow-simulator:google-genai"}
    board = yaml.safe_load(EXAMPLE.read_text())
    asked_sound = {s["id"]: "audio" in s or "dialogue" in s for s in board["shots"]}
    assert set(asked_sound.values()) == {True, False}, "the example shows both a shot with sound and one without"
    for clip, shot in zip(manifest["clips"], board["shots"], strict=True):
        info = streams(clip_file(clip))
        assert (clip["shot_id"], clip["profile"]) == (shot["id"], shot.get("model", board["model"]))
        assert [(v["width"], v["height"]) for v in info["video"]] == [(1280, 720)]
        assert abs(info["duration"] - shot["seconds"]) <= 0.1
        assert ("audio" in info) is asked_sound[shot["id"]] is clip["audio"], shot["id"]
    # Each operation went out with the profile's aspect ratio and resolution, and sound only when asked.
    assert len(made_jobs(manifest)) == 3
    film = streams(Path(state.result().film))
    assert [(v["width"], v["height"]) for v in film["video"]] == [(1280, 720)]
    crossfades = (len(board["shots"]) - 1) * 0.5
    assert abs(film["duration"] - (sum(s["seconds"] for s in board["shots"]) - crossfades)) <= 0.2
    assert manifest["totals"]["billed_usd"] == state.result().estimated_usd


def test_one_film_with_a_sora_shot_and_a_veo_shot(no_credentials, tmp_path):
    board = {
        "title": "Two Dialects",
        "model": "sora-2",
        "size": "720x1280",
        "shots": [
            {"id": "quay", "seconds": 4, "visual": "A wet stone quay at night, one lamp.", "audio": "rain"},
            {"id": "boat", "seconds": 4, "visual": "A rowing boat leaves the quay.", "model": "veo-3.1-fast-generate-001"},
        ],
    }
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(board))
    state = render(path, tmp_path / "out")
    assert state.is_completed(), state.message
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["endpoints"] == {"openai": "soraflow-simulator", "vertex": "soraflow-simulator:google-genai"}
    assert [(c["shot_id"], c["endpoint"]) for c in manifest["clips"]] == [("quay", "openai"), ("boat", "vertex")]
    jobs = {j["model"]: j for j in made_jobs(manifest)}
    assert set(jobs) == {"sora-2", "veo-3.1-fast-generate-001"}
    assert jobs["veo-3.1-fast-generate-001"]["id"].startswith("projects/")  # a Vertex operation name
    film = streams(Path(state.result().film))
    assert [(v["width"], v["height"]) for v in film["video"]] == [(720, 1280)]
    assert abs(film["duration"] - 8) <= 0.2
    catalog = builtin_catalog()
    expected = catalog.profile("sora-2").price("720x1280", 4) + catalog.profile("veo-3.1-fast-generate-001").price("720x1280", 4)
    assert manifest["totals"]["billed_usd"] == f"{expected:.2f}"


def test_a_safety_filtered_veo_shot_fails_alone_not_retried_naming_shot_and_reason(sim_env, tmp_path, monkeypatch):
    """Veo's safety filter (a finished operation with no video and its reasons) through a flow
    run: that shot fails with the filter's reason, the others finish, nothing is sent twice."""
    monkeypatch.setattr(sim_env.config, "moderation_terms", ["contraband"])
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"endpoints": {"vertex": {"base_url": sim_env.url}}}))
    monkeypatch.setenv("SORAFLOW_MODELS", str(models))
    monkeypatch.setenv("GOOGLE_API_KEY", sim_env.api_key)
    shots = [
        {"id": "harbour", "seconds": 4, "visual": "A quiet harbour at dawn, safety test"},
        {"id": "smuggler", "seconds": 4, "visual": "A smuggler unloading contraband on the pier"},
        {"id": "gulls", "seconds": 4, "visual": "Gulls over the pier, safety test"},
    ]
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({"title": "Filtered", "model": "veo-3.1-fast-generate-001", "shots": shots}))
    before = {j["id"] for j in sim_env.jobs()}
    state = render(path, tmp_path / "out")

    assert state.is_failed()
    assert "1 of 3 clips failed" in state.message and "shot 'smuggler' part 1" in state.message
    assert "safety filter" in state.message and "violated Vertex AI's usage guidelines" in state.message
    assert "harbour" not in state.message and "gulls" not in state.message
    new = [j for j in sim_env.jobs() if j["id"] not in before]
    assert len(new) == 3, "the filtered operation must not be sent again"
    assert all(j["model"] == "veo-3.1-fast-generate-001" for j in new)
