"""Where each clip is generated and what it costs; an append-only record of actions.

- clips.endpoint, clips.profile: the endpoint and model profile a clip was planned for.
- clips.price_usd: its price, exact (NUMERIC on Postgres, decimal text on SQLite: SQLite has no
  decimal type and SQLAlchemy's Numeric would pass through a float there).
- jobs(clip_key) indexed: reconciliation and `jobs_for` look jobs up by clip.
- ledger_actions: time, clip key, action, detail, actor; rows are only ever added.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    exact = sa.Numeric() if op.get_bind().dialect.name == "postgresql" else sa.Text()
    # SQLite adds columns in place (ALTER TABLE ADD COLUMN): the table is not copied.
    op.add_column("clips", sa.Column("endpoint", sa.Text))
    op.add_column("clips", sa.Column("profile", sa.Text))
    op.add_column("clips", sa.Column("price_usd", exact))
    op.create_index("ix_jobs_clip_key", "jobs", ["clip_key"])
    op.create_table(
        "ledger_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("clip_key", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON),
        sa.Column("actor", sa.Text, nullable=False),
    )
    op.create_index("ix_ledger_actions_clip_key", "ledger_actions", ["clip_key"])


def downgrade() -> None:
    op.drop_index("ix_ledger_actions_clip_key", "ledger_actions")
    op.drop_table("ledger_actions")
    op.drop_index("ix_jobs_clip_key", "jobs")
    with op.batch_alter_table("clips") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("price_usd")
        batch.drop_column("profile")
        batch.drop_column("endpoint")
