"""Each endpoint sends exactly the credential its entry names, resolved in one place
(providers/credentials.py) and registered as a secret where it is read; never a process-wide
variable the entry does not name."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from soraflow.errors import EndpointNotConfiguredError, ModelsFileError
from soraflow.models import load_catalog, route_endpoints
from soraflow.providers.credentials import credentials_problem, entra_token_provider, resolve_credential
from soraflow.redaction import redact_text

CATALOG = """
endpoints:
  gateway: {base_url: http://gw.local/v1, key_env: GW_KEY}
  azure: {base_url: http://az.local/openai/v1, auth: api-key, key_env: AZ_KEY}
  entra: {base_url: http://az.local/openai/v1, auth: entra-id}
  open: {base_url: http://private.local/v1, auth: none}
  vault: {base_url: http://vault.local/v1, key_secret: vault-key}
  veo-key: {dialect: google-genai, base_url: http://veo.local, auth: api-key, key_env: VEO_KEY}
  veo-adc: {dialect: google-genai, project: p1, location: us-central1, auth: adc}
  veo-either: {dialect: google-genai, project_env: VEO_PROJECT, key_env: VEO_KEY}
models: {}
"""
STRAYS = {"GOOGLE_API_KEY": "AIza-stray-google-key", "GEMINI_API_KEY": "stray-gemini-key-1", "OPENAI_API_KEY": "sk-stray-openai-key"}


def route(name: str, env: dict):
    return route_endpoints(load_catalog(text=CATALOG), {**env, "GW_KEY": "gw-key-routing-0b7e"}).route(name)


def test_each_entry_resolves_to_the_credential_it_names_and_nothing_else():
    env = {**STRAYS, "GW_KEY": "gw-key-12345", "AZ_KEY": "az-key-12345", "VEO_KEY": "veo-key-12345", "VEO_PROJECT": "p2"}
    resolved = {name: resolve_credential(route(name, env), env, read_secret=lambda block: f"{block}-value-123")
                for name in ("gateway", "azure", "entra", "open", "vault", "veo-key", "veo-adc", "veo-either")}
    assert {n: (c.kind, c.key) for n, c in resolved.items()} == {
        "gateway": ("key", "gw-key-12345"), "azure": ("key", "az-key-12345"), "entra": ("entra-id", None), "open": ("none", None),
        "vault": ("key", "vault-key-value-123"), "veo-key": ("key", "veo-key-12345"), "veo-adc": ("adc", None),
        "veo-either": ("key", "veo-key-12345"),
    }
    assert "veo-key-12345" not in repr(resolved["veo-key"])
    # every key read here is a registered secret from now on
    assert redact_text("gw-key-12345 vault-key-value-123") == "REDACTED REDACTED"
    # the default google auth: ADC for its project when its own key variable is empty, whatever the strays say
    assert resolve_credential(route("veo-either", {**STRAYS, "VEO_PROJECT": "p2"}), {**STRAYS, "VEO_PROJECT": "p2"}).kind == "adc"


def test_a_missing_credential_is_refused_naming_its_source():
    with pytest.raises(EndpointNotConfiguredError, match=r"endpoint gateway .* has no key: set GW_KEY"):
        resolve_credential(route("gateway", {}), STRAYS)
    with pytest.raises(EndpointNotConfiguredError, match="Prefect Secret block 'vault-key', which this command does not read"):
        resolve_credential(route("vault", {}), {})

    def broken(block: str) -> str:
        raise RuntimeError(f"no block {block} (and never its value)")

    problem = credentials_problem(route("vault", {}), {}, broken)
    assert "Prefect Secret block 'vault-key', which cannot be read (RuntimeError)" in problem
    assert credentials_problem(route("gateway", {}), {"GW_KEY": "gw-key-12345"}) is None


def test_google_genai_entries_name_one_way_to_authenticate():
    def refused(entry: str) -> str:
        with pytest.raises(ModelsFileError) as err:
            load_catalog(text=f"endpoints:\n  e: {entry}\nmodels: {{}}\n")
        return str(err.value)

    assert "auth 'adc' sends Application Default Credentials" in refused("{dialect: google-genai, project: p, auth: adc, key_env: K}")
    assert "auth 'api-key' needs key_env" in refused("{dialect: google-genai, project: p, auth: api-key}")
    assert "auth 'adc' is for dialect google-genai" in refused("{base_url: http://x/v1, auth: adc}")
    assert "use google (default), adc or api-key" in refused("{dialect: google-genai, project: p, auth: bearer}")
    # today's entries stay valid
    load_catalog(text="endpoints:\n  v: {dialect: google-genai, project_env: P, key_env: K}\nmodels: {}\n")


def test_entra_id_secrets_and_every_token_are_registered_before_they_are_sent(monkeypatch):
    import azure.identity
    from azure.core.credentials import AccessToken

    issued = []

    class Credential:  # stands in for DefaultAzureCredential: a new short-lived token each time
        def __init__(self, *args, **kwargs):
            pass

        def get_token(self, *scopes, **kwargs):
            issued.append(f"entra-token-{len(issued) + 1}-6f0d")
            return AccessToken(issued[-1], int(time.time()) + 60)

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Credential)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "entra-client-secret-3b8e")
    tokens = entra_token_provider("https://cognitiveservices.azure.com/.default", "azure (http://az.local/openai/v1)")
    first, second = tokens(), tokens()
    assert [first, second] == issued
    assert redact_text(f"{first} {second} entra-client-secret-3b8e") == "REDACTED REDACTED REDACTED"


def test_every_token_google_auth_refreshes_is_registered_before_it_is_used():
    import google.auth.credentials

    from soraflow.providers.credentials import _registering_credentials_class

    class Inner(google.auth.credentials.Credentials):
        refresh_token = "1//user-refresh-token-77c2"

        def refresh(self, request):
            self.token = f"ya29.refreshed-{int(time.time() * 1e6)}"
            self.expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(tzinfo=None)

    credentials = _registering_credentials_class()(Inner())
    headers: dict = {}
    credentials.before_request(None, "POST", "https://us-central1-aiplatform.googleapis.com/v1beta1/x", headers)
    token = headers["authorization"].removeprefix("Bearer ")
    assert token.startswith("ya29.refreshed-") and credentials.valid
    assert redact_text(f"echo {token}; 1//user-refresh-token-77c2") == "echo REDACTED; REDACTED"


# --- two Google endpoints, a stray key: what each request carries, seen at the endpoint ------------


class RecordingProxy:
    """In front of the simulator: ``/{endpoint}/...`` is forwarded to the simulator's ``/...``
    with a credential of the proxy's own, and the credentials each request carried are recorded."""

    def __init__(self, upstream: str):
        self.upstream, self.seen, self._lock = upstream, [], threading.Lock()
        self._client = httpx.AsyncClient(base_url=upstream, timeout=60)
        app = Starlette(routes=[Route("/{endpoint}/{rest:path}", self._forward, methods=["GET", "POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self._server.servers[0].sockets[0].getsockname()[1]}"

    async def _forward(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.seen.append((request.path_params["endpoint"], request.url.path,
                              {k: headers[k] for k in ("authorization", "x-goog-api-key") if k in headers}))
        forward = {k: v for k, v in headers.items() if k not in ("authorization", "x-goog-api-key", "host", "content-length")}
        answer = await self._client.request(request.method, "/" + request.path_params["rest"], params=request.query_params,
                                            headers={**forward, "x-goog-api-key": "sk-simulator"}, content=await request.body())
        return Response(answer.content, status_code=answer.status_code, media_type=answer.headers.get("content-type"))

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.mark.usefixtures("prefect_server")
def test_two_google_endpoints_each_send_only_their_own_credential(simulator, tmp_path, monkeypatch):
    """One Vertex endpoint on ADC (a project, no key), one on an API key, in one film, with stray
    GOOGLE_API_KEY, GEMINI_API_KEY and GOOGLE_CLOUD_PROJECT set: every request at the first
    carries only an ADC token for its own project, every request at the second only its key."""
    from soraflow.flows.render import RenderRequest, render_storyboard
    from tests.simulator.veo import service_account_file

    proxy = RecordingProxy(simulator.url)
    try:
        models = tmp_path / "models.yaml"
        models.write_text(yaml.safe_dump({
            "endpoints": {
                "adc-veo": {"dialect": "google-genai", "base_url": f"{proxy.url}/adc-veo", "project": "own-project", "location": "us-central1"},
                "key-veo": {"dialect": "google-genai", "base_url": f"{proxy.url}/key-veo", "key_env": "OWN_VEO_KEY"},
            },
            "models": {name: {"like": "veo-3.1-fast-generate-001", "model": "veo-3.1-fast-generate-001", "endpoint": name}
                       for name in ("adc-veo", "key-veo")},
        }))  # fmt: skip
        for var, value in {**STRAYS, "GOOGLE_CLOUD_PROJECT": "stray-project", "OWN_VEO_KEY": "AIza-own-veo-key-2c71",
                           "SORAFLOW_MODELS": str(models), "SORAFLOW_STATE_DIR": str(tmp_path / "state"),
                           "GOOGLE_APPLICATION_CREDENTIALS": str(service_account_file(tmp_path, simulator))}.items():
            monkeypatch.setenv(var, value)
        monkeypatch.delenv("OPENAI_API_KEY")
        board = tmp_path / "board.yaml"
        board.write_text(yaml.safe_dump({"title": "Two Googles", "size": "1280x720", "shots": [
            {"id": "adc", "seconds": 4, "visual": "A lighthouse, seen through ADC", "model": "adc-veo"},
            {"id": "key", "seconds": 4, "visual": "A lighthouse, seen through a key", "model": "key-veo"},
        ]}))  # fmt: skip
        state = render_storyboard(RenderRequest(storyboard_path=str(board), out_dir=str(tmp_path / "out")), return_state=True)
        assert state.is_completed(), state.message
    finally:
        proxy.close()

    by_endpoint = {name: [(path, creds) for n, path, creds in proxy.seen if n == name] for name in ("adc-veo", "key-veo")}
    assert all(len(seen) >= 3 for seen in by_endpoint.values()), by_endpoint  # model, create, polls
    for path, creds in by_endpoint["adc-veo"]:
        assert set(creds) == {"authorization"} and creds["authorization"].startswith("Bearer ya29.simulated-"), (path, creds)
        if path.endswith((":predictLongRunning", ":fetchPredictOperation")):  # a model is read without a project
            assert "/projects/own-project/locations/us-central1/" in path, path
    for path, creds in by_endpoint["key-veo"]:
        assert creds == {"x-goog-api-key": "AIza-own-veo-key-2c71"}, (path, creds)
        if path.endswith(":predictLongRunning"):  # express mode: no project of anyone's
            assert "/projects/" not in path, path
    sent = json.dumps(proxy.seen)
    assert all(stray not in sent for stray in (*STRAYS.values(), "stray-project"))
