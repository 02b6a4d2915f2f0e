"""The ``/v1/models`` view of the catalog, and which models are retired.

A model's ``shutdown_date`` comes from ``model_shutdown_dates`` (by its own name, else its base
model's), else from ``--shutdown`` (the real date, catalog.OPENAI_SORA_SHUTDOWN_DATE), else it
has none. A date on or before today retires the model: create refuses it as the service did.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from .. import catalog
from ..errors import CatalogError
from .config import SimulatorConfig
from .envelope import ApiError, invalid_value

OWNED_BY = "system"


def _created(name: str) -> int:
    """Unix time of a snapshot's date; base models take their first snapshot's."""
    spec = catalog.MODELS.get(name)
    day = (spec.snapshots[0] if spec and spec.snapshots else name)[-10:]
    try:
        return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())
    except ValueError:
        return 1759708800  # 2025-10-06, the Sora 2 launch


def _base(name: str) -> str:
    for base, spec in catalog.MODELS.items():
        if name == base or name in spec.snapshots:
            return base
    return name


def today() -> date:
    return datetime.now(timezone.utc).date()


def shutdown_date(config: SimulatorConfig, name: str) -> str | None:
    dates = config.model_shutdown_dates
    if name in dates:
        return dates[name]
    if _base(name) in dates:
        return dates[_base(name)]
    return catalog.OPENAI_SORA_SHUTDOWN_DATE if config.shutdown else None


def is_retired(config: SimulatorConfig, name: str) -> bool:
    day = shutdown_date(config, name)
    return day is not None and date.fromisoformat(day) <= today()


def model_resource(config: SimulatorConfig, name: str) -> dict:
    return {"id": name, "object": "model", "created": _created(name), "owned_by": OWNED_BY, "shutdown_date": shutdown_date(config, name)}


def listed_models(config: SimulatorConfig) -> list[dict]:
    names = catalog.model_names()
    if config.shutdown_listing == "omit":
        names = [n for n in names if not is_retired(config, n)]
    return [model_resource(config, n) for n in names]


def check_model(config: SimulatorConfig, name: str) -> catalog.ModelSpec:
    """The model a new job will use, or the refusal: unknown (400) or retired (404)."""
    try:
        spec = catalog.get_model(name)
    except CatalogError:
        raise invalid_value("model", name, catalog.model_names()) from None
    if is_retired(config, name):
        raise model_gone(name, config)
    return spec


def model_gone(name: str, config: SimulatorConfig) -> ApiError:
    """The answer to a create for a retired model, naming the model and its shutdown date."""
    return ApiError(
        404,
        f"The model `{name}` was shut down on {shutdown_date(config, name)} and does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def unknown_model(name: str) -> ApiError:
    return ApiError(404, f"The model `{name}` does not exist or you do not have access to it.", param="model", code="model_not_found")
