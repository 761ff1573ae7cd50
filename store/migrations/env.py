"""Alembic environment: always run on a connection handed in by store.db (never from an ini file)."""

from alembic import context

import store.tables  # noqa: F401  (registers every table)
from store.tables.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through store.db.Database.migrate()")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
