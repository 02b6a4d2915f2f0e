"""Which limits a clip holds, and the wall time a plan is expected to take under them."""

from __future__ import annotations

import pytest

from soraflow.limits import ASSEMBLY_SECONDS, ASSEMBLY_SECONDS_PER_CLIP, CLIP_OVERHEAD_SECONDS, FETCH_SECONDS, clip_limits, wall_time
from soraflow.models import builtin_catalog, load_catalog, route_endpoints
from soraflow.plan import plan_storyboard
from soraflow.settings import Settings
from soraflow.storyboard import parse_storyboard

CATALOG = builtin_catalog()


def plan_of(shots: int, *, seconds: int = 4, latency: float | None = 2.0, catalog=CATALOG, **shot):
    board = {"title": "T", "size": "1280x720", "shots": [{"id": f"s{i:03d}", "seconds": seconds, "visual": f"shot {i}", **shot}
                                                         for i in range(shots)]}  # fmt: skip
    routing = route_endpoints(catalog, {})  # no credentials: every endpoint simulated
    return plan_storyboard(parse_storyboard(board, catalog=catalog), catalog=catalog, routing=routing, simulator_latency=latency)


def assembly(clips: int) -> float:
    return ASSEMBLY_SECONDS + ASSEMBLY_SECONDS_PER_CLIP * clips


def test_on_the_simulator_a_clip_takes_its_latency_and_paces_the_first_polls():
    plan = plan_of(2, latency=2.0)
    assert {c.expected_render_seconds for c in plan.clips} == {2.0}
    real = plan_of(2, latency=None)  # a paid endpoint: the profile's pace (sora-2: 8 s a generated second)
    assert {c.expected_render_seconds for c in real.clips} == {32.0}


def test_500_independent_clips_at_4_in_flight_are_125_waves_when_the_rate_allows_it():
    plan = plan_of(500)
    settings = Settings(requests_per_minute=100000)
    catalog = load_catalog(text="models:\n  sora-2: {requests_per_minute: 100000}\n")
    wall = wall_time(plan, catalog, settings)
    hold = 2.0 + CLIP_OVERHEAD_SECONDS
    assert wall.in_flight == 4 and wall.clips == 500
    assert wall.seconds == pytest.approx(125 * hold + FETCH_SECONDS + assembly(500))
    assert "500 clip(s), at most 4 at a time" in wall.describe()


def test_the_default_rate_bounds_500_clips_a_minute_at_once_then_one_a_second():
    """60 creates a minute (the limit 'all' and sora-2's own): 60 at once, then one a second; 4 in
    flight for 2.5 s each could go faster (1.6 a second), so the rate decides."""
    wall = wall_time(plan_of(500), CATALOG, Settings())
    last_create = (500 - 60) * 1.0
    assert wall.seconds == pytest.approx(last_create + 2.0 + CLIP_OVERHEAD_SECONDS + FETCH_SECONDS + assembly(500), abs=1.0)
    said = wall.describe()
    assert "at most 4 at a time and 60 creates a minute" in said and "SORAFLOW_SIMULATOR_LATENCY" in said
    assert "'all' 4, 60/min; 'model:openai/sora-2' 4, 60/min" in said


def test_a_rerun_counts_only_the_clips_it_makes():
    plan = plan_of(12)
    assert wall_time(plan, CATALOG, Settings(), clips=[]).seconds == 0
    three = wall_time(plan, CATALOG, Settings(), clips=plan.clips[:3])
    assert three.clips == 3 and three.seconds == pytest.approx(2.0 + CLIP_OVERHEAD_SECONDS + FETCH_SECONDS + assembly(12))


def test_chained_parts_wait_for_their_source_and_independent_shots_overlap_them():
    chained = plan_of(2, seconds=16, continuity="last_frame")  # two shots, each 2 parts of 8 s in sequence
    assert [c.follows is not None for c in chained.clips] == [False, True, False, True]
    wall = wall_time(chained, CATALOG, Settings())
    step = 2.0 + CLIP_OVERHEAD_SECONDS + FETCH_SECONDS
    assert wall.seconds == pytest.approx(2 * step + assembly(4))  # the two shots' chains side by side
    assert chained.longest_chain_seconds == 4.0


def test_the_tightest_limit_decides():
    plan = plan_of(8)
    settings = Settings(max_concurrent_submissions=2, requests_per_minute=100000)
    catalog = load_catalog(text="models:\n  sora-2: {requests_per_minute: 100000}\n")
    assert [l.capacity for l in clip_limits(plan.clips[0], catalog, settings)] == [2, 4]
    assert wall_time(plan, catalog, settings).seconds == pytest.approx(4 * (2.0 + CLIP_OVERHEAD_SECONDS) + FETCH_SECONDS + assembly(8))
    one = load_catalog(text="models:\n  sora-2: {concurrency: 1, requests_per_minute: 100000}\n")
    assert wall_time(plan, one, settings).in_flight == 1
    assert wall_time(plan, one, settings).seconds == pytest.approx(8 * (2.0 + CLIP_OVERHEAD_SECONDS) + FETCH_SECONDS + assembly(8))
