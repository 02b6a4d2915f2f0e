"""Shared fixtures: one Prefect server and one simulator per test session.

Environment for the whole session is set here, before any soraflow task module is imported,
because Prefect fixes a task's retry policy when the task is defined.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="soraflow-tests-"))
os.environ.setdefault("SORAFLOW_RETRY_BASE_DELAY_SECONDS", "0.2")
os.environ.setdefault("SORAFLOW_STATE_DIR", str(_SESSION_HOME / "state"))
os.environ.setdefault("SORAFLOW_POLL_MIN_INTERVAL_SECONDS", "0.1")
# Never let a test reach a real endpoint: every test sets its own base URL and key.
for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
    os.environ.pop(var, None)

pytest_plugins = ["tests.fixtures.s3", "tests.fixtures.postgres", "tests.fixtures.endpoints", "tests.fixtures.gateway"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect API (the test harness runs a server in a subprocess), once per session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def simulator():
    """The Videos API simulator over HTTP, validating every request against the reference."""
    from soraflow.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(latency=0.6, validate_requests=True, cache_dir=str(_SESSION_HOME / "sim-cache"))) as sim:
        yield sim


@pytest.fixture
def sim_env(simulator, tmp_path, monkeypatch):
    """Point soraflow at the session simulator with a fresh state dir (ledger + results)."""
    simulator.set_faults("", seed=None)
    monkeypatch.setenv("OPENAI_BASE_URL", simulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", simulator.api_key)
    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SORAFLOW_MAX_CONCURRENT_SUBMISSIONS", "8")
    yield simulator
    simulator.set_faults("", seed=None)


@pytest.fixture
def lighthouse() -> Path:
    return EXAMPLES / "lighthouse" / "storyboard.yaml"
