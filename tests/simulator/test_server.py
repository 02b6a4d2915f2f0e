"""The simulator as a standalone process (what `soraflow simulator` runs): serve() prints where
it listens, answers the API and admin routes, and stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

SERVE = "from soraflow.simulator import serve, SimulatorConfig; serve(SimulatorConfig(latency=0.2, faults='429=0.5', seed=1))"


def test_serve_prints_its_url_answers_and_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-c", SERVE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert "soraflow simulator at http://127.0.0.1:" in line, line
        root = line.split(" at ", 1)[1].split(" ", 1)[0]
        dialects = dict(proc.stdout.readline().strip().split(": ", 1) for _ in range(2))
        assert dialects == {"openai-videos": f"{root}/v1", "google-genai": root}, dialects
        base_url = dialects["openai-videos"]
        assert httpx.post(f"{root}/_sim/faults", json={"faults": ""}).status_code == 200
        models = httpx.get(f"{base_url}/models", headers={"Authorization": "Bearer sk-any"})
        assert models.status_code == 200 and models.json()["data"][0]["id"] == "sora-2"
        assert httpx.get(f"{base_url}/models").status_code == 401
        stats = httpx.get(f"{root}/_sim/stats").json()
        assert stats["requests_by_route"] == {"GET /v1/models": 2} and stats["seed"] is None
        assert httpx.post(f"{root}/_sim/reset").json()["requests_total"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
