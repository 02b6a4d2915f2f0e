"""Scale-out: workers on several machines, one Postgres ledger, never paying twice.

Each worker is a real `soraflow render` process made to look like a machine of its own: its own
host name (a UTS namespace, `unshare --uts`), so no worker can see another's processes and only
leases tell a dead claimant from a live one; its own state directory, so Prefect's cached results
are not shared and cannot be what prevents a second create; its own output directory. They share
what machines share: the Prefect server, the Postgres ledger and the provider (a standalone
simulator). All are given the same 12-clip storyboard at the same moment, as a schedule and two
UI triggers would.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.flows.processes import KEY, SOR, SimProcess, finish, storyboard

pytestmark = pytest.mark.usefixtures("prefect_server")

CLIPS = 12


def _own_host() -> list[str]:
    """The command prefix that gives a process its own host name (root, or a user namespace)."""
    prefix = ["unshare", "--uts"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--uts"]
    probe = subprocess.run([*prefix, "hostname", "probe-host"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"cannot give a worker a host name of its own ({' '.join(prefix)}): {probe.stderr.strip()}")
    return prefix


def start_worker(name: str, sb: Path, tmp_path: Path, env: dict) -> subprocess.Popen:
    """`soraflow render` on 'machine' NAME: its own host name, state directory and output directory."""
    worker_env = {**env, "SORAFLOW_STATE_DIR": str(tmp_path / name / "state")}
    script = 'hostname "$0" && exec "$@"'
    return subprocess.Popen(
        [*_own_host(), "sh", "-c", script, name, *SOR, "render", str(sb), "--out", str(tmp_path / name / "out")],
        env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def film_and_clips(out: Path) -> tuple[str, list[tuple]]:
    manifest = json.loads((out / "manifest.json").read_text())
    film = hashlib.sha256((out / "film.mp4").read_bytes()).hexdigest()
    return film, [(c["clip_key"], c["job_id"], c["sha256"]) for c in manifest["clips"]]


@pytest.fixture
def cluster(tmp_path, postgres_server):
    """A simulator, a Postgres ledger, and the environment every worker shares."""
    from prefect.settings import PREFECT_API_URL

    sim = SimProcess(tmp_path, "--latency", "1")
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "OPENAI_BASE_URL": f"{sim.url}/v1",
        "OPENAI_API_KEY": KEY,
        "SORAFLOW_LEDGER_URL": postgres_server.fresh_schema(),
        # A claim of a killed worker on another host frees when its lease runs out: keep it short
        # here (it must outlast the longest create: the request timeout + 30 s).
        "SORAFLOW_REQUEST_TIMEOUT_SECONDS": "5",
        "SORAFLOW_LEDGER_LEASE_SECONDS": "35",
        # One limit shared by all workers, in their ledger; room for a killed worker's slots, which
        # (on "another host") come back only when their lease runs out.
        "SORAFLOW_MAX_CONCURRENT_SUBMISSIONS": str(3 * CLIPS),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("SORAFLOW_LEDGER_PATH", None)
    try:
        yield sim, env, storyboard(tmp_path, CLIPS, title="Scale out")
    finally:
        sim.stop()


def test_three_workers_one_storyboard_one_create_per_clip_and_the_same_film(tmp_path, cluster):
    sim, env, sb = cluster
    workers = {name: start_worker(name, sb, tmp_path, env) for name in ("schedule", "ui-1", "ui-2")}
    outputs = {name: finish(proc) for name, proc in workers.items()}
    for name, proc in workers.items():
        assert proc.returncode == 0, f"{name}:\n{outputs[name]}"

    jobs = sim.all_jobs()
    assert len(jobs) == CLIPS, f"{len(jobs)} creates for {CLIPS} clips"
    assert len({j["prompt"] for j in jobs}) == CLIPS
    films = {name: film_and_clips(tmp_path / name / "out") for name in workers}
    assert len(set(map(repr, films.values()))) == 1, films  # the same film, of the same paid jobs
    assert {job_id for _, job_id, _ in films["schedule"][1]} == {j["id"] for j in jobs}


def test_a_worker_killed_mid_run_another_finishes_without_a_second_create(tmp_path, cluster):
    sim, env, sb = cluster
    workers = {name: start_worker(name, sb, tmp_path, env) for name in ("schedule", "ui-1", "ui-2")}
    victim = workers["schedule"]
    deadline = time.time() + 180
    while len(sim.all_jobs()) < CLIPS // 3:  # mid-run: some clips created, most not yet
        assert time.time() < deadline and victim.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    victim.stdout.close()
    survivors = {name: proc for name, proc in workers.items() if proc is not victim}
    outputs = {name: finish(proc) for name, proc in survivors.items()}
    for name, proc in survivors.items():
        assert proc.returncode == 0, f"{name}:\n{outputs[name]}"

    jobs = sim.all_jobs()
    assert len(jobs) == CLIPS, f"{len(jobs)} creates for {CLIPS} clips"
    films = {name: film_and_clips(tmp_path / name / "out") for name in survivors}
    assert len(set(map(repr, films.values()))) == 1, films
    assert not (tmp_path / "schedule" / "out" / "film.mp4").exists()  # it was killed before the end
