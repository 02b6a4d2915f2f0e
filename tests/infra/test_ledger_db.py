"""infra/ledger-db.sql, as the compose file's ledger-db-init runs it, on a real Postgres."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from soraflow.errors import LedgerError
from soraflow.ledger import ClaimKind, Ledger, owner_id
from tests.fixtures.postgres import PG_TEST_PASSWORD, PG_TEST_USER

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "ledger-db.sql"


def run_script(pg, password: str) -> None:
    subprocess.run(
        [str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"ledger_password={password}",
         "-h", "127.0.0.1", "-p", str(pg.port), "-U", PG_TEST_USER, "-d", "postgres", "-f", str(SCRIPT)],
        env={"PGPASSWORD": PG_TEST_PASSWORD, "PATH": "/usr/bin:/bin"},
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def test_the_ledger_database_is_created_once_and_the_worker_role_can_migrate_and_claim(postgres_server):
    pg = postgres_server
    run_script(pg, "first-pw-1111")
    run_script(pg, "rotated-pw-2222")  # every `up` runs it again: nothing fails, the password follows
    url = f"postgresql+psycopg://soraflow_ledger:rotated-pw-2222@127.0.0.1:{pg.port}/soraflow_ledger"
    led = Ledger(url)  # the worker's role creates the schema (Alembic) in its own database
    assert led.claim_create(clip_key="k", shot_id="a", part=1, model="m", size="s", seconds=4, prompt_sha256="p",
                            owner=owner_id()).kind is ClaimKind.CLAIMED  # fmt: skip
    with pytest.raises(LedgerError, match="password authentication failed"):
        Ledger(url.replace("rotated-pw-2222", "first-pw-1111"))
    # elsewhere on the server (Prefect's database) the role can create nothing: one clean line
    pg.execute("CREATE DATABASE prefect_here")
    with pytest.raises(LedgerError, match="permission denied for schema public"):
        Ledger(f"postgresql+psycopg://soraflow_ledger:rotated-pw-2222@127.0.0.1:{pg.port}/prefect_here")
