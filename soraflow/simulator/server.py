"""Run the simulator: in-process on a daemon thread (``Simulator``), or standalone (``serve``).

Two servers share one event loop and one state: plain HTTP for the Videos API, Veo and the
admin routes, and TLS for fal (fal-client speaks https only), with a certificate made at start.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from ..errors import InvalidSettingError
from .app import build_app
from .config import SimulatorConfig
from .fal import fal_app
from .fal.proxy import tunnel_handler
from .fal.tls import make_certificate
from .gate import FAL_SURFACE, ApiGate, TransportAwareH11Protocol
from .state import SimulatorState

STARTUP_TIMEOUT_SECONDS = 15.0


class Simulator:
    """The simulator over HTTP: the Videos API on ``base_url``, Veo on ``url``.

    ``with Simulator(SimulatorConfig(latency=0.5)) as sim:`` starts it and waits until it
    answers; point ``openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)`` at it, or
    ``genai.Client(vertexai=True, api_key=sim.api_key, http_options={"base_url": sim.url})``.
    """

    def __init__(self, config: SimulatorConfig | None = None, **options):
        self.config = config or SimulatorConfig(**options)
        self.state = SimulatorState(self.config)
        self._server: uvicorn.Server | None = None
        self._fal_server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._tls_dir: Path | None = None
        self._sockets: tuple[socket.socket, ...] = ()
        self.port: int | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Simulator":
        if self._thread is not None:
            return self
        self._tls_dir = Path(tempfile.mkdtemp(prefix="soraflow-sim-tls-"))
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
        certificate = make_certificate(self._tls_dir, host)
        self.state.fal.ca_file = certificate.ca_file
        options = dict(
            http=TransportAwareH11Protocol,
            loop="asyncio",
            lifespan="on",
            log_level="warning",
            # Leave the process's logging alone. uvicorn's default dictConfig replaces every
            # handler of the process: started by a task inside a Prefect flow run (the embedded
            # simulator of a worker, or of a rerun), it flushed Prefect's API log handler while
            # holding logging's lock, and the other task threads, logging, waited on that lock
            # forever (a rerun hung at its first download). Its warnings still propagate.
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
            # Many clients poll at once; uvicorn's default backlog and keep-alive suit them.
        )
        # the listening sockets are bound here rather than by uvicorn: a port in use is one clear
        # error now, not a line uvicorn logs from its thread and a timeout after it
        self._sockets = ()
        self._sockets = (self._listen(self.config.port, "--port"),)
        self._sockets += (self._listen(self.config.fal_port, "--fal-port"),)
        self._server = uvicorn.Server(uvicorn.Config(build_app(self.state), host=self.config.host, port=self.config.port, **options))
        fal = ApiGate(fal_app(self.state, on_start=self._start_fal_proxy), self.state, surfaces=(FAL_SURFACE,))
        self._fal_server = uvicorn.Server(uvicorn.Config(
            fal, host=self.config.host, port=self.config.fal_port, ssl_certfile=str(certificate.cert_file),
            ssl_keyfile=str(certificate.key_file), **options,
        ))
        self._thread = threading.Thread(target=self._run, name="soraflow-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not (self._server.started and self._fal_server.started and self.state.fal.proxy_port):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._thread = None
                self.state.close()
                raise RuntimeError(f"the simulator could not listen on {self.config.host}:{self.config.port} "
                                   f"(fal: {self.config.fal_port}, its proxy: {self.config.fal_proxy_port})")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        self.state.fal.port = self._fal_server.servers[0].sockets[0].getsockname()[1]
        return self

    def _run(self) -> None:
        async def both() -> None:
            await asyncio.gather(self._server.serve(sockets=[self._sockets[0]]), self._fal_server.serve(sockets=[self._sockets[1]]))

        asyncio.run(both())

    def _listen(self, port: int, option: str) -> socket.socket:
        host = self.config.host
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return socket.create_server((host, port), family=family, backlog=2048)
        except OSError as err:
            for sock in self._sockets:
                sock.close()
            self.state.close()
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            raise InvalidSettingError(
                f"the simulator cannot listen on {host}:{port} ({option}): {os.strerror(err.errno) if err.errno else err}; "
                f"another process listens there, or the address is not this machine's; allowed: a free port ({option} 0 takes any)"
            ) from None

    async def _start_fal_proxy(self):
        """Run at the fal server's startup, on its loop: the proxy for fal-client's fixed storage
        hosts, started once the fal port listens (its port is known only then)."""
        proxies: list[asyncio.Server] = []

        async def start() -> None:
            while not self._fal_server.started:
                await asyncio.sleep(0.005)
            port = self._fal_server.servers[0].sockets[0].getsockname()[1]
            host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
            proxy = await asyncio.start_server(tunnel_handler(host, port), self.config.host, self.config.fal_proxy_port)
            proxies.append(proxy)
            self.state.fal.proxy_port = proxy.sockets[0].getsockname()[1]

        task = asyncio.get_running_loop().create_task(start())

        async def stop() -> None:
            task.cancel()
            for proxy in proxies:
                proxy.close()

        return stop

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.state.signal_stopping()
        self._server.should_exit = True
        self._fal_server.should_exit = True
        self._drop_tls_connections()
        self._thread.join(timeout=10)
        self._thread = None
        self.state.close()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)

    def _drop_tls_connections(self) -> None:
        """Close the fal port's kept-alive connections at once. A TLS transport's close() waits
        for the client's close_notify, which an idle client never sends: uvicorn's graceful
        shutdown would wait its whole timeout and then log an error for every stop."""
        loop = self.state._loop
        connections = getattr(getattr(self._fal_server, "server_state", None), "connections", None)
        if loop is None or loop.is_closed() or connections is None:
            return

        def drop() -> None:
            for connection in list(connections):
                transport = getattr(connection, "transport", None)
                cycle = getattr(connection, "cycle", None)
                if transport is not None and (cycle is None or getattr(cycle, "response_complete", False)):  # idle: no answer cut short
                    transport.abort()

        loop.call_soon_threadsafe(drop)

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- where it is ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The server root (admin routes live under ``/_sim``)."""
        if self.port is None:
            raise RuntimeError("the simulator is not started")
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The openai SDK's ``base_url`` (the Videos API)."""
        return f"{self.url}/v1"

    @property
    def fal_url(self) -> str:
        """fal's queue, storage and platform API (``/v1``), over TLS."""
        if self.state.fal.port is None:
            raise RuntimeError("the simulator is not started")
        return f"https://{self.url.removeprefix('http://').rsplit(':', 1)[0]}:{self.state.fal.port}"

    @property
    def fal_ca_file(self) -> Path:
        """The CA a client of the fal port trusts (the certificate was made at start)."""
        return self.state.fal.ca_file

    @property
    def fal_proxy_url(self) -> str:
        """The proxy that tunnels fal-client's fixed storage hosts (rest.fal.ai, v3.fal.media) here."""
        return f"http://{self.url.removeprefix('http://').rsplit(':', 1)[0]}:{self.state.fal.proxy_port}"

    def fal_environment(self) -> dict[str, str]:
        """What an unchanged fal-client needs to reach this simulator (set before it is imported)."""
        host = self.url.removeprefix("http://").rsplit(":", 1)[0]
        return {
            "FAL_KEY": self.api_key,
            "FAL_QUEUE_RUN_HOST": self.fal_url.removeprefix("https://"),
            "SSL_CERT_FILE": str(self.fal_ca_file),
            "HTTPS_PROXY": self.fal_proxy_url,
            "NO_PROXY": ",".join(dict.fromkeys((host, "127.0.0.1", "localhost"))),
        }

    @property
    def base_urls(self) -> dict[str, str]:
        """The base URL to give each dialect's SDK: google-genai appends ``v1beta1/...`` itself."""
        return {"openai-videos": self.base_url, "google-genai": self.url, "fal": self.fal_url}

    @property
    def api_key(self) -> str:
        return self.config.api_key

    def base_url_for(self, dialect: str) -> str:
        """Where a client of ``dialect``'s SDK points: the Videos API under /v1; google-genai
        builds its own paths (``/v1beta1/...``) on the server root."""
        return {"openai-videos": self.base_url, "fal": self.fal_url}.get(dialect, self.url)

    def serve_models(self, models) -> None:
        """Accept these models too (``SimulatedModel``s), while running."""
        self.config.serve_models(list(models))

    def serves(self, model: str, dialect: str = "openai-videos") -> bool:
        return self.config.model(model, dialect) is not None

    # --- introspection for tests ------------------------------------------------------------
    def stats(self) -> dict:
        """What ``GET /_sim/stats`` returns."""
        return self.state.snapshot()

    def jobs(self) -> list[dict]:
        """Every job accepted since the last reset (deleted ones too), oldest first."""
        now = self.state.jobs.clock()
        return [job.resource(now) for job in self.state.jobs.all()]

    @property
    def contract_violations(self) -> list[dict]:
        return self.state.stats.snapshot()["contract_violations"]

    def set_faults(self, spec: str, seed: int | None = None) -> None:
        """Replace the fault spec and re-seed; a bad spec raises and leaves the old one."""
        self.state.set_faults(spec, seed)

    def reset(self) -> None:
        """Forget jobs, characters and counters, re-seed faults (the render cache and uploads stay)."""
        self.state.reset()


def _webhooks_line(sim: Simulator, config: SimulatorConfig) -> str:
    from .webhooks import JWKS_PATH, SECRET_ENV

    hooks = sim.state.webhooks
    faults = f", faults {hooks.fault_spec}" if hooks.fault_spec else ""
    if hooks.project_url is None:
        where = "openai-videos jobs deliver no webhooks (--webhook-url sets the project's)"
    elif config.webhook_secret:
        where = f"openai-videos jobs deliver to {hooks.project_url}, signed with the secret in {SECRET_ENV}{faults}"
    else:  # a secret made here: shown once, as a dashboard shows a new one
        where = f"openai-videos jobs deliver to {hooks.project_url}, signed with {hooks.project_secret}{faults}"
    return f"  webhooks: {where}; fal's signing keys (JWKS): {sim.url}{JWKS_PATH}"


def serve(config: SimulatorConfig | None = None) -> None:
    """Serve until SIGINT or SIGTERM; print where (``soraflow simulator``)."""
    config = config or SimulatorConfig()
    sim = Simulator(config).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    faults = str(sim.state.faults.plan) or "none"
    print(
        f"soraflow simulator at {sim.url} (latency {config.latency:g} s, faults {faults}, seed {config.seed}"
        f"{', shut down' if config.shutdown else ''}); any key works, e.g. {sim.api_key}. Ctrl-C stops it.",
        flush=True,
    )
    for dialect, url in sim.base_urls.items():
        print(f"  {dialect}: {url}", flush=True)
    print("  an unchanged fal_client.SyncClient reaches the fal dialect with (FAL_QUEUE_RUN_HOST is read when fal_client is "
          "first imported; SSL_CERT_FILE makes that shell trust only the simulator; HTTPS_PROXY tunnels fal-client's "
          "fixed storage hosts rest.fal.ai and v3.fal.media here, and nothing else):", flush=True)
    for name, value in sim.fal_environment().items():
        print(f"    {name}={value}", flush=True)
    print("  soraflow reaches it through a fal endpoint in its models file (SORAFLOW_MODELS), with FAL_KEY set:", flush=True)
    print(f'    endpoints: {{fal: {{base_url: "{sim.fal_url}", ca_file: "{sim.fal_ca_file}"}}}}', flush=True)
    print(_webhooks_line(sim, config), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
