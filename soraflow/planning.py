"""From a storyboard to a priced plan, and the guards that run before anything is spent."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

from .documents import path_problem
from .errors import BudgetExceededError, InvalidBudgetError, Problem, StorageError, StoryboardError
from .ledger import Ledger
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


def check_budget(plan: Plan, budget_usd: float | None) -> None:
    if budget_usd is None:
        return
    if isinstance(budget_usd, bool) or not isinstance(budget_usd, (int, float, Decimal)) or not math.isfinite(budget_usd) or budget_usd < 0:
        raise InvalidBudgetError(budget_usd)
    if plan.total_usd > Decimal(str(budget_usd)):
        raise BudgetExceededError(float(plan.total_usd), float(budget_usd))


def clips_to_create(plan: Plan, ledger: Ledger) -> list[ClipSpec]:
    """Clips with no live job in the ledger: the only ones that can cost money now.

    A clip in doubt is not among them: nothing is created for it until the user settles it.
    """
    entries = ledger.entries([c.clip_key for c in plan.clips])
    return [
        c
        for c in plan.clips
        if not ((e := entries.get(c.clip_key)) and ((e.job_id and e.state in ("submitted", "completed")) or e.state == "in_doubt"))
    ]


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
