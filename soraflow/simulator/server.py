"""Run the simulator: in-process on a daemon thread (``Simulator``), or standalone (``serve``)."""

from __future__ import annotations

import signal
import threading
import time

import uvicorn

from .app import build_app
from .config import SimulatorConfig
from .gate import TransportAwareH11Protocol
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
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Simulator":
        if self._thread is not None:
            return self
        uv_config = uvicorn.Config(
            build_app(self.state),
            host=self.config.host,
            port=self.config.port,
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
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(target=self._server.run, name="soraflow-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._thread = None
                self.state.close()
                raise RuntimeError(f"the simulator could not listen on {self.config.host}:{self.config.port}")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.state.signal_stopping()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None
        self.state.close()

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
    def base_urls(self) -> dict[str, str]:
        """The base URL to give each dialect's SDK: google-genai appends ``v1beta1/...`` itself."""
        return {"openai-videos": self.base_url, "google-genai": self.url}

    @property
    def api_key(self) -> str:
        return self.config.api_key

    def base_url_for(self, dialect: str) -> str:
        """Where a client of ``dialect``'s SDK points: the Videos API under /v1; google-genai
        builds its own paths (``/v1beta1/...``) on the server root."""
        return self.base_url if dialect == "openai-videos" else self.url

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
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
