"""Webhook deliveries: every verified delivery, kept where every worker can see it.

- webhook_deliveries: one row per delivery the receiver verified and matched to a clip's job
  (endpoint, the delivery's own id, unique together: a redelivery is a no-op), the job and clip
  it is about, what it says (completed or failed, with a bounded detail), the time it was signed
  and the time it was received. ``id`` orders them, so a waiter on SQLite finds new rows cheaply.
  A delivery is a hint: the clip itself changes only after a status call confirms it.

Revision ID: 0007_webhooks
Revises: 0006_takes
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_webhooks"
down_revision = "0006_takes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("delivery_id", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("clip_key", sa.Text, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON),
        sa.Column("signed_at", sa.Double, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
    )
    op.create_index("ux_webhook_deliveries_endpoint_delivery", "webhook_deliveries", ["endpoint", "delivery_id"], unique=True)
    op.create_index("ix_webhook_deliveries_clip_key", "webhook_deliveries", ["clip_key"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_clip_key", "webhook_deliveries")
    op.drop_index("ux_webhook_deliveries_endpoint_delivery", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
