"""What every task needs, built inside the task from settings, never passed as a parameter.

Clients and secrets as task parameters break cache hashing and leak into results
(docs/architecture.md, rule 5), so tasks receive plain data (ClipSpec, paths, URLs) and build the
provider, ledger and storage here.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import types
from functools import lru_cache
from pathlib import Path

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from prefect.variables import Variable

from soraflow import provenance
from soraflow.errors import (
    PermanentProviderError,
    RetryAfterTooLongError,
    SoraflowError,
    TransientProviderError,
    UnexpectedError,
    safe_error,
)
from soraflow.ledger import Deliveries, DeliveryWatch, Ledger, Slots, Spend, SpendCaps, WatchedPrices, parse_caps
from soraflow.models import ModelCatalog, Route, builtin_catalog, load_catalog
from soraflow.providers import Connection, VideoProvider, build_provider, connect
from soraflow.providers import credentials as endpoint_credentials
from soraflow.redaction import register_secret
from soraflow.settings import Settings
from soraflow.simulator import simulated_models
from soraflow.simulator.embedded import running_simulator

# The Prefect Variable holding the same YAML (as text, or as a JSON object) as SORAFLOW_MODELS,
# for deployments: one place on the server instead of a file on every worker.
MODELS_VARIABLE_NAME = "soraflow-models"
SECRET_CACHE_SECONDS = 300
# The Prefect Variable holding spend caps for deployments (beside the settings' own).
SPEND_CAPS_VARIABLE_NAME = "soraflow-spend-caps"


def settings() -> Settings:
    return Settings()


def ledger() -> Ledger:
    s = settings()
    return _ledger(s.resolved_ledger_url, s.ledger_lease_seconds)


@lru_cache(maxsize=8)
def _ledger(url: str, lease_seconds: float) -> Ledger:
    # One ledger (one connection pool, one schema check) per process, URL and lease; the URL may
    # hold a password and lives only in this in-memory lookup.
    return Ledger(url, lease_seconds=lease_seconds)


def spend() -> Spend:
    """The ledger's spend rows (reservations under the caps), one per process."""
    return _spend(ledger())


@lru_cache(maxsize=8)
def _spend(ledger: Ledger) -> Spend:
    return Spend(ledger)


def spend_caps() -> SpendCaps:
    """The caps of this run: the settings' and the Prefect Variable ``soraflow-spend-caps``'s
    (``{"day": 10, "month": 100, "endpoints": {"vertex": {"day": 5}}}``), the lower where both
    cap the same thing."""
    value = Variable.get(SPEND_CAPS_VARIABLE_NAME, default=None)
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else None
    return settings().spend_caps.tightest(parse_caps(value, f"Prefect Variable {SPEND_CAPS_VARIABLE_NAME}"))


def delivery_watch() -> DeliveryWatch:
    """The ledger's webhook deliveries, as clips of this process wait for them (one listener per process)."""
    return _delivery_watch(ledger())


@lru_cache(maxsize=8)
def _delivery_watch(ledger: Ledger) -> DeliveryWatch:
    return DeliveryWatch(Deliveries(ledger))


def watched_prices() -> WatchedPrices:
    """The prices the model watch last saw, kept in the ledger."""
    return WatchedPrices(ledger())


def slots() -> Slots:
    """The ledger's slots (caps on clips in flight, creates per minute), one per process."""
    return _slots(ledger(), settings().slot_lease_seconds)


@lru_cache(maxsize=8)
def _slots(ledger: Ledger, lease_seconds: float) -> Slots:
    return Slots(ledger, lease_seconds=lease_seconds)


def model_catalog() -> ModelCatalog:
    """The profiles and endpoints of this run: the built-in ones with the user's laid over,
    from ``SORAFLOW_MODELS`` if set, else from the Prefect Variable ``soraflow-models``."""
    path = settings().models
    if path is not None:
        p = Path(path).expanduser()
        try:
            stamp = p.stat()
        except OSError:
            return load_catalog(p)  # raises, naming the file
        return _catalog_from_file(str(p), stamp.st_mtime_ns, stamp.st_size)
    value = Variable.get(MODELS_VARIABLE_NAME, default=None)
    if value is None:
        return builtin_catalog()
    return _catalog_from_variable(value if isinstance(value, str) else json.dumps(value, sort_keys=True), isinstance(value, str))


@lru_cache(maxsize=8)
def _catalog_from_file(path: str, mtime_ns: int, size: int) -> ModelCatalog:
    return load_catalog(path)


@lru_cache(maxsize=8)
def _catalog_from_variable(value: str, is_text: bool) -> ModelCatalog:
    source = f"Prefect Variable {MODELS_VARIABLE_NAME}"
    return load_catalog(text=value, source=source) if is_text else load_catalog(data=json.loads(value), source=source)


def provider(route: Route, model: str | None = None) -> VideoProvider:
    """The provider for ``route``: one per endpoint, key and client options, shared by the task threads.

    A simulated route gets the process's embedded simulator, started here on first use and
    taught the catalog's models when ``model`` is one it does not serve yet. A real route gets
    the credential its entry names (``connect``: its variable's key, else its Prefect Secret
    block's, read here and never passed on; Entra ID; Application Default Credentials).
    """
    s = settings()
    if route.simulated:
        sim = running_simulator()
        teach = sim is None or (model is not None and not sim.serves(model, route.dialect))
        connection = connect(
            route,
            s.environment,
            simulated_models=simulated_models(model_catalog()) if teach else (),
            simulator_latency=s.simulator_latency,
            simulator_cache_dir=s.state_dir / "simulator-renders",
            profiles=model_catalog().profiles.values(),
        )
    else:
        connection = connect(route, s.environment, read_secret=secret_block_value, profiles=model_catalog().profiles.values())
    return _provider(connection, s.request_timeout_seconds, s.transient_retries)


def provider_for(spec) -> VideoProvider:
    """The provider of a clip's endpoint."""
    return provider(spec.route, spec.model)


@lru_cache(maxsize=32)
def _provider(connection: Connection, timeout: float, retries: int) -> VideoProvider:
    """A new openai client per call built a new TLS context (loading the CA bundle) and opened new
    connections: about an eighth of the flow's CPU with 12 clips in flight (py-spy, see
    bench/bench_generate.py). SDK clients are thread-safe and meant to be reused. The key is
    part of this in-memory lookup only (a rotated key gets a new client); it is never a task
    parameter, a cache key or a result."""
    return build_provider(connection, settings())


def credentials_problem(route: Route) -> str | None:
    """Why the provider of ``route`` could not get its credentials here, or None (its Prefect
    Secret block is read; Application Default Credentials are looked for). Never shows a value."""
    return endpoint_credentials.credentials_problem(route, settings().environment, secret_block_value)


def secret_block_value(name: str) -> str:
    """A Prefect Secret block's value, registered as a secret here, where it is read (the one
    place soraflow reads Secret blocks: an endpoint's key, a webhook secret, a signing key...).
    Re-read every SECRET_CACHE_SECONDS, so a rotated secret is picked up."""
    return _secret_value(name, int(time.monotonic() // SECRET_CACHE_SECONDS))


def signing_credentials() -> provenance.SigningCredentials | None:
    """The C2PA signer of this run, checked; None when none is configured. Its key comes from a
    file or a Prefect Secret block, read here (registered as a secret where it is read) and
    never passed to a task: the stitch task builds it itself."""
    return provenance.load_credentials(settings(), secret_block_value)


@lru_cache(maxsize=16)
def _secret_value(name: str, period: int) -> str:
    from prefect.blocks.system import Secret

    value = Secret.load(name, _sync=True).get()
    text = value if isinstance(value, str) else json.dumps(value)
    register_secret(text, f"Prefect Secret block {name}")
    if isinstance(value, dict):  # a JSON secret: each of its strings too
        for item in value.values():
            register_secret(item if isinstance(item, str) else None, f"Prefect Secret block {name}")
    return value


def aws_session():
    """A boto3 session from the named Prefect ``AwsCredentials`` block, or None for the AWS chain.

    Loaded inside the task, never passed in: a session holds secrets and would break caching.
    """
    name = settings().aws_credentials_block
    if not name:
        return None
    try:
        from prefect_aws import AwsCredentials
    except ImportError as err:  # pragma: no cover - optional dependency
        raise RuntimeError("SORAFLOW_AWS_CREDENTIALS_BLOCK needs prefect-aws: pip install 'soraflow[aws]'") from err
    block = AwsCredentials.load(name, _sync=True)
    for what in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        value = getattr(block, what, None)
        register_secret(value.get_secret_value() if hasattr(value, "get_secret_value") else value, f"AWS credentials block {name} {what}")
    return block.get_boto3_session()


def result_storage():
    """Where cached task results persist: under the state dir by default, or an s3:// URL.

    Prefect 3.8 accepts a ``Path`` (a local file system it builds itself) or a *saved*
    block; an unsaved block is refused, so the S3 bucket block is saved under a name
    derived from the URL (idempotently, no credentials in it: the AWS chain supplies them).
    """
    from pathlib import Path

    s = settings()
    target = s.result_storage or str(s.state_dir / "results")
    if not target.startswith("s3://"):
        return Path(target).expanduser().resolve()
    try:
        from prefect_aws.s3 import S3Bucket
    except ImportError as err:  # pragma: no cover - optional dependency
        raise RuntimeError("SORAFLOW_RESULT_STORAGE=s3://... needs prefect-aws: pip install 'soraflow[aws]'") from err
    import hashlib

    bucket, _, prefix = target[5:].partition("/")
    name = "soraflow-results-" + hashlib.sha256(target.encode()).hexdigest()[:12]
    S3Bucket(bucket_name=bucket, bucket_folder=prefix).save(name, overwrite=True)
    return f"s3-bucket/{name}"


def clean_errors(fn):
    """Run ``fn`` (a task's or a flow's function) so that what it raises may be stored: soraflow's
    typed errors as they are (redacted when made), anything else as an ``UnexpectedError``
    keeping the original's type name and a redacted, bounded message. Prefect pickles a failed
    run's exception into result storage and puts its text in the state: an SDK exception there
    would carry its response, its request's headers or the whole body it could not parse."""
    run = _safe_call(fn, safe_error, SoraflowError, logging.getLogger(f"soraflow.tasks.{fn.__name__}"))
    # The wrapper lives in ``fn``'s module namespace: Prefect and pydantic resolve a flow's
    # parameter annotations (strings, under ``from __future__ import annotations``) in the
    # function's globals, which a wrapper defined here would not have.
    wrapper = types.FunctionType(run.__code__, fn.__globals__, fn.__name__, None, run.__closure__)
    functools.update_wrapper(wrapper, fn)
    wrapper.__soraflow_clean_errors__ = True
    return wrapper


def _safe_call(fn, safe, typed, log):
    # Everything it uses is a closure variable (or a builtin), so it runs in any module's globals.
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typed:
            raise
        except Exception as err:  # noqa: BLE001 - every other failure, made safe to store
            # The original's traceback, for --debug on this machine's console only (redacted as
            # every record is): never sent to the Prefect server, never stored.
            log.debug("%s raised an error soraflow does not classify; kept as its type and message", fn.__name__, exc_info=True)
            raise safe(err) from None

    return run


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry transient failures only, never permanent ones."""
    try:
        state.result()
    except RetryAfterTooLongError:
        return False  # retrying is waiting as long as the endpoint asks, which is the problem
    except TransientProviderError:
        return True
    except UnexpectedError:
        return True  # a failure soraflow does not classify gets the retry policy
    except (PermanentProviderError, SoraflowError):
        return False
    except Exception:  # noqa: BLE001 - unknown failures get the retry policy
        return True
    return False


def clip_cache_key(stage: str):
    """A cache key from the clip key alone: task source and other parameters are not in it."""

    def key(context, parameters) -> str:
        # Only hex digits after the stage name: the key is a file name in the result storage,
        # so nothing user-given (a storage URL) may become nested directories there.
        return f"soraflow-{stage}-{parameters['spec'].clip_key}"

    return key


# Read once at import: Prefect fixes a task's retry policy when the task is defined.
_RETRY = Settings()
RETRY_OPTIONS = dict(
    retries=_RETRY.transient_retries,
    retry_delay_seconds=exponential_backoff(backoff_factor=_RETRY.retry_base_delay_seconds),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
)

__all__ = [
    "MODELS_VARIABLE_NAME",
    "SPEND_CAPS_VARIABLE_NAME",
    "NO_CACHE",
    "RETRY_OPTIONS",
    "clean_errors",
    "clip_cache_key",
    "credentials_problem",
    "delivery_watch",
    "ledger",
    "model_catalog",
    "provider",
    "provider_for",
    "retry_transient",
    "secret_block_value",
    "settings",
    "signing_credentials",
    "slots",
    "spend",
    "spend_caps",
]
