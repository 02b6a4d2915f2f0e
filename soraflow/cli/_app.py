"""The ``soraflow`` typer app: its command groups, and how every command ends.

An expected error ends a command with one clean line (exit 2 when the user's input is wrong,
1 when the run failed), never a traceback unless ``--debug``; SIGTERM unwinds like Ctrl-C, and
ends the process within seconds whatever the endpoints answer.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import click
import typer
from typer.core import TyperGroup

from .. import preflight, recovery, stop
from ..errors import (
    BudgetExceededError,
    CatalogError,
    EndpointNotConfiguredError,
    InvalidBudgetError,
    InvalidInputError,
    InvalidSettingError,
    SoraflowError,
)
from ..models import SIMULATE_VARIABLE
from ..redaction import install_redaction, redact_text
from ..settings import Settings
from ._output import debugging, report, say, set_debug

SIMULATE_HELP = f"Render every endpoint on the embedded simulator, credentials or not (env {SIMULATE_VARIABLE}=1)"
# The user's input is wrong (exit 2) rather than the run failing (exit 1).
INPUT_ERRORS = (
    InvalidInputError, BudgetExceededError, InvalidBudgetError, CatalogError, EndpointNotConfiguredError, recovery.SettleError,
    preflight.PreflightError, InvalidSettingError,
)

# Set when SIGTERM ended the command (exit 143 rather than Ctrl-C's 130).
terminated = threading.Event()
# How long an interrupted render may take to unwind (its clips' waits end at once; a thread inside
# an SDK call, retrying a 502 with backoff or waiting for a timeout, may not) before the process
# ends the way kill -9 would, which the ledger survives by design: every job is recorded the
# moment it is created. With the children's own end, the whole tree is gone within 10 s.
STOP_GRACE_SECONDS = 5.0
CHILDREN_GRACE_SECONDS = 2.0


class _Commands(TyperGroup):
    """Every command ends an expected error with one clean line, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        # typer vendors click (typer._click): its usage errors (--budget abc) are TyperException,
        # not click.ClickException, and print their own clean usage message.
        except (typer.Exit, typer.Abort, typer.TyperException, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except SoraflowError as err:
            report(err)
            raise typer.Exit(2 if isinstance(err, INPUT_ERRORS) else 1) from None
        except KeyboardInterrupt:
            say(("interrupted", "bold yellow"), ": nothing is left running; a rerun resumes where this one stopped")
            raise typer.Exit(143 if terminated.is_set() else 130) from None
        except Exception as err:  # noqa: BLE001 - a bug or an environment problem: one line unless --debug
            if debugging():
                raise
            say(("error: ", "bold red"), redact_text(f"{type(err).__name__}: {err}"), (" (run with --debug for the traceback)", "dim"))
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Commands, add_completion=False, no_args_is_help=True, help="Turn a storyboard into a film with generative video models.",
    # --debug's traceback shows no frame's local variables: one of them may hold a key, and a long
    # value is shortened when shown, which would leave part of a key that redaction cannot know.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show tracebacks and Prefect's own log lines")) -> None:
    # Before anything reads a key: every log record and every line this process prints is
    # redacted from here on (docs/secrets.md).
    install_redaction()
    set_debug(debug)


def settings_from_env(simulate: bool = False) -> Settings:
    """Settings from the environment; ``--simulate`` goes into it so the flow run sees it too."""
    if simulate:
        os.environ[SIMULATE_VARIABLE] = "1"
    return Settings()


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM ends a command the way Ctrl-C does: the stack unwinds, so the embedded simulator
    stops, the temporary Prefect server is stopped (at exit) and no port stays open.

    Python's default for SIGTERM ends the process on the spot, leaving the temporary Prefect
    server (a child process) listening. During a flow run Prefect's engine takes SIGTERM
    first: the render flow asks every clip's wait to end (``soraflow.stop``), the engine waits
    for the run's tasks, marks the run crashed and sends the signal again to the handler
    installed here. Whichever way a stop is asked, the process ends within
    ``STOP_GRACE_SECONDS`` (``_end_after``), children included.
    """
    def interrupt(signum, frame):
        terminated.set()
        stop.request("terminated")
        raise KeyboardInterrupt

    forget = stop.on_request(_end_soon)
    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        forget()
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        forget()


def _end_soon(why: str) -> None:
    """Called in the thread that asked to stop (inside the flow run, when it did)."""
    run_id = None
    try:
        from prefect.runtime import flow_run

        run_id = flow_run.get_id()
    except Exception:  # noqa: BLE001 - no flow run (yet): nothing to mark
        pass
    threading.Thread(target=_end_after, args=(why, run_id), name="soraflow-stop", daemon=True).start()


def _end_after(why: str, run_id: str | None) -> None:
    """If the process still runs after the grace, end it: mark the flow run crashed (as Prefect
    would have), end every child process (the temporary Prefect server, ffmpeg), then exit."""
    time.sleep(STOP_GRACE_SECONDS)
    say(("interrupted", "bold yellow"), f": ended {STOP_GRACE_SECONDS:g} s after the render was {why}, with requests still in "
        "flight; every job created is in the ledger, and a rerun resumes where this one stopped (nothing is paid twice)")  # fmt: skip
    if run_id:
        _mark_crashed(run_id, why)
    _end_children()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(143 if why == "terminated" else 130)


def _mark_crashed(run_id: str, why: str) -> None:
    try:
        from prefect.client.orchestration import get_client
        from prefect.states import Crashed

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run_id, Crashed(message=f"the render was {why} (soraflow render)"), force=True)
    except Exception:  # noqa: BLE001 - the server may be gone; Prefect's heartbeat marks the run later
        pass


def _end_children() -> None:
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=CHILDREN_GRACE_SECONDS)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
