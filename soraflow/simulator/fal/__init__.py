"""fal, as fal-client 1.0.3 speaks it: the simulator's third dialect, served over TLS.

fal-client prefixes ``https://`` to its hosts, so this dialect has a port of its own, served
with a certificate made at start (tls.py). On it: the queue (queue.py: submit, status, result,
cancel, and the result's video on the simulator's own CDN route), the storage upload
(storage.py), and the platform API under ``/v1`` (platform.py: request history, prices, model
metadata). proxy.py tunnels fal-client's fixed storage hosts to that port. Faults act here as
on every surface (gate.py): ``429``/``500``/``502``/``503`` in fal's words, ``reset`` (the
request is processed, then the connection reset: a submit accepted and its answer lost),
``stall``, ``truncate`` (the video download); the history's lag and access are settings
(``fal_history_lag_seconds``, ``fal_history``). Each request is a shared ``Job``.

An unchanged ``fal_client.SyncClient`` reaches it with what ``soraflow simulator`` prints::

    FAL_KEY=any FAL_QUEUE_RUN_HOST=127.0.0.1:PORT SSL_CERT_FILE=.../ca.pem \\
    HTTPS_PROXY=http://127.0.0.1:PROXY NO_PROXY=127.0.0.1,localhost

(``FAL_QUEUE_RUN_HOST`` is read when fal_client is first imported; ``SSL_CERT_FILE`` replaces
the CA bundle, so that shell trusts only the simulator.)
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import Refusal
from .envelope import FalError, rate_limited, refusal_response, server_fault
from .platform import platform_routes
from .queue import queue_routes
from .storage import FileStore, storage_routes

if TYPE_CHECKING:
    from ..state import SimulatorState


@dataclass
class FalState:
    """What the fal dialect keeps beside the shared jobs: its files, and where it listens."""

    files: FileStore
    port: int | None = None
    proxy_port: int | None = None
    ca_file: Path | None = field(default=None)


FAL_ROUTES = (  # (template, pattern), literal paths before the templates that would match them
    ("/v1/models/requests/by-endpoint", re.compile(r"^/v1/models/requests/by-endpoint$")),
    ("/v1/models/pricing", re.compile(r"^/v1/models/pricing$")),
    ("/v1/models", re.compile(r"^/v1/models$")),
    ("/storage/auth/token", re.compile(r"^/storage/auth/token$")),
    ("/storage/upload/initiate", re.compile(r"^/storage/upload/initiate$")),
    ("/storage/upload/{id}", re.compile(r"^/storage/upload/[^/]+$")),
    ("/files/upload", re.compile(r"^/files/upload$")),
    ("/files/results/{request_id}/{name}", re.compile(r"^/files/results/[^/]+/[^/]+$")),
    ("/files/{id}/{name}", re.compile(r"^/files/[^/]+/[^/]+$")),
    ("/{app}/requests/{request_id}/status", re.compile(r"^/.+/requests/[^/]+/status$")),
    ("/{app}/requests/{request_id}/cancel", re.compile(r"^/.+/requests/[^/]+/cancel$")),
    ("/{app}/requests/{request_id}", re.compile(r"^/.+/requests/[^/]+$")),
    ("/{endpoint_id}", re.compile(r"^/.+$")),
)
CONTENT_ROUTES = ("/files/results/{request_id}/{name}",)


def route_of(method: str, path: str) -> str:
    for template, pattern in FAL_ROUTES:
        if pattern.match(path):
            return f"{method} {template}"
    return f"{method} /(unknown)"


def refuse(kind: str, path: str, state: "SimulatorState") -> Response:
    if kind == "429":
        return rate_limited(state.config.retry_after_seconds).response()
    return server_fault(int(kind))


def fal_app(state: "SimulatorState", on_start=None) -> Starlette:
    """The fal port's ASGI app (the gate wraps it); ``on_start`` runs on its event loop at startup."""

    async def on_refusal(request: Request, exc: Refusal) -> Response:
        return refusal_response(exc)

    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        return FalError(exc.status_code, str(exc.detail)).response()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        stop = await on_start() if on_start is not None else None
        try:
            yield
        finally:
            if stop is not None:
                await stop()

    routes = [*platform_routes(state), *storage_routes(state), *queue_routes(state)]
    return Starlette(routes=routes, exception_handlers={Refusal: on_refusal, HTTPException: on_http_error}, lifespan=lifespan)


__all__ = ["CONTENT_ROUTES", "FalState", "fal_app", "refuse", "route_of"]
