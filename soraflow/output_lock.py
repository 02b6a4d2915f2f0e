"""One render at a time in an output directory.

Two renders into the same ``--out`` used to share fixed temporary names (the stitch's partial
film) and overwrite each other's film and manifest halfway. A render now holds the directory
for as long as it writes there: a second render into it waits, saying every so often which
render holds it (process, host, Prefect flow run, storyboard, since when), and gives up with a
clear message after ``SORAFLOW_OUT_DIR_WAIT_SECONDS`` (0: refuse at once). Generation is not
serialised by this: the ledger already shares paid jobs between runs.

The lock is ``flock`` on ``OUT/.soraflow.lock``: the kernel releases it when the holding
process ends, however it ends (kill -9 included), so a dead render never blocks the next one.
It is written by hand because the ``filelock`` package truncates the lock file on every
attempt to take it, so the file could not say who holds the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from .errors import SoraflowError
from .terminal import printable

LOCK_NAME = ".soraflow.lock"
_HOLDER_BYTES = 4096


class OutputDirBusyError(SoraflowError):
    """Another render holds the output directory, and waiting for it is over (or not wanted)."""


def describe_holder(info: dict) -> str:
    """'pid 4242 on host-a, flow run crafty-lemur, rendering 'The Lighthouse Keeper' since 12:00:03 UTC'"""
    if not info:
        return "a render that has not said who it is yet"
    parts = [f"pid {info.get('pid', '?')} on {printable(info.get('host', '?'), 80)}"]
    if info.get("run"):
        parts.append(f"flow run {printable(info['run'], 80)}")
    if info.get("title"):
        parts.append(f"rendering {printable(repr(info['title']), 80)}")
    if info.get("since"):
        parts.append(f"since {printable(info['since'], 40)}")
    return ", ".join(parts)


@contextmanager
def hold_output_dir(
    out_dir: str | os.PathLike,
    *,
    run: str | None = None,
    title: str | None = None,
    wait_seconds: float = 3600.0,
    on_wait: Callable[[str], None] | None = None,
    say_every: float = 30.0,
    poll: float = 0.5,
) -> Iterator[Path]:
    """Hold ``out_dir`` (created if missing) while the block runs; wait for another holder up to
    ``wait_seconds``, calling ``on_wait`` with a message when the wait starts and every
    ``say_every`` seconds; raise OutputDirBusyError when the wait is over."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        _acquire(fd, directory, wait_seconds=wait_seconds, on_wait=on_wait, say_every=say_every, poll=poll)
        try:
            me = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "run": run,
                "title": title,
                "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode()[:_HOLDER_BYTES], 0)
            yield directory
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, directory: Path, *, wait_seconds: float, on_wait, say_every: float, poll: float) -> None:
    started = time.monotonic()
    said_at: float | None = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if said_at is not None and on_wait is not None:
                on_wait(f"{printable(directory, 200)} is free after {time.monotonic() - started:.0f} s; this render goes on")
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - started
        holder = describe_holder(_read_holder(fd))
        if waited >= wait_seconds:
            raise OutputDirBusyError(
                f"output directory {printable(directory, 200)} is in use by another render ({holder})"
                + (f"; waited {waited:.0f} s" if wait_seconds > 0 else "")
                + ". Let it finish, or render into another --out (SORAFLOW_OUT_DIR_WAIT_SECONDS sets the wait)"
            )
        if on_wait is not None and (said_at is None or time.monotonic() - said_at >= say_every):
            said_at = time.monotonic()
            left = wait_seconds - waited
            on_wait(
                f"waiting for output directory {printable(directory, 200)}: another render holds it ({holder}); "
                f"waited {waited:.0f} s, will wait up to {left:.0f} s more"
            )
        time.sleep(min(poll, max(0.01, wait_seconds - waited)))


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, _HOLDER_BYTES, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["LOCK_NAME", "OutputDirBusyError", "describe_holder", "hold_output_dir"]
