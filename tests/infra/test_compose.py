"""infra/compose.yaml's webhook receiver, as far as it can be checked without a Docker daemon:
its service runs `soraflow webhooks serve` on the workers' ledger, the models file the workers
and the receiver share declares the openai endpoint's webhooks, and the secret the stack gives
the receiver and the simulator is one the receiver accepts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from soraflow.models import load_catalog
from soraflow.webhooks import receiver_endpoints

INFRA = Path(__file__).resolve().parents[2] / "infra"


def _default(value: str) -> str:
    """What ${VAR:-default} gives with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_receiver_is_a_service_on_the_workers_ledger_and_accepts_the_stack_secret():
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    services = compose["services"]
    hooks, worker, sim = services["webhooks"], services["worker"], services["simulator"]
    assert hooks["command"][:3] == ["soraflow", "webhooks", "serve"]
    assert hooks["environment"]["SORAFLOW_LEDGER_URL"] == worker["environment"]["SORAFLOW_LEDGER_URL"]
    assert hooks["environment"]["SORAFLOW_MODELS"] == worker["environment"]["SORAFLOW_MODELS"] == "/opt/soraflow/models.yaml"
    assert "./models.yaml:/opt/soraflow/models.yaml:ro" in hooks["volumes"] and "./models.yaml:/opt/soraflow/models.yaml:ro" in worker["volumes"]
    assert "http://webhooks:8780/webhooks/openai" in sim["command"]

    catalog = load_catalog(INFRA / "models.yaml")
    secret = _default(hooks["environment"]["OPENAI_WEBHOOK_SECRET"])
    assert secret == _default(sim["environment"]["SORAFLOW_SIMULATOR_WEBHOOK_SECRET"])
    endpoints = receiver_endpoints(catalog, {"OPENAI_WEBHOOK_SECRET": secret})
    assert list(endpoints) == ["openai"] and "OPENAI_WEBHOOK_SECRET" in endpoints["openai"].secret_source
