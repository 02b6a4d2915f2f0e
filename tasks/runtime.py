"""What every task needs, built inside the task from settings, never passed as a parameter.

Clients and secrets as task parameters break cache hashing and leak into results
(docs/architecture.md, rule 5), so tasks receive plain data (ClipSpec, paths, URLs) and build the
provider, ledger and storage here.
"""

from __future__ import annotations

from functools import lru_cache

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from soraflow.errors import PermanentProviderError, RetryAfterTooLongError, SoraflowError, TransientProviderError
from soraflow.ledger import Ledger
from soraflow.providers import OpenAIVideosProvider
from soraflow.settings import Settings


def settings() -> Settings:
    return Settings()


@lru_cache(maxsize=8)
def _ledger(url: str) -> Ledger:
    # One ledger (one connection pool, one schema check) per process and URL; the URL may hold
    # a password and lives only in this in-memory lookup.
    return Ledger(url)


def ledger() -> Ledger:
    return _ledger(settings().resolved_ledger_url)


def provider() -> OpenAIVideosProvider:
    """One provider per endpoint, key and client options, shared by the task threads.

    A new openai client per call built a new TLS context (loading the CA bundle) and opened new
    connections: about an eighth of the flow's CPU with 12 clips in flight (py-spy, see
    bench/bench_generate.py). The openai client is thread-safe and meant to be reused.
    """
    s = settings()
    key = s.openai_api_key.get_secret_value() if s.openai_api_key else None
    return _provider(s.base_url, key, s.request_timeout_seconds, s.transient_retries)


@lru_cache(maxsize=8)
def _provider(base_url: str, api_key: str | None, timeout: float, retries: int) -> OpenAIVideosProvider:
    # The key is part of this in-memory lookup only (a rotated key gets a new client); it is
    # never a task parameter, a cache key or a result.
    return OpenAIVideosProvider(settings())


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
    return AwsCredentials.load(name, _sync=True).get_boto3_session()


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


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry transient failures only, never permanent ones."""
    try:
        state.result()
    except RetryAfterTooLongError:
        return False  # retrying is waiting as long as the endpoint asks, which is the problem
    except TransientProviderError:
        return True
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

__all__ = ["NO_CACHE", "RETRY_OPTIONS", "clip_cache_key", "ledger", "provider", "retry_transient", "settings"]
