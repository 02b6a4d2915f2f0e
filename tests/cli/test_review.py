"""``soraflow review``: what it is pointed at, and one clean line when that is wrong. (The page
itself, served by this command to a real browser, is tested in tests/screening/test_page.py.)"""

from __future__ import annotations

import socket
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
