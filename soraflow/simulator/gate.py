"""The ASGI layer in front of the API: counts requests, checks them against the reference,
and injects faults. It wraps /v1 routes only; admin routes (/_sim) pass straight through.

Faults act on the wire, which an ASGI app cannot reach, so the HTTP protocol below hands each
request's transport to the request's task (through a context variable, set while uvicorn
parses the request and creates the task):
- ``reset``: the request is processed (a create makes its job), then the socket is closed
  with an RST instead of an answer. The client sees a connection error, never a 500, and a
  create's outcome is ambiguous, as when a real answer is lost.
- ``stall``: the request is processed, then the answer is held for ``stall_seconds``.
- ``truncate`` (content downloads): Content-Length announces the whole file, half of it is
  sent, then the connection is closed.
- ``429`` / ``500`` / ``502`` / ``503``: answered at once with the service's error body;
  nothing is processed.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import struct
from urllib.parse import parse_qsl
from typing import TYPE_CHECKING, Callable

from starlette.routing import compile_path
from uvicorn.protocols.http.h11_impl import H11Protocol

from .contract import HttpRequest, request_problems
from .envelope import rate_limited, server_error

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


class TransportAwareH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, exposing the connection's transport to the request's task."""

    def data_received(self, data: bytes) -> None:
        token = _transport.set(self.transport)
        try:
            super().data_received(data)
        finally:
            _transport.reset(token)


def route_of(method: str, path: str) -> str:
    """``"GET /v1/videos/{video_id}"``: the route template, so counts do not grow per id."""
    for template, regex in _COMPILED:
        if regex.match(path):
            return f"{method} {template}"
    return f"{method} /v1/(unknown)"


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
    def __init__(self, app, state: "SimulatorState"):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        state = self.state
        route = route_of(scope["method"], path)
        state.stats.request(route)
        raw_receive = receive
        if state.validate_requests:
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

        kind = state.faults.for_request(is_content=route.endswith(CONTENT_ROUTE))
        if kind in ("429", "500", "502", "503"):
            state.stats.fault(kind)
            error = rate_limited("sora", state.config.retry_after_seconds) if kind == "429" else server_error(int(kind))
            await error.response()(scope, receive, counted_send)
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
