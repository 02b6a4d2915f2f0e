"""The ASGI layer in front of the APIs: counts requests, checks them against the reference,
and injects faults. It wraps the API surfaces (the Videos API under /v1, Veo under /v1beta1,
the GCS download routes); admin routes (/_sim) pass straight through. Each surface answers a
refusal (429, 500, 502, 503) in its own service's words (``Surface.refuse``).

Faults act on the wire, which an ASGI app cannot reach, so the HTTP protocol below hands each
request's transport to the request's task (through a context variable, set while uvicorn
parses the request and creates the task):
- ``reset``: the request is processed (a create makes its job), then the socket is closed
  with an RST instead of an answer. The client sees a connection error, never a 500, and a
  create's outcome is ambiguous, as when a real answer is lost.
- ``stall``: the request is processed, then the answer is held for ``stall_seconds``.
- ``truncate`` (content downloads, and Veo operations, which carry the video inline):
  Content-Length announces the whole body, half of it is sent, then the connection is closed.
- ``429`` / ``500`` / ``502`` / ``503``: answered at once with the service's error body;
  nothing is processed.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import socket
import struct
from dataclasses import dataclass
from urllib.parse import parse_qsl
from typing import TYPE_CHECKING, Callable

from starlette.responses import Response
from starlette.routing import compile_path
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import fal
from .openai.contract import HttpRequest, request_problems
from .openai.envelope import rate_limited, server_error
from .veo import envelope as google

if TYPE_CHECKING:
    from .state import SimulatorState

_transport: contextvars.ContextVar = contextvars.ContextVar("soraflow_sim_transport", default=None)

API_ROUTES = (  # literal paths before the templates that would match them
    "/v1/videos",
    "/v1/videos/characters",
    "/v1/videos/characters/{character_id}",
    "/v1/videos/edits",
    "/v1/videos/extensions",
    "/v1/videos/{video_id}",
    "/v1/videos/{video_id}/content",
    "/v1/videos/{video_id}/remix",
    "/v1/models",
    "/v1/models/{model}",
)
CONTENT_ROUTE = "/v1/videos/{video_id}/content"
_COMPILED = [(template, compile_path(template)[0]) for template in API_ROUTES]
# Veo's resource paths hold a colon (``{model}:predictLongRunning``), so they are matched here.
VEO_ROUTES = (
    ("/v1beta1/{model}:predictLongRunning", re.compile(r"^/v1beta1/(projects/[^/]+/locations/[^/]+/)?publishers/[^/]+/models/[^/:]+:predictLongRunning$")),
    ("/v1beta1/{model}:fetchPredictOperation", re.compile(r"^/v1beta1/(projects/[^/]+/locations/[^/]+/)?publishers/[^/]+/models/[^/:]+:fetchPredictOperation$")),
    ("/v1beta1/publishers/{publisher}/models/{model}", re.compile(r"^/v1beta1/publishers/[^/]+/models/[^/:]+$")),
)
GCS_ROUTES = (
    ("/download/storage/v1/b/{bucket}/o/{object}", re.compile(r"^/download/storage/v1/b/[^/]+/o/.+$")),
    ("/storage/v1/b/{bucket}/o/{object}", re.compile(r"^/storage/v1/b/[^/]+/o/.+$")),
)
_VEO_MODEL = re.compile(r"/models/([^/:]+)")


@dataclass(frozen=True)
class Surface:
    """One API the simulator serves: where it lives, its routes, and how it refuses."""

    name: str
    prefixes: tuple[str, ...]
    route_of: Callable[[str, str], str]
    content_routes: tuple[str, ...]
    refuse: Callable[[str, str, "SimulatorState"], Response]  # (fault kind, path, state)
    checked_against_reference: bool = False

    def serves(self, path: str) -> bool:
        return any(path == p.rstrip("/") or path.startswith(p) for p in self.prefixes)


def route_of(method: str, path: str) -> str:
    """``"GET /v1/videos/{video_id}"``: the route template, so counts do not grow per id."""
    for template, regex in _COMPILED:
        if regex.match(path):
            return f"{method} {template}"
    return f"{method} /v1/(unknown)"


def _route_in(routes, fallback: str):
    def route(method: str, path: str) -> str:
        for template, regex in routes:
            if regex.match(path):
                return f"{method} {template}"
        return f"{method} {fallback}"

    return route


def _openai_refusal(kind: str, path: str, state: "SimulatorState") -> Response:
    error = rate_limited("sora", state.config.retry_after_seconds) if kind == "429" else server_error(int(kind))
    return error.response()


def _google_refusal(kind: str, path: str, state: "SimulatorState") -> Response:
    if kind == "429":
        model = _VEO_MODEL.search(path)
        return google.resource_exhausted(model.group(1) if model else "veo", state.config.retry_after_seconds).response()
    return google.server_fault(int(kind))


SURFACES = (
    Surface("openai-videos", ("/v1/",), route_of, (CONTENT_ROUTE,), _openai_refusal, checked_against_reference=True),
    Surface("google-genai", ("/v1beta1/",), _route_in(VEO_ROUTES, "/v1beta1/(unknown)"),
            ("/v1beta1/{model}:fetchPredictOperation",), _google_refusal),
    Surface("gcs", ("/storage/v1/", "/download/storage/v1/"), _route_in(GCS_ROUTES, "/storage/v1/(unknown)"),
            tuple(t for t, _ in GCS_ROUTES), _google_refusal),
)


# fal has a port of its own (TLS): every path there is the fal surface's.
FAL_SURFACE = Surface("fal", ("/",), fal.route_of, fal.CONTENT_ROUTES, fal.refuse)


def surface_of(path: str, surfaces: tuple[Surface, ...] = SURFACES) -> Surface | None:
    return next((s for s in surfaces if s.serves(path)), None)


class TransportAwareH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, exposing the connection's transport to the request's task."""

    def data_received(self, data: bytes) -> None:
        token = _transport.set(self.transport)
        try:
            super().data_received(data)
        finally:
            _transport.reset(token)


def _reset_connection(transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:  # linger 0: close() sends RST, so the client reads ECONNRESET, not a clean EOF
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


async def _until_disconnected(receive, timeout: float = 2.0) -> None:
    """Let uvicorn see the closed socket before the app returns, so it logs nothing."""
    try:
        async with asyncio.timeout(timeout):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        pass


async def _buffered(receive) -> tuple[bytes, Callable]:
    """Read the whole request body; return it and a ``receive`` that replays it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


class ApiGate:
    def __init__(self, app, state: "SimulatorState", surfaces: tuple[Surface, ...] = SURFACES):
        self.app = app
        self.state = state
        self.surfaces = surfaces

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        surface = surface_of(path, self.surfaces) if scope["type"] == "http" else None
        if surface is None:
            await self.app(scope, receive, send)
            return
        state = self.state
        route = surface.route_of(scope["method"], path)
        state.stats.request(route)
        raw_receive = receive
        if state.validate_requests and surface.checked_against_reference:
            body, receive = await _buffered(receive)
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            query = _query_pairs(scope.get("query_string", b""))
            problems = request_problems(HttpRequest(scope["method"], path, query, headers, body))
            if problems:
                state.stats.violation(route, problems)

        async def counted_send(message):
            if message["type"] == "http.response.start":
                state.stats.response(message["status"])
            await send(message)

        kind = state.faults.for_request(is_content=route.endswith(surface.content_routes))
        if kind in ("429", "500", "502", "503"):
            state.stats.fault(kind)
            await surface.refuse(kind, path, state)(scope, receive, counted_send)
            return
        transport = _transport.get()
        if kind == "reset" and transport is not None:
            await self.app(scope, receive, self._resetting(transport))
            await _until_disconnected(raw_receive)
            return
        if kind == "stall":
            await self.app(scope, receive, self._stalling(counted_send))
            return
        if kind == "truncate" and transport is not None:
            cut = await self._run_truncating(scope, receive, counted_send, transport)
            if cut:
                await _until_disconnected(raw_receive)
            return
        await self.app(scope, receive, counted_send)

    def _resetting(self, transport):
        done = False

        async def send(message):
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.start":
                done = True
                self.state.stats.fault("reset")
                _reset_connection(transport)

        return send

    def _stalling(self, send):
        held = False

        async def stalled_send(message):
            nonlocal held
            if message["type"] == "http.response.start" and not held:
                held = True
                self.state.stats.fault("stall")
                await self.state.sleep_unless_stopping(self.state.config.stall_seconds)
            await send(message)

        return stalled_send

    async def _run_truncating(self, scope, receive, send, transport) -> bool:
        remaining: int | None = None
        cut = False

        async def truncating_send(message):
            nonlocal remaining, cut
            if cut:
                return
            if message["type"] == "http.response.start":
                length = dict(message.get("headers", [])).get(b"content-length")
                if message["status"] == 200 and length is not None and int(length) > 1:
                    remaining = int(length) // 2
                await send(message)
                return
            if remaining is None:
                await send(message)
                return
            body = message.get("body", b"")
            if len(body) < remaining:
                remaining -= len(body)
                await send({**message, "more_body": True})
                return
            await send({"type": "http.response.body", "body": body[:remaining], "more_body": True})
            cut = True
            self.state.stats.fault("truncate")
            transport.close()  # flushes what was written, then FIN: a short body, not an error page

        await self.app(scope, receive, truncating_send)
        return cut


def _query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
