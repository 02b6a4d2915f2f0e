"""soraflow as a service: deployed from prefect.yaml, run by process workers, triggered like the UI.

One real Prefect server for the whole module (see conftest.py); the simulator stands in for the
endpoint, in this process so its counters can be read.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ffmpeg
import pytest
import yaml

from tests.deployments.conftest import BIN, CONCURRENCY_LIMIT

LIGHTHOUSE = Path(__file__).resolve().parents[2] / "examples" / "lighthouse" / "storyboard.yaml"
WORKERS = ("worker-a", "worker-b", "worker-without-key")
pytestmark = pytest.mark.slow


def start_run(client, deployment: str, parameters: dict, job_variables: dict | None = None):
    """What the UI's Run form does: a flow run from the deployment with the form's parameters."""
    deployment_id = client.read_deployment_by_name(deployment).id
    return client.create_flow_run_from_deployment(deployment_id, parameters=parameters, job_variables=job_variables)


def explain(client, service, flow_run) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
    lines = "\n".join(f"  {log.message}" for log in logs[-40:])
    workers = "\n".join(f"--- {name}\n{service.log(name)[-3000:]}" for name in WORKERS)
    return f"flow run {flow_run.name} ended {flow_run.state_name}: {flow_run.state.message if flow_run.state else ''}\n{lines}\n{workers}"


def wait_until_final(client, service, runs, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while True:
        current = [client.read_flow_run(r.id) for r in runs]
        if all(r.state and r.state.is_final() for r in current):
            for r in current:
                assert r.state.is_completed(), explain(client, service, r)
            return current
        if time.monotonic() > deadline:
            pending = next(r for r in current if not (r.state and r.state.is_final()))
            raise AssertionError(f"not finished after {timeout} s\n{explain(client, service, pending)}")
        time.sleep(1)


def worker_of(service, flow_run_id) -> str:
    """Which worker ran a flow run, from the workers' own logs.

    Both workers may try to claim a run; the server lets one through and the other logs
    "Aborted submission of flow run '<id>'", so a worker counts only if it did not abort.
    """
    run = str(flow_run_id)
    found = [
        name
        for name in WORKERS
        if f"submitting flow run '{run}'" in service.log(name)
        and f"Aborted submission of flow run '{run}'" not in service.log(name)
    ]
    assert len(found) == 1, f"flow run {flow_run_id} claimed by {found}"
    return found[0]


def film_duration(path: Path) -> float:
    return float(ffmpeg.probe(str(path))["format"]["duration"])


def test_deployments_pool_limits_and_variable_are_in_place(prefect_client, prefect_service):
    from prefect.variables import Variable

    from soraflow.deployments.bootstrap import bootstrap
    from soraflow.ledger import Ledger, Slots
    from soraflow.settings import Settings
    from soraflow.watch import WATCH_VARIABLE_NAME

    render = prefect_client.read_deployment_by_name("render-storyboard/render-storyboard")
    watch = prefect_client.read_deployment_by_name("watch-models/watch-models")
    folder = prefect_client.read_deployment_by_name("render-folder/render-folder")
    assert {d.work_pool_name for d in (render, watch, folder)} == {"soraflow-pool"}
    assert [s.schedule.cron for s in watch.schedules] == ["0 */6 * * *"]
    assert [s.schedule.cron for s in folder.schedules] == ["*/30 * * * *"]
    assert render.schedules == []
    # The server's scheduler turned the crons into runs (it did not with SQLAlchemy 2.1).
    watch_starts = prefect_service.upcoming["watch-models/watch-models"]
    assert watch_starts and all(t.minute == 0 and t.hour % 6 == 0 for t in watch_starts)
    assert {(b - a).total_seconds() for a, b in zip(watch_starts, watch_starts[1:])} <= {6 * 3600.0}
    assert prefect_service.upcoming["render-folder/render-folder"]
    assert render.entrypoint == "soraflow.flows.render.render_storyboard"
    assert render.pull_steps == [{"soraflow.deployments.pull.enter_service_dir": {}}]
    form = render.parameter_openapi_schema
    assert {"storyboard", "storyboard_path", "out_dir", "budget_usd", "dry_run"} <= set(form["definitions"]["RenderRequest"]["properties"])
    assert "StoryboardForm" in form["definitions"]

    assert prefect_client.read_work_pool("soraflow-pool").type == "process"
    assert Variable.get(WATCH_VARIABLE_NAME) == {}

    # The workers' limit lives in their shared ledger, sized by bootstrap from the settings; a
    # second bootstrap changes nothing but what the settings changed (here: the limit's size).
    state = Path(prefect_service.env["SORAFLOW_STATE_DIR"])
    slots = Slots(Ledger(str(state / "ledger.sqlite")))
    assert [s.capacity for s in slots.state(["all"])] == [CONCURRENCY_LIMIT]
    again = bootstrap(Settings(state_dir=state, max_concurrent_submissions=CONCURRENCY_LIMIT + 1))
    assert again["work_pool"] == "soraflow-pool" and again["limits"] == {"all": CONCURRENCY_LIMIT + 1}
    assert again["changes"] and "changed to 3 in flight" in again["changes"][0]
    assert [s.capacity for s in slots.state(["all"])] == [CONCURRENCY_LIMIT + 1]
    assert bootstrap(Settings(state_dir=state, max_concurrent_submissions=CONCURRENCY_LIMIT))["changes"]
    assert [s.capacity for s in slots.state(["all"])] == [CONCURRENCY_LIMIT]
    assert len([p for p in prefect_client.read_work_pools() if p.name == "soraflow-pool"]) == 1


@pytest.fixture
def worker_without_key(prefect_service):
    """A process worker started as docs/service.md says, in an environment with no key for any
    endpoint: its flow runs render on the embedded simulator each starts for itself. The
    module's other workers start later (the ``workers`` fixture), so it is alone on the pool."""
    env = {k: v for k, v in prefect_service.env.items() if not k.startswith("OPENAI_")} | {"SORAFLOW_SIMULATOR_LATENCY": "0.5"}
    name = "worker-without-key"
    proc = prefect_service.start(name, str(BIN / "prefect"), "worker", "start", "--pool", "soraflow-pool", "--name", name, env=env)
    yield name
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # a loaded machine: never leave it to take the next test's runs
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_a_worker_with_no_key_renders_what_the_run_form_sends_and_the_scheduled_batch_completes(
    prefect_client, prefect_service, worker_without_key
):
    """The service recipe of docs/service.md on one machine with no key: a run from the UI's form (a typed
    storyboard) makes a film in the worker's service directory; render-folder's first scheduled
    run, with no inbox yet, creates it and ends Completed."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, DeploymentFilter, DeploymentFilterId
    from prefect.states import Scheduled

    from soraflow.flows.form import ShotForm

    render = prefect_client.read_deployment_by_name("render-storyboard/render-storyboard")
    # The form opens on its defaults; a person edits them and clicks Run: these are the parameters.
    request = copy.deepcopy(render.parameter_openapi_schema["properties"]["request"]["default"])
    tag = uuid.uuid4().hex[:8]
    storyboard = request["storyboard"]
    storyboard.update(title=f"Night watch {tag}", size="720x1280", palette=["#1a2b3c"])
    storyboard["shots"][0]["visual"] = f"The lighthouse at dusk, {tag}"
    storyboard["shots"].append(  # a shot added in the form: the UI fills its fields' defaults
        ShotForm(id="night", seconds=4, visual=f"The lamp turns in the dark, {tag}", transition="fade").model_dump(mode="json")
        | {"dialogue": [{"speaker": "Keeper", "line": "All is well."}]}
    )
    run = prefect_client.create_flow_run_from_deployment(render.id, parameters={"request": request})
    [done] = wait_until_final(prefect_client, prefect_service, [run], timeout=400)
    assert worker_of(prefect_service, done.id) == worker_without_key

    out = Path(prefect_service.env["SORAFLOW_SERVICE_DIR"]) / "out"  # the form's "out", in the service directory
    info = ffmpeg.probe(str(out / "film.mp4"))
    assert abs(float(info["format"]["duration"]) - 8) <= 0.2
    assert [(s["width"], s["height"]) for s in info["streams"] if s["codec_type"] == "video"] == [(720, 1280)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["title"] == f"Night watch {tag}" and [c["shot_id"] for c in manifest["clips"]] == ["dawn", "night"]
    assert manifest["endpoints"] == {"openai": "soraflow-simulator"}  # no key: the embedded simulator
    artifacts = prefect_client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[done.id])))
    page = next(a for a in artifacts if (a.key or "").startswith("soraflow-film-"))
    assert "![Contact sheet: one frame per shot](data:image/jpeg;base64," in page.data
    assert not [a for a in artifacts if a.type == "link"]  # a file on the worker has no link a browser opens
    assert "X-Amz" not in str([a.data for a in artifacts])

    # render-folder's schedule: its next run (made by the server's scheduler) is moved to now.
    folder = prefect_client.read_deployment_by_name("render-folder/render-folder")
    prefect_client.resume_deployment(folder.id)
    only_folder = DeploymentFilter(id=DeploymentFilterId(any_=[folder.id]))
    deadline = time.monotonic() + 60
    while not (scheduled := [r for r in prefect_client.read_flow_runs(deployment_filter=only_folder) if r.auto_scheduled and r.state.is_scheduled()]):
        assert time.monotonic() < deadline, "the scheduler made no run of render-folder"
        time.sleep(1)
    try:
        first = min(scheduled, key=lambda r: r.expected_start_time)
        assert first.parameters == {"source": "inbox", "out_root": "out"}
        prefect_client.set_flow_run_state(first.id, Scheduled(scheduled_time=datetime.now(timezone.utc)), force=True)
        [batch] = wait_until_final(prefect_client, prefect_service, [first], timeout=120)
    finally:
        prefect_client.pause_deployment(folder.id)
    inbox = Path(prefect_service.env["SORAFLOW_SERVICE_DIR"]) / "inbox"
    assert batch.state.message == f"created the empty storyboard folder {inbox}; nothing to render"
    assert inbox.is_dir()


def test_two_workers_share_one_concurrency_limit(prefect_client, prefect_service, workers, service_simulator, tmp_path):
    tag = uuid.uuid4().hex[:8]  # new prompts: nothing can come from the ledger or the cache
    requests = []
    for name in ("north", "south"):
        path = tmp_path / f"{name}.yaml"
        shots = [{"id": f"s{i}", "seconds": 4, "visual": f"The {name} coast, view {i} ({tag})"} for i in range(1, 4)]
        path.write_text(yaml.safe_dump({"title": f"{name} {tag}", "model": "sora-2", "size": "1280x720", "shots": shots}))
        requests.append({"request": {"storyboard_path": str(path), "out_dir": str(tmp_path / name)}})
    jobs_before = len(service_simulator.jobs())

    runs = [start_run(prefect_client, "render-storyboard/render-storyboard", params) for params in requests]
    done = wait_until_final(prefect_client, prefect_service, runs)

    assert {worker_of(prefect_service, r.id) for r in done} == set(workers)
    first, second = sorted(done, key=lambda r: r.start_time)
    assert second.start_time < first.end_time, "the two renders did not run at the same time"
    assert len(service_simulator.jobs()) - jobs_before == 6
    assert service_simulator.stats()["peak_active_jobs"] <= CONCURRENCY_LIMIT
    for name in ("north", "south"):
        assert abs(film_duration(tmp_path / name / "film.mp4") - 12) <= 0.2


def test_watch_deployment_event_pauses_the_batch_through_an_automation(prefect_client, prefect_service, workers):
    from soraflow.deployments.automations.model_watch import ensure_automations
    from soraflow.simulator import Simulator, SimulatorConfig

    created = ensure_automations()
    assert ensure_automations() == created  # idempotent: updated in place, not duplicated
    folder = prefect_client.read_deployment_by_name("render-folder/render-folder")
    prefect_client.resume_deployment(folder.id)
    assert not prefect_client.read_deployment(folder.id).paused

    with Simulator(SimulatorConfig(latency=0.5, shutdown=True)) as retired:
        run = start_run(
            prefect_client,
            "watch-models/watch-models",
            {},
            job_variables={"env": {"OPENAI_BASE_URL": retired.base_url, "SORAFLOW_ENDPOINT_ID": "retired-endpoint"}},
        )
        wait_until_final(prefect_client, prefect_service, [run])

    from prefect.variables import Variable

    from soraflow.watch import WATCH_VARIABLE_NAME

    seen = Variable.get(WATCH_VARIABLE_NAME)["retired-endpoint"]
    assert seen["sora-2"]["status"] == "gone"

    deadline = time.monotonic() + 120  # the server's trigger and action services run on their own loop
    while not prefect_client.read_deployment(folder.id).paused:
        assert time.monotonic() < deadline, f"the automation did not pause render-folder; events: {soraflow_events(prefect_client)}"
        time.sleep(1)


def soraflow_events(client) -> list[tuple[str, str]]:
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    since = EventOccurredFilter(since=datetime.now(timezone.utc) - timedelta(hours=1))
    page = client.read_events(EventFilter(occurred=since, event=EventNameFilter(prefix=["soraflow.", "prefect.automation"])), limit=50)
    return [(e.occurred.isoformat(), e.event, e.resource.id) for e in page.events]
