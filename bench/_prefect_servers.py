"""Prefect API servers for benchmarks, one per backend.

- ``sqlite``: Prefect's test harness, the same SQLite backend as the temporary server that
  ``soraflow render`` starts when no PREFECT_API_URL is set.
- ``postgres``: ``prefect server start`` on a throwaway PostgreSQL cluster, the backend that
  ``infra/compose.yaml`` deploys for the service. Needs Debian's ``postgresql`` package
  (``apt-get install -y postgresql``); the cluster lives in a temporary directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

BACKENDS = ("sqlite", "postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # initdb and the postmaster refuse to run as root
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server did not answer at {url} within {timeout:.0f} s")


@contextmanager
def postgres_server() -> Iterator[str]:
    bindir = _pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    tmp = Path(tempfile.mkdtemp(prefix="soraflow-bench-pg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
    pg_port, api_port = _free_port(), _free_port()
    subprocess.run(_as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-U", "prefect", "--auth=trust"]),
                   check=True, capture_output=True)
    subprocess.run(
        _as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(tmp / "pg.log"), "-o",
                           f"-p {pg_port} -k {sock} -c listen_addresses=127.0.0.1", "start"]),
        check=True, capture_output=True,
    )
    server = None
    try:
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "prefect", "prefect"],
                       check=True, capture_output=True)
        env = {
            **os.environ,
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://prefect@127.0.0.1:{pg_port}/prefect",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)
        log = tmp / "server.log"
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(api_port)],
            env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{api_port}/api"
        _wait_healthy(url, server, log)
        yield url
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        subprocess.run(_as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def harness_or_env(backend: str) -> Iterator[None]:
    """In a measuring process: the SQLite harness, or the server PREFECT_API_URL names."""
    if backend == "sqlite":
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            yield
        return
    if not os.environ.get("PREFECT_API_URL"):
        raise RuntimeError(f"backend {backend!r} needs PREFECT_API_URL (the parent process starts the server)")
    yield
