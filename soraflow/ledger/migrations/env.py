"""Alembic's entry point for the ledger's migrations.

soraflow runs these itself when a ledger is opened (``soraflow.ledger._migrate``), on a
connection it has already locked: the connection comes in ``config.attributes``.
"""

from alembic import context

config = context.config
context.configure(
    connection=config.attributes["connection"],
    version_table=config.attributes["version_table"],
)
with context.begin_transaction():
    context.run_migrations()
