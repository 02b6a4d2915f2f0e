"""The review page on a socket: uvicorn on a daemon thread (``ReviewServer``), as the simulator is."""

from __future__ import annotations

import errno
import socket
import threading
import time

import uvicorn

from ..errors import SoraflowError
from ._access import Access, is_loopback, new_token
from ._app import RunControl, build_app
from ._state import ReviewFolder

STARTUP_TIMEOUT_SECONDS = 15.0


class ReviewServerError(SoraflowError):
    """The page cannot listen where it was asked to."""


class ReviewServer:
    """The review page of ``folder``, listening on ``host:port`` (port 0: any free port).

    The socket is bound here, before uvicorn starts, so a port in use or an address this machine
    does not have is one clear error. A bind that is not loopback makes the token required on
    every request. ``url`` is the page's address with its token.
    """

    def __init__(self, folder: ReviewFolder, *, host: str = "127.0.0.1", port: int = 0, runs: RunControl | None = None):
        self.folder = folder
        self.host = host
        self.runs = runs
        self._socket = _bind(host, port)
        address, self.port = self._socket.getsockname()[:2]
        self.token = new_token()
        self.access = Access(token=self.token, loopback=is_loopback(address), bound_address=address)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def loopback(self) -> bool:
        return self.access.loopback

    @property
    def url(self) -> str:
        """The page, token included: printed once at start."""
        return f"{self.base_url}/?token={self.token}"

    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()  # listening everywhere: the name others reach it by
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> "ReviewServer":
        if self._thread is not None:
            return self
        config = uvicorn.Config(
            build_app(self.folder, self.access, self.runs),
            loop="asyncio",
            lifespan="off",
            log_level="warning",
            log_config=None,  # leave the process's logging alone
            access_log=False,  # an access log line would carry the token in its query
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, name="soraflow-review", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ReviewServerError(f"the review page could not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._thread = None
        self._socket.close()

    def __enter__(self) -> "ReviewServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise ReviewServerError(f"--port {port} is not a port: 0 (any free port) to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as err:
        raise ReviewServerError(f"--host {host!r} is not an address of this machine: {err.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        hint = " (pass --port 0 for any free port)" if err.errno == errno.EADDRINUSE else ""
        raise ReviewServerError(f"the review page cannot listen on {host}:{port}: {err.strerror}{hint}") from None
    return sock
