"""The model watch: which models each endpoint still serves, and what a generated second costs.

- ``availability``: is a model still served at its endpoint (its ``/models`` list, else its
  profile's retirement date)? The preflight asks it before anything is paid; the watch asks it
  on a schedule.
- ``pricing``: where today's prices come from (LiteLLM's public price list mapped onto the
  profiles, or a table of your own), every value checked before it is trusted.
- ``changes``: what changed since the last watch (a model gone, retiring, back; a price), as
  plain data the Prefect flow turns into events and an artifact.
"""

from .changes import (
    SeenModels,
    WATCH_VARIABLE_NAME,
    Change,
    ModelReport,
    PriceChange,
    WatchReport,
    compare,
    effective_prices,
    profile_prices,
    remember,
    seen_for,
    watch_markdown,
    watched_models,
)

__all__ = [
    "WATCH_VARIABLE_NAME",
    "Change",
    "ModelReport",
    "PriceChange",
    "SeenModels",
    "WatchReport",
    "compare",
    "effective_prices",
    "profile_prices",
    "remember",
    "seen_for",
    "watch_markdown",
    "watched_models",
]
