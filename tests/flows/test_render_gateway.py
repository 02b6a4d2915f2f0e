"""render-storyboard through a gateway-like proxy (tests/fixtures/gateway.py) in front of the
simulator: a create whose answer is lost is never paid twice, the clip in doubt is settled with
`soraflow jobs`, and the manifest bills what was paid. Paid work is counted at the simulator."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from soraflow.cli import app
from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.ledger import Ledger
from soraflow.settings import Settings

pytestmark = pytest.mark.usefixtures("prefect_server")

runner = CliRunner()


class Board:
    """A storyboard of ``shots`` 4 s clips whose prompts carry a marker: this test's jobs."""

    def __init__(self, tmp_path: Path, sim, shots: int):
        self.sim, self.marker, self.out = sim, uuid.uuid4().hex[:10], tmp_path / "out"
        data = {"title": f"Gateway {self.marker}", "size": "720x1280",
                "shots": [{"id": f"g{i}", "seconds": 4, "visual": f"a lighthouse, take {i}, {self.marker}"} for i in range(shots)]}
        self.path = tmp_path / "board.yaml"
        self.path.write_text(yaml.safe_dump(data))

    def render(self):
        return render_storyboard(RenderRequest(storyboard_path=str(self.path), out_dir=str(self.out)), return_state=True)

    def paid(self) -> list[dict]:
        return [j for j in self.sim.jobs() if self.marker in j["prompt"]]

    def manifest(self) -> dict:
        return json.loads((self.out / "manifest.json").read_text())


def jobs(*args: str) -> str:
    res = runner.invoke(app, ["jobs", *args])
    assert res.exit_code == 0, res.output
    return res.output


def in_doubt_ref(message: str) -> str:
    """The clip the run names in doubt, from the command it prints."""
    return message.split("soraflow jobs re-create ", 1)[1][:16]


def test_a_lost_answer_behind_a_list_without_prompts_is_settled_by_adopting_the_job(gateway, sim_env, tmp_path):
    board = Board(tmp_path, sim_env, shots=3)
    gateway.behaviour.drop_prompt = True  # as LiteLLM's job objects: nothing tells one job from another
    gateway.behaviour.lose_create_answers = 1

    state = board.render()
    assert state.is_failed()
    assert "1 of 3 clips failed" in state.message and "is in doubt" in state.message, state.message
    assert len(board.paid()) == 3  # never more jobs than clips
    ref = in_doubt_ref(state.message)
    assert f"soraflow jobs adopt {ref} JOB_ID" in state.message

    listing = jobs("--state", "in_doubt")
    assert ref in listing and "in_doubt" in listing and f"soraflow jobs adopt {ref} JOB_ID" in listing
    # The user finds the job at the provider: the one that no clip in the ledger holds.
    held = Ledger(Settings().resolved_ledger_url).known_job_ids()
    found = [j["id"] for j in board.paid() if j["id"] not in held]
    assert len(found) == 1, found
    assert "adopted job" in jobs("adopt", ref, found[0])
    assert "adopt" in jobs("log", ref)

    state = board.render()
    assert state.is_completed(), state.message
    assert len(board.paid()) == 3 and gateway.creates() == 3
    manifest = board.manifest()
    assert {c["job_id"] for c in manifest["clips"]} == {j["id"] for j in board.paid()}
    assert manifest["totals"]["billed_usd"] == "1.20"  # what was paid: three clips, once each
    assert manifest["run"]["billed_usd"] == "0.00"  # the adopted job was paid by the first run


def test_a_lost_answer_behind_a_failing_list_is_not_stuck_and_is_re_created_at_the_users_word(gateway, sim_env, tmp_path):
    board = Board(tmp_path, sim_env, shots=2)
    gateway.behaviour.list_status = 400  # LiteLLM: "LLM Provider NOT provided"
    gateway.behaviour.lose_create_answers = 1

    state = board.render()
    assert state.is_failed() and "LLM Provider NOT provided" in state.message, state.message
    ref = in_doubt_ref(state.message)
    started = time.monotonic()
    state = board.render()  # no claim to wait out: the clip is in doubt, said again at once
    assert state.is_failed() and f"soraflow jobs re-create {ref}" in state.message
    assert time.monotonic() - started < 60
    assert len(board.paid()) == 2 and gateway.creates() == 2

    res = runner.invoke(app, ["jobs", "forget", ref])
    assert res.exit_code == 2 and "adopt" in res.output and "re-create" in res.output  # it may be paid: not forgotten
    assert "created again by the next render" in jobs("re-create", ref)
    state = board.render()
    assert state.is_completed(), state.message
    assert len(board.paid()) == 3  # the doubtful create, and the one made at the user's word
    manifest = board.manifest()
    assert sorted(c["paid_creates"] for c in manifest["clips"]) == [1, 2]
    assert manifest["totals"]["billed_usd"] == "1.20"  # the manifest bills what was paid
    assert manifest["run"]["billed_usd"] == "0.40"


def test_ids_rewritten_by_the_gateway_render_and_resume_without_a_create(gateway, sim_env, tmp_path):
    import shutil

    board = Board(tmp_path, sim_env, shots=2)
    gateway.behaviour.rewrite_ids = True
    gateway.behaviour.drop_prompt = True
    state = board.render()
    assert state.is_completed(), state.message
    assert all(c["job_id"].startswith("video_") and c["job_id"] not in {j["id"] for j in board.paid()} for c in board.manifest()["clips"])

    shutil.rmtree(board.out)  # the rerun must fetch both clips again, by the gateway's ids
    creates, downloads = gateway.creates(), gateway.requests["GET /v1/videos/{id}/content"]
    state = board.render()
    assert state.is_completed(), state.message
    assert gateway.creates() == creates == 2 and len(board.paid()) == 2
    assert gateway.requests["GET /v1/videos/{id}/content"] > downloads
