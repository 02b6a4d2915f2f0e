"""Never pay twice: crashes, fault storms, concurrent runs and permanent failures.

These run `soraflow render` as real processes against a standalone simulator process (so jobs
outlive a killed render), sharing one ledger, with the session's Prefect server.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import ffmpeg
import httpx
import pytest

from tests.flows.processes import KEY, SOR, SimProcess, finish, render, storyboard

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


def _veo_env(env: dict, sim: SimProcess, tmp_path) -> dict:
    """Only the Veo endpoint configured, pointed at the simulator process (any key works there)."""
    models = tmp_path / "models.yaml"
    models.write_text(f"endpoints:\n  vertex: {{base_url: '{sim.url}'}}\n")
    env = {k: v for k, v in env.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GOOGLE_CLOUD_PROJECT", "GEMINI_API_KEY")}
    return {**env, "GOOGLE_API_KEY": KEY, "SORAFLOW_MODELS": str(models)}


def _veo_operations(sim: SimProcess) -> list[dict]:
    return [j for j in httpx.get(f"{sim.url}/_sim/jobs").json()["data"] if j["dialect"] == "google-genai"]


def _unanswered_claims(env: dict) -> int:
    """Clips the ledger shows claimed with no job yet (read as any process could, with sqlite3)."""
    return len(_claims_without_job(env))


def _claims_without_job(env: dict) -> dict[str, str]:
    """Clip key -> 'claimed' (not sent) or 'creating' (its create may be on its way) for the clips
    with no job yet."""
    import sqlite3

    path = Path(env["SORAFLOW_STATE_DIR"]) / "ledger.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return dict(db.execute("SELECT clip_key, state FROM clips WHERE job_id IS NULL AND state IN ('claimed', 'creating')").fetchall())
    except sqlite3.OperationalError:  # the schema is not there yet, or a migration holds it
        return {}
    finally:
        db.close()


def _settle_in_doubt(sim: SimProcess, env: dict) -> tuple[list[str], list[str]]:
    """What a user does with a clip in doubt: look for its operation at the provider (here the
    simulator's job list stands for the Cloud console or billing) and adopt it, or, when there is
    none, have it created again. Returns the clip keys (adopted, re-created)."""
    from soraflow.ledger import Ledger

    ledger = Ledger(Path(env["SORAFLOW_STATE_DIR"]) / "ledger.sqlite")
    doubtful = [e for e in ledger.entries().values() if e.state == "in_doubt"]
    known = ledger.known_job_ids()
    adopted, recreated = [], []
    for entry in doubtful:
        ref = entry.clip_key[:16]
        found = [op["id"] for op in _veo_operations(sim)
                 if op["id"] not in known and hashlib.sha256(op["prompt"].encode()).hexdigest() == entry.prompt_sha256]
        args = ["adopt", ref, found[0]] if found else ["re-create", ref]
        settled = subprocess.run([*SOR, "jobs", *args], env=env, capture_output=True, text=True)
        assert settled.returncode == 0, settled.stdout + settled.stderr
        (adopted if found else recreated).append(entry.clip_key)
    return adopted, recreated


def test_kill_9_at_five_moments_of_a_veo_render_still_one_operation_per_clip(tmp_path, env):
    """Veo cannot list its operations. A kill between a clip's claim and its request (a slot
    awaited) leaves nothing in doubt: the claim was provably never sent. Only a kill during the
    request itself can; such a clip is settled as a user would (its operation adopted, or
    created again when there is none), and operations equal clips plus what was re-created."""
    sim = SimProcess(tmp_path, "--latency", "3")
    try:
        env = _veo_env({**env, "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": "40"}, sim, tmp_path)
        sb = storyboard(tmp_path, 4, title="Veo Crash")
        sb.write_text(sb.read_text().replace("title: Veo Crash", "title: Veo Crash\nmodel: veo-3.1-fast-generate-001"))
        # The moments (seeded): three while a clip is claimed and not yet answered, two later
        # (polling, download, stitch) once every operation exists.
        rng = random.Random(20261129)
        at_kill = []
        last_left: dict[str, str] = {}
        for moment in ("claim", "claim", "claim", "late", "late"):
            proc = render(sb, tmp_path / "out", env)
            deadline = time.time() + 90
            if moment == "claim":
                while len(_veo_operations(sim)) < 4 and not _unanswered_claims(env) and time.time() < deadline and proc.poll() is None:
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.1))
            else:
                time.sleep(rng.uniform(2.0, 8.0))
            at_kill.append((moment, _unanswered_claims(env), len(_veo_operations(sim))))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # As the kill left them (the process is gone, the ledger holds still): a clip left
            # 'claimed' was provably never sent; one left 'creating' may have been.
            last_left.update(_claims_without_job(env))
        proc = render(sb, tmp_path / "out", env)
        output = finish(proc)
        adopted, recreated = [], []
        if proc.returncode != 0:  # clips in doubt: settled, then the render finishes the film
            assert "in doubt" in output, output
            adopted, recreated = _settle_in_doubt(sim, env)
            proc = render(sb, tmp_path / "out", env)
            output = finish(proc)
        assert proc.returncode == 0, output
        print(f"(moment, unanswered claims, operations) at each kill: {at_kill}; in doubt: {len(adopted)} adopted, "
              f"{len(recreated)} re-created")
        assert any(claims for _, claims, _ in at_kill), f"no kill landed while a claim was unanswered: {at_kill}"
        # Only a clip whose create may have gone out is ever in doubt: each was left 'creating' by
        # the last kill that found it without a job, never 'claimed' (a claim never sent is taken
        # over and created, not put in doubt). A kill between marking the create sent and its
        # bytes reaching the provider (milliseconds) leaves one in doubt with no operation: the
        # user re-creates it, as the message says, and that create is its first and only one.
        # (A clip in doubt with an operation is adopted, never re-created: _settle_in_doubt.)
        for key in adopted + recreated:
            assert last_left.get(key) == "creating", f"clip {key[:16]} in doubt, left {last_left.get(key)!r} by the kills: {at_kill}"
        operations = _veo_operations(sim)
        assert len(operations) == 4, f"{len(operations)} operations for 4 clips ({len(recreated)} re-created): {at_kill}"
        assert len({op["prompt"] for op in operations}) == 4
        assert all(op["model"] == "veo-3.1-fast-generate-001" for op in operations)
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        assert sorted(c["job_id"] for c in manifest["clips"]) == sorted(op["id"] for op in operations)
    finally:
        sim.stop()
