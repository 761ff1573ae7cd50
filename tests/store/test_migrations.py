"""The migrations and the table definitions describe the same schema, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import store.tables  # noqa: F401  (registers every table)
from store.db import Database
from store.tables.base import Base


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    """Autogenerate finds nothing to change after every migration has run."""
    await db.migrate()  # idempotent on an already migrated database
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []
