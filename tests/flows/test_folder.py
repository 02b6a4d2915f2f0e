"""render-folder: new storyboards render, finished ones cost nothing, edited ones render again."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from soraflow.flows.folder import render_folder

pytestmark = pytest.mark.usefixtures("prefect_server")


def storyboard(title: str, *visuals: str) -> dict:
    return {
        "title": title,
        "model": "sora-2",
        "size": "1280x720",
        "shots": [{"id": f"shot{i}", "seconds": 4, "visual": v} for i, v in enumerate(visuals, 1)],
    }


def run(inbox: Path, out: Path):
    return render_folder(source=str(inbox), out_root=str(out), return_state=True)


def test_folder_renders_new_skips_finished_and_rerenders_edited(sim_env, tmp_path):
    tag = uuid.uuid4().hex[:8]  # keeps these clips apart from other tests' in the session simulator
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "harbour.yaml").write_text(yaml.safe_dump(storyboard(f"Harbour {tag}", f"Boats at dawn {tag}")))
    (inbox / "forest.json").write_text(json.dumps(storyboard(f"Forest {tag}", f"Fog between pines {tag}")))
    (inbox / "broken.yaml").write_text(yaml.safe_dump({"title": "broken", "shots": [{"id": "x", "seconds": 6, "visual": "v"}]}))
    (inbox / "README.txt").write_text("not a storyboard")
    jobs = len(sim_env.jobs())

    first = run(inbox, out)
    assert first.is_failed()
    assert "1 of 3 storyboard(s) failed: broken.yaml" in first.message
    assert sorted(p.parent.name for p in out.glob("*/film.mp4")) == ["forest", "harbour"]
    assert len(sim_env.jobs()) - jobs == 2
    rejected = json.loads((out / "broken" / ".soraflow-source.json").read_text())
    assert rejected["outcome"] == "rejected" and "shots[0].seconds" in rejected["detail"]

    # Nothing new: no storyboard is rendered, not one request reaches the endpoint.
    requests = sim_env.stats()["requests_total"]
    second = run(inbox, out)
    assert second.is_completed(), second.message
    assert second.result() == {"broken.yaml": "skipped (rejected)", "forest.json": "skipped (finished)", "harbour.yaml": "skipped (finished)"}
    assert sim_env.stats()["requests_total"] == requests

    # An edited storyboard renders again; only its changed shot is paid for.
    (inbox / "harbour.yaml").write_text(yaml.safe_dump(storyboard(f"Harbour {tag}", f"Boats at dawn {tag}", f"Gulls {tag}")))
    third = run(inbox, out)
    assert third.is_completed(), third.message
    assert third.result()["harbour.yaml"] == "rendered"
    assert len(sim_env.jobs()) - jobs == 3
    manifest = json.loads((out / "harbour" / "manifest.json").read_text())
    assert [c["generated_this_run"] for c in manifest["clips"]] == [False, True]


def test_a_missing_folder_is_created_and_the_run_completes(sim_env, tmp_path, caplog):
    """A new service's first scheduled run: no inbox yet. It is created, one line says so, and
    the run ends Completed, as with an empty folder (not Failed every 30 minutes)."""
    requests = sim_env.stats()["requests_total"]
    state = run(tmp_path / "nowhere", tmp_path / "out")
    assert state.is_completed(), state.message
    assert (tmp_path / "nowhere").is_dir() and state.result() == {}
    said = [r.getMessage() for r in caplog.records if "nowhere" in r.getMessage() and "Finished in state" not in r.getMessage()]
    assert said == [f"The storyboard folder {tmp_path / 'nowhere'} did not exist: created it, empty. Storyboards put there are rendered by the next run."]
    assert sim_env.stats()["requests_total"] == requests


def test_a_folder_that_cannot_be_created_is_said_once_and_the_run_completes(sim_env, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    state = run(tmp_path / "file" / "inbox", tmp_path / "out")
    assert state.is_completed(), state.message
    assert "nothing to render: storyboard folder" in state.message and "cannot be created" in state.message
