"""An endpoint: how to reach the models behind it, in which API dialect, with which credentials.

Only *where to find* a credential is stored here (an environment variable's name, a Prefect
Secret block's name), never the credential itself: an Endpoint is plain data that may travel
in task parameters, plans and logs.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..redaction import redact_url, register_secret, register_url_credentials

Dialect = Literal["openai-videos", "google-genai", "fal"]
# bearer:   Authorization: Bearer KEY (OpenAI, most gateways)
# api-key:  the api-key header (Azure OpenAI with a resource key); with google-genai, an
#           express-mode API key (x-goog-api-key) and nothing else
# entra-id: Microsoft Entra ID tokens from azure-identity, refreshed per request (Azure OpenAI)
# none:     no credential (a gateway on a private network that holds the keys itself)
# adc:      google-genai with Application Default Credentials for the Vertex project, never a key
# google:   google-genai's default: the express-mode API key its key_env / key_secret gives, else
#           Application Default Credentials for the Vertex project and location
# key:      Authorization: Key KEY (fal, as fal-client sends it)
# An endpoint sends only what its entry names: never a key from a variable it does not name
# (providers/credentials.py resolves each one).
Auth = Literal["bearer", "api-key", "entra-id", "none", "google", "adc", "key"]
GOOGLE_AUTHS = ("google", "adc", "api-key")
DIALECTS: tuple[str, ...] = ("openai-videos", "google-genai", "fal")
# fal's platform API (request history, prices, model metadata), where base_url does not say.
FAL_PLATFORM_URL = "https://api.fal.ai/v1"
# Dialects whose requests name a size by aspect ratio and resolution rather than in pixels
# (google-genai: ``aspect_ratio`` and ``resolution``), with the values their wire takes. A
# profile on such an endpoint may offer only sizes these can name (models/catalog.py checks);
# the provider translates a size with ``aspect_and_resolution``.
SIZE_VOCABULARY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "google-genai": (("16:9", "9:16"), ("720p", "1080p", "4k")),
}
_SHORT_SIDE = {"720p": 720, "1080p": 1080, "4k": 2160}


def named_sizes(dialect: str) -> list[str]:
    """Every WIDTHxHEIGHT a dialect's aspect ratios and resolutions can name (1280x720, ...)."""
    aspects, resolutions = SIZE_VOCABULARY[dialect]
    out = []
    for resolution in resolutions:
        side = _SHORT_SIDE[resolution]
        for aspect in aspects:
            a, b = (int(v) for v in aspect.split(":"))
            out.append(f"{side * a // b}x{side}" if a >= b else f"{side}x{side * b // a}")
    return out
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EnvName = Field(default=None, pattern=_ENV_NAME.pattern)

# How each dialect signs its webhook deliveries. OpenAI-shaped services (and gateways) sign as
# Standard Webhooks with a per-project ``whsec_`` secret; fal signs with its own Ed25519 key,
# published as a JWKS. Vertex AI has no webhooks (it publishes to Pub/Sub): Veo stays on polling.
WEBHOOK_SIGNING: dict[str, str] = {"openai-videos": "standard-webhooks", "fal": "fal-ed25519"}
SHARED_SECRET_SIGNING = frozenset({"standard-webhooks"})
FAL_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _https_unless_loopback(field: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field} {redact_url(url)!r} must be an https:// URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"{field} {redact_url(url)!r} must be https:// (plain http only on loopback: 127.0.0.1, ::1, localhost)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{field} {redact_url(url)!r} must carry no credentials, query or fragment (an entry is plain data)")


class Webhooks(BaseModel):
    """Where an endpoint delivers its webhooks and how they are verified (names of secrets, never values).

    ``url``: the receiver's public URL for this endpoint (``soraflow webhooks serve`` prints the
    path it serves per endpoint); a dialect that takes a webhook per request (fal) sends it with
    each create, one whose webhooks are per project (OpenAI) is configured to send there.
    ``secret_env`` / ``secret_block``: where the ``whsec_`` secret of a dialect that signs with a
    shared secret is found. ``jwks_url``: where fal publishes the keys it signs with.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1)
    secret_env: str | None = EnvName
    secret_block: str | None = Field(default=None, min_length=1, description="Prefect Secret block with the whsec_ secret")
    jwks_url: str | None = None

    @model_validator(mode="after")
    def _urls(self) -> "Webhooks":
        _https_unless_loopback("url", self.url)
        if self.jwks_url is not None:
            _https_unless_loopback("jwks_url", self.jwks_url)
        return self

    def secret(self, env: Mapping[str, str]) -> str | None:
        """The secret from its environment variable (a Secret block is read by the caller)."""
        return (env.get(self.secret_env) or None) if self.secret_env else None


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dialect: Dialect = "openai-videos"
    base_url: str | None = None
    base_url_env: str | None = EnvName  # when set in the environment, replaces base_url
    auth: Auth | None = None  # default: bearer for openai-videos, google for google-genai
    key_env: str | None = EnvName
    key_secret: str | None = Field(default=None, min_length=1, description="Prefect Secret block with the key")
    entra_scope: str = ENTRA_SCOPE
    models_route: bool = Field(default=True, description="Whether the endpoint serves GET /models")
    identity: str | None = Field(default=None, min_length=1, description="Its identity in clip keys")
    identity_env: str | None = EnvName
    # google-genai (Vertex AI): set literally or through the SDK's own variables
    vertexai: bool = True
    project: str | None = None
    project_env: str | None = EnvName
    location: str | None = None
    location_env: str | None = EnvName
    concurrency: int | None = Field(default=None, ge=1, description="Clips in flight here (default: from its profiles)")
    # fal: base_url (optional) is where fal's hosts are served (its queue, its storage upload,
    # its platform API under /v1); without it fal-client reaches fal itself. platform_url names
    # the platform API apart; ca_file a CA bundle to trust for them (a simulator's, a proxy's).
    platform_url: str | None = None
    ca_file: str | None = None
    # How long after a lost create fal's request history must have shown it, had it arrived:
    # the longest a request waits and renders, plus the history's lag (docs/fal.md).
    history_settle_seconds: float = Field(default=3600.0, gt=0)
    webhooks: Webhooks | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> "Endpoint":
        auth = self.effective_auth
        if self.dialect == "fal":
            if auth not in ("key", "none"):
                raise ValueError(f"auth {auth!r} is not used with dialect fal (fal-client sends `Authorization: Key`); use key or none")
            if auth == "key" and not (self.key_env or self.key_secret):
                raise ValueError("a fal endpoint needs key_env (e.g. FAL_KEY) or key_secret (a Prefect Secret block)")
        elif self.dialect == "google-genai":
            if auth not in GOOGLE_AUTHS:
                raise ValueError(f"auth {auth!r} is not used with dialect google-genai; use google (default), adc or api-key")
            has_project, has_key = bool(self.project or self.project_env), bool(self.key_env or self.key_secret)
            if auth == "adc" and (has_key or not has_project):
                raise ValueError("auth 'adc' sends Application Default Credentials for a project: give project (or project_env) "
                                 "and no key_env or key_secret (auth 'api-key' sends a key)")
            if auth == "api-key" and not has_key:
                raise ValueError("auth 'api-key' needs key_env (the variable holding the key) or key_secret (a Prefect Secret block)")
            if not (has_project or has_key):
                raise ValueError("a google-genai endpoint needs a project (project or project_env) or an API key (key_env or key_secret)")
        else:
            if auth in ("google", "adc", "key"):
                raise ValueError(f"auth {auth!r} is for dialect {'fal' if auth == 'key' else 'google-genai'}; "
                                 "use bearer, api-key, entra-id or none")
            if not (self.base_url or self.base_url_env):
                raise ValueError("an openai-videos endpoint needs base_url (e.g. http://localhost:4000/v1)")
            if auth in ("bearer", "api-key") and not (self.key_env or self.key_secret):
                raise ValueError(f"auth {auth!r} needs key_env (the variable holding the key) or key_secret (a Prefect Secret block)")
        if self.webhooks is not None:
            self._check_webhooks(self.webhooks)
        for label, url in (("base_url", self.base_url), ("platform_url", self.platform_url)):
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{label} {redact_url(url)!r} must be an http:// or https:// URL")
            if parts.username or parts.password or parts.query:
                # The file is data that travels in plans and task parameters: no secret in it.
                raise ValueError(
                    f"{label} {redact_url(url)!r} must carry no credentials or query; name the variable "
                    "holding the key in key_env (or a Prefect Secret block in key_secret)"
                )
            if self.dialect == "fal" and parts.scheme != "https":
                raise ValueError(f"{label} {redact_url(url)!r}: fal-client speaks https only")
        if self.dialect != "fal" and (self.platform_url or self.ca_file):
            raise ValueError("platform_url and ca_file are settings of the fal dialect")
        return self

    def _check_webhooks(self, hooks: Webhooks) -> None:
        signing = WEBHOOK_SIGNING.get(self.dialect)
        if signing is None:
            raise ValueError(
                f"webhooks: dialect {self.dialect} delivers no webhooks (Vertex AI publishes to Pub/Sub); its clips are polled"
            )
        if signing in SHARED_SECRET_SIGNING:
            if not (hooks.secret_env or hooks.secret_block):
                raise ValueError(
                    f"webhooks: dialect {self.dialect} signs deliveries with a shared whsec_ secret: name where it is "
                    "(secret_env: a variable, or secret_block: a Prefect Secret block)"
                )
            if hooks.jwks_url is not None:
                raise ValueError(f"webhooks.jwks_url is for fal's Ed25519 keys; dialect {self.dialect} signs with the shared secret")
        elif hooks.secret_env or hooks.secret_block:
            raise ValueError(
                f"webhooks: dialect {self.dialect} signs deliveries with its own key (Ed25519, published as a JWKS), "
                "not a shared secret: leave out secret_env and secret_block (jwks_url names where the keys are)"
            )

    @property
    def webhook_signing(self) -> str | None:
        """How this endpoint's deliveries are signed, when it declares webhooks."""
        return WEBHOOK_SIGNING.get(self.dialect) if self.webhooks is not None else None

    @property
    def jwks_url(self) -> str:
        """Where the keys of an Ed25519-signing dialect are published (fal's own by default)."""
        return (self.webhooks.jwks_url if self.webhooks else None) or FAL_JWKS_URL

    # --- what the environment says -----------------------------------------------------------
    @property
    def effective_auth(self) -> Auth:
        return self.auth or {"google-genai": "google", "fal": "key"}.get(self.dialect, "bearer")

    def url(self, env: Mapping[str, str]) -> str | None:
        """The base URL; credentials inside one from a variable (userinfo, a key in its query)
        are registered as secrets here, where it is read."""
        value = (env.get(self.base_url_env) if self.base_url_env else None) or self.base_url
        return register_url_credentials(value.rstrip("/"), f"endpoint {self.name} URL") if value else None

    def key(self, env: Mapping[str, str]) -> str | None:
        """The key from its environment variable, registered as a secret here, where it is read
        (a Secret block is read through providers/credentials.py)."""
        value = (env.get(self.key_env) or None) if self.key_env else None
        return register_secret(value, f"endpoint {self.name} key ({self.key_env})")

    def platform(self, env: Mapping[str, str]) -> str:
        """fal's platform API (request history, prices, models): platform_url, else base_url's
        /v1, else fal's own."""
        if self.platform_url:
            return self.platform_url.rstrip("/")
        url = self.url(env)
        return f"{url}/v1" if url else FAL_PLATFORM_URL

    def vertex_project(self, env: Mapping[str, str]) -> str | None:
        return (env.get(self.project_env) if self.project_env else None) or self.project

    def vertex_location(self, env: Mapping[str, str]) -> str | None:
        return (env.get(self.location_env) if self.location_env else None) or self.location

    def has_credentials(self, env: Mapping[str, str]) -> bool:
        """Whether this endpoint can be called from here (without calling it)."""
        auth = self.effective_auth
        if auth == "adc":
            return bool(self.vertex_project(env))
        if auth in ("none", "entra-id") or self.key_secret:
            # Entra ID resolves its credential chain at the first request; a Secret block is
            # read by the task that needs it.
            return True
        if auth == "google":
            return bool(self.key(env) or self.vertex_project(env))
        return bool(self.key(env))

    def what_to_set(self) -> str:
        """The variable(s) that give this endpoint its credentials, for an error message."""
        auth = self.effective_auth
        if auth in ("google", "adc"):
            names = [n for n in ((self.key_env if auth == "google" else None), self.project_env) if n]
            return " or ".join(names) or "project in its endpoint entry"
        return self.key_env or "key_env or key_secret in its endpoint entry"

    def identity_in(self, env: Mapping[str, str]) -> str:
        """What identifies this endpoint in clip keys: never a key, userinfo or query string."""
        explicit = (env.get(self.identity_env) if self.identity_env else None) or self.identity
        if explicit:
            return explicit
        url = self.url(env)
        if self.dialect == "fal":
            return f"fal:{redact_url(url) if url else 'queue.fal.run'}"
        if self.dialect == "google-genai":
            where = redact_url(url) if url else "default"
            if self.vertexai and self.vertex_project(env):
                return f"google-genai:{where}:{self.vertex_project(env)}/{self.vertex_location(env) or '-'}"
            return f"google-genai:{where}:{'vertex-express' if self.vertexai else 'gemini-api'}"
        return redact_url(url or "")
