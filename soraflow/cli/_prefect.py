"""The Prefect server a command's flow run reports to, and Prefect's console lines as a CLI
user needs them. Prefect is imported here only inside functions: commands that run no flow
never import it."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

from ..settings import Settings
from ._output import debugging, say

def prefect_defaults() -> None:
    """Defaults for the temporary Prefect server a command starts when no PREFECT_API_URL is set.

    Must run before Prefect is imported: it reads its settings once, at import. The first start
    on a new machine migrates a fresh SQLite database, which takes about 30 s on 2 cores, past
    Prefect's 20 s startup timeout, so README command 1 failed on every fresh machine. The
    temporary server also sends no telemetry (offline machines logged an ERROR for it). A value
    the user sets wins.
    """
    if os.environ.get("PREFECT_API_URL"):
        return
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@contextmanager
def prefect_api(settings: Settings) -> Iterator[None]:
    """The Prefect server a flow run of this command reports to: PREFECT_API_URL when it is set
    (environment or Prefect profile); else one already running where ``prefect server start``
    listens by default (SORAFLOW_PREFECT_LOCAL_API); else a temporary server Prefect starts for
    this command and stops at its end (9 to 30 s on 2 cores)."""
    import httpx
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    local = settings.prefect_local_api.rstrip("/")
    try:
        running = bool(local) and httpx.get(f"{local}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        running = False
    if not running:
        say("starting a temporary Prefect server for this render (set PREFECT_API_URL, or run `prefect server start`, to reuse one)")
        yield
        return
    say(f"using the Prefect server running at {local}")
    with temporary_settings(updates={PREFECT_API_URL: local}):
        yield


def secret_reader(settings: Settings):
    """How this command reads a Prefect Secret block (an endpoint's ``key_secret``), as a flow
    run's tasks do (``soraflow.tasks.runtime.secret_block_value``: registered as a secret where
    it is read), from the Prefect server this command would report to. Prefect is imported
    only when a block is read."""

    def read(name: str) -> str:
        prefect_defaults()
        from soraflow.tasks.runtime import secret_block_value

        with prefect_api(settings):
            return secret_block_value(name)

    return read


def quiet_prefect_console() -> None:
    """Prefect's console lines, as a CLI user needs them: warnings only, one line each.

    The run's failures are summarised by the command itself (one line per failed shot), so
    Prefect's own error records for failed task and flow runs, with their tracebacks, would
    say the same thing again in 99 lines. Everything still reaches the Prefect server's logs.
    ``--debug`` keeps Prefect's console as it is.
    """
    if debugging():
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.setLevel(logging.WARNING)
            handler.addFilter(_run_errors_summarised_later)
            handler.setFormatter(_WithoutTraceback(handler.formatter or logging.Formatter()))


def _run_errors_summarised_later(record: logging.LogRecord) -> bool:
    return not (record.levelno >= logging.ERROR and record.name.startswith(("prefect.flow_runs", "prefect.task_runs")))


class _WithoutTraceback(logging.Formatter):
    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        # A copy: the record is shared with the handler that sends it to the Prefect API.
        plain = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None})
        return self.inner.format(plain)
