"""Which models are retired, in every dialect: a model's ``shutdown_date``.

A model's date comes from ``model_shutdown_dates`` (by its own name, else its base model's:
``sora-2`` for ``sora-2-2025-10-06``), else from ``--shutdown`` (the real date,
OPENAI_SORA_SHUTDOWN_DATE), else it has none. A date on or before today retires the model:
each dialect refuses it as its service does.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from .config import SimulatorConfig

# OpenAI shut the Sora Videos API down on this date; --shutdown reports it.
OPENAI_SORA_SHUTDOWN_DATE = "2026-09-24"
SNAPSHOT = re.compile(r"^(?P<base>.+)-(?P<day>\d{4}-\d{2}-\d{2})$")


def _base(name: str) -> str:
    m = SNAPSHOT.match(name)
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
