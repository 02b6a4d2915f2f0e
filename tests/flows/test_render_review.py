"""Takes, the review step and retakes, end to end: render-storyboard run ad hoc (it pauses in its
own process), decisions resumed through the Prefect API, the simulator's jobs counted and the
film checked by its pixels."""

from __future__ import annotations

import json
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import ffmpeg
import pytest
import yaml

from soraflow.flows.render import RenderRequest, render_storyboard
from soraflow.ledger import Ledger, Spend
from soraflow.plan import load_plan
from soraflow.review import REVIEW_STATE_NAME, ReviewState
from soraflow.settings import Settings

from ..simulator.media import band_colour, close_colours, corner_colour

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


def storyboard(tmp_path: Path, shots: list[str], tag: str | None = None, **extra) -> Path:
    tag = tag or uuid.uuid4().hex[:8]  # prompts of their own: nothing comes from another test's ledger or cache
    data = {"title": f"Harbour {tag}", "shots": [{"id": s, "seconds": 4, "visual": f"The harbour, view {s} ({tag})"} for s in shots], **extra}
    path = tmp_path / "storyboard.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Run:
    """render-storyboard in a thread of this process, as the CLI runs it (it pauses there)."""

    def __init__(self, request: RenderRequest):
        self.state = None
        self.thread = threading.Thread(target=self._run, args=(request,), daemon=True)
        self.thread.start()

    def _run(self, request):
        self.state = render_storyboard(request, return_state=True)

    def finished(self, timeout: float = 180):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the flow run did not finish"
        return self.state


def paused_review(out: Path, round: int, run: Run, timeout: float = 180) -> ReviewState:
    """The review.json of ``round``, once its flow run is paused for the decision."""
    from prefect import get_client

    deadline = time.monotonic() + timeout
    path = out / ".work" / REVIEW_STATE_NAME
    while True:
        assert time.monotonic() < deadline, f"no paused review {round} after {timeout} s"
        assert run.thread.is_alive(), f"the flow run ended: {run.state}"
        if path.exists():
            state = ReviewState.model_validate_json(path.read_text())
            if state.round == round:
                with get_client(sync_client=True) as client:
                    if client.read_flow_run(uuid.UUID(state.flow_run_id)).state.is_paused():
                        return state
        time.sleep(0.3)


def resume(state: ReviewState, run_input: dict) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(uuid.UUID(state.flow_run_id), run_input=run_input)


def look(path: Path, seconds: float) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """What tells a take apart in the simulator's pictures: its band and its background."""
    return band_colour(path, seconds), corner_colour(path, seconds)


def same_look(a, b) -> bool:
    return all(close_colours(x, y) for x, y in zip(a, b))


def far_apart(a, b) -> bool:
    """Two looks no encoding brings together: band or background 20 or more apart in a channel."""
    return any(max(abs(p - q) for p, q in zip(x, y)) >= 20 for x, y in zip(a, b))


def review_artifact(state: ReviewState) -> str:
    """The newest review artifact of the storyboard, as text (markdown's escapes taken out)."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    key = f"soraflow-review-{state.title.lower().replace(' ', '-')}"
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=1
        )
    return artifact.data.replace("\\", "")


def test_two_takes_a_review_a_keep_and_a_retake_make_the_film_and_a_rerun_pays_nothing(sim_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SORAFLOW_REVIEW_POLL_SECONDS", "1")
    # Prompts of this test's own, and always the same: the simulator colours a take without a band
    # by its text, so a random tag could give c's plain take and c's retake colours too close to
    # tell apart by pixels (about 1 run in 25 with random tags; these are far apart, checked below)
    path = storyboard(tmp_path, ["a", "b", "c"], tag="review-keep-retake", takes=2, review=True)
    out = tmp_path / "out"

    # the estimate: every take is a clip, so 2 x the single-take price
    settings = Settings()
    one_take = load_plan(None, {**yaml.safe_load(path.read_text()), "takes": 1}, settings=settings)
    plan = load_plan(str(path), None, settings=settings)
    assert len(plan.clips) == 6 and plan.total_usd == 2 * one_take.total_usd == Decimal("2.40")
    assert one_take.clips[0].clip_key == plan.clips[0].clip_key  # take 1 is the clip a single take makes

    jobs = len(sim_env.jobs())
    run = Run(RenderRequest(storyboard_path=str(path), out_dir=str(out)))
    first = paused_review(out, 1, run)
    assert len(sim_env.jobs()) - jobs == 6
    assert [(s.shot, [t.take for t in s.takes], s.chosen) for s in first.shots] == [("a", [1, 2], 1), ("b", [1, 2], 1), ("c", [1, 2], 1)]
    assert all(t.state == "stored" and t.storage_uri and t.job_id for s in first.shots for t in s.takes)
    assert first.spent_usd == Decimal("2.40") and first.out_dir == str(out.resolve())
    assert abs(float(ffmpeg.probe(first.film_uri.removeprefix("file://"))["format"]["duration"]) - 12) <= 0.2
    page = review_artifact(first)
    assert f"soraflow review {out.resolve()}" in page and "Spent so far: $2.40" in page

    # shot b: keep take 2; shot c: a retake with a prompt change. Exactly one new job.
    resume(first, {"shots": [{"shot": "b", "keep": 2}, {"shot": "c", "retake": {"prompt_change": "the boat is red"}}]})
    second = paused_review(out, 2, run)
    assert len(sim_env.jobs()) - jobs == 7
    newest = sim_env.jobs()[-1]
    assert newest["prompt"].count("the boat is red") == 1 and "view c" in newest["prompt"]
    shots = {s.shot: s for s in second.shots}
    assert (shots["a"].chosen, shots["b"].chosen, shots["c"].chosen) == (1, 2, 3)
    assert [(t.take, t.state) for t in shots["c"].takes] == [(1, "stored"), (2, "stored"), (3, "stored")]
    assert second.spent_usd == Decimal("2.80")
    # the cut the review page plays: the chosen takes, c's retake among them
    cut = Path(second.film_uri.removeprefix("file://"))
    retake = next((out / ".work" / "clips").glob("c-p1-t3-*.mp4"))
    assert cut.parent == out / ".work" and same_look(look(cut, 9.5), look(retake, 1.5))

    resume(second, {"approve": True})
    state = run.finished()
    assert state.is_completed(), state.message
    assert len(sim_env.jobs()) - jobs == 7

    # the film holds a's take 1, b's take 2 and c's retake, told apart by their pixels
    manifest = json.loads((out / "manifest.json").read_text())
    clips = {(c["shot_id"], c["take"]): c for c in manifest["clips"]}
    assert sorted(clips) == [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 1), ("c", 2), ("c", 3)]
    assert {k for k, c in clips.items() if c["chosen"]} == {("a", 1), ("b", 2), ("c", 3)}
    assert clips[("c", 3)]["retake"] is True and all(c["price_usd"] == "0.40" for c in clips.values())
    assert manifest["totals"]["billed_usd"] == "2.80" and manifest["totals"]["film_usd"] == "1.20" and manifest["totals"]["takes"] == 7
    local = {k: next((out / ".work" / "clips").glob(f"{k[0]}-p1-{'' if k[1] == 1 else f't{k[1]}-'}[0-9a-f]*.mp4")) for k in clips}
    film = out / "film.mp4"
    for shot, start in (("a", 0), ("b", 4), ("c", 8)):
        chosen = next(k for k in clips if k[0] == shot and clips[k]["chosen"])
        in_film = look(film, start + 1.5)
        assert same_look(in_film, look(local[chosen], 1.5)), f"shot {shot}: the film does not show take {chosen[1]}"
        for other in (k for k in clips if k[0] == shot and k != chosen):
            assert far_apart(in_film, look(local[other], 1.5)), f"shot {shot}: take {other[1]} looks like the chosen one"

    # a rerun: the approved cut is in the ledger, so no review, no job, not stitched again
    again = render_storyboard(RenderRequest(storyboard_path=str(path), out_dir=str(out)), return_state=True)
    assert again.is_completed(), again.message
    assert len(sim_env.jobs()) - jobs == 7
    assert json.loads((out / "manifest.json").read_text())["run"]["film_stitched"] is False


def test_a_retake_over_the_spend_cap_is_refused_and_a_decision_naming_an_unknown_shot_or_take_too(sim_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SORAFLOW_REVIEW_POLL_SECONDS", "1")
    monkeypatch.setenv("SORAFLOW_SPEND_CAP_DAY_USD", "0.50")  # the first take ($0.40) fits, a retake does not
    path = storyboard(tmp_path, ["a"])
    out = tmp_path / "out"
    jobs = len(sim_env.jobs())
    run = Run(RenderRequest(storyboard_path=str(path), out_dir=str(out), review=True))  # the run form's review
    first = paused_review(out, 1, run)
    assert len(sim_env.jobs()) - jobs == 1

    resume(first, {"shots": [{"shot": "zz", "keep": 1}, {"shot": "a", "keep": 4}]})
    second = paused_review(out, 2, run)
    page = review_artifact(second)
    assert "shots[0].shot: 'zz' is not a shot of" in page and "shots[1].keep: 4 is not a take of shot 'a'; its takes: 1" in page

    resume(second, {"shots": [{"shot": "a", "retake": {"prompt_change": "the boat is red"}}]})
    third = paused_review(out, 3, run)
    assert len(sim_env.jobs()) - jobs == 1  # nothing was created
    [shot] = third.shots
    assert shot.chosen == 1
    refused = shot.takes[-1]
    assert (refused.take, refused.state) == (2, "refused") and refused.job_id is None
    assert "daily spend cap of all endpoints, $0.50" in refused.error and "nothing was created" in refused.error
    assert "Retake 2 of shot 'a' refused" in review_artifact(third)
    ledger = Ledger(str(tmp_path / "state" / "ledger.sqlite"))
    assert [r["state"] for r in Spend(ledger).rows()] == ["paid"]  # no reservation was made for it

    resume(third, {"approve": True})
    state = run.finished()
    assert state.is_completed(), state.message
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(c["take"], c["chosen"]) for c in manifest["clips"]] == [(1, True)]
