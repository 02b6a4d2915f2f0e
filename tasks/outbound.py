"""What soraflow publishes to the Prefect server on purpose, besides logs and states: artifacts and
events, each made of redacted data (every registered secret, URL userinfo and signed link removed:
soraflow.redaction). Every artifact and event soraflow makes is made here (tests/test_structure.py
checks that nothing else calls Prefect's artifact or event functions), so an endpoint's echoed key
in an error message, a failure table or a watch report is never published.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import artifacts
from prefect.events import emit_event

from soraflow.redaction import redact_data


def table_artifact(*, table: list[dict] | list[list], key: str | None = None, description: str | None = None) -> UUID:
    return artifacts.create_table_artifact(table=redact_data(table), key=key, description=redact_data(description))


def markdown_artifact(*, markdown: str, key: str | None = None, description: str | None = None) -> UUID:
    return artifacts.create_markdown_artifact(markdown=redact_data(markdown), key=key, description=redact_data(description))


def link_artifact(*, link: str, link_text: str | None = None, key: str | None = None, description: str | None = None) -> UUID:
    return artifacts.create_link_artifact(link=redact_data(link), link_text=redact_data(link_text), key=key, description=redact_data(description))


def progress_artifact(*, progress: float, description: str | None = None) -> UUID:
    return artifacts.create_progress_artifact(progress=progress, description=redact_data(description))


def update_progress(artifact_id: UUID, progress: float) -> None:
    artifacts.update_progress_artifact(artifact_id, progress=progress)


def event(*, event: str, resource: dict[str, str], payload: dict[str, Any] | None = None, **kwargs) -> Any:
    return emit_event(event=event, resource=redact_data(resource), payload=redact_data(payload), **kwargs)


__all__ = ["event", "link_artifact", "markdown_artifact", "progress_artifact", "table_artifact", "update_progress"]
