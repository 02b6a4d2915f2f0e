"""Caps on clips in flight and creates-per-minute rates, kept beside the claims.

- slot_limits: one row per limit (capacity, rate as a token bucket, where its figures come from).
- slot_holders: one row per slot held (limit, owner host:pid:thread, clip, run, lease).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slot_limits",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("per_minute", sa.Integer),
        sa.Column("tokens", sa.Double),
        sa.Column("refilled_at", sa.Double),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "slot_holders",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("limit_name", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("clip_key", sa.Text),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.Double, nullable=False),
        sa.Column("lease_until", sa.Double, nullable=False),
    )
    op.create_index("ix_slot_holders_limit_name", "slot_holders", ["limit_name"])


def downgrade() -> None:
    op.drop_index("ix_slot_holders_limit_name", "slot_holders")
    op.drop_table("slot_holders")
    op.drop_table("slot_limits")
