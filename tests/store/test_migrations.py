"""The migrations and the table definitions describe the same schema, on both backends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import store.tables  # noqa: F401  (registers every table)
from store.db import SHIPPED_HEADS, Database, applied_heads, shipped_heads
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


def test_the_heads_written_out_are_the_ones_the_scripts_end_at() -> None:
    """``SHIPPED_HEADS`` lets a store already migrated open without Alembic: it must be exactly the
    heads the migration scripts end at (a new migration adds its id there)."""
    assert shipped_heads() == SHIPPED_HEADS


async def test_a_store_at_the_shipped_heads_opens_without_alembic_and_a_new_one_is_migrated(
    db_url: str, tmp_path: Path
) -> None:
    """Opening a store already migrated reads its version and loads none of Alembic; a new, empty
    store is migrated to the heads by Alembic, as before (in a process of its own each, so what
    was imported is that open's alone)."""
    opened = "import asyncio, sys\nfrom store.db import Database\n"
    opened += "async def main():\n    db = await Database.open(sys.argv[1])\n    await db.close()\n"
    opened += "asyncio.run(main())\nprint(sorted({m.split('.')[0] for m in sys.modules} & {'alembic'}))\n"

    def open_in_a_process(url: str) -> str:
        done = subprocess.run([sys.executable, "-c", opened, url], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]  # after any log line (a PostgreSQL superuser is warned)

    assert open_in_a_process(db_url) == "[]"  # the test's store is migrated already
    new = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    assert open_in_a_process(new) == "['alembic']"
    db = Database.connect(new)
    try:
        assert await applied_heads(db) == SHIPPED_HEADS
    finally:
        await db.close()
    assert open_in_a_process(new) == "[]"
