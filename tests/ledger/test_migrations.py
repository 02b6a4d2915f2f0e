"""Versioned schema: fresh ledgers, round-1 files upgraded in place, many first opens at once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from soraflow.errors import LedgerError
from soraflow.ledger import ClaimKind, Ledger, owner_id
from soraflow.ledger import _migrate
from soraflow.ledger._tables import metadata
from soraflow.providers.base import VideoJob

ROUND_ONE_SQL = (Path(__file__).parent / "round_one_schema.sql").read_text()
CLIP = dict(shot_id="a", part=1, model="sora-2", size="1280x720", seconds=8, prompt_sha256="p")


def test_head_constant_is_the_newest_revision():
    assert _migrate.HEAD == _migrate.script_head()


def test_migrated_schema_is_the_schema_the_code_uses(ledger_url):
    led = Ledger(ledger_url)
    with led._engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": _migrate.VERSION_TABLE})
        assert compare_metadata(ctx, metadata) == []
    assert _migrate.current_revision(led._engine) == _migrate.HEAD


def test_round_one_sqlite_ledger_is_upgraded_in_place(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:  # written as round 1 wrote it
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(ROUND_ONE_SQL)
        now = time.time()
        db.execute(
            "INSERT INTO clips (clip_key, shot_id, part, model, size, seconds, prompt_sha256, state, job_id,"
            " submitted_at, job_status, progress, updated_at) VALUES ('k1','a',1,'sora-2','1280x720',8,'p',"
            "'completed','video_1',?,'completed',100,?)",
            (now, now),
        )
        db.execute("INSERT INTO clips (clip_key, shot_id, part, model, size, seconds, prompt_sha256, state, owner,"
                   " create_started, lease_until, updated_at) VALUES ('k2','b',1,'sora-2','1280x720',8,'q','creating',"
                   " 'gone-host:1:1', ?, ?, ?)", (now, now - 1, now))  # fmt: skip
        db.execute("INSERT INTO jobs VALUES ('video_1', 'k1', ?, 'created')", (now,))
    db.close()

    led = Ledger(path)
    assert _migrate.current_revision(led._engine) == _migrate.HEAD
    # what round 1 recorded is intact and means what it meant
    claim = led.claim_create(clip_key="k1", **CLIP, owner=owner_id())
    assert (claim.kind, claim.job_id) == (ClaimKind.HAVE_JOB, "video_1")
    assert led.jobs_for("k1") == ["video_1"]
    assert led.claim_create(clip_key="k2", **{**CLIP, "shot_id": "b", "prompt_sha256": "q"}, owner=owner_id()).kind is ClaimKind.RECONCILE
    # and the new columns and table are there
    led.claim_create(clip_key="k3", **CLIP, owner=owner_id(), endpoint="sim", profile="sora-2", price_usd=Decimal("0.80"))
    assert (led.get("k3").endpoint, led.get("k3").profile, led.get("k3").price_usd) == ("sim", "sora-2", Decimal("0.80"))
    assert led.get("k1").price_usd is None
    assert [a.action for a in led.actions()] == ["takeover"]
    with led._engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        ctx = MigrationContext.configure(conn, opts={"version_table": _migrate.VERSION_TABLE})
        # No missing or extra table, column or index. What differs is how round 1 spelled things:
        # REAL for DOUBLE, and SQLite's legacy "TEXT PRIMARY KEY" that does not forbid NULL
        # (the ledger never writes a NULL key; rebuilding both tables for it is not worth it).
        diffs = [d[0] if isinstance(d, list) else d for d in compare_metadata(ctx, metadata)]
        assert {d[0] for d in diffs} <= {"modify_type", "modify_nullable"}
        assert {(d[2], d[3]) for d in diffs if d[0] == "modify_nullable"} == {("clips", "clip_key"), ("jobs", "job_id")}


def _open(url, start, results):
    start.wait(30)
    try:
        Ledger(url)
        results.put("ok")
    except Exception as err:  # noqa: BLE001 - reported to the test
        results.put(repr(err))


def test_many_first_opens_at_once_migrate_once(ledger_url):
    start, results = mp.Event(), mp.Queue()
    procs = [mp.Process(target=_open, args=(ledger_url, start, results)) for _ in range(5)]
    for p in procs:
        p.start()
    start.set()
    assert [results.get(timeout=60) for _ in procs] == ["ok"] * 5
    for p in procs:
        p.join(10)
    led = Ledger(ledger_url)
    with led._engine.connect() as conn:
        assert conn.execute(text(f"SELECT version_num FROM {_migrate.VERSION_TABLE}")).scalars().all() == [_migrate.HEAD]


def test_downgrade_and_upgrade_round_trip(ledger_url):
    led = Ledger(ledger_url)
    led.claim_create(clip_key="k1", **CLIP, owner=owner_id(), price_usd=Decimal("0.40"))
    led.record_job("k1", VideoJob(id="video_1", status="queued"))
    with led._engine.begin() as conn:
        command.downgrade(_migrate._config(conn), _migrate.ROUND_ONE)
    assert _migrate.current_revision(led._engine) == _migrate.ROUND_ONE
    led.close()
    again = Ledger(ledger_url)
    assert again.get("k1").job_id == "video_1" and again.get("k1").price_usd is None


def test_ledger_of_a_newer_soraflow_is_refused(ledger_url):
    led = Ledger(ledger_url)
    with led._engine.begin() as conn:
        conn.execute(text(f"UPDATE {_migrate.VERSION_TABLE} SET version_num = '0999'"))
    with pytest.raises(LedgerError, match=r"schema revision '0999', newer than this soraflow knows"):
        Ledger(ledger_url)
