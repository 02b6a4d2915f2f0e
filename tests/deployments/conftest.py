"""One real ``prefect server start`` (SQLite, its own PREFECT_HOME, a free loopback port) for
this package, the simulator, soraflow's deployments, and two process workers on one pool."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONCURRENCY_LIMIT = 2  # clips in flight across both workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    api_url: str
    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    upcoming: dict[str, list] = field(default_factory=dict)  # scheduled start times by deployment

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        # Each process leads its own session: its group also holds the flow runs it started.
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def wait_for_health(url: str, proc: subprocess.Popen, service: Service, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{service.log('server')[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server not healthy after {timeout} s:\n{service.log('server')[-4000:]}")


SCHEDULED = ("watch-models/watch-models", "render-folder/render-folder")


def scheduled_then_paused(api_url: str, timeout: float = 60) -> dict[str, list]:
    """Wait for the server's scheduler to create each scheduled deployment's upcoming runs, note
    their start times, then pause those deployments so that a cron slot falling inside the test
    run does not take a worker (pausing also deletes their future auto-scheduled runs)."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    upcoming: dict[str, list] = {}
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        deadline = time.monotonic() + timeout
        for name in SCHEDULED:
            deployment = client.read_deployment_by_name(name)
            only_this = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            while not (runs := client.read_flow_runs(deployment_filter=only_this)) and time.monotonic() < deadline:
                time.sleep(1)
            upcoming[name] = sorted(r.expected_start_time for r in runs)
            client.pause_deployment(deployment.id)
    return upcoming


@pytest.fixture(scope="package")
def service_simulator(tmp_path_factory):
    from soraflow.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(latency=1.0, cache_dir=str(tmp_path_factory.mktemp("service-sim-cache")))) as sim:
        yield sim


@pytest.fixture(scope="package")
def prefect_service(tmp_path_factory, service_simulator):
    """The server, bootstrapped and deployed from deployments/prefect.yaml, with two workers."""
    base = tmp_path_factory.mktemp("prefect-service")
    (base / "logs").mkdir()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "SORAFLOW_"))
    } | {
        "PREFECT_HOME": str(base / "home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "OPENAI_BASE_URL": service_simulator.base_url,
        "OPENAI_API_KEY": service_simulator.api_key,
        "SORAFLOW_STATE_DIR": str(base / "state"),
        "SORAFLOW_SERVICE_DIR": str(base / "service"),
        "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": str(CONCURRENCY_LIMIT),
        "SORAFLOW_POLL_MIN_INTERVAL_SECONDS": "0.2",
        "SORAFLOW_RETRY_BASE_DELAY_SECONDS": "0.2",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    service = Service(api_url=api_url, env=env, logs=base / "logs")
    try:
        server = service.start("server", str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui")
        wait_for_health(api_url, server, service)
        service.run(str(BIN / "soraflow"), "bootstrap")
        service.run(str(BIN / "prefect"), "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all", timeout=180)
        service.upcoming = scheduled_then_paused(api_url)
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="package")
def workers(prefect_service):
    """Two process workers on soraflow-pool, one flow run at a time each."""
    names = ["worker-a", "worker-b"]
    for name in names:
        prefect_service.start(
            name, str(BIN / "prefect"), "worker", "start", "--pool", "soraflow-pool", "--name", name, "--limit", "1",
            "--prefetch-seconds", "1",
        )
    return names


@pytest.fixture
def prefect_client(prefect_service):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_service.api_url}):
        with get_client(sync_client=True) as client:
            yield client
