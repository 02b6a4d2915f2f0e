"""Job lifecycle: status and progress follow the clock, jobs age together, content expires."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from soraflow.simulator.jobs import Job, JobStore
from soraflow.simulator.render import RenderedMedia

from .conftest import api_client, sdk_client

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")
ORDER = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2}


def job(latency=10.0, *, moderated=False, rendered_at: float | None = 0.0, ttl=100.0) -> Job:
    """A job created at monotonic 0 (wall 1000) whose render finished at ``rendered_at``."""
    render: Future = Future()
    if rendered_at is not None:
        render.set_result(RenderedMedia(folder=None))
    return Job(id="video_t", seq=1, model="sora-2", size="720x1280", seconds=4, prompt="p", latency=latency, ttl=ttl,
               created_wall=1000.0, created_mono=0.0, moderated=moderated, render=render, render_done_mono=rendered_at)


def test_status_and_progress_follow_the_clock():
    j = job(latency=10)
    assert [j.state(t)[:2] for t in (0, 0.9, 1.0, 5.0, 9.99, 10.0, 50)] == [
        ("queued", 0), ("queued", 0), ("in_progress", 10), ("in_progress", 50), ("in_progress", 99), ("completed", 100),
        ("completed", 100),
    ]
    done = j.resource(12.0)
    assert (done["created_at"], done["completed_at"], done["expires_at"]) == (1000, 1010, 1110)


def test_a_late_render_holds_completion_at_99():
    j = job(latency=2, rendered_at=None)
    assert j.state(5.0)[:2] == ("in_progress", 99)
    assert j.poll_after_ms(5.0) == 250  # overdue: look again soon, not in a busy loop
    j.render.set_result(RenderedMedia(folder=None))
    j.render_done_mono = 6.0
    assert j.state(6.5)[:2] == ("completed", 100) and j.resource(6.5)["completed_at"] == 1006


def test_moderation_fails_half_way_with_the_services_error():
    j = job(latency=10, moderated=True, rendered_at=None)
    assert j.state(4.9)[0] == "in_progress"
    status, progress, _, error = j.state(5.0)
    assert (status, progress, error["code"]) == ("failed", 50, "moderation_blocked")
    assert j.resource(9.0)["completed_at"] is None and j.resource(9.0)["expires_at"] is None


def test_poll_after_lands_just_after_completion_within_bounds():
    j = job(latency=20)
    assert [j.poll_after_ms(t) for t in (0, 14, 17.5, 19.9, 25)] == [5000, 5000, 2550, 250, 250]


def test_content_expires_after_the_ttl():
    j = job(latency=1, ttl=30)
    assert not j.expired(30.9) and j.expired(31.0)


def test_peak_counts_jobs_active_together():
    clock = [0.0]
    store = JobStore(clock=lambda: clock[0], wall=lambda: 1000 + clock[0])
    fields = dict(model="sora-2", size="720x1280", seconds=4, prompt="p", latency=5.0, ttl=60.0)
    for _ in range(3):
        store.attach_render(store.new_job(**fields), _done())
    clock[0] = 10.0  # all three finished
    store.attach_render(store.new_job(**fields), _done())
    assert store.peak_active == 3 and store.counts()["active_jobs"] == 1


def _done() -> Future:
    f: Future = Future()
    f.set_result(RenderedMedia(folder=None))
    return f


def test_many_jobs_progress_concurrently(start_sim):
    sim = start_sim(latency=3.0)
    client = sdk_client(sim)
    with ThreadPoolExecutor(12) as pool:
        ids = list(pool.map(lambda i: client.videos.create(prompt=f"Shot together {i % 3}", seconds="4").id, range(12)))
        finished = list(pool.map(client.videos.poll, ids))
    assert [v.status for v in finished] == ["completed"] * 12
    stats = sim.stats()
    assert stats["peak_active_jobs"] == 12 and stats["creates"] == 12
    assert stats["jobs_by_status"] == {"completed": 12}
    assert stats["renders"]["rendered"] + stats["renders"]["cache_hits"] >= 12


def test_statuses_only_move_forward_and_carry_a_poll_hint(start_sim):
    sim = start_sim(latency=1.0)
    with api_client(sim) as api:
        video = api.post("videos", files={"prompt": (None, "Shot clocked")}).json()
        seen = []
        while True:
            response = api.get(f"videos/{video['id']}")
            body = response.json()
            seen.append((body["status"], body["progress"]))
            if body["status"] == "completed":
                assert "openai-poll-after-ms" not in response.headers
                break
            assert 250 <= int(response.headers["openai-poll-after-ms"]) <= 5000
            time.sleep(0.1)
    assert seen == sorted(seen, key=lambda s: (ORDER[s[0]], s[1]))
    assert seen[-1] == ("completed", 100)


def test_poll_hint_can_be_switched_off(start_sim):
    sim = start_sim(latency=30, poll_after_hint=False)
    with api_client(sim) as api:
        video = api.post("videos", files={"prompt": (None, "Shot no hint")}).json()
        response = api.get(f"videos/{video['id']}")
    assert response.json()["status"] == "queued" and "openai-poll-after-ms" not in response.headers


def test_expired_content_is_gone_but_the_job_is_still_listed(start_sim):
    sim = start_sim(latency=0.2, ttl_seconds=1)
    client = sdk_client(sim)
    video = client.videos.create_and_poll(prompt="Shot fleeting", seconds="4")
    assert video.expires_at - video.completed_at == 1
    assert len(client.videos.download_content(video.id).read()) > 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.videos.download_content(video.id, variant="thumbnail").read()
        except Exception as err:  # noqa: BLE001 - the expected 404 ends the wait
            gone = err
            break
        time.sleep(0.2)
    assert getattr(gone, "status_code", None) == 404 and gone.code == "video_expired"
    assert client.videos.retrieve(video.id).status == "completed"


def test_many_clients_at_once_see_a_consistent_store(start_sim):
    sim = start_sim(latency=0.5, validate_requests=True)

    def client_session(n: int) -> list[str]:
        with api_client(sim, contract=False) as api:
            ids = [api.post("videos", files={"prompt": (None, f"Shot crowd {n % 2}")}).json()["id"] for _ in range(4)]
            for job_id in ids:
                assert api.get(f"videos/{job_id}").json()["id"] == job_id
                api.get("videos", params={"limit": 3})
            return ids

    with ThreadPoolExecutor(16) as pool:
        created = [i for ids in pool.map(client_session, range(16)) for i in ids]
    assert len(created) == len(set(created)) == 64
    with api_client(sim) as api:
        listed, after = [], None
        while True:
            page = api.get("videos", params={"limit": 100, "order": "asc", **({"after": after} if after else {})}).json()
            listed += [v["id"] for v in page["data"]]
            if not page["has_more"]:
                break
            after = page["last_id"]
    assert sorted(listed) == sorted(created)
    stats = sim.stats()
    assert stats["creates"] == 64 and stats["requests_by_route"]["GET /v1/videos/{video_id}"] == 64
    assert stats["contract_violations"] == []
