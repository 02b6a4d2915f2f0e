"""Parsing fault specs, and the seeded stream that decides faults."""

from __future__ import annotations

import pytest

from soraflow.simulator import FaultSpecError, SimulatorConfig
from soraflow.simulator.faults import REQUEST_KINDS, FaultInjector, FaultPlan


def test_the_design_spec_parses():
    plan = FaultPlan.parse("429=0.1, 500=0.05,502=0.01,503=0.01,reset=0.05,stall=0.02,moderation=0.1,truncate=0.05")
    assert plan.probabilities == {"429": 0.1, "500": 0.05, "502": 0.01, "503": 0.01, "reset": 0.05, "stall": 0.02,
                                  "moderation": 0.1, "truncate": 0.05}
    assert FaultPlan.parse(str(plan)) == plan
    assert FaultPlan.parse("").probabilities == {} and str(FaultPlan.parse("")) == ""


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("404=0.1", "unknown kind '404'"),
        ("429", "is not KIND=PROBABILITY"),
        ("429=lots", "'lots' is not a probability"),
        ("reset=1.5", "between 0 and 1"),
        ("429=0.1,429=0.2", "given twice"),
        ("429=0.6,500=0.6", "add up to 1.2"),
    ],
)
def test_bad_entries_are_named_with_the_allowed_kinds(spec, fragment):
    with pytest.raises(FaultSpecError) as err:
        FaultPlan.parse(spec)
    assert fragment in str(err.value)
    if "unknown kind" in fragment:
        assert "429, 500, 502, 503, reset, stall, truncate, moderation" in str(err.value)


def test_config_refuses_a_bad_spec():
    with pytest.raises(ValueError, match="unknown kind 'teapot'"):
        SimulatorConfig(faults="teapot=0.5")
    with pytest.raises(ValueError, match="not an ISO date"):
        SimulatorConfig(model_shutdown_dates={"sora-2": "soon"})
    with pytest.raises(ValueError, match="unknown model 'sora-9'"):
        SimulatorConfig(model_shutdown_dates={"sora-9": "2027-01-01"})


def test_each_kind_owns_its_slice_of_the_draw():
    plan = FaultPlan.parse("429=0.1,500=0.2,reset=0.3")
    assert [plan.request_fault(x) for x in (0.0, 0.099, 0.101, 0.299, 0.301, 0.599, 0.601, 0.99)] == [
        "429", "429", "500", "500", "reset", "reset", None, None,
    ]
    assert REQUEST_KINDS.index("429") < REQUEST_KINDS.index("truncate")


def test_same_seed_same_decisions_and_truncate_only_on_content():
    def decisions(seed):
        injector = FaultInjector("429=0.2,500=0.2,truncate=0.3,moderation=0.5", seed)
        return [(injector.for_request(is_content=i % 2 == 0), injector.for_job()) for i in range(200)]

    first = decisions(5)
    assert first == decisions(5) != decisions(6)
    assert all(kind != "truncate" for i, (kind, _) in enumerate(first) if i % 2)
    assert {kind for kind, _ in first} == {None, "429", "500", "truncate"}


def test_reseed_restarts_the_stream_and_a_bad_spec_keeps_the_old_one():
    injector = FaultInjector("500=0.5", 9)
    first = [injector.for_request(is_content=False) for _ in range(50)]
    injector.reseed()
    assert [injector.for_request(is_content=False) for _ in range(50)] == first
    with pytest.raises(FaultSpecError):
        injector.configure("500=2", 9)
    assert str(injector.plan) == "500=0.5"
