"""`soraflow webhooks serve`: one delivery URL line per endpoint at start, never a secret; a
configuration it cannot serve is one clean line, naming what to set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import yaml
from typer.testing import CliRunner

from soraflow.cli import app
from soraflow.simulator.webhooks import new_secret

runner = CliRunner()
SECRET = new_secret()


def _models(tmp_path, **hooks) -> str:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"endpoints": {
        "openai": {"webhooks": {"url": "https://hooks.example.com/webhooks/openai", "secret_env": "TEST_WEBHOOK_SECRET", **hooks}},
        "gateway": {"base_url": "http://127.0.0.1:4000/v1", "auth": "none",
                    "webhooks": {"url": "https://hooks.example.com/webhooks/gateway", "secret_env": "TEST_GATEWAY_SECRET"}},
    }}))  # fmt: skip
    return str(path)


def test_serve_prints_each_endpoints_delivery_url_and_no_secret(tmp_path):
    env = {**os.environ, "SORAFLOW_MODELS": _models(tmp_path), "TEST_WEBHOOK_SECRET": SECRET, "TEST_GATEWAY_SECRET": new_secret(),
           "SORAFLOW_STATE_DIR": str(tmp_path / "state")}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "soraflow.cli", "webhooks", "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        head = "".join(lines)
        url = re.search(r"at (http://127\.0\.0\.1:\d+);", lines[0])
        assert url and "Prefect events off (no PREFECT_API_URL)" in lines[0], head
        for name, var in (("gateway", "TEST_GATEWAY_SECRET"), ("openai", "TEST_WEBHOOK_SECRET")):
            line = next(x for x in lines[1:] if x.strip().startswith(f"endpoint {name} "))
            assert f"{url[1]}/webhooks/{name}" in line and f"${var}" in line and "Standard Webhooks" in line, line
        assert SECRET not in head and SECRET.removeprefix("whsec_") not in head
        assert httpx.get(f"{url[1]}/health").json() == {"endpoints": ["gateway", "openai"]}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and SECRET not in out


def test_what_it_cannot_serve_is_one_clean_line(tmp_path, monkeypatch):
    monkeypatch.delenv("SORAFLOW_MODELS", raising=False)
    res = runner.invoke(app, ["webhooks", "serve", "--port", "0"])
    assert res.exit_code == 2 and "no endpoint declares webhooks" in res.output and "Traceback" not in res.output

    monkeypatch.setenv("SORAFLOW_MODELS", _models(tmp_path))
    monkeypatch.delenv("TEST_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("TEST_GATEWAY_SECRET", SECRET)
    res = runner.invoke(app, ["webhooks", "serve", "--port", "0"])
    assert res.exit_code == 2 and "endpoint 'openai' declares webhooks but its secret is not set: set TEST_WEBHOOK_SECRET" in res.output

    bare = SECRET.removeprefix("whsec_")
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", bare)
    res = runner.invoke(app, ["webhooks", "serve", "--port", "0"])
    assert res.exit_code == 2 and "$TEST_WEBHOOK_SECRET does not start with whsec_" in res.output and bare not in res.output
    assert len(res.output.strip().splitlines()) <= 3  # one message (wrapped by the terminal's width at most)
