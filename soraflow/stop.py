"""Stopping a render promptly: one request per process, seen by every wait of the journey.

When a render is interrupted (SIGTERM, Ctrl-C), the flow asks the whole process to stop
(``request``): every wait a clip does from then on (between polls, for a slot of a limit, for a
rate token, for an endpoint's retry-after) ends at once with ``Stopped``, and no create starts
after it. Nothing is lost: every job created is in the ledger already (rule 3), a claim whose
create never left is given back, and a rerun resumes where this one stopped.

A wait inside an SDK call (its own retries and backoff, a request waiting for its timeout) cannot
be cut short from here; whoever owns the process bounds those: the command line ends the process
a few seconds after the request (``on_request``), as kill -9 would, which the ledger is built to
survive.
"""

from __future__ import annotations

import threading
from typing import Callable

from .errors import SoraflowError

_requested = threading.Event()
_lock = threading.Lock()
_why = ""
_callbacks: list[Callable[[str], None]] = []


class Stopped(SoraflowError):
    """The render was asked to stop; what this clip had done is kept (its job in the ledger)."""


def request(why: str = "interrupted") -> None:
    """Ask every wait of this process to end now; ``why`` says what asked ("terminated" for
    SIGTERM, "interrupted" for Ctrl-C). Callbacks run once, on the first request."""
    global _why
    with _lock:
        if _requested.is_set():
            return
        _why = why
        _requested.set()
        callbacks = list(_callbacks)
    for callback in callbacks:
        callback(why)


def requested() -> bool:
    return _requested.is_set()


def check(what: str = "") -> None:
    """Raise ``Stopped`` if a stop was requested (``what``: what is not done, for the message)."""
    if _requested.is_set():
        raise Stopped(f"the render was {_why}{': ' + what if what else ''}; a rerun resumes where it stopped")


def sleep(seconds: float, what: str = "") -> None:
    """``time.sleep`` that ends at once, raising ``Stopped``, when a stop is requested."""
    if _requested.wait(max(0.0, seconds)):
        check(what)


def on_request(callback: Callable[[str], None]) -> Callable[[], None]:
    """Call ``callback(why)`` when a stop is requested, in the thread that requests it; returns
    the function that takes the callback back."""
    with _lock:
        _callbacks.append(callback)

    def forget() -> None:
        with _lock:
            if callback in _callbacks:
                _callbacks.remove(callback)

    return forget


def clear() -> None:
    """Forget a request (a new render in a process that was stopped before: tests, services)."""
    global _why
    with _lock:
        _requested.clear()
        _why = ""


__all__ = ["Stopped", "check", "clear", "on_request", "request", "requested", "sleep"]
