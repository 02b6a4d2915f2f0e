"""One render at a time per output directory: the second waits, says who holds it, or refuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from soraflow.output_lock import LOCK_NAME, OutputDirBusyError, hold_output_dir


def test_a_second_holder_is_refused_at_once_naming_the_first(tmp_path):
    with hold_output_dir(tmp_path / "out", run="crafty-lemur", title="The \x1b[2JKeeper"):
        with pytest.raises(OutputDirBusyError) as info:
            with hold_output_dir(tmp_path / "out", wait_seconds=0):
                pass
    message = str(info.value)
    assert f"pid {os.getpid()} on " in message and "flow run crafty-lemur" in message
    assert "rendering 'The \\x1b[2JKeeper'" in message and "\x1b" not in message
    assert "render into another --out" in message


def test_a_second_holder_waits_saying_so_then_goes_on(tmp_path):
    said: list[str] = []
    release = threading.Event()
    held = threading.Event()

    def first():
        with hold_output_dir(tmp_path, run="first-run", title="Film"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(5)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    with hold_output_dir(tmp_path, run="second-run", wait_seconds=30, on_wait=said.append, say_every=0.3, poll=0.05):
        waited = time.monotonic() - started
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
    thread.join()
    assert 0.8 <= waited < 10
    assert said[0].startswith(f"waiting for output directory {tmp_path}: another render holds it (pid {os.getpid()}")
    assert "flow run first-run" in said[0] and len(said) >= 2 and said[-1].endswith("this render goes on")
    assert holder["run"] == "second-run"
    assert (tmp_path / LOCK_NAME).read_text() == ""  # nobody holds it now


def test_a_killed_holder_releases_the_directory(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from soraflow.output_lock import hold_output_dir\n"
         "with hold_output_dir(sys.argv[1], run='doomed'):\n    print('held', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputDirBusyError, match="flow run doomed"):
            with hold_output_dir(tmp_path, wait_seconds=0):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with hold_output_dir(tmp_path, wait_seconds=0):
            pass
    finally:
        holder.kill()
        holder.wait()
