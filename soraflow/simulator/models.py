"""The ``/v1/models`` view of the served models, and which models are retired.

A model's ``shutdown_date`` comes from ``model_shutdown_dates`` (by its own name, else its base
model's: ``sora-2`` for ``sora-2-2025-10-06``), else from ``--shutdown`` (the real date,
OPENAI_SORA_SHUTDOWN_DATE), else it has none. A date on or before today retires the model:
create refuses it as the service did.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from .config import SimulatedModel, SimulatorConfig
from .envelope import ApiError, invalid_value

OWNED_BY = "system"
# OpenAI shut the Sora Videos API down on this date; --shutdown reports it.
OPENAI_SORA_SHUTDOWN_DATE = "2026-09-24"
SORA_LAUNCH = 1759708800  # 2025-10-06
_SNAPSHOT = re.compile(r"^(?P<base>.+)-(?P<day>\d{4}-\d{2}-\d{2})$")


def _created(name: str) -> int:
    """Unix time of a dated snapshot's date; other models the Sora 2 launch."""
    m = _SNAPSHOT.match(name)
    if m:
        try:
            return int(datetime.fromisoformat(m["day"]).replace(tzinfo=timezone.utc).timestamp())
        except ValueError:
            pass
    return SORA_LAUNCH


def _base(name: str) -> str:
    m = _SNAPSHOT.match(name)
    return m["base"] if m else name


def today() -> date:
    return datetime.now(timezone.utc).date()


def shutdown_date(config: SimulatorConfig, name: str) -> str | None:
    dates = config.model_shutdown_dates
    if name in dates:
        return dates[name]
    if _base(name) in dates:
        return dates[_base(name)]
    return OPENAI_SORA_SHUTDOWN_DATE if config.shutdown else None


def is_retired(config: SimulatorConfig, name: str) -> bool:
    day = shutdown_date(config, name)
    return day is not None and date.fromisoformat(day) <= today()


def model_resource(config: SimulatorConfig, name: str) -> dict:
    return {"id": name, "object": "model", "created": _created(name), "owned_by": OWNED_BY, "shutdown_date": shutdown_date(config, name)}


def listed_models(config: SimulatorConfig) -> list[dict]:
    names = config.model_names()
    if config.shutdown_listing == "omit":
        names = [n for n in names if not is_retired(config, n)]
    return [model_resource(config, n) for n in names]


def check_model(config: SimulatorConfig, name: str) -> SimulatedModel:
    """The model a new job will use, or the refusal: unknown (400) or retired (404)."""
    spec = config.model(name)
    if spec is None:
        raise invalid_value("model", name, config.model_names())
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
