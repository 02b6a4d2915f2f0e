"""Which endpoints the receiver takes deliveries for, and how each is verified.

Every endpoint whose entry declares ``webhooks`` gets a verifier for its dialect's signing
(``models.WEBHOOK_SIGNING``). A shared ``whsec_`` secret is read here, from its variable or its
Prefect Secret block (through ``read_block``: the core never imports Prefect), and registered as
a secret where it is read, so no log, message or event can carry it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Callable, Mapping

from ..errors import CatalogError
from ..models import ModelCatalog
from ..redaction import register_secret
from .jwks import JwksKeys
from .receiver import ReceiverEndpoint
from .signatures import FalVerifier, StandardWebhooksVerifier

SecretReader = Callable[[str], str]  # a Prefect Secret block's name -> its value
SECRET_PREFIX = "whsec_"


def _checked_secret(value: str, where: str) -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 (both libraries read it so)."""
    if not value.startswith(SECRET_PREFIX):
        raise CatalogError(
            f"the webhook secret in {where} does not start with {SECRET_PREFIX}: keep it as the provider shows it (with its "
            "prefix); without it the libraries disagree on what it means"
        )
    try:
        key = value[len(SECRET_PREFIX):].rstrip("=")
        raw = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw:
        raise CatalogError(f"the webhook secret in {where} is not {SECRET_PREFIX} followed by base64")
    return value


def receiver_endpoints(
    catalog: ModelCatalog,
    env: Mapping[str, str],
    *,
    read_block: SecretReader | None = None,
    jwks_max_age: float | None = None,
    jwks_min_refresh: float | None = None,
) -> dict[str, ReceiverEndpoint]:
    """Every endpoint that declares webhooks, with its verifier; ``CatalogError`` naming what is missing."""
    out: dict[str, ReceiverEndpoint] = {}
    for name, endpoint in sorted(catalog.endpoints.items()):
        hooks = endpoint.webhooks
        if hooks is None:
            continue
        signing = endpoint.webhook_signing
        if signing == "standard-webhooks":
            secret, where = hooks.secret(env), f"${hooks.secret_env}" if hooks.secret_env else None
            if secret is None and hooks.secret_block:
                if read_block is None:
                    raise CatalogError(
                        f"endpoint {name!r}: its webhook secret is in the Prefect Secret block {hooks.secret_block!r}, "
                        "which cannot be read here"
                    )
                where = f"the Prefect Secret block {hooks.secret_block!r}"
                try:
                    secret = read_block(hooks.secret_block)
                except Exception as err:  # noqa: BLE001 - a missing block, or no Prefect server
                    raise CatalogError(f"endpoint {name!r}: cannot read its webhook secret from {where} ({type(err).__name__})") from None
            if not secret:
                raise CatalogError(
                    f"endpoint {name!r} declares webhooks but its secret is not set: set {hooks.secret_env or 'its secret_env'}"
                    + (f" or create the Prefect Secret block {hooks.secret_block!r}" if hooks.secret_block else "")
                )
            register_secret(secret, f"webhook secret of endpoint {name}")
            register_secret(secret[len(SECRET_PREFIX):], f"webhook secret of endpoint {name}")  # its key part, shown alone
            verifier = StandardWebhooksVerifier(_checked_secret(secret, where))
            out[name] = ReceiverEndpoint(name, endpoint.dialect, verifier, hooks.url, secret_source=where)
        elif signing == "fal-ed25519":
            options = {k: v for k, v in (("max_age", jwks_max_age), ("min_refresh_seconds", jwks_min_refresh)) if v is not None}
            verifier = FalVerifier(JwksKeys(endpoint.jwks_url, **options))
            out[name] = ReceiverEndpoint(name, endpoint.dialect, verifier, hooks.url, secret_source=f"keys from {endpoint.jwks_url}")
    if not out:
        raise CatalogError(
            "no endpoint declares webhooks: add `webhooks: {url: https://RECEIVER/webhooks/NAME, secret_env: VAR}` to an "
            "endpoint entry in the models file (SORAFLOW_MODELS)"
        )
    return out


__all__ = ["SECRET_PREFIX", "SecretReader", "receiver_endpoints"]
