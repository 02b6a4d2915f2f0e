"""The ``soraflow`` typer app: its command groups, and how every command ends.

An expected error ends a command with one clean line (exit 2 when the user's input is wrong,
1 when the run failed), never a traceback unless ``--debug``; SIGTERM unwinds like Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

import click
import typer
from typer.core import TyperGroup

from .. import preflight, recovery
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
            say(("error: ", "bold red"), f"{type(err).__name__}: {err}", (" (run with --debug for the traceback)", "dim"))
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Commands, add_completion=False, no_args_is_help=True, help="Turn a storyboard into a film with generative video models."
)


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show tracebacks and Prefect's own log lines")) -> None:
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
    first, marks the run crashed and sends it again to the handler installed here.
    """
    def interrupt(signum, frame):
        terminated.set()
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
