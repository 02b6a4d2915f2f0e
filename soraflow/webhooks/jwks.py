"""fal's published signing keys (a JWKS of Ed25519 keys), fetched, cached and refreshed.

- fetched from a configurable URL (fal has moved it before: ``rest.alpha.fal.ai`` then
  ``rest.fal.ai``), over https unless on loopback (checked where the URL is configured);
- cached at most ``max_age`` (24 h by default, less when the answer's ``Cache-Control: max-age``
  says so);
- refreshed when a signature verifies with none of the cached keys (fal may have rotated its
  key), at most once per ``min_refresh_seconds``: a flood of forged deliveries cannot turn the
  receiver into a flood of requests to fal.

Keys are read from the JWKS by hand: four fields of RFC 8037 (``kty: OKP``, ``crv: Ed25519``,
``x``: the 32-byte public key, base64url), which ``cryptography`` takes as raw bytes; a JWT
library would add a dependency for these lines. Keys of another type are skipped.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from typing import Awaitable, Callable

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..redaction import redact_url

log = logging.getLogger("soraflow.webhooks")

MAX_AGE_SECONDS = 24 * 3600
MIN_REFRESH_SECONDS = 60.0
MAX_JWKS_BYTES = 64 * 1024
_MAX_AGE = re.compile(r"max-age=(\d+)")

Fetch = Callable[[str], Awaitable[httpx.Response]]


class JwksUnavailable(Exception):
    """No usable key: the JWKS could not be fetched or holds no Ed25519 key."""


def parse_jwks(document: object) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document; other keys are skipped, a document with none refused."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("the answer is not a JWKS (no keys list)")
    keys = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
            continue
        try:
            raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError:
            continue  # not 32 bytes, not base64url
    if not keys:
        raise JwksUnavailable("the JWKS holds no Ed25519 key")
    return keys


class JwksKeys:
    """The keys at ``url``, for ``verify``; safe to share between concurrent requests."""

    def __init__(
        self, url: str, *, max_age: float = MAX_AGE_SECONDS, min_refresh_seconds: float = MIN_REFRESH_SECONDS,
        timeout: float = 10.0, fetch: Fetch | None = None,
    ):  # fmt: skip
        self.url = url
        self.max_age = max_age
        self.min_refresh_seconds = min_refresh_seconds
        self._timeout = timeout
        self._fetch = fetch or self._get
        self._keys: list[Ed25519PublicKey] = []
        self._fetched_at: float | None = None  # monotonic, last successful fetch
        self._expires_at = 0.0
        self._tried_at: float | None = None  # monotonic, last attempt (rate limit)
        self._lock = asyncio.Lock()
        self.fetches = 0  # attempts, for tests and the log

    async def _get(self, url: str) -> httpx.Response:
        # trust_env: a private CA named by SSL_CERT_FILE is honoured, as the SDKs honour it
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            return await client.get(url, headers={"Accept": "application/json"})

    async def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether any published key signed ``message``. Fetches the keys when none are cached or
        they are older than their age; refetches (rate-limited) when none verifies."""
        keys = await self._current()
        if _any_verifies(keys, message, signature):
            return True
        fresh = await self._refresh(force=True)
        return fresh is not None and _any_verifies(fresh, message, signature)

    async def _current(self) -> list[Ed25519PublicKey]:
        if self._keys and time.monotonic() < self._expires_at:
            return self._keys
        keys = await self._refresh(force=False)
        if keys is None:
            if self._keys:  # stale keys are better than none while the JWKS cannot be read
                return self._keys
            raise JwksUnavailable(f"cannot fetch {redact_url(self.url)}")
        return keys

    async def _refresh(self, *, force: bool) -> list[Ed25519PublicKey] | None:
        """Fetch again unless an attempt was made in the last ``min_refresh_seconds`` (then None,
        or the current keys when they are still fresh and nothing forced a refetch)."""
        async with self._lock:
            now = time.monotonic()
            if not force and self._keys and now < self._expires_at:
                return self._keys  # another request refreshed them meanwhile
            if self._tried_at is not None and now - self._tried_at < self.min_refresh_seconds:
                return None
            self._tried_at = now
            self.fetches += 1
            try:
                response = await self._fetch(self.url)
                if response.status_code != 200:
                    raise JwksUnavailable(f"HTTP {response.status_code}")
                if len(response.content) > MAX_JWKS_BYTES:
                    raise JwksUnavailable(f"the answer is over {MAX_JWKS_BYTES} bytes")
                keys = parse_jwks(response.json())
            except (httpx.HTTPError, ValueError, JwksUnavailable) as err:
                why = err if isinstance(err, JwksUnavailable) else type(err).__name__
                log.warning("fal's signing keys at %s could not be read: %s", redact_url(self.url), why)
                return None
            age = self.max_age
            if (found := _MAX_AGE.search(response.headers.get("cache-control", ""))) is not None:
                age = min(age, float(found.group(1)))
            self._keys, self._fetched_at, self._expires_at = keys, now, now + age
            log.info("read %d signing key(s) from %s", len(keys), redact_url(self.url))
            return keys


def _any_verifies(keys: list[Ed25519PublicKey], message: bytes, signature: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


__all__ = ["JwksKeys", "JwksUnavailable", "MAX_AGE_SECONDS", "MIN_REFRESH_SECONDS", "parse_jwks"]
