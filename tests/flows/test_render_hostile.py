"""render-storyboard against an OpenAI-Videos endpoint that answers in hostile ways (rule 7).

The endpoint is a proxy in front of the simulator (tests/fixtures/endpoints.py) that damages
one kind of answer at a time. Each case ends in one clear message naming the endpoint, what it
answered and where, with at most one job made (counted at the simulator) and no hang; none of
them lets a credential go to another origin or a damaged clip into the film.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ffmpeg
import pytest
import yaml
from typer.testing import CliRunner

from soraflow.cli import app
from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.models import load_catalog
from soraflow.simulator import Simulator, SimulatorConfig, simulated_models

from ..fixtures.endpoints import PREFIX_BYTES, azure_key, bearer

pytestmark = pytest.mark.usefixtures("prefect_server")

KEY = "gw-hostile-key-0123456789"
AZURE_KEY = "az-hostile-key-0123456789"
LIMIT = 1 << 20  # SORAFLOW_MAX_CLIP_BYTES: far more than the simulator's 4 s clip
MODELS = """
endpoints:
  gw: {{base_url: "{gw}", key_env: GW_KEY}}
  azure: {{base_url: "{azure}", auth: api-key, key_env: AZURE_OPENAI_API_KEY, models_route: false}}
models:
  gw-video: {{endpoint: gw, model: gw-video, seconds: [4], sizes: {{1280x720: 0.10}}}}
  azure-video: {{endpoint: azure, model: azure-video, seconds: [4], sizes: {{1280x720: 0.10}}}}
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    catalog = load_catalog(text=MODELS.format(gw="http://x/v1", azure="http://x/openai/v1"))
    config = SimulatorConfig(latency=0.3, cache_dir=str(tmp_path_factory.mktemp("renders")), models=simulated_models(catalog))
    with Simulator(config) as sim:
        yield sim


@pytest.fixture
def env(monkeypatch, tmp_path, sim):
    sim.reset()
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GW_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    return monkeypatch


def point_at(env, tmp_path: Path, gw: str = "http://127.0.0.1:9/v1", azure: str = "http://127.0.0.1:9/openai/v1") -> None:
    path = tmp_path / "models.yaml"
    path.write_text(MODELS.format(gw=gw, azure=azure))
    env.setenv("SORAFLOW_MODELS", str(path))


def board(tmp_path: Path, model: str = "gw-video") -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({"title": "Hostile", "size": "1280x720", "model": model,
                                    "shots": [{"id": "cove", "seconds": 4, "visual": "A cove at night, one lantern."}]}))  # fmt: skip
    return path


def render(tmp_path: Path, model: str = "gw-video"):
    started = time.monotonic()
    state = render_storyboard(RenderRequest(storyboard_path=str(board(tmp_path, model)), out_dir=str(tmp_path / "out")), return_state=True)
    assert time.monotonic() - started < 120, "the render hung"
    return state


def failure(state) -> str:
    """The one line a failed render's clip gets (what the CLI prints after the shot's name)."""
    assert state.is_failed(), state
    failures = state.result(raise_on_failure=False).failures
    assert len(failures) == 1, failures
    assert "\n" not in failures[0]["error"], failures[0]["error"]
    return failures[0]["error"]


def content_requests(proxy) -> int:
    return len([s for s in proxy.seen if s.path.endswith("/content")])


def test_a_content_redirect_to_another_origin_carries_no_credential(sim, endpoint_proxy, env, tmp_path):
    """Azure's `api-key` header (no bearer beside it), redirected to a CDN on another origin:
    httpx would drop an Authorization header there but keep `api-key`."""
    cdn = endpoint_proxy(sim, auth=lambda request: None)  # serves anyone, records what it got
    azure = endpoint_proxy(sim, auth=azure_key(AZURE_KEY), prefix="/openai/v1", redirect_content=cdn.base_url)
    point_at(env, tmp_path, azure=azure.base_url)

    state = render(tmp_path, "azure-video")
    assert state.is_completed(), state.message
    assert content_requests(azure) >= 1 and content_requests(cdn) >= 1  # the video came through the redirect
    assert {(s.headers.get("api-key"), s.headers.get("authorization")) for s in azure.seen} == {(AZURE_KEY, None)}
    assert [s.headers for s in cdn.seen if "api-key" in s.headers or "authorization" in s.headers] == []
    assert len(sim.jobs()) == 1


def test_a_cut_or_endless_clip_is_refused_and_a_damaged_stored_one_is_fetched_again_with_no_new_job(sim, endpoint_proxy, env, tmp_path, monkeypatch):
    gw = endpoint_proxy(sim, auth=bearer(KEY), content="prefix")
    point_at(env, tmp_path, gw=gw.base_url)
    env.setenv("SORAFLOW_MAX_CLIP_BYTES", str(LIMIT))  # read once per endpoint's provider: set before the first render

    # 1. the first 64 KiB of the clip, with a Content-Length that matches: refused at download
    line = failure(render(tmp_path))
    assert "downloaded clip cove failed validation: clip cove: its video data ends at" in line, line
    assert "the file is cut short (65536 bytes)" in line
    assert len(sim.jobs()) == 1 and not (tmp_path / "out" / "film.mp4").exists()

    # 2. an endless answer ends at the download's bound (the job stays recorded)
    gw.content = "endless"
    line = failure(render(tmp_path))
    assert f"sent more than {LIMIT} bytes for the video of job {sim.jobs()[0]['id']}" in line, line
    assert len(sim.jobs()) == 1

    # 3. as soraflow did before the packet check: the cut clip passes, is stored, and the film fails
    from soraflow.media import _probe

    gw.content = "prefix"
    with monkeypatch.context() as old:
        old.setattr(_probe, "_damage", lambda probe: None)
        state = render(tmp_path)
    assert state.is_failed() and len(sim.jobs()) == 1
    kept = list((tmp_path / "out").rglob("clips/cove-p1-*.mp4"))
    assert kept and {p.stat().st_size for p in kept} == {PREFIX_BYTES}  # the damaged copy, in work dir and storage

    # 4. a rerun against a correct endpoint finds the damaged copy, fetches the job's video again, makes the film
    gw.content = None
    fetched = content_requests(gw)
    state = render(tmp_path)
    assert state.is_completed(), state.message
    assert len(sim.jobs()) == 1, "a new job was made"
    assert content_requests(gw) > fetched
    assert abs(float(ffmpeg.probe(state.result().film)["format"]["duration"]) - 4) <= 0.1
    assert {p.stat().st_size for p in (tmp_path / "out").rglob("clips/cove-p1-*.mp4")} != {PREFIX_BYTES}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["totals"]["billed_usd"] == "0.40" and state.result().billed_usd_this_run == "0.00"


def test_an_empty_job_id_puts_the_clip_in_doubt_without_a_second_job(sim, endpoint_proxy, env, tmp_path):
    gw = endpoint_proxy(sim, auth=bearer(KEY), job_id="")
    point_at(env, tmp_path, gw=gw.base_url)
    line = failure(render(tmp_path))
    assert f"endpoint gw ({gw.base_url}) answered POST /videos with id '', not a job id" in line, line
    assert "is in doubt" in line and "soraflow jobs adopt" in line
    assert len(sim.jobs()) == 1


def test_a_job_list_with_a_malformed_created_at_says_which_field(sim, endpoint_proxy, env, tmp_path):
    """A create whose answer is lost (500 after the job was made) is searched for in the job
    list, which shows `created_at: "yesterday"`: it proves nothing, and the message says why."""
    gw = endpoint_proxy(sim, auth=bearer(KEY), create_status=500, list_created_at="yesterday")
    point_at(env, tmp_path, gw=gw.base_url)
    line = failure(render(tmp_path))
    job = sim.jobs()[0]["id"]
    assert f"endpoint gw ({gw.base_url}) answered GET /videos with job {job!r}: created_at 'yesterday', not a Unix time" in line, line
    assert "is in doubt" in line
    assert len(sim.jobs()) == 1


def test_models_answering_html_is_one_line_naming_the_endpoint_and_route(sim, endpoint_proxy, env, tmp_path):
    gw = endpoint_proxy(sim, auth=bearer(KEY), models_body=("text/html", "<html><body>Welcome to nginx!</body></html>"))
    point_at(env, tmp_path, gw=gw.base_url)
    from soraflow.cli._output import out

    env.setattr(out, "width", 1000)  # the error's cell unfolded (with fal's profiles the columns are narrow)
    res = CliRunner().invoke(app, ["models", "--check"])
    assert res.exit_code == 0, res.output
    said = f"endpoint gw ({gw.base_url}) answered GET /models with text/html, not a JSON list of models"
    assert said in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output and "AttributeError" not in res.output

    line = " ".join(str(render(tmp_path).message).split())  # the render's preflight asks /models too
    assert said in line and "Traceback" not in line, line
    assert len(sim.jobs()) == 0


@pytest.mark.slow
def test_the_cli_prints_a_hostile_answer_as_one_line_and_no_traceback(sim, endpoint_proxy, tmp_path):
    """As a user sees it: `soraflow render` in its own process, a job id that is `..`."""
    from prefect.settings import PREFECT_API_URL

    gw = endpoint_proxy(sim, auth=bearer(KEY), job_id="..")
    models = tmp_path / "models.yaml"
    models.write_text(MODELS.format(gw=gw.base_url, azure="http://127.0.0.1:9/openai/v1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SORAFLOW_"))} | {
        "PREFECT_API_URL": PREFECT_API_URL.value(), "SORAFLOW_STATE_DIR": str(tmp_path / "state"), "SORAFLOW_MODELS": str(models),
        "GW_KEY": KEY, "SORAFLOW_RETRY_BASE_DELAY_SECONDS": "0.2",
    }  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "soraflow.cli", "render", str(board(tmp_path)), "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if "shot 'cove' part 1:" in line]
    assert len(lines) == 1 and f"answered POST /videos with id '..', not a job id" in lines[0], done.stderr
    assert len(sim.jobs()) == 1
