"""The watched prices: what the model watch last priced each model and size at, per endpoint.

- watched_prices: endpoint identity, model, size, USD per second (exact, as spend.price_usd),
  where the price came from (the pricing source as shown, or the model profiles), since when it
  has been that price, and when the watch last saw it. ``soraflow estimate --prices watched``
  reads it; the watch writes it after each check.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    exact = sa.Numeric() if op.get_bind().dialect.name == "postgresql" else sa.Text()
    op.create_table(
        "watched_prices",
        sa.Column("endpoint", sa.Text, primary_key=True),
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("size", sa.Text, primary_key=True),
        sa.Column("usd_per_second", exact, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("since", sa.Double, nullable=False),
        sa.Column("watched_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("watched_prices")
