"""Everything that shapes a simulator run, validated up front."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import catalog
from ..errors import CatalogError
from .faults import FaultPlan
from .veo.models import VEO_MODELS


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency: float = Field(default=1.0, ge=0, description="Seconds from create to completed.")
    faults: str = Field(default="", description='e.g. "429=0.1,500=0.05,reset=0.05,stall=0.02,moderation=0.1"')
    seed: int | None = Field(default=None, description="Makes faults repeatable.")
    shutdown: bool = Field(
        default=False, description="Answer as retired services do: Sora's model_not_found, Veo's 'Publisher Model … was not found'."
    )
    shutdown_listing: Literal["past_date", "omit"] = Field(
        default="past_date",
        description="How /v1/models shows retired models: with their past shutdown_date, or not at all.",
    )
    model_shutdown_dates: dict[str, str] = Field(
        default_factory=dict,
        description="Per-model shutdown_date (ISO date); a past date retires the model, a future one "
        "marks it retiring.",
    )
    moderation_terms: list[str] = Field(
        default_factory=list,
        description="Jobs whose prompt contains one of these (case-insensitive) end failed with "
        "moderation_blocked, as content the service's moderation rejects.",
    )
    ttl_seconds: float = Field(default=3600.0, gt=0, description="How long content stays downloadable.")
    stall_seconds: float = Field(default=30.0, ge=0, description="How long a stalled response is held.")
    retry_after_seconds: float = Field(default=1.0, ge=0, description="retry-after sent with a 429.")
    poll_after_hint: bool = Field(default=True, description="Send openai-poll-after-ms on retrieve.")
    cache_dir: str | None = Field(default=None, description="Render cache; default: a temp dir.")
    render_workers: int | None = Field(default=None, ge=1, description="Default: the number of cores.")
    validate_requests: bool = Field(
        default=False, description="Check every /v1 request against the reference OpenAPI (openapi-core)."
    )
    api_key: str = Field(default="sk-simulator", min_length=1, description="A key to hand to clients.")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0: any free port.")

    @field_validator("faults")
    @classmethod
    def _faults_parse(cls, value: str) -> str:
        FaultPlan.parse(value)
        return value

    @field_validator("model_shutdown_dates")
    @classmethod
    def _dates_are_iso(cls, value: dict[str, str]) -> dict[str, str]:
        for model, day in value.items():
            try:
                if model not in VEO_MODELS:
                    catalog.get_model(model)
            except CatalogError as err:
                raise ValueError(f"model_shutdown_dates: {err}") from None
            try:
                date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"model_shutdown_dates[{model!r}]: {day!r} is not an ISO date (YYYY-MM-DD)") from None
        return value
