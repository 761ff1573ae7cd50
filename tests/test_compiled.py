"""The suite's one cache of compiled SQL (tests/compiled.py): a store opened after another of the
same kind runs a statement the first compiled without compiling it again, and gets its rows; SQL
compiled for one kind of database is never taken for another."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.sql import Select

from bot.app import Signpost
from store.db import Database
from store.tables.people import Practitioner
from tests.factories import load_standard


async def _compiled_anew(url: str, statement: Select[str]) -> tuple[bool, list[str]]:
    """Whether ``statement`` was compiled to run on the store at ``url`` (a new engine each time),
    and the ids it read."""
    db = await Database.open(url)
    try:
        async with db.engine.connect() as conn:
            result = await conn.execute(statement)
            return result.context.cache_hit is not DefaultDialect.CACHE_HIT, list(result.scalars())
    finally:
        await db.close()


async def test_a_new_engine_runs_what_one_before_it_compiled(db_url: str, signpost: Signpost) -> None:
    await load_standard(signpost)
    # A statement no other test runs (the cache is the test process's).
    statement = select(Practitioner.id.label("probe_new_engine")).order_by(Practitioner.id).limit(2)
    first = await _compiled_anew(db_url, statement)
    assert first == (True, ["AD01", "DM01"])
    assert await _compiled_anew(db_url, statement) == (False, first[1])


@pytest.mark.postgres_only
async def test_sql_compiled_for_sqlite_is_never_taken_for_postgresql(db_url: str, tmp_path: Path) -> None:
    statement = select(Practitioner.id.label("probe_kind")).where(Practitioner.id.in_(["P1", "P2"]))
    assert await _compiled_anew(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}", statement) == (True, [])
    assert await _compiled_anew(db_url, statement) == (True, [])  # compiled again, for PostgreSQL
    assert await _compiled_anew(db_url, statement) == (False, [])
