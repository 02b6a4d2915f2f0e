"""The review step's wait: the flow run stops for a decision on its takes.

A run of a deployment *suspends* (``suspend_flow_run``): its process exits and its worker is
free for other runs; resumed, the run is scheduled again and runs the flow from the top, where
every step before the review is a ledger no-op, and the same review round meets its decision
again (Prefect answers an already-fired pause key with the input it was given). A run started
ad hoc (the CLI, a script, a subflow) cannot be suspended (Prefect refuses it), so it *pauses*
(``pause_flow_run``): it waits in its own process, for ``SORAFLOW_REVIEW_PAUSE_SECONDS`` (Prefect's
own default is an hour, after which the run fails).

Either way the input is ``ReviewInput``, a ``RunInput`` with the fields of
``soraflow.review.ReviewDecision``: the Prefect UI draws it as the form shown on the paused run,
and the review page (``soraflow review``) resumes the run with the same JSON. Pause keys are
deterministic, one per review round (``review-1``, ``review-2``...), so a replayed round finds
its decision.
"""

from __future__ import annotations

from prefect import flow_runs
from prefect.context import FlowRunContext
from prefect.input import RunInput
from prefect.input.actions import read_flow_run_input
from pydantic import Field

from soraflow.review import ReviewDecision, ShotDecision
from soraflow.settings import Settings


class ReviewInput(RunInput):
    """A review's decision, as the Prefect UI's form: per shot, keep a take or ask for a retake;
    approve to stitch the film from the chosen takes."""

    approve: bool = Field(
        default=False, title="Approve", description="Stitch the film from the chosen takes. Without it, the run stops again once the retakes are stored."
    )
    shots: list[ShotDecision] = Field(
        default_factory=list, max_length=500, title="Shots",
        description="Per shot: keep (a take number) and/or retake (a prompt change added to the shot's description, and/or a seed).",
    )


def pause_key(round: int) -> str:
    return f"review-{round}"


def suspends() -> bool:
    """Whether this run suspends: a deployment's run that is not a subflow (Prefect refuses to
    suspend any other); else it pauses."""
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    return bool(run and run.deployment_id and not run.parent_task_run_id)


def decided_before(round: int) -> bool:
    """This round's decision was given already: a suspended run resumed and replaying its rounds
    from the top (the review's state need not be written and shown again)."""
    if not suspends():
        return False
    return read_flow_run_input(f"suspended-{pause_key(round)}-response") is not None


def wait_for_decision(round: int, description: str, current: dict[str, int], settings: Settings) -> ReviewDecision:
    """Stop for the decision of review ``round``: the form opens on each shot's current choice."""
    form = ReviewInput.with_initial_data(description=description, shots=[ShotDecision(shot=s, keep=t) for s, t in current.items()])
    if suspends():
        given = flow_runs.suspend_flow_run(wait_for_input=form, key=pause_key(round), timeout=None)
    else:
        given = flow_runs.pause_flow_run(
            wait_for_input=form, key=pause_key(round), timeout=settings.review_pause_seconds, poll_interval=settings.review_poll_seconds
        )
    return ReviewDecision.model_validate(given.model_dump(include=set(ReviewDecision.model_fields)))


__all__ = ["ReviewInput", "decided_before", "pause_key", "suspends", "wait_for_decision"]
