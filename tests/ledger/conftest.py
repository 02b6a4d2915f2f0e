"""Every ledger test runs on both backends: SQLite (a file) and Postgres (a real server)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path) -> str:
    """A fresh, empty ledger location: a SQLite file, or a new schema on the session's Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("postgres_server").fresh_schema()
