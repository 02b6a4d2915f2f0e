"""Settings a user gets wrong: one line naming the variable, its value and what is allowed.

Through the CLI (exit 2, no traceback) for each kind: a time that is negative, not a number,
0 or infinite; a value of the wrong type; JSON that does not parse; a state directory that
cannot be made; and `soraflow simulator` on a port another process listens on.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from soraflow.cli import app
from soraflow.errors import InvalidSettingError
from soraflow.settings import Settings

runner = CliRunner()


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("SORAFLOW_REQUEST_TIMEOUT_SECONDS", "-5", "a finite number of seconds, more than 0"),
        ("SORAFLOW_REQUEST_TIMEOUT_SECONDS", "nan", "a finite number of seconds, more than 0"),
        ("SORAFLOW_REQUEST_TIMEOUT_SECONDS", "0", "a finite number of seconds, more than 0"),
        ("SORAFLOW_SIMULATOR_LATENCY", "inf", "a finite number of seconds, more than 0"),
        ("SORAFLOW_POLL_MIN_INTERVAL_SECONDS", "0", "a finite number of seconds, more than 0"),
        ("SORAFLOW_SLOT_LEASE_SECONDS", "inf", "a finite number of seconds, at least 5 and at most 86400"),
        ("SORAFLOW_LEDGER_LEASE_SECONDS", "-inf", "a finite number of seconds, more than 0"),
        ("SORAFLOW_MAX_CONCURRENT_SUBMISSIONS", "four", "a whole number, at least 1"),
        ("SORAFLOW_SIMULATE", "maybe", "true or false"),
        ("SORAFLOW_SPEND_CAP_DAY_USD", "NaN", "a finite amount of USD, at least 0"),
        ("SORAFLOW_SPEND_CAPS_BY_ENDPOINT", "{vertex: 5", 'it does not parse (JSONDecodeError'),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_its_value_and_what_is_allowed(tmp_path, lighthouse, variable, value, allowed):
    res = runner.invoke(app, ["estimate", str(lighthouse)], env={variable: value, "SORAFLOW_STATE_DIR": str(tmp_path)})
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"error: invalid setting {variable}={value!r} is not allowed: "), lines[0]
    assert allowed in lines[0] and "Traceback" not in res.output and "validation error" not in res.output


def test_a_secret_setting_is_never_shown_and_every_bad_setting_is_named_at_once(monkeypatch):
    monkeypatch.setenv("SORAFLOW_REQUEST_TIMEOUT_SECONDS", "soon")
    monkeypatch.setenv("SORAFLOW_TRANSIENT_RETRIES", "-1")
    monkeypatch.setenv("SORAFLOW_LEDGER_URL", "postgresql+psycopg://soraflow:hunter2-very-secret@db/ledger")
    with pytest.raises(InvalidSettingError) as err:
        Settings(ledger_url=["not", "a", "text"])  # a list: the secret field fails too
    text = str(err.value)
    assert "\n" not in text
    assert "SORAFLOW_REQUEST_TIMEOUT_SECONDS='soon' is not allowed" in text
    assert "SORAFLOW_TRANSIENT_RETRIES='-1' is not allowed: a whole number, at least 0" in text
    assert "SORAFLOW_LEDGER_URL=(a secret, not shown)" in text and "hunter2" not in text


def test_a_state_dir_that_cannot_be_made_and_a_simulator_port_in_use_are_one_line_each(tmp_path):
    """Real processes: what a user's shell shows (stderr, exit status), with no traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SORAFLOW_STATE_DIR": str(blocker / "state")}
    jobs = subprocess.run([sys.executable, "-m", "soraflow.cli", "jobs"], env=env, capture_output=True, text=True, timeout=120)
    assert jobs.returncode == 2, jobs.stderr
    assert jobs.stderr.strip().splitlines() == [
        f"error: invalid setting SORAFLOW_STATE_DIR={str(blocker / 'state')!r}: the directory cannot be made: Not a directory; "
        "allowed: a directory this user can create and write (the ledger and results live there)"
    ]

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sim = subprocess.run([sys.executable, "-m", "soraflow.cli", "simulator", "--port", str(port)], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert sim.returncode == 2, sim.stderr
    assert sim.stderr.strip().splitlines() == [
        f"error: the simulator cannot listen on 127.0.0.1:{port} (--port): Address already in use; another process listens there, or "
        "the address is not this machine's; allowed: a free port (--port 0 takes any)"
    ]
    assert sim.stdout == ""


@pytest.mark.parametrize(("option", "value", "allowed"), [("--latency", "inf", "a finite number"), ("--latency", "-1", "greater than or equal to 0")])
def test_a_bad_simulator_option_is_one_line(option, value, allowed):
    res = runner.invoke(app, ["simulator", option, value])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [f"error: {option} {float(value)!r} is not allowed: {allowed}"]
