"""The test databases themselves: a PostgreSQL database a test gives back is emptied and used
again only when nothing but its rows changed, and then it is as a fresh clone of the template."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from tests.databases import Templates, _dsn, postgres_problem


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Templates of this module's own, so that what a test gives back is not another module's
    database (one template for the module: building one takes seconds; each test counts from
    where the one before left ``recycled``)."""
    problem = asyncio.run(postgres_problem())
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    templates = Templates(tmp_path_factory.mktemp("own-templates"))
    yield templates
    templates.close()


async def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


def _run(url: str, *statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(_dsn(url))
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _state(url: str) -> dict[str, object]:
    """What a test could read of a database: each table's rows (counted; the seeded ones whole),
    its sequences, and the planner statistics held about it."""

    async def read() -> dict[str, object]:
        tables = [
            str(name)
            for (name,) in await _fetch(
                url, "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            )
        ]
        state: dict[str, object] = {}
        for table in sorted(tables):
            state[table] = await _fetch(
                url, f"SELECT count(*), md5(coalesce(json_agg(t)::text, '')) FROM \"{table}\" AS t"
            )
        state["sequences"] = sorted(
            await _fetch(url, "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
        )
        state["statistics"] = await _fetch(
            url,
            "SELECT count(*) FROM pg_statistic WHERE starelid IN"
            " (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)",
        )
        return state

    return asyncio.run(read())


def _exists(url: str) -> bool:
    name = url.rsplit("/", 1)[1]
    found = asyncio.run(
        _fetch(url.rsplit("/", 1)[0] + "/postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    )
    return bool(found)


def test_a_database_given_back_is_emptied_to_the_template_and_used_again(own: Templates) -> None:
    recycled = own.recycled
    first = own.postgres()
    fresh = _state(first)
    seeded = fresh["audit_chain_head"]
    assert isinstance(seeded, list) and seeded[0][0] == 1  # the row the migrations wrote, kept by a recycling
    _run(
        first,
        "INSERT INTO name_counts (term, children) VALUES (42, 7)",
        "SELECT nextval('notices_id_seq'), nextval('notices_id_seq')",
        "ANALYZE name_counts",
    )
    assert _state(first) != fresh
    own.drop_postgres(first)
    own.settle()
    again = own.postgres()
    assert again == first and own.recycled == recycled + 1
    assert _state(again) == fresh
    own.drop_postgres(again)
    own.settle()


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE notices ADD COLUMN extra integer",
        "ALTER TABLE audit_events DISABLE TRIGGER USER",
        "CREATE INDEX ix_extra ON notices (kind)",
        "UPDATE alembic_version SET version_num = version_num || '_x'",
        "CREATE SCHEMA extra",
    ],
)
def test_a_database_whose_schema_changed_is_dropped_not_used_again(own: Templates, change: str) -> None:
    recycled = own.recycled
    first = own.postgres()
    _run(first, change)
    own.drop_postgres(first)
    own.settle()
    assert own.recycled == recycled and not _exists(first)
    other = own.postgres()
    assert other != first
    own.drop_postgres(other)
    own.settle()
