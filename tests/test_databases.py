"""The test databases themselves: a PostgreSQL database a test gives back is emptied and used
again only when nothing but its rows changed, and then it is as a fresh clone of the template."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.databases import (
    HOST,
    Templates,
    _admin,
    _dsn,
    leftovers,
    postgres_problem,
    postgres_url,
    sweep_leftovers,
    with_database,
)


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


def _files(url: str) -> dict[str, tuple[object, object]]:
    """Each table's file (its relfilenode) and its size on disk with its indexes and TOAST."""
    rows = asyncio.run(
        _fetch(
            url,
            "SELECT relname, relfilenode, pg_total_relation_size(oid) FROM pg_class"
            " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
        )
    )
    return {str(name): (node, size) for name, node, size in rows}


def test_a_recycled_database_rewrites_only_the_tables_a_test_wrote(own: Templates) -> None:
    """Emptying every table (TRUNCATE makes each a new file, its indexes too, and its commit waits
    for the disk) cost 0.6 s a PostgreSQL test; a table no test wrote is left as it is. One whose
    rows were all deleted again, or whose insert rolled back, still takes pages: it is emptied, with
    the tables whose foreign keys name it (``notice_claims``), as TRUNCATE asks."""
    first = own.postgres()
    fresh, files = _state(first), _files(first)
    _run(
        first,
        "INSERT INTO name_counts (term, children) VALUES (42, 7)",
        "INSERT INTO meta (key, value) VALUES ('extra', 'x')",
        "DELETE FROM meta WHERE key = 'extra'",
        "BEGIN",
        "INSERT INTO notices (recipient_id, kind, body, created_at, not_before, attempts)"
        " VALUES ('P001', 'x', '{}', now(), now(), 0)",
        "ROLLBACK",
    )
    own.drop_postgres(first)
    own.settle()
    again = own.postgres()
    assert again == first and _state(again) == fresh
    after = _files(again)
    written = {"name_counts", "meta", "notices", "notice_claims", "audit_chain_head"}  # seeded ones always
    assert {t for t in files if after[t][0] != files[t][0]} == written
    assert {t: size for t, (_, size) in after.items()} == {t: size for t, (_, size) in files.items()}
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


def test_the_run_s_end_leaves_its_databases_to_a_process_that_drops_every_one(tmp_path: Path) -> None:
    """A worker's end does not wait for the server's checkpoints: its databases (one given back and
    emptied for reuse, one given back as the run ends, those made ready ahead, the template) are
    handed to a process of their own, which drops each of them."""
    problem = asyncio.run(postgres_problem())
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    templates = Templates(tmp_path)
    given_back, kept = templates.postgres(), templates.postgres()
    templates.drop_postgres(given_back)
    templates.settle()
    assert templates.recycled == 1
    ours = [
        name
        for (name,) in asyncio.run(
            _fetch(postgres_url(), f"SELECT datname FROM pg_database WHERE datname LIKE '%{templates.run_id}%'")
        )
    ]
    assert templates.pg_template in ours and len(ours) >= 3  # the template, the two above, clones ahead
    templates.drop_postgres(kept)
    templates.close()
    assert templates.dropping is not None
    assert templates.dropping.wait(timeout=600) == 0
    assert not [name for name in ours if _exists(with_database(postgres_url(), str(name)))]


def _dead_pid() -> int:
    """The id of a process of ours that has ended and been reaped (nothing is killed)."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid


def test_a_run_s_names_carry_its_pid_and_this_host() -> None:
    """What the sweep reads back: the run's process and the host it runs on."""
    templates = Templates(Path("/nonexistent"))
    assert templates.pg_template.startswith(f"signpost_tpl_{os.getpid()}_{HOST}")
    assert leftovers([templates.pg_template]) == []  # this process is alive


def test_the_sweep_chooses_only_databases_of_ended_runs_on_this_host() -> None:
    """An interrupted run (Ctrl-C, SIGTERM) left its databases behind. The sweep at the start of a
    run takes those whose process has ended on this host, and never one whose process is alive
    (another suite running now), of another host (whose processes this one cannot see), or of a
    name it did not make."""
    dead, alive = _dead_pid(), os.getpid()
    other_host = "0" * 6 if HOST != "0" * 6 else "1" * 6
    rand = uuid.uuid4().hex[:8]
    names = {
        "ended template": f"signpost_tpl_{dead}_{HOST}{rand}",
        "ended clone": f"signpost_t_{dead}_{HOST}{rand}_12",
        "alive template": f"signpost_tpl_{alive}_{HOST}{rand}",
        "alive clone": f"signpost_t_{alive}_{HOST}{rand}_3",
        "parent alive": f"signpost_t_{os.getppid()}_{HOST}{rand}_1",
        "another host": f"signpost_tpl_{dead}_{other_host}{rand}",
        "no host (older runs)": f"signpost_tpl_{dead}_{rand}",
        "another test's": f"signpost_empty_{uuid.uuid4().hex[:12]}",
        "not ours": "test",
    }
    assert sorted(leftovers(names.values())) == sorted([names["ended template"], names["ended clone"]])


def test_the_sweep_drops_an_ended_run_s_databases_and_keeps_a_live_one() -> None:
    """On a real server: databases named as an ended run's are dropped, one of this live run kept."""
    problem = asyncio.run(postgres_problem())
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    rand = uuid.uuid4().hex[:8]
    ended = f"signpost_tpl_{_dead_pid()}_{HOST}{rand}"
    live = f"signpost_t_{os.getpid()}_{HOST}{rand}_1"
    for name in (ended, live):
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        assert ended in sweep_leftovers()
        url = _dsn(postgres_url())
        assert not _exists(with_database(url, ended)) and _exists(with_database(url, live))
    finally:
        asyncio.run(_admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in (ended, live))))
