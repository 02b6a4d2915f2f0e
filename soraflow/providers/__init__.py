"""Video providers: one protocol, one class per API dialect on its official SDK, chosen by the
endpoint's dialect.

    provider = build_provider(connection, settings)    # connection = connect(route, env)

``PROVIDERS`` maps a dialect to what builds its provider from a connection; a new dialect
registers there (or through ``register_provider``) and nothing else in the pipeline changes.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable

from ..errors import PermanentProviderError
from ..settings import Settings
from .base import TERMINAL, Download, ModelInfo, ModelListUnavailable, VideoJob, VideoProvider
from .connection import Connection, connect

if TYPE_CHECKING:
    from .fal_queue import FalQueueProvider
    from .google_veo import GoogleVeoProvider
    from .openai_videos import OpenAIVideosProvider

ProviderFactory = Callable[[Connection, Settings], VideoProvider]


# Each dialect's SDK is imported when a provider of that dialect is built, not when soraflow is:
# google-genai and openai take about a second to import on this machine's cores, and commands
# that never reach an endpoint (estimate, an up-to-date rerun, spend, limits, jobs) need neither.
def _openai_videos(connection: Connection, settings: Settings) -> "OpenAIVideosProvider":
    from .openai_videos import OpenAIVideosProvider

    return OpenAIVideosProvider(connection, settings)


def _google_veo(connection: Connection, settings: Settings) -> "GoogleVeoProvider":
    """Veo with the connection's key (express mode) or project and location (ADC)."""
    from .google_veo import GoogleVeoProvider

    return GoogleVeoProvider(
        api_key=connection.api_key,
        project=connection.project,
        location=connection.location,
        base_url=connection.base_url,
        timeout_seconds=settings.request_timeout_seconds,
        read_attempts=settings.transient_retries + 1,
        retry_initial_delay=settings.retry_base_delay_seconds,
        retry_max_delay=settings.retry_max_delay_seconds,
        where=connection.where,
    )


def _fal_queue(connection: Connection, settings: Settings) -> "FalQueueProvider":
    """fal's queue through fal-client, with the arguments tables of the endpoint's profiles."""
    from .fal_queue import FalQueueProvider

    return FalQueueProvider(connection, settings)


# Keyed by each class's ``dialect`` (tests/providers checks that they agree).
PROVIDERS: dict[str, ProviderFactory] = {
    "openai-videos": _openai_videos,
    "google-genai": _google_veo,
    "fal": _fal_queue,
}

_LAZY = {
    "OpenAIVideosProvider": ".openai_videos",
    "classify": ".openai_videos",
    "GoogleVeoProvider": ".google_veo",
    "FalQueueProvider": ".fal_queue",
}


def __getattr__(name: str) -> Any:
    """The provider classes, imported on first use (with their SDKs)."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_provider(dialect: str, factory: ProviderFactory) -> None:
    """Serve ``dialect`` with ``factory(connection, settings)`` (a provider class taking those)."""
    PROVIDERS[dialect] = factory


def build_provider(connection: Connection, settings: Settings) -> VideoProvider:
    dialect = connection.route.dialect
    try:
        factory = PROVIDERS[dialect]
    except KeyError:
        raise PermanentProviderError(
            f"endpoint {connection.where} speaks {dialect}, which this soraflow has no provider for "
            f"(it has: {', '.join(sorted(PROVIDERS))})",
            code="no_provider",
        ) from None
    return factory(connection, settings)


__all__ = [
    "PROVIDERS",
    "TERMINAL",
    "Connection",
    "Download",
    "FalQueueProvider",
    "GoogleVeoProvider",
    "ModelInfo",
    "ModelListUnavailable",
    "OpenAIVideosProvider",
    "VideoJob",
    "VideoProvider",
    "build_provider",
    "classify",
    "connect",
    "register_provider",
]
