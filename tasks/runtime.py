"""What every task needs, built inside the task from settings, never passed as a parameter.

Clients and secrets as task parameters break cache hashing and leak into results
(DESIGN.md rule 4), so tasks receive plain data (ClipSpec, paths, URLs) and build the
provider, ledger and storage here.
"""

from __future__ import annotations

from functools import lru_cache

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from soraflow.errors import PermanentProviderError, SoraflowError, TransientProviderError
from soraflow.ledger import Ledger
from soraflow.providers import OpenAIVideosProvider
from soraflow.settings import Settings


def settings() -> Settings:
    return Settings()


@lru_cache(maxsize=8)
def _ledger(path: str) -> Ledger:
    return Ledger(path)


def ledger() -> Ledger:
    return _ledger(str(settings().resolved_ledger_path))


def provider() -> OpenAIVideosProvider:
    return OpenAIVideosProvider(settings())


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry transient failures only, never permanent ones."""
    try:
        state.result()
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
        spec = parameters["spec"]
        extra = parameters.get("storage_url") or ""
        return f"soraflow-{stage}-{spec.clip_key}-{extra}" if extra else f"soraflow-{stage}-{spec.clip_key}"

    return key


RETRY_OPTIONS = dict(
    retries=Settings().transient_retries,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
)

__all__ = ["NO_CACHE", "RETRY_OPTIONS", "clip_cache_key", "ledger", "provider", "retry_transient", "settings"]
