"""The preflight through the real flow: problems that used to be found after clips were paid
(storage without credentials, a missing bucket, an --out that is a file, a prompt over the
model's cap, a text file named .png) refuse the run before any create, all in one message.
The simulator over HTTP counts what was created (``GET /_sim/jobs``); S3 is moto's server."""

from __future__ import annotations

import httpx
import pytest
import yaml

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.preflight import PreflightError
from tests.fixtures.s3 import S3_TEST_SECRET_ACCESS_KEY

pytestmark = pytest.mark.usefixtures("prefect_server")


def sim_jobs(sim) -> int:
    return len(httpx.get(sim.base_url.removesuffix("/v1") + "/_sim/jobs", timeout=10).json()["data"])


def refusal(state) -> list[str]:
    assert state.is_failed(), state.message
    error = state.result(raise_on_failure=False)
    assert isinstance(error, PreflightError), error
    return [str(p) for p in error.problems]


def test_s3_without_credentials_and_a_prompt_over_the_cap_are_refused_before_any_create(
    s3_bucket, sim_env, tmp_path, monkeypatch
):
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"models": {"terse-sora": {"like": "sora-2", "model": "sora-2", "prompt_max_chars": 300}}}))
    monkeypatch.setenv("SORAFLOW_MODELS", str(models))
    sb = tmp_path / "storyboard.yaml"
    sb.write_text(yaml.safe_dump({"title": "Preflight", "model": "terse-sora", "shots": [
        {"id": "short", "seconds": 4, "visual": "A lighthouse at dawn."},
        {"id": "talky", "seconds": 4, "visual": "Two keepers argue.",
         "dialogue": [{"speaker": "Keeper", "line": f"Line {i}: the light must not go out tonight."} for i in range(8)]},
    ]}))  # fmt: skip
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    before = sim_jobs(sim_env)

    state = render_storyboard(
        RenderRequest(storyboard_path=str(sb), out_dir=str(tmp_path / "out"), storage=f"s3://{s3_bucket}/films"), return_state=True
    )

    problems = refusal(state)
    assert sim_jobs(sim_env) == before  # nothing created, nothing paid
    assert len(problems) == 2, problems
    assert problems[0].startswith("shots[1] (talky): the prompt of part 1 comes to ") and "terse-sora takes at most 300" in problems[0]
    assert problems[1].startswith(f"storage s3://{s3_bucket}/films: no AWS credentials found")
    assert S3_TEST_SECRET_ACCESS_KEY not in state.message and "AKIA" not in state.message


def test_a_missing_bucket_an_out_that_is_a_file_and_a_text_png_are_refused_at_once(s3_env, s3_client, sim_env, tmp_path):
    (tmp_path / "keeper.png").write_text("not an image, whatever the name says")
    sb = tmp_path / "storyboard.yaml"
    sb.write_text(yaml.safe_dump({"title": "Preflight 2", "shots": [
        {"id": "dawn", "seconds": 4, "visual": "A lighthouse at dawn."},
        {"id": "keeper", "seconds": 4, "visual": "The keeper climbs.", "input_reference": "keeper.png"},
    ]}))  # fmt: skip
    out = tmp_path / "out"
    out.write_text("a file where the output directory should be")
    before = sim_jobs(sim_env)

    state = render_storyboard(RenderRequest(storyboard_path=str(sb), out_dir=str(out), storage="s3://no-such-bucket-here/films"), return_state=True)

    problems = refusal(state)
    assert sim_jobs(sim_env) == before
    assert len(problems) == 3, problems
    assert problems[0] == f"{sb}: shots[1].input_reference: 'keeper.png': is not a PNG, JPEG or WebP image (its content does not start like one)"
    assert problems[1].startswith(f"output directory: {str(out)!r}: {out} is a file")
    assert problems[2] == "storage s3://no-such-bucket-here/films: the bucket 'no-such-bucket-here' does not exist (create it, or name another)"
    assert "no-such-bucket-here" not in {b["Name"] for b in s3_client.list_buckets()["Buckets"]}


def test_the_storage_probe_leaves_nothing_and_a_good_render_goes_on(s3_bucket, s3_client, sim_env, tmp_path):
    """A storyboard with no problem: the probe object is written and removed, the render runs."""
    sb = tmp_path / "storyboard.yaml"
    sb.write_text(yaml.safe_dump({"title": "Preflight 3", "shots": [{"id": "dawn", "seconds": 4, "visual": "A lighthouse at dawn, preflight."}]}))
    before = sim_jobs(sim_env)
    state = render_storyboard(
        RenderRequest(storyboard_path=str(sb), out_dir=str(tmp_path / "out"), storage=f"s3://{s3_bucket}/films"), return_state=True
    )
    assert state.is_completed(), state.message
    assert sim_jobs(sim_env) == before + 1
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys and not [k for k in keys if ".soraflow-probe" in k], keys
