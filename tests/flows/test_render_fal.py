"""fal through the whole journey: one film from three dialects (a fal Kling shot made from an
image, a Veo shot, a gateway's openai-videos shot) on the embedded simulator, and kill -9 of a
render of fal shots at five seeded moments against a standalone simulator, after which the
requests fal received equal the clips. A real Prefect server, the SDKs unchanged, real ffmpeg."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.models import load_catalog
from soraflow.simulator.embedded import running_simulator

from ..simulator.media import close_colours, colour_at, png
from .processes import KEY, SimProcess, finish, free_port, render, storyboard
from .test_render import streams
from .test_render_veo import CREDENTIALS

pytestmark = pytest.mark.usefixtures("prefect_server")

GATEWAY = """
endpoints:
  gateway: {dialect: openai-videos, base_url: "http://localhost:4000/v1", key_env: GATEWAY_KEY}
models:
  gateway-veo:
    endpoint: gateway
    seconds: [4, 6, 8]
    sizes: {1280x720: 0.40, 720x1280: 0.40}
"""


@pytest.mark.slow
def test_one_film_from_three_dialects_estimate_equals_billed_and_the_manifest_names_each_endpoint(monkeypatch, tmp_path):
    for var in (*CREDENTIALS, "FAL_KEY", "GATEWAY_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "models.yaml").write_text(GATEWAY)
    (tmp_path / "keeper.png").write_bytes(png(1920, 1080, (180, 60, 30)))
    monkeypatch.setenv("SORAFLOW_MODELS", str(tmp_path / "models.yaml"))
    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SORAFLOW_SIMULATOR_LATENCY", "0.5")
    board = {
        "title": "Three Dialects",
        "size": "1280x720",
        "shots": [
            {"id": "keeper", "seconds": 5, "visual": "The keeper looks out to sea.", "model": "kling-3.0-pro-i2v", "size": "1920x1080",
             "input_reference": "keeper.png", "audio": "wind"},
            {"id": "boat", "seconds": 4, "visual": "A rowing boat leaves the quay.", "model": "veo-3.1-fast-generate-001"},
            {"id": "gull", "seconds": 4, "visual": "A gull circles the lamp.", "model": "gateway-veo"},
        ],
    }
    (tmp_path / "board.yaml").write_text(yaml.safe_dump(board))
    state = render_storyboard(RenderRequest(storyboard_path=str(tmp_path / "board.yaml"), out_dir=str(tmp_path / "out")), return_state=True)
    assert state.is_completed(), state.message
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["endpoints"] == {"fal": "soraflow-simulator:fal", "vertex": "soraflow-simulator:google-genai",
                                     "gateway": "soraflow-simulator"}
    assert [(c["shot_id"], c["endpoint"], c["profile"], c["model"]) for c in manifest["clips"]] == [
        ("keeper", "fal", "kling-3.0-pro-i2v", "fal-ai/kling-video/v3/pro/image-to-video"),
        ("boat", "vertex", "veo-3.1-fast-generate-001", "veo-3.1-fast-generate-001"),
        ("gull", "gateway", "gateway-veo", "gateway-veo"),
    ]
    catalog = load_catalog(tmp_path / "models.yaml")
    expected = (catalog.profile("kling-3.0-pro-i2v").price("1920x1080", 5, audio=True)
                + catalog.profile("veo-3.1-fast-generate-001").price("1280x720", 4, audio=False)
                + catalog.profile("gateway-veo").price("1280x720", 4))
    assert manifest["totals"]["estimated_usd"] == manifest["totals"]["billed_usd"] == f"{expected:.2f}" == state.result().estimated_usd
    assert Decimal(manifest["clips"][0]["price_usd"]) == Decimal("0.840")  # Kling with sound: $0.168/s
    # The fal request went out in Kling's own words, its image through fal's storage upload.
    [kling] = [j for j in running_simulator().state.jobs.all() if j.dialect == "fal" and j.id in manifest["clips"][0]["job_id"]]
    sent = kling.request.arguments
    assert sent["duration"] == "5" and sent["generate_audio"] is True and "/files/" in sent["start_image_url"]
    keeper = Path(manifest["clips"][0]["storage_uri"].removeprefix("file://"))
    assert close_colours(colour_at(keeper, 0.1), (180, 60, 30))  # the image is the clip's first frame
    film = streams(Path(state.result().film))
    assert [(v["width"], v["height"]) for v in film["video"]] == [(1280, 720)] and abs(film["duration"] - 13) <= 0.2


# --- kill -9 ------------------------------------------------------------------------------------


def _fal_env(env: dict, sim: SimProcess, tmp_path: Path) -> dict:
    deadline = time.time() + 30
    while not (found := re.search(r'base_url: "(https://[^"]+)", ca_file: "([^"]+)"', Path(sim.log.name).read_text())):
        assert time.time() < deadline, "the simulator did not print its fal endpoint"
        time.sleep(0.1)
    models = tmp_path / "fal-models.yaml"
    # history_settle_seconds: this simulator finishes a request within a few seconds of its submit.
    models.write_text(f'endpoints:\n  fal: {{base_url: "{found[1]}", ca_file: "{found[2]}", history_settle_seconds: 8}}\n')
    env = {k: v for k, v in env.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return {**env, "FAL_KEY": KEY, "SORAFLOW_MODELS": str(models)}


def _fal_requests(sim: SimProcess) -> list[dict]:
    return [j for j in httpx.get(f"{sim.url}/_sim/jobs").json()["data"] if j["dialect"] == "fal"]


def _clips(env: dict) -> dict[str, tuple]:
    """Clip key -> (state, job id, owner) as the ledger holds them (read as any process could)."""
    import sqlite3

    path = Path(env["SORAFLOW_STATE_DIR"]) / "ledger.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return {k: (state, job, owner) for k, state, job, owner in db.execute("SELECT clip_key, state, job_id, owner FROM clips")}
    except sqlite3.OperationalError:  # the schema is not there yet, or a migration holds it
        return {}
    finally:
        db.close()


def _unanswered(env: dict) -> int:
    return sum(1 for state, job, _ in _clips(env).values() if job is None and state in ("claimed", "creating"))


@pytest.mark.slow
def test_kill_9_at_five_moments_of_a_fal_render_then_a_rerun_requests_equal_clips(tmp_path):
    """fal's request history settles every clip a kill left unanswered: a request that arrived is
    adopted, one that never did is proven absent (after history_settle_seconds) and made. Nothing
    is left in doubt, and fal received exactly one request per clip."""
    from prefect.settings import PREFECT_API_URL

    sim = SimProcess(tmp_path, "--latency", "3", "--fal-port", str(free_port()))
    try:
        env = _fal_env({**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "SORAFLOW_STATE_DIR": str(tmp_path / "state"),
                        "PREFECT_LOGGING_LEVEL": "WARNING", "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "40"}, sim, tmp_path)
        sb = storyboard(tmp_path, 4, title="Fal Crash")
        sb.write_text(sb.read_text().replace("title: Fal Crash", "title: Fal Crash\nmodel: veo-3.1-fal"))
        rng = random.Random(20261206)
        at_kill = []
        for moment in ("claim", "claim", "claim", "late", "late"):
            before = (len(_fal_requests(sim)), _clips(env))
            proc = render(sb, tmp_path / "out", env)
            deadline = time.time() + 90
            if moment == "claim":  # just after this render claims, sends or records something
                while (len(_fal_requests(sim)), _clips(env)) == before and time.time() < deadline and proc.poll() is None:
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.1))
            else:  # later: polling, downloads, the stitch
                time.sleep(rng.uniform(4.0, 12.0))
            at_kill.append((moment, _unanswered(env), len(_fal_requests(sim))))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        proc = render(sb, tmp_path / "out", env)
        output = finish(proc)
        print(f"(moment, unanswered claims, fal requests) at each kill: {at_kill}")
        assert proc.returncode == 0, output
        assert any(claims for _, claims, _ in at_kill), f"no kill landed while a claim was unanswered: {at_kill}"
        requests = _fal_requests(sim)
        assert len(requests) == 4, f"{len(requests)} fal requests for 4 clips: {at_kill}"
        assert len({r["prompt"] for r in requests}) == 4
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        assert sorted(c["job_id"].rsplit("/", 1)[-1] for c in manifest["clips"]) == sorted(r["id"] for r in requests)
    finally:
        sim.stop()
