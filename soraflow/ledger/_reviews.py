"""What reviews decided, kept in the ledger so that it survives reruns and resumed suspends.

Per storyboard (its title, as the spend rows and the storage paths name it) and shot: the take
the film uses, every retake asked for, and the cut last approved. Every write names the decision
that made it (``decision``: the flow run and its review round), so replaying a decision (a
suspended run resumes from the top and meets its earlier decisions again) changes nothing: a
retake is asked for once per decision and shot, whatever the replays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from ..plan import RecordedRetake, ReviewRecord
from ._tables import retakes, review_approvals, take_choices

if TYPE_CHECKING:
    from ._ledger import Ledger

# A retake is "requested" (planned on every pass until it is made), "refused" (over a spend cap
# or the budget: nothing was paid) or "failed" (it was created and failed, e.g. moderation).
RETAKE_STATES = ("requested", "refused", "failed")


class Reviews:
    """The reviews' decisions in the ledger's database."""

    def __init__(self, ledger: "Ledger"):
        self._engine = ledger._engine
        self._reader = ledger._reader
        self._backend = ledger._backend

    # --- reads ---------------------------------------------------------------------------
    def record(self, storyboard: str) -> ReviewRecord:
        """What planning needs: each shot's chosen take and every retake (refused ones too, to
        be shown, never made)."""
        with self._reader.connect() as conn:
            choices = {r.shot_id: r.take for r in conn.execute(select(take_choices).where(take_choices.c.storyboard == storyboard))}
            asked = conn.execute(select(retakes).where(retakes.c.storyboard == storyboard).order_by(retakes.c.shot_id, retakes.c.take)).all()
        return ReviewRecord(
            choices=choices,
            retakes=tuple(
                RecordedRetake(
                    shot_id=r.shot_id, take=r.take, prompt_change=r.prompt_change, seed=r.seed,
                    refused=None if r.state == "requested" else (r.note or r.state),
                )
                for r in asked
            ),
        )

    def approved_cut(self, storyboard: str) -> str | None:
        """The hash of the cut last approved for ``storyboard`` (None: never approved)."""
        with self._reader.connect() as conn:
            return conn.execute(select(review_approvals.c.cut_sha256).where(review_approvals.c.storyboard == storyboard)).scalar()

    # --- writes --------------------------------------------------------------------------
    def choose(self, storyboard: str, shot_id: str, take: int, *, decision: str, actor: str) -> None:
        """The film of ``storyboard`` uses ``take`` of ``shot_id`` from now on."""
        with self._engine.begin() as conn:
            now = self._backend.now(conn)
            row = {"take": take, "decision": decision, "actor": actor, "decided_at": now}
            conn.execute(
                self._backend.insert(take_choices)
                .values(storyboard=storyboard, shot_id=shot_id, **row)
                .on_conflict_do_update(index_elements=["storyboard", "shot_id"], set_=row)
            )

    def request_retake(
        self, storyboard: str, shot_id: str, *, prompt_change: str, seed: int | None, first_free: int, decision: str, actor: str
    ) -> int:
        """Ask for a retake of ``shot_id`` once per ``decision``: its take number, the next one
        above ``first_free - 1`` and every retake of the shot. A decision seen again (a replay)
        answers the number it was given the first time."""
        with self._engine.begin() as conn:
            self._backend.lock_spend(conn)  # numbers are handed out one at a time over every worker
            given = conn.execute(select(retakes.c.take).where(retakes.c.decision == decision)).scalar()
            if given is not None:
                return given
            taken = conn.execute(
                select(retakes.c.take).where(retakes.c.storyboard == storyboard, retakes.c.shot_id == shot_id)
            ).scalars().all()
            take = max([first_free - 1, *taken]) + 1
            conn.execute(
                retakes.insert().values(
                    storyboard=storyboard, shot_id=shot_id, take=take, prompt_change=prompt_change, seed=seed,
                    state="requested", decision=decision, actor=actor, requested_at=self._backend.now(conn),
                )
            )
        return take

    def settle_retake(self, storyboard: str, shot_id: str, take: int, state: str, note: str) -> None:
        """A retake was refused (nothing paid) or failed: it is shown with ``note`` and never
        planned again."""
        assert state in RETAKE_STATES[1:]
        with self._engine.begin() as conn:
            conn.execute(
                update(retakes)
                .where(retakes.c.storyboard == storyboard, retakes.c.shot_id == shot_id, retakes.c.take == take)
                .values(state=state, note=note)
            )

    def approve(self, storyboard: str, cut_sha256: str, *, decision: str, actor: str) -> None:
        with self._engine.begin() as conn:
            row = {"cut_sha256": cut_sha256, "decision": decision, "actor": actor, "approved_at": self._backend.now(conn)}
            conn.execute(
                self._backend.insert(review_approvals)
                .values(storyboard=storyboard, **row)
                .on_conflict_do_update(index_elements=["storyboard"], set_=row)
            )


__all__ = ["RETAKE_STATES", "Reviews"]
