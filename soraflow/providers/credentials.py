"""Every credential an endpoint sends, resolved in one place and registered as a secret the moment
it is read (docs/architecture.md, rule 5; docs/secrets.md).

An endpoint sends exactly the credential its entry names, never a process-wide variable it was
not told about:

- ``bearer`` / ``api-key`` (openai-videos): the key in ``key_env``, else in the Prefect Secret
  block ``key_secret``;
- ``entra-id``: tokens from azure-identity's ``DefaultAzureCredential``; the secrets its chain
  reads from the environment (``AZURE_CLIENT_SECRET``...) and every token it hands out are
  registered;
- google-genai ``api-key``: express mode with the key in ``key_env`` / ``key_secret``;
- google-genai ``adc``: Application Default Credentials for the entry's project; every access
  token google-auth refreshes is registered before it is sent;
- google-genai ``google`` (the default): its key if ``key_env`` / ``key_secret`` gives one, else ADC;
- ``none``: nothing.

``render``, ``models --check``, ``watch`` and ``jobs adopt`` all come through ``resolve_credential``
(by way of ``connect``), so they agree on what is sent and on what is refused. Reading a Prefect
Secret block is the tasks layer's (the core never imports Prefect): it comes in as ``read_secret``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Literal, Mapping

from ..errors import EndpointNotConfiguredError, PermanentProviderError
from ..models import Route
from ..redaction import register_secret

# How a Prefect Secret block's value is read (``soraflow.tasks.runtime.secret_block_value``).
SecretReader = Callable[[str], str]
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# What azure-identity's default chain reads from the environment that is a secret itself.
ENTRA_SECRET_VARIABLES = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_PASSWORD", "IDENTITY_HEADER", "MSI_SECRET")


@dataclass(frozen=True)
class Credential:
    """What one endpoint sends: a key (bearer, Azure ``api-key``, Google express mode), Entra ID
    tokens, Application Default Credentials, or nothing. The key never prints."""

    kind: Literal["key", "entra-id", "adc", "none"]
    key: str | None = field(default=None, repr=False)


def resolve_credential(route: Route, env: Mapping[str, str], read_secret: SecretReader | None = None) -> Credential:
    """The credential ``route``'s endpoint sends, as its entry names it; EndpointNotConfiguredError
    (naming what to set) when the entry's source gives none. A simulated route needs none here
    (``connect`` hands it the simulator's key)."""
    endpoint = route.endpoint
    auth = endpoint.effective_auth
    if route.simulated or auth == "none":
        return Credential("none")
    if auth == "entra-id":
        return Credential("entra-id")
    if auth == "adc":
        return Credential("adc")
    key = endpoint_key(route, env, read_secret)
    if key:
        return Credential("key", key)
    if auth == "google" and endpoint.vertex_project(env):
        return Credential("adc")
    what = "credentials" if auth == "google" else "key"
    raise EndpointNotConfiguredError(f"endpoint {route.shown} has no {what}: set {endpoint.what_to_set()}")


def endpoint_key(route: Route, env: Mapping[str, str], read_secret: SecretReader | None = None) -> str | None:
    """The endpoint's key: its variable's (``Endpoint.key`` registers it), else its Secret block's
    (registered here); None when its entry names neither or they are empty."""
    endpoint = route.endpoint
    key = endpoint.key(env)
    if key or not endpoint.key_secret:
        return key
    if read_secret is None:
        raise EndpointNotConfiguredError(
            f"endpoint {route.shown} takes its key from the Prefect Secret block {endpoint.key_secret!r}, "
            f"which this command does not read: set {endpoint.key_env or 'its key_env variable'}"
        )
    try:
        value = read_secret(endpoint.key_secret)
    except Exception as err:  # noqa: BLE001 - a missing block, or no Prefect server: named, never its value
        raise EndpointNotConfiguredError(
            f"endpoint {route.shown} takes its key from the Prefect Secret block {endpoint.key_secret!r}, which cannot be "
            f"read ({type(err).__name__}): create it, or set {endpoint.key_env or 'a key_env variable'}"
        ) from None
    return register_secret(str(value) if value is not None else None, f"Prefect Secret block {endpoint.key_secret}") or None


def credentials_problem(route: Route, env: Mapping[str, str], read_secret: SecretReader | None = None) -> str | None:
    """Why ``route``'s endpoint could not get its credential here, or None; never shows a value.
    A Secret block is read; Application Default Credentials are looked for (not refreshed)."""
    try:
        credential = resolve_credential(route, env, read_secret)
    except EndpointNotConfiguredError as err:
        return str(err)
    if credential.kind == "adc":
        from google.auth.exceptions import DefaultCredentialsError

        try:
            adc_credentials()
        except DefaultCredentialsError:
            key = f"set {route.endpoint.key_env} (express mode), or " if route.endpoint.key_env and route.endpoint.effective_auth == "google" else ""
            return (f"no Google credentials: {key}give Application Default Credentials (gcloud auth application-default login, "
                    "or GOOGLE_APPLICATION_CREDENTIALS)")
    return None


# --- Microsoft Entra ID ------------------------------------------------------------------------


def entra_token_provider(scope: str, where: str = "an Azure endpoint") -> Callable[[], str]:
    """A bearer token provider for ``scope`` (called by the openai SDK before every request):
    azure-identity's ``DefaultAzureCredential`` (environment, workload identity, managed identity,
    Azure CLI...), which caches each token and refreshes it before it expires.

    The secrets that chain reads from the environment are registered here, and every token it
    hands out before it is sent. A credential that cannot give a token is a ProviderError
    (nothing was sent), its message redacted.
    """
    try:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ImportError as err:  # pragma: no cover - optional dependency
        raise EndpointNotConfiguredError("auth entra-id needs azure-identity: pip install 'soraflow[azure]'") from err
    for name in ENTRA_SECRET_VARIABLES:
        register_secret(os.environ.get(name), f"Entra ID {name}")
    tokens = get_bearer_token_provider(DefaultAzureCredential(), scope)

    def token() -> str:
        try:
            value = tokens()
        except Exception as err:  # noqa: BLE001 - azure-identity's failures carry the token endpoint's answer
            raise PermanentProviderError(
                f"Microsoft Entra ID gave no token for {where}: {type(err).__name__}: {err}", code="credentials"
            ) from None
        return register_secret(value, "Entra ID token")

    return token


# --- Google Application Default Credentials ----------------------------------------------------


def _registering_credentials_class():
    import google.auth.credentials

    class RegisteringCredentials(google.auth.credentials.Credentials):
        """Application Default Credentials whose every refreshed token is registered as a
        secret before it is used: google-auth refreshes through ``refresh``, and google-genai
        reads ``token``, ``expired`` and ``quota_project_id``."""

        def __init__(self, inner):
            super().__init__()
            self._inner = inner
            for name in ("refresh_token", "client_secret"):  # a user's ADC file: sent to its token endpoint only
                value = getattr(inner, name, None)
                register_secret(value if isinstance(value, str) else None, f"Google ADC {name}")
            self._take()

        def _take(self) -> None:
            self.token = register_secret(self._inner.token, "Google access token")
            self.expiry = self._inner.expiry

        def refresh(self, request) -> None:
            self._inner.refresh(request)
            self._take()

        @property
        def quota_project_id(self):
            return self._inner.quota_project_id

    return RegisteringCredentials


def adc_credentials():
    """Application Default Credentials (``google.auth.default``: GOOGLE_APPLICATION_CREDENTIALS,
    gcloud's file, the metadata server) for Vertex AI, one per process and credentials file;
    every access token they refresh is registered. Raises google-auth's
    ``DefaultCredentialsError`` when there are none."""
    return _adc_credentials(os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))


@lru_cache(maxsize=4)
def _adc_credentials(_file: str | None):
    import google.auth

    inner, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    return _registering_credentials_class()(inner)


__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "Credential",
    "SecretReader",
    "adc_credentials",
    "credentials_problem",
    "endpoint_key",
    "entra_token_provider",
    "resolve_credential",
]
