"""A decision is checked against the review before any run is resumed: each problem names its field.

The run is reached through ``RunControl``, the seam the CLI fills with Prefect's
``resume_flow_run``; here it records what it is asked (the browser test resumes a real paused
flow run through the real one)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from soraflow.review import ReviewDecision, TakeReview
from soraflow.screening import ResumeRefused, RunControl

RUN_ID = "0b7a1c5e-29c4-4bd4-8d5e-5d6c1b0e8f21"


class Run:
    """A paused run as the page sees it: its state, and every resume it was asked for."""

    def __init__(self, state: str = "PAUSED", refuse: ResumeRefused | None = None):
        self.state = state
        self.refuse = refuse
        self.resumed: list[tuple[str, dict]] = []

    def control(self) -> RunControl:
        def resume(run_id: str, run_input: dict) -> None:
            if self.refuse:
                raise self.refuse
            self.resumed.append((run_id, run_input))

        return RunControl(resume=resume, describe=lambda run_id: {"type": self.state, "name": self.state.title()})


def with_a_refused_retake(harbour):
    def state_of(out_dir):
        state = harbour.review(out_dir, flow_run_id=RUN_ID, round=2)
        refused = TakeReview(
            take=3, clip_key="f" * 64, profile="sora-2", model="sora-2", endpoint="simulator", seconds=2,
            price_usd=Decimal("0.40"), state="refused", error="refused by the spend cap: daily $1.00 would be exceeded; nothing was paid",
        )
        shots = [s.model_copy(update={"takes": [*s.takes, refused]}) if s.shot == "c" else s for s in state.shots]
        return state.model_copy(update={"shots": shots})

    return state_of


def post(page, body, **headers):
    return httpx.post(
        f"{page.base_url}/api/decision", content=body if isinstance(body, (bytes, str)) else None,
        json=None if isinstance(body, (bytes, str)) else body,
        headers={"Authorization": f"Bearer {page.token}", "Content-Type": "application/json", **headers}, timeout=30,
    )


@pytest.mark.parametrize(
    ("decision", "field", "says"),
    [
        ({"shots": [{"shot": "b", "keep": 2}, {"shot": "zz", "keep": 1}]}, "shots[1].shot", "'zz' is not a shot of this review; its shots: a, b, c"),
        ({"shots": [{"shot": "a", "keep": 1}, {"shot": "b", "keep": 5}]}, "shots[1].keep", "shot 'b' has no take 5; its takes: 1, 2"),
        ({"shots": [{"shot": "c", "keep": 3}]}, "shots[0].keep", "take 3 of shot 'c' is not stored (refused): only a stored take can be kept"),
        ({"shots": [{"shot": "b", "keep": 2}, {"shot": "b", "keep": 1}]}, "shots[1].shot", "shot 'b' is decided twice (shots[0] too)"),
        ({"shots": [{"shot": "a"}]}, "shots[0]", "keep a take, or ask for a retake"),
        ({"shots": [{"shot": "b", "keep": 0}]}, "shots[0].keep", "0 is not allowed"),
        ({"shots": [{"shot": "b", "retake": {"prompt_change": "red", "colour": "red"}}]}, "shots[0].retake.colour", "unknown key; allowed keys: prompt_change, seed"),
        ({"shots": [{"shot": "b", "retake": {"seed": -1}}]}, "shots[0].retake.seed", "-1 is not allowed"),
        ({"approve": "perhaps"}, "approve", "'perhaps' is not allowed"),
        ({"shots": [{"shot": "", "keep": 1}]}, "shots[0].shot", "is not allowed"),
        ({"shots": [{"shot": "b", "keep": 2}], "rewind": True}, "rewind", "unknown key; allowed keys: approve, shots"),
        ("{not json", "", "the body is not JSON"),
    ],
)
def test_a_decision_that_does_not_fit_the_review_is_a_422_naming_the_field(harbour, review_page, decision, field, says):
    run = Run()
    with review_page(with_a_refused_retake(harbour), runs=run.control()) as page:
        answer = post(page, decision)
        assert answer.status_code == 422, answer.text
        problems = answer.json()["problems"]
        assert [p["field"] for p in problems] == [field], problems
        assert says in problems[0]["message"]
    assert run.resumed == []  # refused before anything was resumed


def test_a_decision_that_fits_resumes_the_run_with_it(harbour, review_page):
    run = Run()
    decision = {"approve": False, "shots": [{"shot": "b", "keep": 2}, {"shot": "c", "retake": {"prompt_change": "the boat is red", "seed": 7}}]}
    with review_page(with_a_refused_retake(harbour), runs=run.control()) as page:
        state = httpx.get(f"{page.base_url}/api/state").json()
        assert state["can_decide"] and state["run"] == {"type": "PAUSED", "name": "Paused"}
        refused = state["review"]["shots"][2]["takes"][2]
        assert refused["state"] == "refused" and "spend cap" in refused["error"]  # the page shows it
        stale = post(page, decision, **{"X-Review-Round": "1"})
        assert stale.status_code == 409 and "round 1, but the run is at round 2" in stale.json()["error"]
        assert run.resumed == []
        answer = post(page, decision, **{"X-Review-Round": "2"})
        assert answer.status_code == 202, answer.text
        assert answer.json()["resumed"] == RUN_ID
    # resumed with the decision as the contract says: ReviewDecision.model_dump(mode="json")
    assert run.resumed == [(RUN_ID, ReviewDecision.model_validate(decision).model_dump(mode="json"))]
    assert run.resumed[0][1]["shots"][0] == {"shot": "b", "keep": 2, "retake": None}


def test_a_run_that_is_not_waiting_is_not_resumed(harbour, review_page):
    run = Run(state="RUNNING")
    with review_page(lambda out: harbour.review(out, flow_run_id=RUN_ID), runs=run.control()) as page:
        state = httpx.get(f"{page.base_url}/api/state").json()
        assert not state["can_decide"] and state["why_not"] == "the run is Running: new takes appear here as they are stored"
        answer = post(page, {"shots": [{"shot": "b", "keep": 2}]})
        assert answer.status_code == 409 and "the run is Running" in answer.json()["error"]
    assert run.resumed == []


def test_a_finished_run_takes_no_more_decisions(harbour, review_page):
    run = Run(state="COMPLETED")
    with review_page(lambda out: harbour.review(out, flow_run_id=RUN_ID), runs=run.control()) as page:
        state = httpx.get(f"{page.base_url}/api/state").json()
        assert not state["can_decide"] and state["why_not"] == "the run is Completed: it takes no more decisions"
        assert post(page, {"approve": True}).status_code == 409
    assert run.resumed == []


def test_what_the_run_refuses_is_said(harbour, review_page):
    run = Run(refuse=ResumeRefused("flow run x refused the decision: Cannot resume this run: Reason: invalid input", 422))
    with review_page(lambda out: harbour.review(out, flow_run_id=RUN_ID), runs=run.control()) as page:
        answer = post(page, {"shots": [{"shot": "b", "keep": 2}]})
        assert answer.status_code == 422 and "refused the decision" in answer.json()["error"]


def test_an_oversized_decision_or_none_at_all(harbour, review_page, tmp_path):
    run = Run()
    with review_page(lambda out: harbour.review(out, flow_run_id=RUN_ID), runs=run.control()) as page:
        assert post(page, b"[" + b" " * (300 * 1024) + b"]").status_code == 413
        (page.folder.state_path).unlink()
        missing = post(page, {"shots": [{"shot": "b", "keep": 2}]})
        assert missing.status_code == 409 and "no review in" in missing.json()["error"]
        state = httpx.get(f"{page.base_url}/api/state").json()
        assert state["review"] is None and "no review in" in state["error"]
        page.folder.state_path.write_text('{"title": "half writ')
        assert "is not a review state" in httpx.get(f"{page.base_url}/api/state").json()["error"]
    assert run.resumed == []
