"""The API key never reaches logs, artifacts, manifests, results, the ledger or cache keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from soraflow.flows.render import RenderRequest, render_storyboard

pytestmark = pytest.mark.usefixtures("prefect_server")

SECRET = "sk-proj-SECRETSECRET-0123456789abcdef"


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_api_key_appears_nowhere(sim_env, lighthouse, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # the simulator accepts any bearer key
    caplog.set_level(logging.DEBUG)
    state = render_storyboard(RenderRequest(storyboard_path=str(lighthouse), out_dir=str(tmp_path / "out")), return_state=True)
    assert state.is_completed(), state.message

    # outputs, manifest, ledger, persisted task results (whose file names are the cache keys)
    assert _files_containing(tmp_path, SECRET.encode()) == []
    assert not any(SECRET in p.name for p in tmp_path.rglob("*"))
    assert SECRET not in caplog.text
    assert SECRET not in repr(state.result())

    # what the Prefect server holds: flow run parameters, task run names, logs and artifacts
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        assert SECRET not in flow_run.model_dump_json()
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        assert logs and all(SECRET not in log.message for log in logs)
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        assert artifacts and all(SECRET not in a.model_dump_json() for a in artifacts)
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        assert task_runs and all(SECRET not in t.model_dump_json() for t in task_runs)
