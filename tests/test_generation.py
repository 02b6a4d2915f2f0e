"""Generation: the adaptive poll clock (simulated without sleeping), rate limits that are too
long to wait for, and submit, poll and download through a gateway-like proxy (every answer
checked, a job in doubt never created again, a claim taken over before its create never
created), against the simulator over HTTP."""

import logging
import time
import uuid
from pathlib import Path

import pytest

from soraflow import generation
from soraflow.plan import load_plan
from soraflow.errors import ClipInDoubtError, ClipTimeoutError, RetryAfterTooLongError, TransientProviderError, UntrustedAnswerError
from soraflow.generation import PollClock, submit_clip
from soraflow.ledger import ClaimKind, Ledger
from soraflow.providers import build_provider, connect
from soraflow.providers.base import VideoJob
from soraflow.settings import Settings
from soraflow.simulator import Simulator, SimulatorConfig


def count_polls(job_seconds: float, clock: PollClock, hint=None) -> tuple[int, float]:
    """Polls needed to see a job that completes at ``job_seconds`` with linear progress."""
    t, polls = 0.0, 0
    while True:
        polls += 1
        if t >= job_seconds:
            return polls, t - job_seconds
        progress = int(100 * t / job_seconds)
        t += clock.next_interval(hint=hint(t) if hint else None, progress=progress, elapsed=t)


def test_twenty_second_job_is_seen_within_two_seconds_in_at_most_six_polls():
    clock = PollClock(expected_total=64.0, min_interval=0.5, max_interval=30.0)
    polls, late = count_polls(20.0, clock)
    assert polls <= 6 and late <= 2.0, (polls, late)


def test_slow_job_is_not_polled_every_second():
    clock = PollClock(expected_total=64.0, min_interval=0.5, max_interval=30.0)
    polls, late = count_polls(300.0, clock)
    assert polls <= 16 and late <= 30.0, (polls, late)


def test_provider_hint_wins():
    clock = PollClock(expected_total=64.0, min_interval=0.5, max_interval=30.0)
    assert clock.next_interval(hint=2.5, progress=50, elapsed=10) == 2.5
    assert clock.next_interval(hint=500, progress=50, elapsed=10) == 30.0


def provider_for(spec, settings: Settings):
    """The provider of the clip's endpoint, reached as a render reaches it."""
    return build_provider(connect(spec.route, settings.environment), settings)


# --- a rate limit longer than soraflow will wait fails the clip, saying so ---------------------

@pytest.fixture
def rate_limited_endpoint(monkeypatch, tmp_path):
    """A simulator answering every request with 429 and the given retry-after."""

    def start(retry_after: float):
        sim = Simulator(SimulatorConfig(latency=0.2, faults="429=1", seed=1, retry_after_seconds=retry_after))
        sim.start()
        monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", sim.api_key)
        started.append(sim)
        settings = Settings(_env_file=None)
        spec = load_plan(None, {"title": "t", "shots": [{"id": "s00", "seconds": 4, "visual": "v"}]}, settings=settings).clips[0]
        return sim, settings, spec

    started: list[Simulator] = []
    yield start
    for sim in started:
        sim.stop()


def test_a_retry_after_beyond_the_setting_fails_the_clip_at_once_with_the_figure(rate_limited_endpoint, tmp_path):
    sim, settings, spec = rate_limited_endpoint(retry_after=900)
    began = time.monotonic()
    with pytest.raises(RetryAfterTooLongError) as info:
        submit_clip(spec, provider=provider_for(spec, settings), ledger=Ledger(tmp_path / "ledger.sqlite"), settings=settings, work_dir=tmp_path)
    assert time.monotonic() - began < 5
    assert "asks to wait 900 s" in str(info.value) and "SORAFLOW_MAX_RETRY_AFTER_SECONDS=120" in str(info.value)
    assert str(info.value).count("s00") == 1  # the shot is named once
    assert sim.jobs() == []


def test_retry_afters_that_add_up_beyond_the_setting_fail_after_saying_each_wait(rate_limited_endpoint, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SORAFLOW_MAX_RETRY_AFTER_SECONDS", "2.5")
    sim, settings, spec = rate_limited_endpoint(retry_after=1)
    caplog.set_level(logging.WARNING, logger="soraflow.generation")
    with pytest.raises(RetryAfterTooLongError, match="has waited 2 s already"):
        submit_clip(spec, provider=provider_for(spec, settings), ledger=Ledger(tmp_path / "ledger.sqlite"), settings=settings, work_dir=tmp_path)
    waits = [r.getMessage() for r in caplog.records if "rate limited by the endpoint" in r.getMessage()]
    assert len(waits) == 2 and "waiting 1 s as it asks (retry-after)" in waits[0]
    assert sim.jobs() == []


# ----------------------------------------------------------------------------------------------
# Submit, poll and download through a gateway-like proxy in front of the simulator
# (tests/fixtures/gateway.py): every answer checked, a job in doubt never created again.
# ----------------------------------------------------------------------------------------------



class Clips:
    """A few clips planned against the gateway, with the provider, ledger and settings a run uses."""

    def __init__(self, sim, gateway, tmp_path: Path, shots: int = 1, **settings):
        self.sim, self.gateway, self.work = sim, gateway, tmp_path / "work"
        self.marker = uuid.uuid4().hex[:10]  # in every prompt: this test's jobs at the shared simulator
        self.settings = Settings(**settings)
        board = {"title": "Gateway", "size": "720x1280",
                 "shots": [{"id": f"s{i}", "seconds": 4, "visual": f"harbour {i} {self.marker}"} for i in range(shots)]}
        self.specs = load_plan(None, board, settings=self.settings).clips
        self.provider = provider_for(self.specs[0], self.settings)
        self.ledger = Ledger(self.settings.resolved_ledger_url)

    def paid(self) -> list[dict]:
        """Jobs the simulator accepted for these clips: what was paid."""
        return [j for j in self.sim.jobs() if self.marker in j["prompt"]]

    def submit(self, spec):
        return generation.submit_clip(spec, provider=self.provider, ledger=self.ledger, settings=self.settings, work_dir=self.work)

    def poll(self, spec, job_id, settings=None, **kw):
        return generation.poll_clip(spec, job_id, provider=self.provider, ledger=self.ledger, settings=settings or self.settings, **kw)

    def download(self, spec, job_id):
        return generation.download_clip(spec, job_id, provider=self.provider, ledger=self.ledger, work_dir=self.work)


@pytest.fixture
def clips(gateway, sim_env, tmp_path):
    return lambda shots=1, **settings: Clips(sim_env, gateway, tmp_path, shots, **settings)


def assert_in_doubt(err: ClipInDoubtError, spec, *words: str) -> None:
    ref = spec.clip_key[:16]
    text = str(err)
    assert f"soraflow jobs adopt {ref} JOB_ID" in text and f"soraflow jobs re-create {ref}" in text, text
    assert "nothing was created again" in text.lower(), text
    for word in words:
        assert word in text, text


def test_lost_answer_and_a_list_without_prompts_put_the_clip_in_doubt(clips):
    c = clips()
    c.gateway.behaviour.drop_prompt = True
    c.gateway.behaviour.lose_create_answers = 1
    [spec] = c.specs
    with pytest.raises(ClipInDoubtError) as caught:
        c.submit(spec)
    assert_in_doubt(caught.value, spec, "without its prompt", c.provider.where)
    assert len(c.paid()) == 1  # the lost answer's job exists: it was paid once, and only once
    assert c.ledger.get(spec.clip_key).state == "in_doubt"

    started = time.monotonic()
    with pytest.raises(ClipInDoubtError):  # a rerun neither waits out a claim nor creates
        c.submit(spec)
    assert time.monotonic() - started < 1.0
    assert len(c.paid()) == 1 and c.gateway.creates() == 1


@pytest.mark.parametrize("status, said", [(404, "HTTP 404"), (400, "LLM Provider NOT provided")])
def test_lost_answer_and_a_list_that_fails_put_the_clip_in_doubt_not_stuck(clips, status, said):
    c = clips(shots=2)
    c.gateway.behaviour.list_status = status
    c.gateway.behaviour.lose_create_answers = 1
    first, second = c.specs
    with pytest.raises(ClipInDoubtError) as caught:
        c.submit(first)
    assert_in_doubt(caught.value, first, said)
    assert "gone" not in str(caught.value)  # a list that is not served says nothing about jobs
    assert c.submit(second).job_id  # its sibling goes on
    with pytest.raises(ClipInDoubtError):
        c.submit(first)
    assert len(c.paid()) == 2


def test_a_list_that_ignores_order_and_after_proves_nothing(clips):
    c = clips()
    import openai

    client = openai.OpenAI(base_url=c.sim.base_url, api_key=c.sim.api_key)
    client.videos.create(model="sora-2", prompt=f"an older job {c.marker}", seconds="4", size="720x1280")
    time.sleep(1.05 - time.time() % 1)  # the next job is created in a later second: order shows
    c.gateway.behaviour.list_ignores_paging = True
    c.gateway.behaviour.lose_create_answers = 1
    [spec] = c.specs
    with pytest.raises(ClipInDoubtError) as caught:
        c.submit(spec)
    assert_in_doubt(caught.value, spec)
    assert "ignores `order=desc`" in str(caught.value) or "ignores `after`" in str(caught.value)
    assert len(c.paid()) == 2  # the older job and the lost answer's: never a third


def test_lost_answer_and_a_working_list_adopt_the_job_made(clips):
    c = clips()
    c.gateway.behaviour.lose_create_answers = 1
    [spec] = c.specs
    got = c.submit(spec)
    assert [j["id"] for j in c.paid()] == [got.job_id]
    assert c.ledger.get(spec.clip_key).state == "submitted"


def test_a_create_refused_before_acceptance_is_made_again_once_proven_absent(clips):
    c = clips(transient_retries=0)
    c.sim.set_faults("500=1.0")  # answered at once, nothing made; the list fails too: search later
    [spec] = c.specs
    with pytest.raises(TransientProviderError):
        c.submit(spec)
    assert c.paid() == [] and c.ledger.get(spec.clip_key).state == "creating"
    c.sim.set_faults("")
    got = c.submit(spec)  # the retry searches, the list proves nothing was made, it creates once
    assert [j["id"] for j in c.paid()] == [got.job_id]


def test_a_job_id_another_clip_holds_is_refused_and_named(clips):
    c = clips(shots=2)
    c.gateway.behaviour.same_job_id = True
    first, second = c.specs
    held = c.submit(first).job_id
    with pytest.raises(ClipInDoubtError) as caught:
        c.submit(second)
    assert_in_doubt(caught.value, second, f"answered its create with job {held}, which clip s0 part 1 already holds", c.provider.where)
    assert c.ledger.jobs_for(second.clip_key) == []


def test_a_job_of_another_size_is_refused_and_named(clips):
    c = clips()
    c.gateway.behaviour.report_size = "1280x720"
    [spec] = c.specs
    with pytest.raises(ClipInDoubtError) as caught:
        c.submit(spec)
    assert_in_doubt(caught.value, spec, "size 1280x720 (asked 720x1280)", c.provider.where)
    assert len(c.ledger.jobs_for(spec.clip_key)) == 1  # it is paid for, and recorded as such


def test_absurd_progress_is_clamped_and_named(clips, caplog):
    c = clips()
    [spec] = c.specs
    job_id = c.submit(spec).job_id
    c.gateway.behaviour.report_progress = -35019451
    seen = []
    with caplog.at_level(logging.WARNING, logger="soraflow.generation"):
        done = c.poll(spec, job_id, on_progress=lambda _s, job: seen.append(job.progress))
    assert done.status == "completed"
    assert seen and all(0 <= p <= 100 for p in seen)
    warned = [r.getMessage() for r in caplog.records if "-35019451" in r.getMessage()]
    assert len(warned) == 1 and c.provider.where in warned[0] and "s0" in warned[0]


def test_an_mp4_served_as_thumbnail_is_not_kept_as_one_nor_asked_for_again(clips, caplog):
    c = clips(shots=2)
    c.gateway.behaviour.ignore_variant = True
    jobs = [c.submit(spec).job_id for spec in c.specs]
    for spec, job_id in zip(c.specs, jobs):
        c.poll(spec, job_id)
    with caplog.at_level(logging.WARNING, logger="soraflow.generation"):
        got = [c.download(spec, job_id) for spec, job_id in zip(c.specs, jobs)]
    assert all(g.thumbnail is None for g in got) and not list(c.work.rglob("*.webp"))
    [warning] = [r.getMessage() for r in caplog.records if "thumbnail" in r.getMessage()]
    assert "video/mp4" in warning and c.provider.where in warning and "s0" in warning
    assert c.gateway.requests["GET /v1/videos/{id}/content"] == 3  # two videos, one thumbnail asked once


def test_content_that_is_not_a_video_is_refused_and_named(clips):
    c = clips()
    [spec] = c.specs
    job_id = c.submit(spec).job_id
    c.poll(spec, job_id)
    c.gateway.behaviour.content_type = "text/html"
    with pytest.raises(UntrustedAnswerError) as caught:
        c.download(spec, job_id)
    assert "text/html" in str(caught.value) and c.provider.where in str(caught.value) and "clip s0" in str(caught.value)
    assert not list(c.work.rglob("*.mp4"))


def test_rewritten_ids_work_and_a_rerun_sends_no_create(clips):
    c = clips()
    c.gateway.behaviour.rewrite_ids = True
    c.gateway.behaviour.drop_prompt = True
    [spec] = c.specs
    job_id = c.submit(spec).job_id
    assert job_id.startswith("video_") and job_id not in {j["id"] for j in c.paid()}
    assert c.submit(spec).job_id == job_id  # the next run resumes the gateway's id
    c.poll(spec, job_id)
    assert c.download(spec, job_id).duration > 3.5
    assert c.gateway.creates() == 1 and len(c.paid()) == 1


def test_a_clip_past_its_deadline_is_polled_again_on_the_next_run(clips, monkeypatch):
    c = clips(clip_deadline_seconds=2)
    monkeypatch.setattr(c.sim.config, "latency", 3.0)  # the job outlives one deadline, not two
    [spec] = c.specs
    job_id = c.submit(spec).job_id
    with pytest.raises(ClipTimeoutError, match="a rerun polls it again"):
        c.poll(spec, job_id)
    assert c.ledger.get(spec.clip_key).state == "submitted"
    for job in c.sim.state.jobs.all():  # the simulator's ffmpeg render done: on a loaded machine it
        job.render.result(timeout=120)  # can outlast the job's 3 s, and the second deadline with it
    # The next run, with the same deadline: the job is paid for, so it is polled to the end.
    assert c.poll(spec, job_id).status == "completed"
    assert len(c.paid()) == 1


def test_a_claim_taken_over_while_waiting_to_create_is_never_created(sim_env, lighthouse, tmp_path):
    """While a run waits for its rate-limit slot, its lease runs out and a worker on another host
    takes the clip over and creates it: the first run must poll that job, not create its own."""
    settings = Settings()
    spec = load_plan(str(lighthouse), None, settings=settings).clips[0]
    ledger = Ledger(tmp_path / "ledger.sqlite", lease_seconds=0.0)  # every lease has already run out
    claim = dict(clip_key=spec.clip_key, shot_id=spec.shot_id, part=spec.part, model=spec.model, size=spec.size,
                 seconds=spec.seconds, prompt_sha256=spec.prompt_sha256)  # fmt: skip

    def another_host_takes_over() -> None:
        # The first run never sent its create (it is still waiting): the claim is simply taken.
        assert ledger.claim_create(**claim, owner="other-host:1:1").kind is ClaimKind.CLAIMED
        ledger.record_job(spec.clip_key, VideoJob(id="video_other_host", status="queued"))

    created_before = len(sim_env.jobs())
    got = submit_clip(spec, provider=provider_for(spec, settings), ledger=ledger, settings=settings,
                      work_dir=tmp_path, before_create=another_host_takes_over)  # fmt: skip
    assert (got.job_id, got.created_here) == ("video_other_host", False)
    assert len(sim_env.jobs()) == created_before  # nothing sent to the provider
    assert ledger.jobs_for(spec.clip_key) == ["video_other_host"]


# --- waiting on webhooks: a delivery in the ledger, confirmed by one status call ----------------

WEBHOOK_MODELS = """
endpoints:
  openai: {webhooks: {url: 'http://127.0.0.1:9/webhooks/openai', secret_env: TEST_WEBHOOK_SECRET}}
models:
  sora-2: {render_seconds_per_second: 0.25}
"""


@pytest.fixture
def webhook_world(monkeypatch, tmp_path):
    """A simulator delivering its project's webhooks to a receiver on the clips' ledger."""
    from soraflow.ledger import Deliveries, DeliveryWatch
    from soraflow.models import load_catalog
    from soraflow.simulator.webhooks import new_secret
    from soraflow.webhooks import Receiver, receiver_endpoints

    secret = new_secret()
    (tmp_path / "models.yaml").write_text(WEBHOOK_MODELS)
    with Simulator(SimulatorConfig(latency=1.0, cache_dir=str(tmp_path / "renders"))) as sim:
        for name, value in {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": sim.api_key, "TEST_WEBHOOK_SECRET": secret,
                            "SORAFLOW_MODELS": str(tmp_path / "models.yaml"), "SORAFLOW_STATE_DIR": str(tmp_path / "state")}.items():
            monkeypatch.setenv(name, value)
        settings = Settings(_env_file=None, webhook_safety_poll_seconds=1.5)
        ledger = Ledger.from_settings(settings)
        endpoints = receiver_endpoints(load_catalog(settings.models), settings.environment)
        with Receiver(endpoints, Deliveries(ledger)) as receiver:
            sim.state.webhooks.configure_project(receiver.delivery_url("openai"), secret)
            yield sim, settings, ledger, DeliveryWatch(Deliveries(ledger))


def _waited(sim, settings, ledger, watch, shots: int) -> list[tuple[str, float]]:
    """Create ``shots`` clips and wait for each on its own thread; (job id, seen done - finished) each."""
    import threading

    plan = load_plan(None, {"title": "t", "shots": [{"id": f"s{i}", "seconds": 4, "visual": f"v {i}"} for i in range(shots)]},
                     settings=settings)
    assert all(c.route.waits_on_webhooks for c in plan.clips)
    provider = provider_for(plan.clips[0], settings)
    seen: dict[str, float] = {}

    def one(spec):
        created = submit_clip(spec, provider=provider, ledger=ledger, settings=settings, work_dir=Path(settings.state_dir))
        generation.poll_clip(spec, created.job_id, provider=provider, ledger=ledger, settings=settings, deliveries=watch)
        seen[created.job_id] = time.time()

    threads = [threading.Thread(target=one, args=(spec,)) for spec in plan.clips]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    jobs = {j["id"]: j for j in __import__("httpx").get(f"{sim.url}/_sim/jobs").json()["data"]}
    assert set(seen) == set(jobs) and all(ledger.get(c.clip_key).state == "completed" for c in plan.clips)
    return [(job_id, jobs[job_id]["status_calls"], at - jobs[job_id]["finished_at"]) for job_id, at in seen.items()]


def test_a_clip_with_webhooks_is_seen_done_by_its_delivery_with_one_status_call(webhook_world):
    sim, settings, ledger, watch = webhook_world
    settings = settings.model_copy(update={"webhook_safety_poll_seconds": 60.0})  # no safety poll comes in this test's time
    for job_id, calls, late in _waited(sim, settings, ledger, watch, shots=3):
        assert calls == 1, f"{job_id}: {calls} status calls"
        assert late < 10, f"{job_id} seen {late:.2f} s after it finished"


def test_lost_deliveries_are_caught_by_the_safety_poll(webhook_world):
    sim, settings, ledger, watch = webhook_world
    sim.state.webhooks.configure_faults("drop=1", None)
    results = _waited(sim, settings, ledger, watch, shots=2)
    assert all(calls >= 1 for _, calls, _ in results)
    assert [d["fault"] for d in sim.state.webhooks.records()] == ["drop", "drop"]
    from soraflow.ledger import Deliveries

    assert Deliveries(ledger).all() == []  # nothing was delivered: only the provider's answer ended them


def test_a_stop_request_ends_a_wait_for_a_delivery_at_once_and_keeps_the_job(webhook_world):
    """SIGTERM's stop request reaches a clip waiting on webhooks too: no delivery comes (all
    dropped) and the safety poll is a minute away, yet the wait ends within a second of the
    request, saying the job is paid for and recorded, and the job stays in the ledger."""
    import threading

    from soraflow import stop

    sim, settings, ledger, watch = webhook_world
    sim.state.webhooks.configure_faults("drop=1", None)
    settings = settings.model_copy(update={"webhook_safety_poll_seconds": 60.0})
    plan = load_plan(None, {"title": "t", "shots": [{"id": "s", "seconds": 4, "visual": f"stop {uuid.uuid4().hex}"}]}, settings=settings)
    [spec] = plan.clips
    provider = provider_for(spec, settings)
    created = submit_clip(spec, provider=provider, ledger=ledger, settings=settings, work_dir=Path(settings.state_dir))
    asked = threading.Timer(1.0, stop.request, args=("terminated",))
    asked.start()
    try:
        with pytest.raises(stop.Stopped, match="paid for and recorded"):
            generation.poll_clip(spec, created.job_id, provider=provider, ledger=ledger, settings=settings, deliveries=watch)
    finally:
        asked.join()
        stop.clear()
    assert ledger.get(spec.clip_key).job_id == created.job_id
    assert watch._waiters == {}  # the waiter is gone: nothing left listening for it
