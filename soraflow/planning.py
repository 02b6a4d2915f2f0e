"""From a storyboard to a priced plan, and the guards that run before anything is spent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from .documents import path_problem
from .errors import BudgetExceededError, InvalidBudgetError, Problem, StorageError, StoryboardError
from .ledger import Ledger, LedgerEntry
from .models import ModelCatalog, load_catalog, route_endpoints
from .plan import ClipSpec, Plan, plan_storyboard
from .settings import Settings
from .storage import check_storage_url
from .storyboard import load_storyboard, parse_storyboard
from .terminal import printable


def model_catalog(settings: Settings) -> ModelCatalog:
    """The built-in profiles with the user's file (``SORAFLOW_MODELS``) laid over them."""
    return load_catalog(settings.models)


def load_plan(
    storyboard_path: str | None, storyboard_inline: dict | None, *, settings: Settings, catalog: ModelCatalog | None = None
) -> Plan:
    """Validate the storyboard against the profiles, route every endpoint, and price the plan."""
    if (storyboard_path is None) == (storyboard_inline is None):
        raise StoryboardError([Problem("", "give exactly one of a storyboard path or an inline storyboard")])
    catalog = catalog or model_catalog(settings)
    beyond = settings.allow_beyond_spec
    source = storyboard_path or "(inline)"
    if storyboard_path is not None:
        sb = load_storyboard(storyboard_path, allow_beyond_spec=beyond, catalog=catalog)
    else:
        sb = parse_storyboard(storyboard_inline, source=source, allow_beyond_spec=beyond, catalog=catalog)
    routing = route_endpoints(catalog, settings.environment, simulate=settings.simulate)
    try:
        return plan_storyboard(sb, catalog=catalog, routing=routing, allow_beyond_spec=beyond)
    except StoryboardError as err:
        raise StoryboardError(err.problems, source) from None


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


def check_regeneration_budget(lost: list[ClipSpec], billed_usd: Decimal, budget_usd: float | None) -> None:
    """Before clips whose jobs were lost are generated again: what this run billed so far plus
    their price must fit the budget (the same check as before the first create)."""
    budget = valid_budget(budget_usd)
    again = sum((c.price_usd for c in lost), Decimal("0"))
    if budget is not None and billed_usd + again > budget:
        raise BudgetExceededError(
            float(billed_usd + again), float(budget),
            detail=f"this run billed ${billed_usd:.2f} and generating {len(lost)} lost clip(s) again costs ${again:.2f}",
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


def estimate_rows(plan: Plan) -> list[dict]:
    return [
        {
            "shot": c.shot_id,
            "part": f"{c.part}/{c.parts}",
            "model": c.profile,
            "endpoint": c.endpoint,
            "size": c.size,
            "seconds": c.seconds,
            "usd": f"{c.price_usd:.2f}",
            "clip_key": c.clip_key[:16],
        }
        for c in plan.clips
    ]


def resolve_paths(out_dir: str | Path, storage: str | None, settings: Settings) -> tuple[Path, str]:
    """The output directory (absolute) and the storage URL (default: the output directory),
    both checked before anything is spent: a path the system cannot hold, an output "directory"
    that is a file, or a storage URL no store accepts is refused here, not after the clips."""
    shown = printable(repr(str(out_dir)), 200)
    if problem := path_problem(out_dir):
        raise StorageError(f"output directory {shown}: the path {problem}")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise StorageError(f"output directory {shown} exists and is not a directory")
    url = storage or settings.storage or out.as_uri()
    return out, check_storage_url(url)
