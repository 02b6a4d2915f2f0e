"""Real processes for end-to-end tests: a standalone simulator and `soraflow render` runs.

The simulator runs in its own process so that its jobs outlive a render killed with kill -9,
and every render is a real `python -m soraflow.cli render` process, as a user or a worker runs it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

SOR = [sys.executable, "-m", "soraflow.cli"]
KEY = "sk-test-resilience"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimProcess:
    def __init__(self, tmp: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"sim-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([*SOR, "simulator", "--port", str(self.port), *args], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("simulator did not start")

    def jobs(self) -> list[dict]:
        return httpx.get(f"{self.url}/v1/videos", params={"limit": 100}, headers={"Authorization": f"Bearer {KEY}"}).json()["data"]

    def all_jobs(self) -> list[dict]:
        out, after = [], None
        while True:
            params = {"limit": 100, **({"after": after} if after else {})}
            page = httpx.get(f"{self.url}/v1/videos", params=params, headers={"Authorization": f"Bearer {KEY}"}).json()
            out += page["data"]
            if not page["has_more"]:
                return out
            after = page["last_id"]

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_sim/stats").json()

    def faults(self, spec: str, seed: int | None = None) -> None:
        httpx.post(f"{self.url}/_sim/faults", json={"faults": spec, "seed": seed}).raise_for_status()

    def admin_jobs(self) -> dict[str, dict]:
        """Every job by id, with its status calls and when it finished (``GET /_sim/jobs``)."""
        return {j["id"]: j for j in httpx.get(f"{self.url}/_sim/jobs").json()["data"]}

    def deliveries(self) -> dict[str, dict]:
        """Every webhook delivery by job id, with its attempts (``GET /_sim/webhooks``)."""
        return {d["job_id"]: d for d in httpx.get(f"{self.url}/_sim/webhooks").json()["deliveries"]}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class ReceiverProcess:
    """``soraflow webhooks serve`` on a port of its own, started again on the same port by ``restart``."""

    def __init__(self, tmp: Path, env: dict, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp, self.env, self.runs = tmp, env, 0
        self.start()

    def start(self) -> None:
        self.runs += 1
        self.log_path = self.tmp / f"receiver-{self.port}-{self.runs}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([*SOR, "webhooks", "serve", "--port", str(self.port)], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"the receiver did not start:\n{self.output()}")

    def delivery_url(self, endpoint: str) -> str:
        return f"{self.url}/webhooks/{endpoint}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.log.close()

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return "".join(p.read_text() for p in sorted(self.tmp.glob(f"receiver-{self.port}-*.log")))


def storyboard(tmp_path: Path, shots: int, seconds: int = 4, title: str = "Resilience", **extra) -> Path:
    data = {
        "title": title,
        "size": "720x1280",
        "shots": [{"id": f"s{i:02d}", "seconds": seconds, "visual": f"shot number {i} of {title}", **extra.get(i, {})} for i in range(shots)],
    }
    f = tmp_path / f"{title.lower().replace(' ', '-')}.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def render(sb: Path, out: Path, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([*SOR, "render", str(sb), "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def finish(proc: subprocess.Popen, timeout: float = 420) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # a hung render must not linger into the next test
        out, _ = proc.communicate()
        pytest.fail(f"render did not finish within {timeout:.0f} s:\n{out[-3000:]}")
    return out
