"""The adaptive poll clock, simulated without sleeping."""

from soraflow.generation import PollClock


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
