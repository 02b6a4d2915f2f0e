"""Credentials out of every URL and message soraflow prints, logs, stores or raises.

**By value.** Every secret the process resolves (an endpoint's key, a Secret block's value, a
token, a webhook or signing secret) is registered with ``register_secret`` where it is read.
``redact_text`` then removes it, and its URL-encoded and base64 forms, from any text: an endpoint
may echo the key it received in its error message, and that message must not reach a log, a
state, the ledger or the terminal. This is the one place secrets are registered.

**Inside URLs.** Two kinds of secret travel inside URLs: userinfo (``http://user:secret@host/v1``, a gateway's
basic auth) and signed query parameters (a presigned S3 link carries the access key id in
``X-Amz-Credential``, its signature, and with temporary credentials the session token in
``X-Amz-Security-Token``). ``redact_url`` drops both from one URL; ``redact_text`` does it to
every URL inside a message, which is how errors from SDKs and endpoints are made safe before
they become a Prefect state, a log line or a terminal line. Every ``SoraflowError`` passes its
message through ``redact_text`` when it is raised.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

# scheme://userinfo@ : the userinfo is everything up to the last '@' before the host part.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s@'\"<>]+)@")
# Query parameters that carry a credential or a signature (AWS SigV4/SigV2, Azure SAS, GCS,
# and the generic names gateways use).
_SIGNED_PARAM = re.compile(
    r"(?<=[?&])(?P<name>(?:X-Amz-(?:Credential|Signature|Security-Token)|X-Goog-(?:Credential|Signature)|"
    r"AWSAccessKeyId|Signature|x-amz-security-token|sig|api[-_]?key|access[-_]?token|token|key)=)"
    r"(?P<value>[^&#\s'\"<>]+)",
    re.IGNORECASE,
)
REDACTED = "REDACTED"
# Shorter values are not registered: removing every "abc" from every message would garble it,
# and no real credential is this short.
MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_secrets: dict[str, str] = {}  # each registered form -> the name it was registered under
_pattern: re.Pattern[str] | None = None


def _forms(value: str) -> set[str]:
    """``value`` as it may appear in text: raw, URL-encoded, and base64 (standard and URL-safe,
    with and without padding)."""
    raw = value.encode("utf-8")
    forms = {value, quote(value, safe=""), quote_plus(value, safe="")}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("=")}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def register_secret(value: str | bytes | None, name: str = "secret") -> str | bytes | None:
    """Remember ``value`` as a secret of this process (``name`` says what it is, never shown
    with it) and return it unchanged, so a read can be wrapped: ``key = register_secret(env[...])``.
    ``None``, empty and too-short values are returned as they are and not registered."""
    global _pattern
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if not text or len(text) < MIN_SECRET_LENGTH:
        return value
    forms = _forms(text)
    with _lock:
        if all(f in _secrets for f in forms):
            return value
        for form in forms:
            _secrets.setdefault(form, name)
        # longest first: a secret that contains another is removed whole
        _pattern = re.compile("|".join(re.escape(f) for f in sorted(_secrets, key=len, reverse=True)))
    return value


def registered_secret_names() -> set[str]:
    """What kinds of secret are registered (names only: for tests and diagnostics)."""
    with _lock:
        return set(_secrets.values())


def redact_secrets(text: str) -> str:
    """``text`` with every registered secret, in each of its forms, replaced by REDACTED."""
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None and text else text


def redact_url(url: str | None) -> str:
    """``url`` without userinfo, query or fragment: what may be shown of an endpoint."""
    if not url:
        return ""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port or bracket: show none of it rather than guess
        return redact_text(str(url))
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def redact_text(text: str) -> str:
    """``text`` without any registered secret (by value), without the userinfo of any URL, and
    with signed query values replaced."""
    text = redact_secrets(text)
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: m.group("scheme"), text)
    return _SIGNED_PARAM.sub(lambda m: m.group("name") + REDACTED, text)


__all__ = ["REDACTED", "redact_secrets", "redact_text", "redact_url", "register_secret", "registered_secret_names"]
