"""Who holds a claim, and whether that holder can still be alive.

An owner is ``host:pid:thread``. On the owner's own host the process table answers (a killed
worker's claim is taken over at once); on another host nothing can be seen, and the claim's
lease, judged by the database's clock, decides.
"""

from __future__ import annotations

import os
import socket
import threading


def owner_id() -> str:
    """Who holds a claim: host, process and thread (a thread can outlive a failed attempt)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def owner_alive(owner: str | None) -> bool:
    """False only when the owner is provably gone: a process of this host that has exited."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname():
        return True  # cannot see another host's processes: the lease decides
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        # This process: alive only while that thread runs (a failed attempt's thread has ended).
        try:
            return int(rest.split(":", 1)[1]) in {t.ident for t in threading.enumerate()}
        except (IndexError, ValueError):
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) still answers kill(0): it is dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
