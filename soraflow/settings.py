"""Configuration, read from the environment (and a ``.env`` file) by pydantic-settings.

Everything here is ``SORAFLOW_*``. Endpoints read their own variables (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``, ``GOOGLE_CLOUD_PROJECT``, a gateway's key variable...) from
``Settings.environment``, by the names their profiles give (soraflow.models); no key is ever
a settings field, so none can reach a log, a result, a manifest or a cache key through here.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le
from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from .errors import InvalidSettingError, shown_value
from .redaction import redact_text, register_url_credentials
from .spend_caps import SpendCaps
from .terminal import printable

# Times: finite, and more than 0 where 0 would mean "never" or "at once" (a request timeout of 0
# made every request fail inside httpx; a simulator latency of inf, a render that never ends).
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
SecondsOrZero = Annotated[float, Field(ge=0, allow_inf_nan=False)]
ENV_PREFIX = "SORAFLOW_"
# A path the user set is shown whole in a message (a value from elsewhere is shortened to 80).
PATH_SHOWN_CHARS = 1000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    def __init__(self, **values: Any):
        """Settings from the environment (and ``.env``), with ``values`` over them; a value soraflow
        cannot use raises ``InvalidSettingError``: one line naming each variable, its value (a
        secret's is not shown) and what is allowed, instead of pydantic's report."""
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise InvalidSettingError(_setting_problems(type(self), err)) from None
        except _SourceError as err:  # a JSON value that does not parse (spend_caps_by_endpoint)
            raise InvalidSettingError(_source_problem(type(self), err)) from None

    # --- models and endpoints -----------------------------------------------------------
    models: Path | None = Field(
        default=None, description="A YAML file of model profiles and endpoints laid over the built-in ones."
    )
    simulate: bool = Field(
        default=False, description="Serve every endpoint from the embedded simulator, credentials or not."
    )
    request_timeout_seconds: Seconds = Field(default=60.0, description="Seconds one HTTP request to an endpoint may take.")

    # --- generation ---------------------------------------------------------------------
    allow_beyond_spec: bool = Field(
        default=False, description="Plan 16/20 s clips and 1080p sizes the live service accepted."
    )
    clip_deadline_seconds: Seconds = Field(
        default=3600.0,
        description="Give up polling a clip not finished by then (its job stays recorded: the next render polls it again).",
    )
    poll_min_interval_seconds: Seconds = Field(default=0.5, description="The shortest wait between two polls of a job.")
    poll_max_interval_seconds: Seconds = Field(default=30.0, description="The longest wait between two polls of a job.")
    webhook_safety_poll_seconds: Seconds = Field(
        default=60.0,
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
        default=60.0, ge=5, le=86400, allow_inf_nan=False,
        description="Lease on a clip's slots, renewed while it runs: how soon the slots of a render killed on another "
        "host return (on this host: at once).",
    )
    transient_retries: int = Field(default=6, ge=0, description="Retries of transient failures (429, 5xx, resets) per stage.")
    retry_base_delay_seconds: SecondsOrZero = Field(default=2.0, description="The first back-off between retries; it doubles, with jitter.")
    retry_max_delay_seconds: SecondsOrZero = Field(default=60.0, description="The longest back-off between two retries.")
    # The longest one clip waits for an endpoint's rate limit (429 retry-after), in one answer
    # or added up over its create attempts; beyond it the clip fails, naming the figure, rather
    # than sleeping for tens of minutes unannounced.
    max_retry_after_seconds: SecondsOrZero = Field(
        default=120.0,
        description="The longest a clip waits on an endpoint's rate limit (429 retry-after), in one answer or added "
        "up; beyond it the clip fails, naming the figure.",
    )

    # A download is bounded, so an endless answer ends: more bytes than this, or still sending
    # after this long, is refused (the job stays paid for and recorded: a rerun fetches it again).
    # A 20 s clip at 4K is far under 1 GiB.
    max_clip_bytes: int = Field(
        default=1 << 30, ge=1 << 16, description="The most bytes one clip's download may be; a longer answer is refused (a rerun fetches it again)."
    )
    download_timeout_seconds: Seconds = Field(
        default=1800.0, description="The longest one clip's download may take; a slower answer is refused (a rerun fetches it again)."
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
    out_dir_wait_seconds: SecondsOrZero = Field(
        default=3600.0,
        description="How long a render waits for another render writing into the same output directory (0: refuse at once).",
    )
    # A clip's claim is leased while its create is in flight. A worker on another host cannot
    # see the claimant's process, so it takes the claim over (and reconciles) only once the lease
    # has run out: the lease must outlast the longest create (checked below).
    ledger_lease_seconds: Seconds = Field(
        default=300.0,
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
    simulator_latency: Seconds = Field(
        default=2.0, description="Seconds from create to completed on the embedded simulator (fixed by its first start in a process)."
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
    transition_seconds: SecondsOrZero = Field(default=0.5, description="Length of a crossfade or fade between shots.")
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
        """Where the ledger lives: the URL (secret: never log it) or the SQLite file's path
        (in the state directory, made if missing). The URL's password is registered as a secret
        here, where it is read."""
        if self.ledger_url and self.ledger_url.get_secret_value():
            return register_url_credentials(self.ledger_url.get_secret_value(), "ledger URL")
        return str(self.ledger_path or (self.ensure_state_dir() / "ledger.sqlite"))

    def ensure_state_dir(self) -> Path:
        """The state directory, made if it is missing; ``InvalidSettingError`` (one line naming
        SORAFLOW_STATE_DIR) when it cannot be made or is not a directory."""
        path = self.state_dir.expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reason = err.strerror or type(err).__name__
            where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
            raise InvalidSettingError(
                f"invalid setting {ENV_PREFIX}STATE_DIR={printable(repr(str(self.state_dir)), PATH_SHOWN_CHARS)}: the directory cannot be made: "
                f"{reason}{where}; allowed: a directory this user can create and write (the ledger and results live there)"
            ) from None
        return path



def _variable(loc: tuple) -> tuple[str, str]:
    """The variable a validation error is about, and where inside its value (a JSON field's)."""
    name = f"{ENV_PREFIX}{str(loc[0]).upper()}" if loc else f"{ENV_PREFIX}*"
    return name, ".".join(str(p) for p in loc[1:])


def _shown(field: FieldInfo | None, value: Any) -> str:
    if field is not None and _is_secret(field.annotation):
        return "(a secret, not shown)"
    return shown_value(redact_text(value) if isinstance(value, str) else value)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(a) for a in get_args(annotation))


def allowed(field: FieldInfo, name: str = "") -> str:
    """What a settings field (named ``name``) allows, in words: its type and bounds."""
    annotation = field.annotation
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) is not Literal else []
    if args and get_origin(annotation) is not Literal and len(args) == 1:
        annotation = args[0]
    bounds = []
    for rule in field.metadata:
        if isinstance(rule, Gt):
            bounds.append(f"more than {rule.gt:g}")
        elif isinstance(rule, Ge):
            bounds.append(f"at least {rule.ge:g}")
        elif isinstance(rule, Le):
            bounds.append(f"at most {rule.le:g}")
    limits = f", {' and '.join(bounds)}" if bounds else ""
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(annotation))
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return f"a whole number{limits}"
    if annotation is float:
        unit = " of seconds" if name.endswith(("_seconds", "_latency")) else ""
        return f"a finite number{unit}{limits}"
    if annotation is Decimal:
        return f"a finite amount of USD{limits}"
    if annotation is Path:
        return "a path"
    if get_origin(annotation) is dict:
        return "a JSON object, e.g. " + (field.description.split("e.g. ", 1)[-1].rstrip(".") if field.description and "e.g. " in field.description else "{}")
    return "a text" if annotation is str else getattr(annotation, "__name__", str(annotation))


def _setting_problems(settings: type[BaseSettings], err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        field = settings.model_fields.get(str(loc[0])) if loc else None
        name, inside = _variable(loc)
        if e["type"] == "value_error" and str(e.get("ctx", {}).get("error", "")).startswith(name):
            lines.append(str(e["ctx"]["error"]))  # a rule across settings, worded by its validator
            continue
        what = allowed(field, str(loc[0])) if field is not None and not inside else e["msg"]
        at = f" at {inside}" if inside else ""
        lines.append(f"{name}={_shown(field, e.get('input'))}{at} is not allowed: {what}")
    return "invalid setting " + "; ".join(lines)


def _source_problem(settings: type[BaseSettings], err: Exception) -> str:
    match = re.search(r'field "([^"]+)"', str(err))
    field_name = match.group(1) if match else ""
    field = settings.model_fields.get(field_name)
    name = f"{ENV_PREFIX}{field_name.upper()}"
    value = os.environ.get(name, os.environ.get(name.lower()))
    cause = f" ({type(err.__cause__).__name__}: {err.__cause__})" if err.__cause__ else ""
    what = allowed(field, field_name) if field is not None else "a valid value"
    return f"invalid setting {name}={_shown(field, value)} is not allowed: it does not parse{cause}; allowed: {what}"


def get_settings(**overrides) -> Settings:
    """Fresh settings from the environment, with explicit overrides on top."""
    return Settings(**overrides)
