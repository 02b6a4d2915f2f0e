"""Takes: what reviews decided, per storyboard and shot, so it survives reruns.

- take_choices: the take each shot's film uses (storyboard title, shot id), the decision that
  chose it (a flow run and its review round) and when.
- retakes: every retake a review asked for: its take number (fixed when asked), the prompt change
  and seed, whether it was made or refused (over a cap or the budget, or it failed) and why, and
  the decision that asked for it (unique: a decision replayed after a resumed suspend asks once).
- review_approvals: the cut a review approved (a hash of the chosen clips), so a rerun of the
  same cut does not stop for a review again.

Revision ID: 0006_takes
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_takes"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "take_choices",
        sa.Column("storyboard", sa.Text, primary_key=True),
        sa.Column("shot_id", sa.Text, primary_key=True),
        sa.Column("take", sa.Integer, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("decided_at", sa.Double, nullable=False),
    )
    op.create_table(
        "retakes",
        sa.Column("storyboard", sa.Text, primary_key=True),
        sa.Column("shot_id", sa.Text, primary_key=True),
        sa.Column("take", sa.Integer, primary_key=True),
        sa.Column("prompt_change", sa.Text, nullable=False),
        sa.Column("seed", sa.BigInteger),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("requested_at", sa.Double, nullable=False),
        sa.UniqueConstraint("decision", name="uq_retakes_decision"),
    )
    op.create_table(
        "review_approvals",
        sa.Column("storyboard", sa.Text, primary_key=True),
        sa.Column("cut_sha256", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("approved_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("review_approvals")
    op.drop_table("retakes")
    op.drop_table("take_choices")
