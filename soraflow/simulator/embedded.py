"""The embedded simulator: one per process, started the first time an endpoint is routed to it.

Whoever builds a provider for a simulated route (the CLI, a flow run on a worker with no key,
``soraflow models --check``) gets the same simulator, already listening, so a worker with no
credentials renders on the simulator exactly as the CLI does. It serves every model of the
profiles it was started for, and learns the models of profiles added later in the process.
Its latency and render cache are fixed by the first start.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import Iterable

from .config import SimulatedModel, SimulatorConfig
from .server import Simulator

_lock = threading.Lock()
_running: Simulator | None = None


def embedded_simulator(models: Iterable[SimulatedModel], *, latency: float, cache_dir: Path | str | None = None) -> Simulator:
    """The process's simulator, serving ``models`` (started on first use, stopped at exit)."""
    global _running
    models = list(models)
    with _lock:
        if _running is None:
            sim = Simulator(SimulatorConfig(models=models, latency=latency, cache_dir=str(cache_dir) if cache_dir else None))
            sim.start()
            atexit.register(sim.stop)
            _running = sim
        else:
            _running.serve_models(models)
        return _running


def running_simulator() -> Simulator | None:
    """The embedded simulator if this process started one."""
    return _running


__all__ = ["embedded_simulator", "running_simulator"]
