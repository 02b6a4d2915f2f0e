"""The two databases a ledger can live in, behind one small interface.

- ``SqliteBackend``: a file (``SORAFLOW_STATE_DIR/ledger.sqlite`` by default) in WAL mode.
  Every write transaction starts with ``BEGIN IMMEDIATE``, which takes the database's write
  lock before the first read: a claim's read-then-write cannot interleave with another
  process's. Safe for processes on one machine (a local disk), never on a network file system.
- ``PostgresBackend``: ``postgresql+psycopg://`` for workers on several machines. A claim is
  ``INSERT ... ON CONFLICT DO NOTHING`` followed by ``SELECT ... FOR UPDATE`` on the clip's row:
  the row lock makes the claim atomic across machines. Leases are judged by the database's
  clock, so workers whose clocks disagree still agree on when a lease has run out.

The ledger's queries are the same SQLAlchemy Core statements on both; only what differs is here.
"""

from __future__ import annotations

import os
import time
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import LedgerError
from ..redaction import redact_text

# Engines of this process; a forked child must not reuse (or close) its parent's connections.
_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _forget_parent_connections() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def redacted(url: URL) -> str:
    """The URL as it may be shown: no userinfo, no password in its query (the schema option stays)."""
    shown = url.difference_update_query(["password", "sslpassword", "passfile"])
    return redact_text(shown.render_as_string(hide_password=False))


class SqliteBackend:
    name = "sqlite"

    def __init__(self, url: URL):
        if not url.database or url.database == ":memory:":
            raise LedgerError("SORAFLOW_LEDGER_URL: a ledger in memory forgets what was paid; give sqlite:///PATH")
        path = Path(url.database).expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LedgerError(f"the ledger's directory {path.parent} cannot be made: {err.strerror or type(err).__name__}") from None
        self.url = url.set(database=str(path))
        self.path = path

    def create_engine(self) -> Engine:
        engine = create_engine(self.url, connect_args={"timeout": 30.0})

        # pysqlite's own transaction handling starts transactions late and never IMMEDIATE;
        # SQLAlchemy's documented recipe hands BEGIN to us (docs: "Serializable isolation /
        # Savepoints / Transactional DDL" for pysqlite).
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA busy_timeout=30000")
            # WAL lets readers run beside the writer (a property of the file: a no-op once set).
            # synchronous stays FULL, the default: a recorded job id survives a power cut.
            dbapi_connection.execute("PRAGMA journal_mode=WAL")

        @event.listens_for(engine, "begin")
        def _begin(conn):
            read_only = conn.get_execution_options().get("ledger_read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine

    def insert(self, table):
        from sqlalchemy.dialects.sqlite import insert

        return insert(table)

    def now(self, conn) -> float:
        return time.time()  # one machine, one clock

    def lock_schema(self, conn) -> None:
        """Nothing to add: BEGIN IMMEDIATE already holds the database's write lock."""

    def lock_spend(self, conn) -> None:
        """Nothing to add: BEGIN IMMEDIATE already serialises every reservation."""

    def notify(self, conn, channel: str, payload: str) -> None:
        """Nothing to send: waiters on one machine read the table's new rows (ledger._deliveries)."""


class PostgresBackend:
    name = "postgresql"
    # An arbitrary, fixed key: every soraflow process migrating this database takes this lock.
    _MIGRATION_LOCK = 0x50F1_0ED6
    # Another fixed key: reservations under the spend caps, one at a time over every worker.
    _SPEND_LOCK = 0x50F1_5BE0

    def __init__(self, url: URL):
        self.url = url.set(drivername="postgresql+psycopg")

    def create_engine(self) -> Engine:
        try:
            import psycopg  # noqa: F401
        except ImportError as err:
            raise LedgerError(
                "SORAFLOW_LEDGER_URL is a Postgres URL but psycopg is not installed: pip install 'soraflow[postgres]'"
            ) from err
        # pre_ping: a connection the server dropped (restart, failover) is replaced, not used.
        return create_engine(self.url, pool_pre_ping=True, connect_args={"application_name": "soraflow-ledger"})

    def insert(self, table):
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)

    def now(self, conn) -> float:
        return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())

    def lock_schema(self, conn) -> None:
        # Held until the migrating transaction ends; DDL is transactional on Postgres, so a
        # second process waits here and then finds the schema already at head.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._MIGRATION_LOCK})

    def lock_spend(self, conn) -> None:
        # The caps are sums over many rows (no row to lock), so a transaction-scoped advisory
        # lock makes check-then-reserve atomic across workers; it is held for one short insert.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._SPEND_LOCK})

    def notify(self, conn, channel: str, payload: str) -> None:
        # Delivered to every LISTENing session when the transaction commits, never before.
        conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


Backend = SqliteBackend | PostgresBackend


def backend_for(target: str | Path) -> Backend:
    """The backend of a ledger URL, or of a plain file path (SQLite)."""
    if isinstance(target, Path) or "://" not in str(target):
        return SqliteBackend(URL.create("sqlite", database=str(target)))
    try:
        url = make_url(str(target))
    except ArgumentError:
        raise LedgerError("SORAFLOW_LEDGER_URL is not a database URL; allowed: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB") from None
    dialect, _, driver = url.drivername.partition("+")
    if dialect == "sqlite" and driver in ("", "pysqlite"):
        return SqliteBackend(url)
    if dialect in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return PostgresBackend(url)
    raise LedgerError(
        f"SORAFLOW_LEDGER_URL: {url.drivername!r} is not supported; allowed: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
    )


def open_engine(backend: Backend) -> Engine:
    engine = backend.create_engine()
    _ENGINES.add(engine)
    return engine
