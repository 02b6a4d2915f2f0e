"""The ``soraflow`` command line (typer + rich), one module per command group:

- ``render``: ``estimate``, ``render``, ``link``;
- ``models``: ``models``, ``watch``;
- ``jobs``: ``jobs`` and its settling commands;
- ``spend``: ``spend``, ``limits``;
- ``simulator``: ``simulator``;
- ``review``: ``review`` (the review page);
- ``service``: ``bootstrap``;
- ``webhooks``: ``webhooks serve`` (the receiver of webhook deliveries);
- ``provenance``: ``provenance dev-cert``, ``verify``.

Prefect is imported lazily inside the commands that run flows, so ``estimate`` and
``render --dry-run`` answer in well under a second and the core stays Prefect-free.
"""

from __future__ import annotations

from . import jobs, models, provenance, render, review, service, simulator, spend, webhooks  # noqa: F401 - each registers its commands
from ._app import app


def main() -> None:  # pragma: no cover - console script shim
    app()


__all__ = ["app", "main"]
