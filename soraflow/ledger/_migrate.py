"""Versioned schema migrations (Alembic), run when a ledger is opened.

Alembic ships with Prefect already and is what SQLAlchemy projects use: ordered, reviewed
revision files, one version table, the same code path on SQLite and Postgres. The revisions
live in the package (``soraflow/ledger/migrations/versions``) and run through its API, so no
``alembic.ini`` is needed where soraflow is installed.

- The version table is ``soraflow_ledger_version``, not Alembic's default ``alembic_version``,
  which Prefect's own database uses: a ledger in a schema of Prefect's database cannot collide.
- Opening a ledger already at head costs one query. Otherwise the upgrade runs inside one
  transaction holding the backend's schema lock (SQLite's write lock, a Postgres advisory
  lock): many workers starting at once upgrade it exactly once.
- A round-1 ``ledger.sqlite`` (tables, no version table) is stamped at 0001 and upgraded in
  place; its rows are kept.
- A ledger upgraded by a newer soraflow is refused with a clear message, never written to.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ..errors import LedgerError

VERSION_TABLE = "soraflow_ledger_version"
HEAD = "0007_webhooks"  # the newest revision in migrations/versions (a test checks they agree)
ROUND_ONE = "0001"


def _config(connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "soraflow.ledger:migrations")
    cfg.attributes["connection"] = connection
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


def script_head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The ledger's schema revision; None when it has none yet."""
    with engine.connect().execution_options(ledger_read_only=True) as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine, backend, where: str) -> None:
    """Bring the ledger's schema to HEAD (a no-op when it is there already)."""
    try:
        with engine.connect().execution_options(ledger_read_only=True) as conn:
            if conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == HEAD:
                return
    except DBAPIError:
        pass  # no version table yet: a new or a round-1 ledger
    with engine.begin() as conn:
        backend.lock_schema(conn)
        cfg = _config(conn)
        tables = inspect(conn)
        if tables.has_table(VERSION_TABLE):
            found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
            if found is not None and found not in {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}:
                raise LedgerError(
                    f"the ledger at {where} has schema revision {found!r}, newer than this soraflow knows "
                    f"(head {HEAD!r}): upgrade soraflow here before it uses this ledger"
                )
        elif tables.has_table("clips"):
            command.stamp(cfg, ROUND_ONE)  # a round-1 ledger: its tables are revision 0001
        command.upgrade(cfg, "head")
