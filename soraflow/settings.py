"""Configuration, read from the environment (and a ``.env`` file) by pydantic-settings.

Everything here is ``SORAFLOW_*``. Endpoints read their own variables (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``, ``GOOGLE_CLOUD_PROJECT``, a gateway's key variable...) from
``Settings.environment``, by the names their profiles give (soraflow.models); no key is ever
a settings field, so none can reach a log, a result, a manifest or a cache key through here.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .redaction import register_url_credentials
from .spend_caps import SpendCaps


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SORAFLOW_", env_file=".env", extra="ignore", frozen=True
    )

    # --- models and endpoints -----------------------------------------------------------
    models: Path | None = Field(
        default=None, description="A YAML file of model profiles and endpoints laid over the built-in ones."
    )
    simulate: bool = Field(
        default=False, description="Serve every endpoint from the embedded simulator, credentials or not."
    )
    request_timeout_seconds: float = Field(default=60.0, description="Seconds one HTTP request to an endpoint may take.")

    # --- generation ---------------------------------------------------------------------
    allow_beyond_spec: bool = Field(
        default=False, description="Plan 16/20 s clips and 1080p sizes the live service accepted."
    )
    clip_deadline_seconds: float = Field(
        default=3600.0, gt=0,
        description="Give up polling a clip not finished by then (its job stays recorded: the next render polls it again).",
    )
    poll_min_interval_seconds: float = Field(default=0.5, gt=0, description="The shortest wait between two polls of a job.")
    poll_max_interval_seconds: float = Field(default=30.0, gt=0, description="The longest wait between two polls of a job.")
    webhook_safety_poll_seconds: float = Field(
        default=60.0, gt=0,
        description="A clip whose endpoint declares webhooks waits for a delivery and confirms it with one status call; it also "
        "asks the provider this long after its expected render time, and this often after that (the safety net for lost "
        "deliveries and a dead receiver).",
    )
    # Clips in flight and creates per minute, over every render sharing the ledger (the limit
    # ``all``; each model also has the limits its profile sets: soraflow.limits).
    max_concurrent_submissions: int = Field(
        default=4, ge=1, description="Clips in flight at once over every render sharing the ledger (the limit 'all')."
    )
    requests_per_minute: int = Field(
        default=60, ge=1, description="Creates per minute over every render sharing the ledger (the limit 'all')."
    )
    # A clip's slots are leased and renewed while it is in flight. A holder on this host whose
    # process is gone is released at once; one on another host (a shared Postgres ledger),
    # when its lease runs out.
    slot_lease_seconds: float = Field(
        default=60.0, ge=5, le=86400,
        description="Lease on a clip's slots, renewed while it runs: how soon the slots of a render killed on another "
        "host return (on this host: at once).",
    )
    transient_retries: int = Field(default=6, ge=0, description="Retries of transient failures (429, 5xx, resets) per stage.")
    retry_base_delay_seconds: float = Field(default=2.0, ge=0, description="The first back-off between retries; it doubles, with jitter.")
    retry_max_delay_seconds: float = Field(default=60.0, ge=0, description="The longest back-off between two retries.")
    # The longest one clip waits for an endpoint's rate limit (429 retry-after), in one answer
    # or added up over its create attempts; beyond it the clip fails, naming the figure, rather
    # than sleeping for tens of minutes unannounced.
    max_retry_after_seconds: float = Field(
        default=120.0, ge=0,
        description="The longest a clip waits on an endpoint's rate limit (429 retry-after), in one answer or added "
        "up; beyond it the clip fails, naming the figure.",
    )

    # --- where things live --------------------------------------------------------------
    storage: str | None = Field(
        default=None, description="Where clips and outputs are also kept: file:///path or s3://bucket/prefix; default: the output directory."
    )
    state_dir: Path = Field(
        default=Path.home() / ".soraflow",
        description="Local state: the SQLite ledger, cached task results, checked images. Never on a network file system.",
    )
    service_dir: Path = Field(
        default=Path.home() / "soraflow",
        description="Where a deployed flow run starts on a worker (the deployments' pull step enters "
        "it): the run form's relative out_dir and storyboard paths, and render-folder's inbox, are here.",
    )
    ledger_path: Path | None = Field(default=None, description="The SQLite ledger file; default STATE_DIR/ledger.sqlite.")
    ledger_url: SecretStr | None = Field(
        default=None,
        description="The ledger's database: postgresql+psycopg://USER:PASSWORD@HOST/DB when workers on several "
        "machines share it (its password never reaches logs), or sqlite:///PATH. Overrides ledger_path.",
    )
    # How long a render waits for another render writing into the same output directory
    # (saying which one every 30 s) before it gives up; 0 refuses at once.
    out_dir_wait_seconds: float = Field(
        default=3600.0, ge=0,
        description="How long a render waits for another render writing into the same output directory (0: refuse at once).",
    )
    # A clip's claim is leased while its create is in flight. A worker on another host cannot
    # see the claimant's process, so it takes the claim over (and reconciles) only once the lease
    # has run out: the lease must outlast the longest create (checked below).
    ledger_lease_seconds: float = Field(
        default=300.0, gt=0,
        description="A claim's lease: how soon a worker on another host takes over the claim of one that died (at "
        "least the request timeout + 30 s).",
    )
    s3_checksum_mode: Literal["when_supported", "when_required"] = Field(
        default="when_supported", description="when_required for S3-compatible stores that reject checksum headers."
    )
    aws_credentials_block: str | None = Field(
        default=None, description="The name of a Prefect AwsCredentials block for S3 (needs soraflow[aws]); default: the AWS chain."
    )
    # Lifetime of the links `soraflow link` makes (presigned links are never stored anywhere).
    presign_expiry_seconds: int = Field(
        default=3600, ge=1, le=7 * 24 * 3600,
        description="Lifetime of the presigned links `soraflow link` prints (none is ever stored).",
    )
    result_storage: str | None = Field(
        default=None, description="Where Prefect persists cached task results: a path (default STATE_DIR/results) or an s3:// URL (soraflow[aws])."
    )

    prefect_local_api: str = Field(
        default="http://127.0.0.1:4200/api",
        description="A Prefect server the CLI reports to when PREFECT_API_URL is not set and one answers "
        "here (where `prefect server start` listens); empty: always a temporary server.",
    )

    # --- spend caps (USD, per UTC day and month; reserved before each create, over every ----
    # render sharing the ledger). Deployments may also set the Prefect Variable
    # ``soraflow-spend-caps``; where both cap the same thing, the lower wins.
    spend_cap_day_usd: Decimal | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="USD every render sharing the ledger may pay per UTC day, over all endpoints."
    )
    spend_cap_month_usd: Decimal | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="USD every render sharing the ledger may pay per UTC month, over all endpoints."
    )
    spend_caps_by_endpoint: dict[str, dict[Literal["day", "month"], Decimal]] = Field(
        default_factory=dict, description='Caps per endpoint name, in USD per UTC day and month, e.g. {"vertex": {"day": 5, "month": 50}} (JSON).'
    )

    # --- the model watch ------------------------------------------------------------------
    pricing_source: str | None = Field(
        default=None,
        description="Today's prices over the profiles': LiteLLM's model_prices_and_context_window.json "
        "(mapped by each profile's price_source_key) or a {model: {size: USD/s}} table; an https URL or a file.",
    )
    pricing_source_secret: str | None = Field(
        default=None,
        description="A Prefect Secret block holding the pricing source's URL, for a URL with a token in it "
        "(read by the watch where it runs; never a flow run parameter).",
    )

    # --- the embedded simulator (used by `render` when no API key is set) -------------------
    simulator_latency: float = Field(
        default=2.0, gt=0, description="Seconds from create to completed on the embedded simulator (fixed by its first start in a process)."
    )

    # --- the review of takes (review: true) -------------------------------------------------
    # A run started ad hoc (the CLI, a script) pauses in its own process and waits this long for a
    # decision, then fails (Prefect's pause_flow_run; its own default is an hour). A run of a
    # deployment suspends instead: its worker is freed and it waits without a limit.
    review_pause_seconds: int = Field(
        default=24 * 3600, ge=60, le=30 * 24 * 3600,
        description="How long a render started ad hoc waits for a review's decision (it pauses in its own process), then fails; "
        "a deployment's run suspends instead and waits without a limit.",
    )
    review_poll_seconds: int = Field(
        default=5, ge=1, le=300, description="How often a render paused for review asks the Prefect server whether it was resumed."
    )

    # --- assembly -----------------------------------------------------------------------
    transition_seconds: float = Field(default=0.5, ge=0, description="Length of a crossfade or fade between shots.")
    burn_subtitles: bool = Field(default=False, description="Burn dialogue into the picture instead of a soft subtitle track.")

    # --- provenance: the film signed with a C2PA manifest (docs/provenance.md) ------------
    provenance: Literal["optional", "required"] = Field(
        default="optional",
        description="required: a render with no usable C2PA signer is refused before anything is paid; "
        "optional: the film is signed when a signer is configured, else made unsigned (said in one line).",
    )
    provenance_cert_chain: Path | None = Field(
        default=None, description="PEM file of the signing certificate chain, the signer's certificate first."
    )
    provenance_private_key: Path | None = Field(default=None, description="PEM file of the signing certificate's private key.")
    provenance_private_key_secret: str | None = Field(
        default=None, max_length=100, description="Or: the name of a Prefect Secret block holding that private key (PEM)."
    )
    provenance_private_key_password: SecretStr | None = Field(
        default=None,
        description="The password of an encrypted private key (file or Secret block); the key is decrypted in memory to sign.",
    )
    provenance_signing_alg: Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"] = Field(
        default="es256", description="The signature algorithm, as the key's type allows (C2PA's list)."
    )
    provenance_tsa_url: str | None = Field(
        default=None, max_length=2000, description="An RFC 3161 time-stamp authority that dates each signature."
    )
    provenance_trust_anchors: Path | None = Field(
        default=None, description="PEM file of root certificates `soraflow verify` trusts (then a film it signed reads Trusted)."
    )

    @field_validator("ledger_lease_seconds")
    @classmethod
    def _lease_outlasts_a_create(cls, lease: float, info: ValidationInfo) -> float:
        # A field validator, not a model one: pydantic's message then quotes this value alone,
        # never the other inputs (the API key, the ledger URL's password).
        timeout = info.data.get("request_timeout_seconds", 0.0)
        if lease < timeout + 30:
            raise ValueError(
                f"SORAFLOW_LEDGER_LEASE_SECONDS ({lease:g}) must be at least SORAFLOW_REQUEST_TIMEOUT_SECONDS "
                f"({timeout:g}) + 30: a create still in flight must never look abandoned to another worker"
            )
        return lease

    @field_validator("spend_caps_by_endpoint")
    @classmethod
    def _endpoint_caps_are_amounts(cls, caps: dict) -> dict:
        for name, periods in caps.items():
            for period, usd in periods.items():
                if not usd.is_finite() or usd < 0:
                    raise ValueError(f"SORAFLOW_SPEND_CAPS_BY_ENDPOINT: {name}.{period}: {usd} is not a finite amount of USD, 0 or more")
        return caps

    @property
    def spend_caps(self) -> SpendCaps:
        """The caps these settings set."""
        return SpendCaps(self.spend_cap_day_usd, self.spend_cap_month_usd, {k: dict(v) for k, v in self.spend_caps_by_endpoint.items()})

    @property
    def environment(self) -> dict[str, str]:
        """The process environment over the ``.env`` file: where endpoints find their
        variables (base URLs, key variables such as ``OPENAI_API_KEY``, Vertex project)."""
        env_file = self.model_config.get("env_file")
        from_file = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file else {}
        return {**from_file, **os.environ}

    @property
    def resolved_ledger_url(self) -> str:
        """Where the ledger lives: the URL (secret: never log it) or the SQLite file's path. The
        URL's password is registered as a secret here, where it is read."""
        if self.ledger_url and self.ledger_url.get_secret_value():
            return register_url_credentials(self.ledger_url.get_secret_value(), "ledger URL")
        return str(self.ledger_path or (self.state_dir / "ledger.sqlite"))



def get_settings(**overrides) -> Settings:
    """Fresh settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)
