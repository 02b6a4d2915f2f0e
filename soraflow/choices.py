"""Choices: which take of each shot the film uses, and what a review's decision changes.

Each shot's chosen take is the storyboard's ``choose``, else the review's decision recorded in
the ledger per storyboard and shot (``soraflow.ledger.Reviews``), else take 1. Planning gets the
ledger's record through ``record_reader`` (the plan never reads the ledger itself); a decision is
checked against the plan (``decision_problems``: an unknown shot or take is refused, naming the
field), then recorded (``record_decision``): kept takes, and retakes, each a new take number of
its shot whose clips the next plan holds. ``review_state`` is what a review shows: every shot,
its takes, what is chosen and what was spent (written to ``OUT/.work/review.json`` for the page,
and drawn in the flow's artifact and the run's input form).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from .errors import Problem
from .ledger import Ledger, LedgerEntry, Reviews
from .plan import ClipSpec, Plan, ReviewRecord
from .review import ReviewDecision, ReviewState, ShotReview, TakeReview
from .terminal import printable


def record_reader(ledger: Ledger) -> Callable[[str], ReviewRecord]:
    """What the reviews of a storyboard (by title) decided, for ``plan.load_plan``."""
    return Reviews(ledger).record


def cut_sha256(plan: Plan) -> str:
    """What identifies the film a review approves: the chosen takes' clips, in order."""
    keys = [c.clip_key for c in plan.chosen_clips]
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()


def review_needed(plan: Plan, ledger: Ledger, *, asked: bool) -> bool:
    """A review is asked for (the storyboard's ``review: true`` or the run's) and this cut has
    not been approved already (a rerun of an approved film does not stop again)."""
    return (asked or plan.review) and Reviews(ledger).approved_cut(plan.title) != cut_sha256(plan)


def decision_problems(decision: ReviewDecision, plan: Plan) -> list[Problem]:
    """Why ``decision`` cannot be applied to ``plan``, each naming the field: a shot the
    storyboard does not have, a take the shot does not have, a shot decided twice, a take kept
    where the storyboard fixes the choice (``choose``)."""
    problems: list[Problem] = []
    shots = plan.shot_ids
    seen: dict[str, int] = {}
    for i, d in enumerate(decision.shots):
        where = f"shots[{i}]"
        if d.shot not in shots:
            problems.append(Problem(f"{where}.shot", f"{printable(repr(d.shot), 80)} is not a shot of {printable(repr(plan.title), 80)}; shots: {', '.join(shots)}"))
            continue
        if d.shot in seen:
            problems.append(Problem(f"{where}.shot", f"{d.shot!r} is decided twice (also shots[{seen[d.shot]}]); one decision per shot"))
        seen.setdefault(d.shot, i)
        if d.keep is not None:
            takes = plan.takes_of(d.shot)
            if d.keep not in takes:
                problems.append(Problem(f"{where}.keep", f"{d.keep} is not a take of shot {d.shot!r}; its takes: {', '.join(map(str, takes))}"))
            elif d.shot in plan.fixed and plan.fixed[d.shot] != d.keep:
                problems.append(Problem(
                    f"{where}.keep",
                    f"the storyboard chooses take {plan.fixed[d.shot]} of shot {d.shot!r} (its choose:); change the storyboard to keep another",
                ))
        if d.keep is None and d.retake is None:
            problems.append(Problem(where, f"shot {d.shot!r}: say keep (a take) or retake (a prompt change and/or a seed)"))
    return problems


@dataclass(frozen=True)
class Recorded:
    """What a decision asked for: each retake as (shot, its new take number)."""

    retakes: tuple[tuple[str, int], ...]


def record_decision(decision: ReviewDecision, plan: Plan, reviews: Reviews, *, decision_ref: str, actor: str) -> Recorded:
    """Record a checked decision in the ledger: each shot's kept take, and each retake (a new
    take number). A retake asked for without ``keep`` becomes the shot's choice only once it is
    made (the flow records that), so a refused retake leaves the choice as it was. Recording the
    same decision again (``decision_ref``) asks for no second retake."""
    asked = []
    for d in decision.shots:
        if d.retake is not None:
            highest = max([*plan.takes_of(d.shot), *(c.take for c in plan.refused if c.shot_id == d.shot)])
            take = reviews.request_retake(
                plan.title, d.shot, prompt_change=d.retake.prompt_change, seed=d.retake.seed, first_free=highest + 1,
                decision=f"{decision_ref}:{d.shot}", actor=actor,
            )
            asked.append((d.shot, take))
        if d.keep is not None:
            reviews.choose(plan.title, d.shot, d.keep, decision=decision_ref, actor=actor)
    return Recorded(tuple(asked))


def review_state(
    plan: Plan,
    ledger: Ledger,
    *,
    out_dir: str,
    storage_url: str,
    flow_run_id: str | None,
    round: int,
    film_uri: str | None = None,
) -> ReviewState:
    """Every shot with its takes (from the plan and the ledger), what is chosen and what was spent."""
    keys = [c.clip_key for c in plan.clips]
    entries = ledger.entries(keys)
    paid = ledger.paid_creates(keys)
    spent = sum((c.price_usd * paid.get(c.clip_key, 0) for c in plan.clips), Decimal("0"))
    refused = Reviews(ledger).record(plan.title)
    notes = {(r.shot_id, r.take): r.refused for r in refused.retakes if r.refused}
    shots = []
    for shot in plan.shot_ids:
        takes = []
        for take in plan.takes_of(shot):
            clips = [c for c in plan.clips if c.shot_id == shot and c.take == take]
            takes.append(_take_review(clips, entries))
        for take in sorted({c.take for c in plan.refused if c.shot_id == shot}):
            clips = [c for c in plan.refused if c.shot_id == shot and c.take == take]
            note = notes.get((shot, take), "refused")
            takes.append(_take_review(clips, {}).model_copy(update={"state": "failed" if note.startswith("failed") else "refused", "error": note}))
        shots.append(ShotReview(shot=shot, chosen=plan.chosen.get(shot, 1), takes=takes))
    return ReviewState(
        title=plan.title, storyboard=plan.title, flow_run_id=flow_run_id, out_dir=out_dir, storage_url=storage_url,
        film_uri=film_uri, shots=shots, spent_usd=spent, round=round,
    )


def _take_review(clips: list[ClipSpec], entries: dict[str, LedgerEntry]) -> TakeReview:
    """One take as the review shows it: its film clip (the first, where its parts are several),
    its whole length and price, and the worst state among its clips."""
    shown = next(c for c in clips if c.in_film)
    states = [entries[c.clip_key] if c.clip_key in entries else None for c in clips]
    failed = next((e for e in states if e is not None and e.state in ("failed", "lost", "in_doubt")), None)
    entry = entries.get(shown.clip_key)
    stored = all(e is not None and e.storage_uri for e in states)
    state = failed.state if failed else ("stored" if stored else (entry.state if entry else "planned"))
    return TakeReview(
        take=shown.take, clip_key=shown.clip_key, profile=shown.profile, model=shown.model, endpoint=shown.endpoint,
        seconds=sum(c.seconds for c in clips), price_usd=sum((c.price_usd for c in clips), Decimal("0")),
        seed=shown.seed, state=state, job_id=entry.job_id if entry else None,
        storage_uri=entry.storage_uri if entry and stored else None,
        error=(failed.error_message or failed.error_code) if failed else None,
    )


def review_markdown(state: ReviewState, *, how_to_open: str, notes: list[str] = ()) -> str:
    """The review for people (the flow's artifact and the run's input form): per shot its takes,
    what each cost and whether it is stored, the chosen one, what was spent, and how to decide."""
    lines = [f"## Review {state.round} of {_md(state.title)}: choose a take of each shot", ""]
    for note in notes:
        lines += [f"> {_md(note)}", ""]
    lines += ["| shot | take | state | seconds | USD | job | chosen |", "|---|---|---|---|---|---|---|"]
    for shot in state.shots:
        for t in shot.takes:
            state_text = t.state + (f": {t.error}" if t.error else "")
            lines.append(
                f"| {_md(shot.shot)} | {t.take}{f' (seed {t.seed})' if t.seed is not None else ''} | {_md(state_text)} | {t.seconds} "
                f"| {t.price_usd:.2f} | {_md(t.job_id or '')} | {'**yes**' if t.take == shot.chosen else ''} |"
            )
    lines += [
        "",
        f"Spent so far: ${state.spent_usd:.2f} (every take is paid for, chosen or not).",
        "",
        how_to_open,
        "",
        "To decide, resume this run with, per shot, `keep` (a take number) or `retake` (a `prompt_change` added to the "
        "shot's description and/or a `seed`); tick `approve` to stitch the film from the chosen takes. A retake is a new "
        "clip, priced and capped like any other; without `approve` the run stops again once it is stored.",
    ]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "\\`*_{}[]<>#|" else ch for ch in str(text))


__all__ = [
    "Recorded", "cut_sha256", "decision_problems", "record_decision", "record_reader", "review_markdown", "review_needed", "review_state",
]
