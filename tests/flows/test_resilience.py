"""Never pay twice: crashes, fault storms, concurrent runs and permanent failures.

These run `soraflow render` as real processes against a standalone simulator process (so jobs
outlive a killed render), sharing one ledger, with the session's Prefect server.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import ffmpeg
import pytest

from tests.flows.processes import KEY, SimProcess, finish, render, storyboard

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def env(tmp_path):
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "SORAFLOW_STATE_DIR": str(tmp_path / "state"),
        "OPENAI_API_KEY": KEY,
        # The default limits (4 clips in flight), in the test's own ledger: what a user has.
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


def test_kill_9_at_ten_random_moments_still_one_create_per_clip(tmp_path, env):
    sim = SimProcess(tmp_path, "--latency", "3")
    try:
        # The default limit (4 in flight): each killed render's slots must come back for the next.
        env.update({"OPENAI_BASE_URL": f"{sim.url}/v1"})
        sb = storyboard(tmp_path, 6, title="Crash")
        rng = random.Random(20261122)
        for _ in range(10):
            proc = render(sb, tmp_path / "out", env)
            time.sleep(rng.uniform(2.0, 12.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        proc = render(sb, tmp_path / "out", env)
        output = finish(proc)
        assert proc.returncode == 0, output
        assert (tmp_path / "out" / "film.mp4").stat().st_size > 0
        jobs = sim.all_jobs()
        prompts = [j["prompt"] for j in jobs]
        assert len(jobs) == 6, f"{len(jobs)} creates for 6 clips"
        assert len(set(prompts)) == 6
    finally:
        sim.stop()


def test_a_render_killed_with_every_default_slot_in_flight_leaves_none_taken(tmp_path, env):
    """kill -9 of a render's process group while its 4 clips (the default limit) are in flight:
    the rerun, with the same default limit, takes the dead render's slots back at once, says so,
    adopts the 4 jobs from the ledger and creates nothing."""
    from soraflow.settings import Settings

    sim = SimProcess(tmp_path, "--latency", "12")
    try:
        env["OPENAI_BASE_URL"] = f"{sim.url}/v1"
        sb = storyboard(tmp_path, 4, title="Holders")
        first = render(sb, tmp_path / "out", env, start_new_session=True)
        deadline = time.monotonic() + 120
        while len(sim.jobs()) < 4:  # all four created: every slot of the default limit is held
            assert time.monotonic() < deadline and first.poll() is None, first.stdout.read() if first.poll() is not None else "no 4 creates"
            time.sleep(0.2)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        first.stdout.close()

        rerun = render(sb, tmp_path / "out", env)
        output = finish(rerun, timeout=Settings().slot_lease_seconds + 60)
        assert rerun.returncode == 0, output
        assert len(sim.all_jobs()) == 4, "the rerun created again"
        taken_back = [line for line in output.splitlines() if "slot of 'all' taken back from run" in line]
        assert len(taken_back) == 4 and all("its process is gone" in line for line in taken_back), output
        assert "waits for a slot" not in output
    finally:
        sim.stop()


def test_a_clip_waiting_for_a_slot_says_who_holds_it(tmp_path, env):
    """Two renders share one limit of 1: the one that waits says so, naming the holder, and
    starts once the slot is free (a slot freed in another process is seen within a poll)."""
    sim = SimProcess(tmp_path, "--latency", "3")
    try:
        env.update({"OPENAI_BASE_URL": f"{sim.url}/v1", "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "1"})
        a = render(storyboard(tmp_path, 1, title="Holder"), tmp_path / "out-a", env)
        b = render(storyboard(tmp_path, 1, title="Waiter"), tmp_path / "out-b", env)
        out_a, out_b = finish(a), finish(b)
        assert (a.returncode, b.returncode) == (0, 0), out_a + out_b
        waits = [line for line in (out_a + out_b).splitlines() if "waits for a slot: 1 of 1 slots of 'all' held" in line]
        assert waits, out_a + out_b
        assert all("clip s00 (pid" in line and any(f"(pid {p.pid} on" in line for p in (a, b)) for line in waits), waits
        assert sim.stats()["peak_active_jobs"] == 1
        assert len(sim.all_jobs()) == 2
    finally:
        sim.stop()


def test_fault_storm_every_clip_completes_with_one_create_each(tmp_path, env):
    sim = SimProcess(tmp_path, "--latency", "2", "--faults", "429=0.2,500=0.1,reset=0.05,stall=0.02", "--seed", "11")
    try:
        env.update({
            "OPENAI_BASE_URL": f"{sim.url}/v1", "SORAFLOW_REQUEST_TIMEOUT_SECONDS": "3", "SORAFLOW_TRANSIENT_RETRIES": "10",
            "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "24",  # every create at once: this tests creates, not limits
        })  # fmt: skip
        sb = storyboard(tmp_path, 24, title="Storm")
        proc = render(sb, tmp_path / "out", env)
        output = finish(proc)
        assert proc.returncode == 0, output
        sim.faults("")
        assert len(sim.all_jobs()) == 24
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        assert len(manifest["clips"]) == 24
    finally:
        sim.stop()


def test_two_runs_at_once_create_each_clip_once(tmp_path, env):
    sim = SimProcess(tmp_path, "--latency", "3")
    try:
        env["OPENAI_BASE_URL"] = f"{sim.url}/v1"
        sb = storyboard(tmp_path, 5, title="Twice")
        a = render(sb, tmp_path / "out-ui", env)
        b = render(sb, tmp_path / "out-schedule", env)
        out_a, out_b = finish(a), finish(b)
        assert a.returncode == 0, out_a
        assert b.returncode == 0, out_b
        assert len(sim.all_jobs()) == 5
    finally:
        sim.stop()


def test_two_renders_into_one_out_dir_make_one_film_and_both_end_cleanly(tmp_path, env):
    """Two renders into one --out wait for whoever holds it, saying who, then make one film
    between them, one create per clip; no temporary file is shared or left behind. The test holds
    the directory while they start, so both are seen waiting whatever the machine's load."""
    import threading

    from soraflow.output_lock import hold_output_dir

    sim = SimProcess(tmp_path, "--latency", "1")
    procs: list[subprocess.Popen] = []
    try:
        env["OPENAI_BASE_URL"] = f"{sim.url}/v1"
        sb = storyboard(tmp_path, 2, title="Shared")
        out = tmp_path / "out"
        said: dict[int, list[str]] = {}
        with hold_output_dir(out, run="held-by-the-test", title="Shared"):
            for _ in range(2):
                proc = render(sb, out, env)
                procs.append(proc)
                said[proc.pid] = lines = []
                threading.Thread(target=lambda p=proc, lines=lines: lines.extend(p.stdout), daemon=True).start()
            deadline = time.monotonic() + 240
            while not all(any("waiting for output directory" in line for line in lines) for lines in said.values()):
                assert time.monotonic() < deadline and all(p.poll() is None for p in procs), said
                time.sleep(0.5)
        for proc in procs:
            proc.wait(timeout=300)
        text = {pid: "".join(lines) for pid, lines in said.items()}
        assert [p.returncode for p in procs] == [0, 0], text
        for output in text.values():
            assert "flow run held-by-the-test" in output and "Traceback" not in output
        assert len(sim.all_jobs()) == 2
        manifest = json.loads((out / "manifest.json").read_text())
        film = ffmpeg.probe(str(out / "film.mp4"))
        assert abs(float(film["format"]["duration"]) - manifest["film"]["duration_seconds"]) < 0.1
        leftovers = [p.name for p in out.rglob("*") if p.name.endswith((".partial.mp4", ".tmp", ".part"))]
        assert leftovers == []
    finally:
        for proc in procs:
            proc.kill()
        sim.stop()
