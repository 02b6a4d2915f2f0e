"""Everything that shapes a simulator run, validated up front."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..models import ModelCatalog, builtin_catalog
from ..models.arguments import Arguments
from .faults import FaultPlan
from .veo.models import VEO_MODELS


class SimulatedModel(BaseModel):
    """One model the simulator serves in one dialect: what it accepts, as its profile says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    dialect: str = "openai-videos"
    seconds: tuple[int, ...] = Field(min_length=1)
    sizes: tuple[str, ...] = Field(min_length=1)
    # Sizes that come in fewer lengths than the model's (Veo: 1080p and 4k at 8 s only).
    size_seconds: dict[str, tuple[int, ...]] = Field(default_factory=dict)
    prompt_max_chars: int = Field(default=32000, ge=1)
    # fal: the endpoint's arguments, as its profile's table says it takes them, and its sound.
    arguments: Arguments | None = None
    audio: Literal["always", "on-request", "never"] = "always"
    # fal's pricing API: USD per second of a request with the endpoint's defaults (sound on).
    unit_price: float | None = None

    def seconds_at(self, size: str) -> tuple[int, ...]:
        return self.size_seconds.get(size, self.seconds)


def simulated_models(catalog: ModelCatalog) -> list[SimulatedModel]:
    """Every profile's model, in its endpoint's dialect, accepting all it offers (beyond spec too)."""
    models: dict[tuple[str, str], SimulatedModel] = {}
    for profile in catalog.profiles.values():
        dialect = catalog.endpoint_of(profile).dialect
        models.setdefault((dialect, profile.model), SimulatedModel(
            id=profile.model,
            dialect=dialect,
            seconds=profile.all_seconds(),
            sizes=profile.size_names(allow_beyond_spec=True),
            size_seconds={o.size: o.seconds for o in profile.sizes if o.seconds},
            prompt_max_chars=profile.prompt_max_chars,
            arguments=profile.arguments,
            audio=profile.audio,
            unit_price=float(profile.sizes[0].usd_per_second),
        ))
    return sorted(models.values(), key=lambda m: (m.dialect, m.id))


def _builtin_models() -> list[SimulatedModel]:
    return simulated_models(builtin_catalog())


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[SimulatedModel] = Field(
        default_factory=_builtin_models,
        description="The models served and what each accepts (default: every built-in profile's).",
    )
    latency: float = Field(default=1.0, ge=0, allow_inf_nan=False, description="Seconds from create to completed.")
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
    ttl_seconds: float = Field(default=3600.0, gt=0, allow_inf_nan=False, description="How long content stays downloadable.")
    stall_seconds: float = Field(default=30.0, ge=0, allow_inf_nan=False, description="How long a stalled response is held.")
    retry_after_seconds: float = Field(default=1.0, ge=0, description="retry-after sent with a 429.")
    poll_after_hint: bool = Field(default=True, description="Send openai-poll-after-ms on retrieve.")
    cache_dir: str | None = Field(default=None, description="Render cache; default: a temp dir.")
    render_workers: int | None = Field(default=None, ge=1, description="Default: the number of cores.")
    validate_requests: bool = Field(
        default=False, description="Check every /v1 request against the reference OpenAPI (openapi-core)."
    )
    api_key: str = Field(default="sk-simulator", min_length=1, description="A key to hand to clients.")
    fal_history_lag_seconds: float = Field(
        default=0.0, ge=0, description="fal's request history lists a finished request only this long after it ended."
    )
    fal_history: Literal["serve", "forbid", "down"] = Field(
        default="serve", description="fal's request history: served, refused (403, a key without access), or down (503)."
    )
    fal_prices: dict[str, float] = Field(
        default_factory=dict, description="fal's pricing API: USD per unit by endpoint id (default: its profile's sound-on price)."
    )
    # Webhook deliveries (webhooks.py): the openai-videos project's webhook, and their faults.
    webhook_url: str | None = Field(default=None, description="Where the openai-videos project's webhooks go (POST).")
    webhook_secret: str | None = Field(default=None, repr=False, description="Its whsec_ secret (default: a new one).")
    webhook_faults: str = Field(default="", description='e.g. "drop=0.3,duplicate=0.1,delay=0.1,reorder=0.1,bad_signature=0.1"')
    webhook_attempts: int = Field(default=10, ge=1, le=50, description="Attempts per delivery (fal: 10).")
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0: any free port.")
    fal_port: int = Field(default=0, ge=0, le=65535, description="The fal dialect's TLS port (0: any free port).")
    fal_proxy_port: int = Field(default=0, ge=0, le=65535, description="The proxy for fal-client's storage hosts (0: any).")

    @field_validator("faults")
    @classmethod
    def _faults_parse(cls, value: str) -> str:
        FaultPlan.parse(value)
        return value

    @field_validator("webhook_faults")
    @classmethod
    def _webhook_faults_parse(cls, value: str) -> str:
        from .webhooks import parse_webhook_faults

        parse_webhook_faults(value)
        return value

    @model_validator(mode="after")
    def _dates_are_iso(self) -> "SimulatorConfig":
        names = {m.id for m in self.models} | set(VEO_MODELS)
        for model, day in self.model_shutdown_dates.items():
            if model not in names:
                raise ValueError(f"model_shutdown_dates: unknown model {model!r}; served: {', '.join(sorted(names))}")
            try:
                date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"model_shutdown_dates[{model!r}]: {day!r} is not an ISO date (YYYY-MM-DD)") from None
        return self

    def model(self, name: str, dialect: str = "openai-videos") -> SimulatedModel | None:
        return next((m for m in self.models if m.id == name and m.dialect == dialect), None)

    def model_names(self, dialect: str = "openai-videos") -> list[str]:
        return sorted(m.id for m in self.models if m.dialect == dialect)

    def serve_models(self, models: list[SimulatedModel]) -> None:
        """Serve these models too (a model already served keeps what it accepts)."""
        known = {(m.dialect, m.id) for m in self.models}
        new = [m for m in models if (m.dialect, m.id) not in known]
        if new:
            self.models = [*self.models, *new]  # one assignment: readers see the old or the new list
