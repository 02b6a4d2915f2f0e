"""The round-1 ledger: clips (claims, leases, job ids, outcomes) and every job ever recorded.

A ledger.sqlite written by round 1 (before migrations existed) already has exactly these
tables; it is stamped at this revision, not built again.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("clip_key", sa.Text, primary_key=True),
        sa.Column("shot_id", sa.Text, nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("size", sa.Text, nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("prompt_sha256", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("create_started", sa.Double),
        sa.Column("lease_until", sa.Double),
        sa.Column("job_id", sa.Text),
        sa.Column("submitted_at", sa.Double),
        sa.Column("job_status", sa.Text),
        sa.Column("progress", sa.Integer, server_default="0"),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("local_path", sa.Text),
        sa.Column("sha256", sa.Text),
        sa.Column("storage_uri", sa.Text),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("clip_key", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("how", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("clips")
