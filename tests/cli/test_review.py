"""``soraflow review``: what it is pointed at, and one clean line when that is wrong. (The page
itself, served by this command to a real browser, is tested in tests/screening/test_page.py.)"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

from typer.testing import CliRunner

from soraflow.cli import app

from .test_cli import cli_env, soraflow

runner = CliRunner()


def test_something_that_is_neither_a_directory_nor_a_run_id_is_refused_at_once(tmp_path):
    result = runner.invoke(app, ["review", str(tmp_path / "no-such-dir")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: RUN_OR_OUT_DIR '{tmp_path / 'no-such-dir'}' is neither an output directory nor a flow run id"
    ]


def test_a_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["review", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"error: the review page cannot listen on 127.0.0.1:{port}: Address already in use (pass --port 0 for any free port)"
    )
    assert "Traceback" not in result.output


def test_a_run_the_prefect_server_does_not_know_is_said(prefect_server):
    run_id = str(uuid.uuid4())
    result = runner.invoke(app, ["review", run_id])
    assert result.exit_code == 2
    assert f"error: there is no flow run {run_id} at the Prefect API http://127.0.0.1:" in result.output


def test_a_run_id_without_a_prefect_api_asks_for_one(tmp_path):
    run_id = str(uuid.uuid4())
    result = soraflow("review", run_id, env=cli_env(tmp_path, SORAFLOW_PREFECT_LOCAL_API="http://127.0.0.1:9"), timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {run_id} looks like a flow run id, but no Prefect API is reachable to look it up: set PREFECT_API_URL, "
        "or pass the run's output directory"
    ]


def test_a_deployment_run_is_found_in_the_workers_service_directory(prefect_server, tmp_path):
    """A run of render-storyboard started from the UI with the form's default output folder ("out",
    relative: in the worker's service directory): its id is enough to open its review."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    from soraflow.flows.render import render_storyboard

    from ..screening.reviews import review_of, write_state

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(render_storyboard, parameters={"request": {"budget_usd": 5}})  # out_dir not sent
    service = tmp_path / "service"
    write_state(service / "out", review_of(service / "out", (service / "out").as_uri(), {}, flow_run_id=str(run.id)))
    env = cli_env(tmp_path, PREFECT_API_URL=str(PREFECT_API_URL.value()), SORAFLOW_SERVICE_DIR=str(service), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "soraflow.cli", "review", str(run.id), "--port", "0"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = process.stdout.readline()
        assert line.startswith(f"review page of {service / 'out'}: http://127.0.0.1:"), (line, process.poll() is not None and process.stderr.read())
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0
        process.stdout.close()
        process.stderr.close()
