"""The spend ledger: one row per create, reserved before it is sent and settled after.

- spend: the clip, its storyboard, profile, model and endpoint, its price at that moment
  (exact, as clips.price_usd), state (reserved | paid | released), the UTC day and month it
  counts against, the job it made, when it was reserved and settled, why it was released.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    exact = sa.Numeric() if op.get_bind().dialect.name == "postgresql" else sa.Text()
    op.create_table(
        "spend",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("clip_key", sa.Text, nullable=False),
        sa.Column("storyboard", sa.Text, nullable=False),
        sa.Column("shot_id", sa.Text, nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("size", sa.Text, nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("price_usd", exact, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("month", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("reserved_at", sa.Double, nullable=False),
        sa.Column("settled_at", sa.Double),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_spend_month", "spend", ["month"])
    op.create_index("ix_spend_clip_key", "spend", ["clip_key"])


def downgrade() -> None:
    op.drop_index("ix_spend_clip_key", "spend")
    op.drop_index("ix_spend_month", "spend")
    op.drop_table("spend")
