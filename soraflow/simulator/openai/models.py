"""The ``/v1/models`` view of the served models, and the Videos API's answers for a model that is
unknown or retired (which models are retired: ../retirement.py).
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..config import SimulatedModel, SimulatorConfig
from ..retirement import OPENAI_SORA_SHUTDOWN_DATE, SNAPSHOT, is_retired, shutdown_date
from .envelope import ApiError, invalid_value

OWNED_BY = "system"
SORA_LAUNCH = 1759708800  # 2025-10-06


def _created(name: str) -> int:
    """Unix time of a dated snapshot's date; other models the Sora 2 launch."""
    m = SNAPSHOT.match(name)
    if m:
        try:
            return int(datetime.fromisoformat(m["day"]).replace(tzinfo=timezone.utc).timestamp())
        except ValueError:
            pass
    return SORA_LAUNCH


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


__all__ = ["OPENAI_SORA_SHUTDOWN_DATE", "check_model", "is_retired", "listed_models", "model_gone", "model_resource", "unknown_model"]
