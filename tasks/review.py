"""The review of takes: the state a review shows (OUT/.work/review.json and an artifact), and the
ledger writes of a decision (choices, retakes, the approved cut)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from prefect import get_run_logger, task

from soraflow import assembly, budget, choices, preflight
from soraflow.errors import BudgetExceededError
from soraflow.ledger import Reviews, Spend
from soraflow.plan import ClipSpec, Plan
from soraflow.review import REVIEW_STATE_NAME, ReviewDecision, ReviewState

from . import outbound, runtime
from .runtime import clean_errors
from .report import _key


def review_path(out_dir: str) -> Path:
    return Path(out_dir) / ".work" / REVIEW_STATE_NAME


@task(name="publish-review", cache_policy=runtime.NO_CACHE)
@clean_errors
def publish_review(
    plan: Plan, out_dir: str, storage_url: str, round: int, flow_run_id: str | None, how_to_open: str, notes: list[str],
    film_uri: str | None = None,
) -> tuple[ReviewState, str]:
    """Write OUT/.work/review.json (what the review page reads) and the review artifact: every
    shot, its takes, what is chosen and what was spent, and the cut of the chosen takes
    (``film_uri``). Returns the state and its markdown."""
    state = choices.review_state(
        plan, runtime.ledger(), out_dir=out_dir, storage_url=storage_url, flow_run_id=flow_run_id, round=round, film_uri=film_uri
    )
    path = review_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    assembly.write_json_atomic(path, state.model_dump(mode="json"))
    markdown = choices.review_markdown(state, how_to_open=how_to_open, notes=notes)
    outbound.markdown_artifact(markdown=markdown, key=_key(plan.title, "review"), description=f"Review {round} of {plan.title!r}")
    return state, markdown


@task(name="record-decision", cache_policy=runtime.NO_CACHE)
@clean_errors
def record_decision(decision: ReviewDecision, plan: Plan, decision_ref: str) -> choices.Recorded:
    """The decision's kept takes and retakes, in the ledger (once per decision, whatever the replays)."""
    return choices.record_decision(decision, plan, Reviews(runtime.ledger()), decision_ref=decision_ref, actor=_actor())


@task(name="check-retakes", cache_policy=runtime.NO_CACHE)
@clean_errors
def check_retakes(retakes: list[ClipSpec], billed_usd: Decimal, budget_usd: float | None) -> dict[str, str]:
    """Each retake that cannot be made now, by clip key, with why: its prompt (the prompt change
    added) over its model's limit, this run's budget (what it billed so far plus the retakes) and
    the spend caps, as before any create. Nothing is sent."""
    refused: dict[str, str] = {}
    catalog = runtime.model_catalog()
    for c in retakes:
        if len(c.prompt) > (cap := catalog.profile(c.profile).prompt_max_chars):
            refused[c.clip_key] = f"refused: its prompt comes to {len(c.prompt)} characters with the prompt change; {c.profile} takes at most {cap}"
    retakes = [c for c in retakes if c.clip_key not in refused]
    try:
        budget.check_regeneration_budget(retakes, billed_usd, budget_usd, what=f"making {len(retakes)} retake clip(s)")
    except BudgetExceededError as err:
        return refused | {c.clip_key: f"refused: {err}" for c in retakes}
    for clip, why in preflight.over_caps(retakes, runtime.spend_caps(), Spend(runtime.ledger()), whose="the retakes'"):
        refused.setdefault(clip.clip_key, f"refused: {why}; nothing was created")
    return refused


@task(name="settle-retakes", cache_policy=runtime.NO_CACHE)
@clean_errors
def settle_retakes(title: str, outcomes: list[tuple[str, int, str, str]]) -> None:
    """Retakes that were refused (nothing paid) or failed: shown with why, never planned again."""
    reviews = Reviews(runtime.ledger())
    for shot, take, state, note in outcomes:
        reviews.settle_retake(title, shot, take, state, note)
        get_run_logger().warning("retake %s of shot %r %s: %s", take, shot, state, note)


@task(name="choose-takes", cache_policy=runtime.NO_CACHE)
@clean_errors
def choose_takes(title: str, chosen: list[tuple[str, int]], decision_ref: str) -> None:
    """Retakes asked for without ``keep`` become their shot's choice once they are made."""
    reviews = Reviews(runtime.ledger())
    for shot, take in chosen:
        reviews.choose(title, shot, take, decision=decision_ref, actor=_actor())


@task(name="approve-cut", cache_policy=runtime.NO_CACHE)
@clean_errors
def approve_cut(plan: Plan, decision_ref: str) -> None:
    """The approved cut, so a rerun of the same cut does not stop for a review again."""
    Reviews(runtime.ledger()).approve(plan.title, choices.cut_sha256(plan), decision=decision_ref, actor=_actor())


def _actor() -> str:
    from prefect.runtime import flow_run

    return f"flow run {flow_run.get_name() or flow_run.get_id() or '?'}"


__all__ = ["approve_cut", "check_retakes", "choose_takes", "publish_review", "record_decision", "review_path", "settle_retakes"]
