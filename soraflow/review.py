"""The review of a render's takes: what the creator sees, and what they decide.

Plain data shared by the render flow (which stops for a review once every take is stored, and
resumes with a decision), the review page (``soraflow review``, which shows the state and sends
a decision) and the Prefect run form (the flow's ``wait_for_input`` is a ``RunInput`` with the
same fields as ``ReviewDecision``). No Prefect here.

A decision, as JSON (what the page POSTs and what resumes the flow run)::

    {"approve": false,
     "shots": [{"shot": "b", "keep": 2},
               {"shot": "c", "retake": {"prompt_change": "the boat is red", "seed": 7}}]}

- ``keep``: the take the film uses for that shot (recorded in the ledger per storyboard and shot).
- ``retake``: one new take of the shot, its prompt changed and/or a new seed: a new clip (priced,
  budgeted and capped like any clip, paid once).
- ``approve``: stitch the film from the chosen takes; without it the flow stops for another review
  once the retakes are stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

ShotId = Annotated[str, Field(min_length=1, max_length=64)]
# The file the render flow writes (under OUT/.work/) when it stops for a review, and rewrites as
# retakes are stored: the review page reads it.
REVIEW_STATE_NAME = "review.json"


class Retake(BaseModel):
    """One new take of a shot: its prompt changed (``prompt_change`` is added to the shot's
    visual description) and/or another seed (where the model takes one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_change: Annotated[str, Field(max_length=1000)] = ""
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None


class ShotDecision(BaseModel):
    """What the creator decided for one shot: keep a take, or ask for a retake (or both: keep a
    take for now and see a retake in the next review)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shot: ShotId
    keep: Annotated[int, Field(ge=1)] | None = None
    retake: Retake | None = None


class ReviewDecision(BaseModel):
    """A review's decision: per shot, keep a take or retake it; ``approve`` to stitch the film."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approve: bool = False
    shots: list[ShotDecision] = Field(default_factory=list, max_length=500)


class TakeReview(BaseModel):
    """One take of a shot as the review shows it (every take is paid for, chosen or not)."""

    model_config = ConfigDict(frozen=True)

    take: int
    clip_key: str
    profile: str
    model: str
    endpoint: str
    seconds: int
    price_usd: Decimal
    prompt: str | None = None  # only where the storyboard opts in to showing prompts, else None
    seed: int | None = None
    state: str  # the ledger's state of its clip: submitted, completed, failed, ...
    job_id: str | None = None
    storage_uri: str | None = None  # where the take's video is kept (file:// or s3://), once stored
    error: str | None = None


class ShotReview(BaseModel):
    model_config = ConfigDict(frozen=True)

    shot: str
    chosen: int  # the take the film uses now
    takes: list[TakeReview]


class ReviewState(BaseModel):
    """A render stopped for review: every shot with its takes, what is chosen and what was spent."""

    model_config = ConfigDict(frozen=True)

    title: str
    storyboard: str  # what identifies the storyboard in the ledger's choices
    flow_run_id: str | None = None  # the paused or suspended run that a decision resumes
    out_dir: str
    storage_url: str
    film_uri: str | None = None  # the current cut, where one was stitched
    shots: list[ShotReview]
    spent_usd: Decimal  # every take paid for so far, chosen or not
    round: int = 1  # which review of this run (1: the first stop)


__all__ = [
    "REVIEW_STATE_NAME",
    "Retake",
    "ReviewDecision",
    "ReviewState",
    "ShotDecision",
    "ShotReview",
    "TakeReview",
]
