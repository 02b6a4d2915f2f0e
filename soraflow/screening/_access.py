"""Who may use the review page: the token, the Host it answers to, and same-origin decisions.

- The page always has a token (made at start, printed once in the page's URL, registered as a
  secret so no error message carries it). A decision (any request that is not GET or HEAD)
  needs it always; on a bind that is not loopback, every request needs it: 401 without it.
- It is accepted as ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (a ``<video>`` cannot
  send a header), compared in constant time.
- On a loopback bind the ``Host`` header must name a loopback address or ``localhost``: a web
  page elsewhere cannot rebind its own name to 127.0.0.1 and read the review through it.
- A decision must come from the page itself: an ``Origin`` (and ``Sec-Fetch-Site``) that a
  browser sends from another site is refused with 403, and its body must be JSON (no form post).
- Every answer carries a strict Content-Security-Policy (scripts and media from the page only),
  no referrer (the token is in the URL), no sniffing, no framing and no caching.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..redaction import register_secret

TOKEN_PARAMETER = "token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; img-src 'self'; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def new_token() -> str:
    """A fresh page token (256 bits), registered as a secret: redacted from every error."""
    token = secrets.token_urlsafe(32)
    register_secret(token, "review page token")
    return token


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP address as bound, or a host name) is this machine's loopback."""
    if address.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """The page's rules: its token, and whether reads need it too (a bind that is not loopback)."""

    token: str
    loopback: bool
    bound_address: str = ""
    reads_need_token: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads_need_token", not self.loopback)

    def has_token(self, headers: Headers, query: QueryParams) -> bool:
        given = query.get(TOKEN_PARAMETER)
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            given = value.strip()
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def host_allowed(self, headers: Headers) -> bool:
        """On a loopback bind, the Host header must name loopback (a DNS-rebinding page sends its
        own name). Starlette's TrustedHostMiddleware cuts a Host at its first ':', so an IPv6
        literal (``[::1]:8766``) could not be named there."""
        if not self.loopback:
            return True
        host = urlsplit(f"//{headers.get('host', '')}").hostname or ""
        return is_loopback(host) or host == self.bound_address


def cross_origin(headers: Headers) -> str | None:
    """Why a state-changing request did not come from the page itself, or None when it did (a
    browser names the page's origin; a client that is not a browser sends no Origin and proves
    itself by the token alone)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"a decision must come from the review page itself (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin)
    if parts.scheme != "http" or parts.netloc.lower() != headers.get("host", "").lower():
        return "a decision must come from the review page itself (its Origin is another site)"
    return None


class Guard:
    """ASGI middleware applying ``Access`` to every request and the security headers to every
    answer (refusals included)."""

    def __init__(self, app: ASGIApp, access: Access):
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        headers = Headers(scope=scope)
        writes = scope["method"] not in SAFE_METHODS
        refusal = None
        if not self.access.host_allowed(headers):
            refusal = JSONResponse({"error": "this page answers only to a loopback Host (127.0.0.1, localhost)"}, 400)
        elif (writes or self.access.reads_need_token) and not self.access.has_token(headers, QueryParams(scope.get("query_string", b""))):
            refusal = JSONResponse(
                {"error": "the review page's token is required: open the URL `soraflow review` printed"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="soraflow review"'},
            )
        elif writes and (problem := cross_origin(headers)):
            refusal = JSONResponse({"error": problem}, 403)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
