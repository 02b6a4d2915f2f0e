"""Helpers for the Veo contract tests: the unchanged google-genai SDK pointed at a simulator,
in express mode (an API key) or with application-default credentials (project, location)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from google import genai
from google.genai import types

from soraflow.simulator import Simulator


def wire_errors(name: str) -> tuple[type[Exception], ...]:
    """An httpx exception class and its twin in httpx2, which google-genai uses when installed."""
    try:
        import httpx2
    except ImportError:  # pragma: no cover - httpx2 comes with google-genai 3.6
        return (getattr(httpx, name),)
    return getattr(httpx, name), getattr(httpx2, name)


def express_client(sim: Simulator, **http) -> genai.Client:
    """Vertex AI express mode: an API key, no project."""
    return genai.Client(vertexai=True, api_key="AIza-simulated", http_options=types.HttpOptions(base_url=sim.url, **http))


def service_account_file(folder: Path, sim: Simulator) -> Path:
    """A service-account key file (a fresh RSA key) whose token endpoint is the simulator."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    path = folder / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "sim-project", "private_key_id": "k1", "private_key": pem,
        "client_email": "soraflow@sim-project.iam.gserviceaccount.com", "client_id": "1", "token_uri": f"{sim.url}/token",
    }))
    return path


def generate(client: genai.Client, *, model: str = "veo-3.1-fast-generate-001", prompt: str = "Shot veo\nA lighthouse",
             image: bytes | None = None, **config) -> types.GenerateVideosOperation:
    config.setdefault("duration_seconds", 4)
    config.setdefault("generate_audio", True)
    source = types.GenerateVideosSource(prompt=prompt, image=types.Image(image_bytes=image, mime_type="image/png") if image else None)
    return client.models.generate_videos(model=model, source=source, config=types.GenerateVideosConfig(**config))


def until_done(client: genai.Client, operation, timeout: float = 60) -> types.GenerateVideosOperation:
    deadline = time.monotonic() + timeout
    while not operation.done:
        assert time.monotonic() < deadline, f"{operation.name} not done within {timeout} s"
        time.sleep(0.1)
        operation = client.operations.get(operation)
    return operation
