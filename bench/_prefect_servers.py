"""Prefect API servers for benchmarks, one per backend.

- ``sqlite``: Prefect's test harness, the same SQLite backend as the temporary server that
  ``soraflow render`` starts when no PREFECT_API_URL is set.
- ``postgres``: ``prefect server start`` on a throwaway PostgreSQL cluster, the backend that
  ``infra/compose.yaml`` deploys for the service, on the tests' throwaway cluster
  (``tests/fixtures/postgres.py``: Debian's ``postgresql`` package, a temporary directory).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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
    """``prefect server start`` on a throwaway cluster (the tests' Postgres fixture, fsync on)."""
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:  # a benchmark run as a script: the repository's tests/ fixtures
        sys.path.insert(0, root)
    from tests.fixtures.postgres import PostgresServer

    api_port = _free_port()
    with PostgresServer(durable=True) as pg:
        pg.execute("CREATE DATABASE prefect")
        server = None
        try:
            env = {
                **os.environ,
                "PREFECT_HOME": str(pg.root / "prefect-home"),
                "PREFECT_API_DATABASE_CONNECTION_URL": pg.url("prefect").replace("+psycopg", "+asyncpg"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
            env.pop("PREFECT_API_URL", None)
            log = pg.root / "prefect-server.log"
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
