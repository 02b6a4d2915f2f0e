"""`soraflow jobs`: settling clips the runs could not, through the CLI, against a real ledger and
the simulator behind the gateway-like proxy. Each refusal is one clean line that changes nothing."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from typer.testing import CliRunner

from soraflow import generation
from soraflow.plan import load_plan
from soraflow.cli import app
from soraflow.errors import ClipInDoubtError
from soraflow.ledger import Ledger
from soraflow.providers import build_provider, connect
from soraflow.settings import Settings

runner = CliRunner()


class Doubt:
    """Two clips: ``done`` with its job, ``doubt`` in doubt after a lost create answer."""

    def __init__(self, sim, gateway, tmp_path):
        self.sim, self.gateway = sim, gateway
        marker = uuid.uuid4().hex[:10]
        self.settings = Settings()
        board = {"title": "Settle", "size": "720x1280",
                 "shots": [{"id": f"s{i}", "seconds": 4, "visual": f"a pier {i} {marker}"} for i in range(2)]}
        self.done, self.doubt = load_plan(None, board, settings=self.settings).clips
        self.provider = build_provider(connect(self.done.route, self.settings.environment), self.settings)
        self.ledger = Ledger(self.settings.resolved_ledger_url)
        self.done_job = self.submit(self.done).job_id
        gateway.behaviour.drop_prompt = True
        gateway.behaviour.lose_create_answers = 1
        with pytest.raises(ClipInDoubtError):
            self.submit(self.doubt)
        gateway.behaviour.drop_prompt = False
        held = self.ledger.known_job_ids()
        [self.lost_job] = [j["id"] for j in sim.jobs() if marker in j["prompt"] and j["id"] not in held]
        self.ref = self.doubt.clip_key[:16]

    def submit(self, spec):
        return generation.submit_clip(spec, provider=self.provider, ledger=self.ledger, settings=self.settings, work_dir=self.settings.state_dir)

    def state(self, spec) -> str | None:
        entry = self.ledger.get(spec.clip_key)
        return entry.state if entry else None


@pytest.fixture
def doubt(gateway, sim_env, tmp_path):
    return Doubt(sim_env, gateway, tmp_path)


def jobs(*args: str):
    return runner.invoke(app, ["jobs", *args])


def refused(*args: str) -> str:
    res = jobs(*args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1 and "Traceback" not in res.output, res.output
    return res.output


def test_the_listing_names_each_clip_its_state_and_what_settles_it(doubt):
    res = jobs()
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert doubt.ref in out and "in_doubt" in out and "0.40" in out
    assert f"soraflow jobs adopt {doubt.ref} JOB_ID" in out and f"soraflow jobs re-create {doubt.ref}" in out


def test_adopt_checks_the_job_before_it_is_trusted(doubt):
    assert "is too short" in refused("adopt", doubt.ref[:3], doubt.lost_job)
    assert "no clip in the ledger" in refused("adopt", "ffffffffff", doubt.lost_job)
    assert "has no job video_nope" in refused("adopt", doubt.ref, "video_nope")
    assert "another prompt" in refused("adopt", doubt.ref, doubt.done_job)
    doubt.gateway.behaviour.drop_prompt = True  # with no prompt to compare, the ledger still knows whose it is
    assert f"already clip {doubt.done.shot_id} part 1's" in refused("adopt", doubt.ref, doubt.done_job)
    doubt.gateway.behaviour.drop_prompt = False
    done_ref = doubt.done.clip_key[:16]
    assert "is submitted" in refused("adopt", done_ref, doubt.lost_job)  # a clip with its job needs nothing
    assert doubt.state(doubt.doubt) == "in_doubt"  # every refusal changed nothing

    res = jobs("adopt", doubt.ref, doubt.lost_job)
    assert res.exit_code == 0 and "adopted job" in res.output, res.output
    assert doubt.state(doubt.doubt) == "submitted" and doubt.submit(doubt.doubt).job_id == doubt.lost_job
    [action] = [a for a in doubt.ledger.actions(doubt.doubt.clip_key) if a.action == "adopt"]
    assert action.detail["job_id"] == doubt.lost_job and action.detail["was"] == "in_doubt" and action.at > 0


def test_adopt_refuses_a_job_of_another_prompt_size_or_a_failed_one(doubt, monkeypatch):
    import openai

    client = openai.OpenAI(base_url=doubt.sim.base_url, api_key=doubt.sim.api_key)
    other = client.videos.create(model="sora-2", prompt="another prompt entirely", seconds="4", size="720x1280").id
    wide = client.videos.create(model="sora-2", prompt=doubt.doubt.prompt, seconds="4", size="1280x720").id
    assert "another prompt" in refused("adopt", doubt.ref, other)
    assert "size 1280x720 (asked 720x1280)" in refused("adopt", doubt.ref, wide)
    monkeypatch.setattr(doubt.sim.config, "moderation_terms", ["contraband"])
    blocked = client.videos.create(model="sora-2", prompt=f"contraband {doubt.doubt.prompt}", seconds="4", size="720x1280").id
    import time

    time.sleep(doubt.sim.config.latency)  # until the moderation verdict
    assert "failed at endpoint" in refused("adopt", doubt.ref, blocked)
    assert doubt.state(doubt.doubt) == "in_doubt"


def test_re_create_release_and_forget_each_settle_only_what_they_are_for(doubt):
    done_ref = doubt.done.clip_key[:16]
    assert "forget removes a failed or lost clip" in refused("forget", doubt.ref)
    assert "release frees a claim" in refused("release", doubt.ref)
    assert "re-create settles a clip in doubt" in refused("re-create", done_ref)

    res = jobs("re-create", doubt.ref)
    assert res.exit_code == 0 and "possibly paid" in res.output, res.output
    assert doubt.state(doubt.doubt) is None  # the next render creates it afresh
    assert doubt.ledger.paid_creates([doubt.doubt.clip_key]) == {doubt.doubt.clip_key: 1}  # the doubtful create
    created = doubt.submit(doubt.doubt)
    assert created.created_here and doubt.ledger.paid_creates([doubt.doubt.clip_key]) == {doubt.doubt.clip_key: 2}

    # A claim held by a run on another host (its lease not run out): released at the user's word.
    other = doubt.doubt.model_copy(update={"clip_key": hashlib.sha256(b"other").hexdigest()[:32]})
    doubt.ledger.claim_create(clip_key=other.clip_key, shot_id="s9", part=1, model="sora-2", size="720x1280", seconds=4,
                              prompt_sha256="p", owner="another-host:1:1")
    assert "release frees a claim" in refused("release", other.clip_key[:16])  # claimed, nothing sent yet
    assert doubt.ledger.renew_claim(other.clip_key, "another-host:1:1")  # its create goes out
    res = jobs("release", other.clip_key[:16])
    assert res.exit_code == 0 and "claim released" in res.output, res.output
    entry = doubt.ledger.get(other.clip_key)
    assert entry.state == "creating" and entry.owner is None
    log = jobs("log")
    assert log.exit_code == 0 and "re-create" in log.output and "release" in log.output
