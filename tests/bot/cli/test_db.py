"""`signpost db upgrade | current | history`, and SIGNPOST_MIGRATE_ON_START=0, as an operator sees them."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

import store
from store.db import Database, revisions
from store.tables.people import Practitioner
from store.tables.register import Child, Involvement
from tests.bot.cli.conftest import Cli
from tests.databases import _admin, postgres_url, with_database
from tests.factories import CHILDREN, PRACTITIONERS
from tests.spread import either_store
from tests.store.audit.tamper import run_sql


@pytest.fixture
def empty(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Iterator[None]:
    """The CLI pointed at a database never migrated (a new deployment's), on this backend."""
    if backend == "sqlite":
        monkeypatch.setenv("SIGNPOST_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
        yield
        return
    name = f"signpost_empty_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    monkeypatch.setenv("SIGNPOST_DATABASE_URL", with_database(postgres_url(), name))
    try:
        yield
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_an_empty_database_is_behind_until_upgraded_then_current_and_history_say_so(
    cli: Cli, empty: None, backend: str
) -> None:
    if backend == "sqlite":  # no file yet is no store yet: only `db upgrade` makes one
        assert "there is no store at" in cli("db", "current").err
        assert "there is no store at" in cli("db", "history").err
        assert cli("db", "upgrade").code == 0
        assert cli("db", "current").out.startswith(f"up to date: {SHIPPED} of {SHIPPED} migrations applied")
        return
    behind = cli("db", "current")
    assert (behind.code, behind.out) == (1, f"empty: 0 of {SHIPPED} migrations applied; run: signpost db upgrade\n")
    pending = cli("db", "history")
    assert pending.code == 0
    assert pending.out.splitlines()[0].split()[:2] == ["0001_core", "pending"]

    upgraded = cli("db", "upgrade")
    assert upgraded.code == 0 and upgraded.out.startswith(f"Applied {SHIPPED} migrations; up to date: ")
    again = cli("db", "upgrade")
    assert again.code == 0 and again.out.startswith("Nothing to apply: up to date: ")

    current = cli("db", "current")
    assert current.code == 0 and current.out.startswith(f"up to date: {SHIPPED} of {SHIPPED} migrations applied")
    history = cli("db", "history").out.splitlines()
    assert len(history) == SHIPPED and all(line.split()[1] == "applied" for line in history)
    assert history[0].startswith("0001_core") and "Core tables" in history[0]


@either_store  # the terminal's columns, not the migrations: one store shows it (tests/spread.py)
def test_history_shows_each_migration_whole_in_columns_that_line_up(cli: Cli, empty: None) -> None:
    """`db history` cut a description at its docstring's first line break ("… a relayed message),
    so that") and pushed the state column out of line for every id longer than 18 characters
    (0023_notice_dropped_index): each line now says the whole first paragraph, in columns."""
    assert cli("db", "upgrade").code == 0
    lines = cli("db", "history").out.splitlines()
    assert [line.split()[0] for line in lines] == [path.stem for path in MIGRATIONS]
    state_at = {line.index(" applied ") for line in lines}
    assert len(state_at) == 1, lines
    cut = [line for line in lines if not line.endswith(".")]
    assert cut == [], cut
    child = next(line for line in lines if line.startswith("0022_notice_child"))
    assert "so that destroying the child deletes it" in child


MIGRATIONS = sorted((Path(store.__file__).parent / "migrations" / "versions").glob("0*.py"))
SHIPPED = len(MIGRATIONS)
NEWEST = MIGRATIONS[-1].stem


async def set_applied(db_url: str, old: str, new: str) -> None:
    """Rewrite one head Alembic records (a database a release behind, or one a newer release migrated)."""
    db = Database.connect(db_url)
    try:
        await run_sql(db, "UPDATE alembic_version SET version_num = :new WHERE version_num = :old", old=old, new=new)
    finally:
        await db.close()


@either_store  # the terminal's wording: one store shows it (tests/spread.py)
def test_current_says_up_to_date_in_one_line_and_why_there_are_a_dozen_heads(cli: Cli) -> None:
    """`db current` printed twelve revision ids and "(up to date)": an operator could not tell
    whether twelve heads meant trouble. Now: one line, counted in migrations, the newest named,
    and the heads said to be by design."""
    current = cli("db", "current")
    assert current.code == 0
    [line] = current.out.splitlines()
    assert line.startswith(f"up to date: {SHIPPED} of {SHIPPED} migrations applied, newest {NEWEST} (")
    assert "branches from 0001_core, by design" in line


async def test_current_names_the_migrations_a_database_is_missing_and_one_from_a_newer_release(
    cli: Cli, db_url: str
) -> None:
    """A database a release behind: exit 1, the missing migration named, and what to run. One a
    newer Signpost migrated: exit 1, said as such (upgrading with this one cannot help)."""
    [newest] = [r for r in revisions() if r.id == NEWEST]
    await set_applied(db_url, NEWEST, newest.follows[0])  # as if its release's `db upgrade` had not run
    behind = await cli.run("db", "current")
    assert (behind.code, behind.out) == (
        1,
        f"behind: {SHIPPED - 1} of {SHIPPED} migrations applied; missing {NEWEST}; run: signpost db upgrade\n",
    )
    await set_applied(db_url, newest.follows[0], "0099_from_a_newer_release")
    ahead = await cli.run("db", "current")
    assert ahead.code == 1
    assert ahead.out.startswith("ahead: the database has migrations this Signpost does not ship (0099_from_a_newer")


def test_with_migrate_on_start_off_a_behind_database_is_refused_in_one_line(
    cli: Cli, empty: None, backend: str
) -> None:
    refused = cli("audit", "verify", env={"SIGNPOST_MIGRATE_ON_START": "0"})
    assert refused.code != 0
    if backend == "sqlite":  # no file yet: no store to be behind
        assert "there is no store at" in refused.err and "signpost db upgrade" in refused.err
    else:
        assert "no Signpost store in that database" in refused.err and "run `signpost db upgrade`" in refused.err
    assert "Traceback" not in refused.err
    assert cli("db", "upgrade").code == 0
    assert cli("db", "current", env={"SIGNPOST_MIGRATE_ON_START": "0"}).code == 0


READ_ONLY = (
    ("audit", "verify"),
    ("audit", "export"),
    ("retention", "run", "--dry-run"),
    ("practitioner", "list"),
)


def test_a_command_that_only_reads_refuses_an_empty_database_and_leaves_it_empty(
    cli: Cli, empty: None, backend: str, tmp_path: Path
) -> None:
    """`audit verify` on a new, empty PostgreSQL database (a mistyped database name) migrated it,
    made a key file, audited itself and said "OK: 0 events, chain intact": a pass for an auditor
    and a store left behind. As on SQLite ("there is no store at"), a command that only reads
    says in one line there is no store there, and makes nothing: no key file, no schema."""
    key = tmp_path / "new.key"
    for command in READ_ONLY:
        run = cli(*command, env={"SIGNPOST_KEY_FILE": str(key)})
        assert run.code == 2, (command, run.out, run.err)
        said = run.said.splitlines()
        assert len(said) == 1 and "signpost db upgrade" in said[0], (command, said)
        if backend == "postgres":
            assert said[0] == (
                "signpost: no Signpost store in that database: check SIGNPOST_DATABASE_URL, "
                "or run `signpost db upgrade` to make one"
            )
        else:
            assert "there is no store at" in said[0]
    assert not key.exists()
    if backend == "postgres":
        current = cli("db", "current")  # still never migrated
        assert (current.code, current.out.split(";")[0]) == (1, f"empty: 0 of {SHIPPED} migrations applied")


@either_store  # the SQLite path it names, whichever the fixture made
def test_current_and_history_on_a_sqlite_path_with_no_store_say_so_and_make_none(cli: Cli, tmp_path: Path) -> None:
    """`db current` and `db history` on a mistyped path created an empty store there (and said it
    was behind); like every command but import, seed-demo, run, console and `db upgrade`, they say
    there is no store."""
    missing = tmp_path / "typo.db"
    for step in ("current", "history"):
        run = cli("db", step, env={"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"})
        assert run.code == 2 and "there is no store at" in run.err, run.err
    assert not missing.exists()


@either_store  # a feed path refused before a store is made: one store shows it (tests/spread.py)
def test_an_import_of_a_feed_that_is_not_there_makes_no_new_store(cli: Cli, tmp_path: Path) -> None:
    """`signpost import` may make a new store, but not for a command that cannot run: a mistyped
    feed path on a fresh machine is one line, and leaves no empty store and no key file behind
    (a later `make run` or import would take them for the register). Into a store that exists,
    the same refusal is audited, as every import is."""
    store, key = tmp_path / "new.db", tmp_path / "new.key"
    env = {"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{store}", "SIGNPOST_KEY_FILE": str(key)}
    run = cli("import", str(tmp_path / "childern.csv"), env=env)
    assert (run.code, run.said) == (2, f"signpost: cannot read {tmp_path / 'childern.csv'}: No such file or directory")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.")) == []
    assert cli("db", "upgrade").code == 0  # the test's own store, made
    run = cli("import", str(tmp_path / "childern.csv"))
    assert (run.code, run.said) == (2, f"signpost: cannot read {tmp_path / 'childern.csv'}: No such file or directory")
    exported = [json.loads(line) for line in cli("audit", "export").out.splitlines()]
    assert [(e["action"], e["outcome"]) for e in exported if e["action"] == "import"] == [("import", "refused")]


@pytest.mark.sqlite_only
def test_a_refused_import_on_a_fresh_machine_leaves_no_store_and_no_key_file(cli: Cli, tmp_path: Path) -> None:
    """A feed with a bad row on a machine with no store yet left an empty store and a key file
    behind, though "Nothing was imported": a later `make run` took them for the register, and
    deleting one of the two alone left a store the next key file cannot open. A refused import
    leaves the machine as it found it; the corrected feed then makes both."""
    store, key = tmp_path / "new.db", tmp_path / "new.key"
    env = {"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{store}", "SIGNPOST_KEY_FILE": str(key)}
    feed = tmp_path / "children.csv"
    feed.write_text(CHILDREN.replace("M4 5CD", "M4 5C"), encoding="utf-8")
    run = cli("import", str(feed), env=env)
    assert run.code == 1 and run.said.splitlines()[-2:] == [
        "children.csv:3: postcode: is not a UK postcode",
        "Nothing was imported: 1 problem above.",
    ]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.")) == []
    feed.write_text(CHILDREN, encoding="utf-8")
    run = cli("import", str(feed), env=env)
    assert run.code == 0, run.err
    assert store.exists() and key.exists()
    exported = [json.loads(line) for line in cli("audit", "export", env=env).out.splitlines()]
    assert [(e["action"], e["outcome"]) for e in exported if e["action"] == "import"] == [
        ("import", "started"),
        ("import", "done"),
    ]


@pytest.mark.sqlite_only
def test_a_refused_import_into_a_store_made_empty_beforehand_leaves_it_empty_and_no_key_file(
    cli: Cli, tmp_path: Path
) -> None:
    """An empty store file made beforehand (``install -m 600 /dev/null signpost.db``) is no store
    yet: a refused first import removed the key file it made but kept the store it filled (schema,
    audit, the key file's fingerprint), so the next import failed, sealed under another key file.
    Now the store is left empty, as it was found, with nothing made beside it."""
    store, key = tmp_path / "new.db", tmp_path / "new.key"
    store.touch(mode=0o600)
    store.chmod(0o600)
    env = {"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{store}", "SIGNPOST_KEY_FILE": str(key)}
    feed = tmp_path / "children.csv"
    feed.write_text(CHILDREN.replace("M4 5CD", "M4 5C"), encoding="utf-8")
    run = cli("import", str(feed), env=env)
    assert run.code == 1 and run.said.splitlines()[-1] == "Nothing was imported: 1 problem above."
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.")) == ["new.db"]
    assert store.stat().st_size == 0 and store.stat().st_mode & 0o777 == 0o600
    feed.write_text(CHILDREN, encoding="utf-8")
    run = cli("import", str(feed), env=env)
    assert run.code == 0, run.err
    assert store.stat().st_size > 0 and key.exists()


@pytest.mark.sqlite_only
def test_a_refused_import_into_a_store_with_a_hot_journal_to_nothing_removes_nothing(cli: Cli, tmp_path: Path) -> None:
    """A store file holding something, whose hot journal rolls it back to nothing (a copy taken
    mid-write), is filled as a new store by the import: refused, it removed the key file it made
    and kept the store sealed under it. Now neither is removed: they stay a consistent pair."""
    import shutil
    import sqlite3

    live, store, key = tmp_path / "live.db", tmp_path / "new.db", tmp_path / "new.key"
    live.touch()
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("PRAGMA cache_size=1")  # the write spills into the file, the journal beside it
    writer.execute("BEGIN")
    writer.execute("CREATE TABLE t(x)")
    for _ in range(200):
        writer.execute("INSERT INTO t VALUES (?)", ("x" * 1000,))
    shutil.copy(live, store)
    shutil.copy(tmp_path / "live.db-journal", tmp_path / "new.db-journal")
    writer.execute("ROLLBACK")
    writer.close()
    env = {"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{store}", "SIGNPOST_KEY_FILE": str(key)}
    feed = tmp_path / "children.csv"
    feed.write_text(CHILDREN.replace("M4 5CD", "M4 5C"), encoding="utf-8")
    run = cli("import", str(feed), env=env)
    assert run.code == 1 and run.said.splitlines()[-1] == "Nothing was imported: 1 problem above."
    assert store.stat().st_size > 0 and key.exists()
    feed.write_text(CHILDREN, encoding="utf-8")
    run = cli("import", str(feed), env=env)
    assert run.code == 0, run.err


async def test_a_refused_import_into_a_store_changes_nothing_in_it_or_beside_it(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """Into a store that exists, a refused import is audited (invalid) and changes nothing else: no
    record, no key file rewritten, no file left beside them."""
    feeds = [tmp_path / "practitioners.csv", tmp_path / "children.csv"]
    for path, text in zip(feeds, (PRACTITIONERS, CHILDREN), strict=True):
        path.write_text(text, encoding="utf-8")
    assert (await cli.run("import", *map(str, feeds))).code == 0
    key = Path(os.environ["SIGNPOST_KEY_FILE"])
    before = (await _records(db), key.read_bytes(), sorted(p.name for p in tmp_path.iterdir()))
    feeds[1].write_text(CHILDREN.replace("Amy,Jones", "Amy,Jonas").replace("M4 5CD", "M4 5C"), encoding="utf-8")
    run = await cli.run("import", *map(str, feeds))
    assert run.code == 1
    assert (await _records(db), key.read_bytes(), sorted(p.name for p in tmp_path.iterdir())) == before
    exported = [json.loads(line) for line in (await cli.run("audit", "export")).out.splitlines()]
    assert [e["outcome"] for e in exported if e["action"] == "import"][-2:] == ["started", "invalid"]


async def _records(db: Database) -> list[object]:
    """Every register record, as stored (sealed identities included)."""
    async with db.read() as session:
        return [
            [tuple(row) for row in (await session.execute(select(table))).all()]
            for table in (Child.__table__, Practitioner.__table__, Involvement.__table__)
        ]
