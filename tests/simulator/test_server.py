"""The simulator as a standalone process (what `soraflow simulator` runs): serve() prints where
it listens (and what an unchanged fal-client needs, which is enough for it), answers the API and
admin routes, and stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

SERVE = "from soraflow.simulator import serve, SimulatorConfig; serve(SimulatorConfig(latency=0.2, faults='429=0.5', seed=1))"


def test_serve_prints_its_url_answers_and_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-c", SERVE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert "soraflow simulator at http://127.0.0.1:" in line, line
        root = line.split(" at ", 1)[1].split(" ", 1)[0]
        dialects = dict(proc.stdout.readline().strip().split(": ", 1) for _ in range(3))
        assert set(dialects) == {"openai-videos", "google-genai", "fal"}, dialects
        assert (dialects["openai-videos"], dialects["google-genai"]) == (f"{root}/v1", root)
        assert dialects["fal"].startswith("https://127.0.0.1:")
        assert "an unchanged fal_client.SyncClient reaches the fal dialect" in proc.stdout.readline()
        printed = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(5))
        assert printed["FAL_QUEUE_RUN_HOST"] == dialects["fal"].removeprefix("https://") and Path(printed["SSL_CERT_FILE"]).is_file()
        assert "soraflow reaches it" in proc.stdout.readline()
        assert f'base_url: "{dialects["fal"]}", ca_file: "{printed["SSL_CERT_FILE"]}"' in proc.stdout.readline()
        # The printed lines are all an unchanged fal-client needs (it reads them when first imported).
        sdk = ("import fal_client; c = fal_client.SyncClient(); h = c.submit('fal-ai/veo3.1', {'prompt': 'Shot p', 'duration': '4s'}); "
               "print(type(c.status('fal-ai/veo3.1', h.request_id)).__name__)")
        done = subprocess.run([sys.executable, "-c", sdk], env={"PATH": "/usr/bin:/bin", **printed}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip() in ("Queued", "InProgress", "Completed"), done.stderr[-2000:]
        base_url = dialects["openai-videos"]
        assert httpx.post(f"{root}/_sim/faults", json={"faults": ""}).status_code == 200
        models = httpx.get(f"{base_url}/models", headers={"Authorization": "Bearer sk-any"})
        assert models.status_code == 200 and models.json()["data"][0]["id"] == "sora-2"
        assert httpx.get(f"{base_url}/models").status_code == 401
        stats = httpx.get(f"{root}/_sim/stats").json()
        # The faults (429=0.5) hit fal-client too, which resends a refused submit and status on
        # its own (a 429 queued nothing): one request was made.
        assert stats["requests_by_route"]["GET /v1/models"] == 2 and stats["creates"] == 1
        assert stats["faults_injected"]["429"] == stats["requests_total"] - 4 and stats["seed"] is None
        assert httpx.post(f"{root}/_sim/reset").json()["requests_total"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert not Path(printed["SSL_CERT_FILE"]).exists()  # the certificate made at start goes with it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
