"""What a run can pay, checked against its budget before anything is spent.

The budget bounds what *this run* can pay (the clips it creates now, plus those whose jobs are
gone and may be generated again), not what the whole film costs: a rerun of a finished film
can pay nothing. A clip in doubt is never counted: it is never created on a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from .errors import BudgetExceededError, InvalidBudgetError
from .ledger import Ledger, LedgerEntry
from .plan import ClipSpec, Plan


@dataclass(frozen=True)
class Payable:
    """What a run can pay, beside what the whole film costs.

    ``create_usd``: the clips with no live job (the only ones created now). ``regenerate_usd``:
    the clips whose job exists but whose video is kept nowhere yet; if the provider has lost
    the job (expired, deleted), the run generates them again, once. A clip in doubt costs
    nothing here: it is never created on a guess.
    """

    create_usd: Decimal
    create_clips: int
    regenerate_usd: Decimal
    regenerate_clips: int
    film_usd: Decimal

    @property
    def usd(self) -> Decimal:
        return self.create_usd + self.regenerate_usd

    def describe(self) -> str:
        return (
            f"this run can pay up to ${self.usd:.2f} ({self.create_clips} clip(s) to create ${self.create_usd:.2f}"
            f" + {self.regenerate_clips} that may be generated again ${self.regenerate_usd:.2f}); the whole film costs ${self.film_usd:.2f}"
        )


def payable(plan: Plan, ledger: Ledger | None) -> Payable:
    """What this run can pay (see ``Payable``); without a ledger, every clip is to be created."""
    entries = ledger.entries([c.clip_key for c in plan.clips]) if ledger is not None else {}
    create, regenerate = [], []
    for c in plan.clips:
        e = entries.get(c.clip_key)
        if _to_create(e):
            create.append(c)
        elif e.state != "in_doubt" and not e.storage_uri:
            regenerate.append(c)
    usd = lambda clips: sum((c.price_usd for c in clips), Decimal("0"))  # noqa: E731
    return Payable(usd(create), len(create), usd(regenerate), len(regenerate), plan.total_usd)


def valid_budget(budget_usd: object) -> Decimal | None:
    """The budget as exact USD; a negative, non-finite or non-numeric one is refused."""
    if budget_usd is None:
        return None
    if isinstance(budget_usd, bool) or not isinstance(budget_usd, (int, float, Decimal)) or not math.isfinite(budget_usd) or budget_usd < 0:
        raise InvalidBudgetError(budget_usd)
    return Decimal(str(budget_usd))


def check_budget(plan: Plan, budget_usd: float | None, ledger: Ledger | None = None) -> Payable:
    """Refuse a run that can pay more than ``budget_usd``: the clips it creates now plus those it
    may generate again, not the whole film (a rerun of a finished film can pay nothing)."""
    budget = valid_budget(budget_usd)
    can_pay = payable(plan, ledger)
    if budget is not None and can_pay.usd > budget:
        raise BudgetExceededError(float(can_pay.usd), float(budget), detail=can_pay.describe())
    return can_pay


def check_regeneration_budget(lost: list[ClipSpec], billed_usd: Decimal, budget_usd: float | None, *, what: str | None = None) -> None:
    """Before clips whose jobs were lost are generated again (or a review's retakes are made):
    what this run billed so far plus their price must fit the budget (the same check as before
    the first create). ``what`` names them (default: the lost clips generated again)."""
    budget = valid_budget(budget_usd)
    again = sum((c.price_usd for c in lost), Decimal("0"))
    if budget is not None and billed_usd + again > budget:
        what = what or f"generating {len(lost)} lost clip(s) again"
        raise BudgetExceededError(
            float(billed_usd + again), float(budget), detail=f"this run billed ${billed_usd:.2f} and {what} costs ${again:.2f}",
        )


def _to_create(entry: LedgerEntry | None) -> bool:
    """No live job and not in doubt: the clip is created by this run."""
    return not (entry and ((entry.job_id and entry.state in ("submitted", "completed")) or entry.state == "in_doubt"))


def clips_to_create(plan: Plan, ledger: Ledger) -> list[ClipSpec]:
    """Clips with no live job in the ledger: the only ones that can cost money now.

    A clip in doubt is not among them: nothing is created for it until the user settles it.
    """
    entries = ledger.entries([c.clip_key for c in plan.clips])
    return [c for c in plan.clips if _to_create(entries.get(c.clip_key))]
