"""Is a model still served at its endpoint? Checked before anything is spent.

OpenAI retired the Sora Videos API on 2026-09-24; Azure's sora-2 followed. An endpoint that no
longer offers a model, or lists it with a past ``shutdown_date``, gets a plain refusal naming
the model, the endpoint and the date, never a hang or a retry loop.

Where the endpoint serves no ``/models`` (many gateways; Azure, whose list shows base models
rather than deployments), the profile's retirement date decides, and the run says so in one
line: a model retired by its profile is refused, any other is taken as available.
"""

from __future__ import annotations

from datetime import date

from ..errors import ModelUnavailableError
from ..providers.base import ModelListUnavailable
from ..providers.base import ModelInfo, VideoProvider


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


def profile_status(retires: date | None, today: date | None = None) -> tuple[str, str | None]:
    """The same answer from a profile's retirement date alone."""
    today = today or date.today()
    if retires is None:
        return "available", None
    return ("gone" if retires <= today else "retiring"), retires.isoformat()


def unavailable_message(model: str, shutdown_date: str | None, where: str | None = None) -> str:
    at = f" at {where}" if where else ""
    if shutdown_date:
        return f"model {model} was retired on {shutdown_date} and is no longer served{at}"
    return f"model {model} is not offered{at}; check the profile's model name, or point its endpoint at one that serves it"


def offered_models(provider: VideoProvider, models: list[str]) -> dict[str, ModelInfo]:
    """What the endpoint says of each of ``models`` (absent: not offered)."""
    return {m: info for m in models if (info := provider.model_info(m)) is not None}


def ensure_available(
    models: dict[str, date | None],
    provider: VideoProvider,
    *,
    known: dict[str, dict] | None = None,
    where: str | None = None,
    today: date | None = None,
) -> tuple[dict[str, str], str | None]:
    """Raise ModelUnavailableError for the first model that is gone; else each one's status and a
    warning when the endpoint lists no models (availability then came from the profiles).

    ``models`` maps each model id to its profile's retirement date. ``known`` is the watch's last
    report ({model: {"status", "shutdown_date"}}): a model it saw gone is refused without asking.
    """
    for model in models:
        seen = (known or {}).get(model) or {}
        if seen.get("status") == "gone":
            raise ModelUnavailableError(model, unavailable_message(model, seen.get("shutdown_date"), where), code="model_retired")
    try:
        offered = offered_models(provider, list(models))
    except ModelListUnavailable as err:
        statuses = {}
        for model, retires in models.items():
            status, day = profile_status(retires, today)
            if status == "gone":
                raise ModelUnavailableError(
                    model, unavailable_message(model, day, where) + " (the date of its profile: the endpoint lists no models)",
                    shutdown_date=day, code="model_retired",
                ) from err
            statuses[model] = status
        warning = (f"{err.provider_message}: availability of {', '.join(sorted(models))} comes from the "
                   "profiles' retirement dates")
        return statuses, warning
    statuses = {}
    for model in models:
        status, day = model_status(model, offered, today)
        if status == "gone":
            raise ModelUnavailableError(model, unavailable_message(model, day, where), shutdown_date=day, code="model_retired")
        statuses[model] = status
    return statuses, None


def offered_now(profiles: list, provider: VideoProvider, today: date | None = None) -> dict[str, str]:
    """For ``soraflow models --check``: what the endpoint says of each profile's model, in words."""
    try:
        offered = offered_models(provider, sorted({p.model for p in profiles}))
    except ModelListUnavailable:
        words = {}
        for p in profiles:
            status, day = profile_status(p.retires, today)
            words[p.name] = f"lists no models; profile says {status}" + (f" ({day})" if day else "")
        return words
    words = {}
    for p in profiles:
        status, day = model_status(p.model, offered, today)
        words[p.name] = {"available": "yes", "retiring": f"yes, retiring {day}", "gone": f"no (retired {day})" if day else "no"}[status]
    return words
