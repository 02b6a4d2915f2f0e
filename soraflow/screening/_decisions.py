"""A decision checked against the review it answers, before any run is resumed.

The shape (``ReviewDecision``) is pydantic's to check; what only the review knows is checked
here: every shot named is one of its shots, named once; a kept take is one of that shot's
takes and is stored. Each problem names its field (``shots[1].keep``), as the storyboard's do.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from ..errors import Problem, problems_from_validation, shown_value
from ..review import ReviewDecision, ReviewState


class DecisionRefused(Exception):
    """The decision does not fit this review; ``problems`` name each field."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


def read_decision(body: bytes, state: ReviewState) -> ReviewDecision:
    """The decision in ``body`` (JSON), checked against ``state``; DecisionRefused otherwise."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise DecisionRefused([Problem("", f"the body is not JSON: {err}")]) from None
    try:
        decision = ReviewDecision.model_validate(data)
    except ValidationError as err:
        raise DecisionRefused(problems_from_validation(err, ReviewDecision)) from None
    if problems := decision_problems(decision, state):
        raise DecisionRefused(problems)
    return decision


def decision_problems(decision: ReviewDecision, state: ReviewState) -> list[Problem]:
    shots = {shot.shot: shot for shot in state.shots}
    first_named: dict[str, int] = {}
    problems = []
    for i, said in enumerate(decision.shots):
        shot = shots.get(said.shot)
        if shot is None:
            problems.append(Problem(f"shots[{i}].shot", f"{shown_value(said.shot)} is not a shot of this review; its shots: {', '.join(shots)}"))
            continue
        if said.shot in first_named:
            problems.append(Problem(f"shots[{i}].shot", f"shot {said.shot!r} is decided twice (shots[{first_named[said.shot]}] too)"))
            continue
        first_named[said.shot] = i
        if said.keep is None and said.retake is None:
            problems.append(Problem(f"shots[{i}]", f"say what to do with shot {said.shot!r}: keep a take, or ask for a retake"))
        if said.keep is not None:
            takes = {take.take: take for take in shot.takes}
            take = takes.get(said.keep)
            if take is None:
                problems.append(Problem(
                    f"shots[{i}].keep",
                    f"shot {said.shot!r} has no take {said.keep}; its takes: {', '.join(map(str, takes)) or 'none yet'}",
                ))
            elif take.storage_uri is None:
                problems.append(Problem(
                    f"shots[{i}].keep", f"take {said.keep} of shot {said.shot!r} is not stored ({take.state}): only a stored take can be kept"
                ))
    return problems
