"""Generation: the adaptive poll clock (simulated without sleeping), and rate limits that are
too long to wait for (against the simulator over HTTP)."""

import logging
import time

import pytest

from soraflow.errors import RetryAfterTooLongError
from soraflow.generation import PollClock, submit_clip
from soraflow.ledger import Ledger
from soraflow.plan import plan_storyboard
from soraflow.providers import OpenAIVideosProvider
from soraflow.settings import Settings
from soraflow.simulator import Simulator, SimulatorConfig
from soraflow.storyboard import parse_storyboard


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
        spec = plan_storyboard(parse_storyboard({"title": "t", "shots": [{"id": "s00", "seconds": 4, "visual": "v"}]}), endpoint="sim").clips[0]
        return sim, settings, spec

    started: list[Simulator] = []
    yield start
    for sim in started:
        sim.stop()


def test_a_retry_after_beyond_the_setting_fails_the_clip_at_once_with_the_figure(rate_limited_endpoint, tmp_path):
    sim, settings, spec = rate_limited_endpoint(retry_after=900)
    began = time.monotonic()
    with pytest.raises(RetryAfterTooLongError) as info:
        submit_clip(spec, provider=OpenAIVideosProvider(settings), ledger=Ledger(tmp_path / "ledger.sqlite"), settings=settings, work_dir=tmp_path)
    assert time.monotonic() - began < 5
    assert "asks to wait 900 s" in str(info.value) and "SORAFLOW_MAX_RETRY_AFTER_SECONDS=120" in str(info.value)
    assert str(info.value).count("s00") == 1  # the shot is named once
    assert sim.jobs() == []


def test_retry_afters_that_add_up_beyond_the_setting_fail_after_saying_each_wait(rate_limited_endpoint, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SORAFLOW_MAX_RETRY_AFTER_SECONDS", "2.5")
    sim, settings, spec = rate_limited_endpoint(retry_after=1)
    caplog.set_level(logging.WARNING, logger="soraflow.generation")
    with pytest.raises(RetryAfterTooLongError, match="has waited 2 s already"):
        submit_clip(spec, provider=OpenAIVideosProvider(settings), ledger=Ledger(tmp_path / "ledger.sqlite"), settings=settings, work_dir=tmp_path)
    waits = [r.getMessage() for r in caplog.records if "rate limited by the endpoint" in r.getMessage()]
    assert len(waits) == 2 and "waiting 1 s as it asks (retry-after)" in waits[0]
    assert sim.jobs() == []
