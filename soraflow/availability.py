"""Is a model still served? Checked before anything is spent.

OpenAI retired the Sora Videos API on 2026-09-24. An endpoint that no longer offers a model,
or lists it with a past ``shutdown_date``, gets a plain refusal naming the model and the date,
never a hang or a retry loop.
"""

from __future__ import annotations

from datetime import date

from .catalog import OPENAI_SORA_SHUTDOWN_DATE
from .errors import ModelUnavailableError
from .providers.base import ModelInfo, VideoProvider


def _past(day: str | None, today: date) -> bool:
    if not day:
        return False
    try:
        return date.fromisoformat(day[:10]) <= today
    except ValueError:
        return False


def model_status(model: str, offered: dict[str, ModelInfo], today: date | None = None) -> tuple[str, str | None]:
    """('available' | 'retiring' | 'gone', shutdown_date) for one model."""
    today = today or date.today()
    info = offered.get(model)
    if info is None:
        return "gone", None
    if _past(info.shutdown_date, today):
        return "gone", info.shutdown_date
    if info.shutdown_date:
        return "retiring", info.shutdown_date
    return "available", None


def unavailable_message(model: str, shutdown_date: str | None, base_url: str | None = None) -> str:
    where = f" at {base_url}" if base_url else ""
    if shutdown_date:
        return f"model {model} was retired on {shutdown_date} and is no longer served{where}"
    return (
        f"model {model} is not offered{where}; OpenAI retired its Sora Videos API on "
        f"{OPENAI_SORA_SHUTDOWN_DATE}: point OPENAI_BASE_URL at an endpoint that still serves it"
    )


def ensure_available(
    models: list[str],
    provider: VideoProvider,
    *,
    known: dict[str, dict] | None = None,
    base_url: str | None = None,
    today: date | None = None,
) -> dict[str, str]:
    """Raise ModelUnavailableError for the first model that is gone; return each one's status.

    ``known`` is the watch's last report ({model: {"status", "shutdown_date"}}): a model it saw
    gone is refused without asking again.
    """
    for model in models:
        seen = (known or {}).get(model) or {}
        if seen.get("status") == "gone":
            raise ModelUnavailableError(model, unavailable_message(model, seen.get("shutdown_date"), base_url), code="model_retired")
    offered = {m.id: m for m in provider.list_models()}
    statuses = {}
    for model in models:
        status, day = model_status(model, offered, today)
        if status == "gone":
            raise ModelUnavailableError(model, unavailable_message(model, day, base_url), shutdown_date=day, code="model_retired")
        statuses[model] = status
    return statuses
