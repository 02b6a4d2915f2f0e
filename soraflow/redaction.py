"""Credentials out of every URL and message soraflow prints, logs, stores or raises.

Two kinds of secret travel inside URLs: userinfo (``http://user:secret@host/v1``, a gateway's
basic auth) and signed query parameters (a presigned S3 link carries the access key id in
``X-Amz-Credential``, its signature, and with temporary credentials the session token in
``X-Amz-Security-Token``). ``redact_url`` drops both from one URL; ``redact_text`` does it to
every URL inside a message, which is how errors from SDKs and endpoints are made safe before
they become a Prefect state, a log line or a terminal line. Every ``SoraflowError`` passes its
message through ``redact_text`` when it is raised.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

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
    """``text`` with the userinfo of every URL removed and signed query values replaced."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: m.group("scheme"), text)
    return _SIGNED_PARAM.sub(lambda m: m.group("name") + REDACTED, text)


__all__ = ["REDACTED", "redact_text", "redact_url"]
