"""Video providers: one protocol, one class per API dialect on its official SDK, chosen by the
endpoint's dialect.

    provider = build_provider(connection, settings)    # connection = connect(route, env)

``PROVIDERS`` maps a dialect to what builds its provider from a connection; a new dialect
registers there (or through ``register_provider``) and nothing else in the pipeline changes.
"""

from __future__ import annotations

from typing import Callable

from ..errors import PermanentProviderError
from ..settings import Settings
from .base import TERMINAL, Download, ModelInfo, VideoJob, VideoProvider
from .connection import Connection, connect
from .google_veo import GoogleVeoProvider
from .openai_videos import ModelListUnavailable, OpenAIVideosProvider, classify

ProviderFactory = Callable[[Connection, Settings], VideoProvider]


def _google_veo(connection: Connection, settings: Settings) -> GoogleVeoProvider:
    """Veo with the connection's key (express mode) or project and location (ADC)."""
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


PROVIDERS: dict[str, ProviderFactory] = {
    OpenAIVideosProvider.dialect: OpenAIVideosProvider,
    GoogleVeoProvider.dialect: _google_veo,
}


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
