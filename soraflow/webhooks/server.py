"""The receiver on uvicorn: ``Receiver(...).start()`` on a thread (tests, benchmarks), or
``Receiver(...).serve()`` in the foreground until SIGINT/SIGTERM (``soraflow webhooks serve``)."""

from __future__ import annotations

import threading
import time
from typing import Mapping

import uvicorn

from ..ledger import Deliveries
from .receiver import MAX_BODY_BYTES, OnDelivery, ReceiverEndpoint, build_receiver, delivery_path

STARTUP_TIMEOUT_SECONDS = 15.0


class Receiver:
    def __init__(
        self, endpoints: Mapping[str, ReceiverEndpoint], deliveries: Deliveries, *, host: str = "127.0.0.1", port: int = 0,
        on_delivery: OnDelivery | None = None, max_body_bytes: int = MAX_BODY_BYTES,
    ):  # fmt: skip
        self.endpoints = dict(endpoints)
        self.host = host
        app = build_receiver(self.endpoints, deliveries, on_delivery=on_delivery, max_body_bytes=max_body_bytes)
        # log_config=None leaves the process's logging alone (see the simulator's server.py)
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                                     log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def delivery_url(self, endpoint: str) -> str:
        return self.url + delivery_path(endpoint)

    def start(self) -> "Receiver":
        self._thread = threading.Thread(target=self._server.run, name="soraflow-webhooks", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the webhook receiver could not listen on {self.host}")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["Receiver"]
