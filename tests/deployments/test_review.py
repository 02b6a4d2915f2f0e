"""The review step from a deployment: the run suspends and frees its worker (the same worker runs
another flow run meanwhile), resumes with the payload the UI's form sends, and runs the flow from
the top with nothing created or downloaded again.

The package's Prefect server (conftest.py); render-storyboard deployed to a work pool of its own
with one worker of one slot, so no other worker of the package can take these runs.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import httpx
import pytest
import yaml

from soraflow.review import REVIEW_STATE_NAME, ReviewState
from tests.deployments.conftest import BIN

from ..simulator.media import band_colour, close_colours

POOL = "review-pool"
WORKER = "review-worker"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def review_deployment(prefect_service):
    """render-storyboard deployed to POOL (module entrypoint, as prefect.yaml does), and one
    process worker of one slot on it."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import EntrypointType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from soraflow.flows.render import render_storyboard

    with temporary_settings(updates={PREFECT_API_URL: prefect_service.api_url}):
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)
        deployment = render_storyboard.to_deployment(name="review", entrypoint_type=EntrypointType.MODULE_PATH)
        deployment_id = deployment.apply(work_pool_name=POOL)
    worker = prefect_service.start(
        WORKER, str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", WORKER, "--limit", "1", "--prefetch-seconds", "1",
    )
    yield deployment_id
    worker.terminate()


def wait_for(client, run_id, check, what: str, service, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        if check(run):
            return run
        if run.state and run.state.is_final() and not check(run):
            raise AssertionError(f"flow run {run.name} ended {run.state_name} ({run.state.message}) waiting for {what}\n{service.log(WORKER)[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"flow run {run.name} is {run.state_name}, not {what}, after {timeout} s\n{service.log(WORKER)[-3000:]}")
        time.sleep(0.5)


def resume_as_the_ui(client, service, run_id, values: dict) -> dict:
    """``POST /flow_runs/{id}/resume`` with the form's values, as the UI sends it. A 503 (the
    server's SQLite busy) is tried again, as Prefect's own client does.

    First the suspended run's process must be gone: Prefect's worker frees its slot for a run
    only once it has reaped the run's process, and a run resumed before then crashes the worker
    ("this borrower is already holding one of this CapacityLimiter's tokens", PrefectHQ/prefect
    #10632, #16806). A person deciding takes longer than that; a test does not."""
    pid = int(str(client.read_flow_run(run_id).infrastructure_pid).rsplit(":", 1)[-1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    time.sleep(1)  # the worker frees the slot right after reaping the process
    for _ in range(10):
        answer = httpx.post(f"{service.api_url}/flow_runs/{run_id}/resume", json={"run_input": values}, timeout=30)
        if answer.status_code != 503:
            break
        time.sleep(1)
    assert answer.is_success, answer.text
    return answer.json()


def suspended(run) -> bool:
    return bool(run.state and run.state.is_paused() and run.state.name == "Suspended")


def ran_on_the_review_worker(service, run_id) -> bool:
    log = service.log(WORKER)
    return f"submitting flow run '{run_id}'" in log or f"Submitting flow run '{run_id}'" in log


def test_a_suspended_review_frees_its_worker_and_resumes_with_the_forms_payload(prefect_service, review_deployment, service_simulator, tmp_path):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    tag = uuid.uuid4().hex[:8]
    path = tmp_path / "harbour.yaml"
    shots = [{"id": s, "seconds": 4, "visual": f"The harbour at night, view {s} ({tag})"} for s in ("a", "b")]
    path.write_text(yaml.safe_dump({"title": f"Harbour {tag}", "takes": 2, "shots": shots}))
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"title": f"Quay {tag}", "shots": [{"id": "q", "seconds": 4, "visual": f"A quay ({tag})"}]}))
    out = tmp_path / "out"
    review_json = out / ".work" / REVIEW_STATE_NAME
    jobs = len(service_simulator.jobs())

    with temporary_settings(updates={PREFECT_API_URL: prefect_service.api_url}), get_client(sync_client=True) as client:
        # the run form with "Review before stitching" ticked
        run = client.create_flow_run_from_deployment(
            review_deployment, parameters={"request": {"storyboard_path": str(path), "out_dir": str(out), "review": True}}
        )
        wait_for(client, run.id, suspended, "suspended for review 1", prefect_service)
        assert len(service_simulator.jobs()) - jobs == 4
        first = ReviewState.model_validate_json(review_json.read_text())
        assert first.flow_run_id == str(run.id) and first.round == 1 and [len(s.takes) for s in first.shots] == [2, 2]
        # what the UI draws: the form's schema (ReviewDecision's fields) and its description
        schema = client.read_flow_run_input(run.id, "suspended-review-1-schema")
        assert set(json.loads(schema)["properties"]) == {"approve", "shots"}
        assert "choose a take of each shot" in json.loads(client.read_flow_run_input(run.id, "suspended-review-1-description"))

        # the worker is free: the same worker runs another flow run while the first waits
        second = client.create_flow_run_from_deployment(review_deployment, parameters={"request": {"storyboard_path": str(other), "out_dir": str(tmp_path / "quay")}})
        wait_for(client, second.id, lambda r: r.state and r.state.is_completed(), "completed", prefect_service)
        assert suspended(client.read_flow_run(run.id))
        assert ran_on_the_review_worker(prefect_service, run.id) and ran_on_the_review_worker(prefect_service, second.id)

        # resumed as the UI's form does it: POST /flow_runs/{id}/resume with the form's values
        form = {"approve": False, "shots": [{"shot": "a", "keep": 2, "retake": None},
                                            {"shot": "b", "keep": None, "retake": {"prompt_change": "the boat is red", "seed": None}}]}
        assert resume_as_the_ui(client, prefect_service, run.id, form)["status"] == "ACCEPT"
        # the run starts again from the top: the takes are the ledger's, only the retake is created
        wait_for(client, run.id, lambda r: suspended(r) and ReviewState.model_validate_json(review_json.read_text()).round == 2,
                 "suspended for review 2", prefect_service)
        assert len(service_simulator.jobs()) - jobs == 4 + 1 + 1  # + the other run's clip + the retake
        assert "the boat is red" in service_simulator.jobs()[-1]["prompt"]
        second_review = ReviewState.model_validate_json(review_json.read_text())
        assert [(s.shot, s.chosen, [t.take for t in s.takes]) for s in second_review.shots] == [("a", 2, [1, 2]), ("b", 3, [1, 2, 3])]

        requests = service_simulator.stats()["requests_total"]
        assert resume_as_the_ui(client, prefect_service, run.id, {"approve": True, "shots": []})["status"] == "ACCEPT"
        done = wait_for(client, run.id, lambda r: r.state and r.state.is_completed(), "completed", prefect_service)
        # from the top a third time: both decisions replayed from Prefect, nothing sent to the endpoint
        assert service_simulator.stats()["requests_total"] == requests
        assert len(service_simulator.jobs()) - jobs == 6
        assert done.run_count >= 1

    manifest = json.loads((out / "manifest.json").read_text())
    chosen = {c["shot_id"]: c for c in manifest["clips"] if c["chosen"]}
    assert (chosen["a"]["take"], chosen["b"]["take"]) == (2, 3) and len(manifest["clips"]) == 5
    clip_b = next((out / ".work" / "clips").glob("b-p1-t3-*.mp4"))
    assert close_colours(band_colour(out / "film.mp4", 5.5), band_colour(clip_b, 1.5))
