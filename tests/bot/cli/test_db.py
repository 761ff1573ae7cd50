"""`signpost db upgrade | current | history`, and SIGNPOST_MIGRATE_ON_START=0, as an operator sees them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import store
from tests.bot.cli.conftest import Cli
from tests.databases import _admin, postgres_url, with_database


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
        assert cli("db", "current").out.strip().endswith("(up to date)")
        return
    behind = cli("db", "current")
    assert behind.code == 1 and behind.out.startswith("empty (behind: this Signpost needs 0002_stepup")
    assert "run: signpost db upgrade" in behind.out
    pending = cli("db", "history")
    assert pending.code == 0
    assert pending.out.splitlines()[0].split()[:2] == ["0001_core", "pending"]

    upgraded = cli("db", "upgrade")
    assert upgraded.code == 0 and upgraded.out.startswith("Upgraded the database from empty to 0002_stepup")
    again = cli("db", "upgrade")
    assert again.code == 0 and again.out.startswith("The database is already up to date, at 0002_stepup")

    current = cli("db", "current")
    assert current.code == 0 and current.out.strip().endswith("(up to date)") and "0008_name_counts" in current.out
    history = cli("db", "history").out.splitlines()
    migrations = sorted((Path(store.__file__).parent / "migrations" / "versions").glob("0*.py"))
    assert len(history) == len(migrations) and all(line.split()[1] == "applied" for line in history)
    assert history[0].startswith("0001_core") and "Core tables" in history[0]


def test_with_migrate_on_start_off_a_behind_database_is_refused_in_one_line(
    cli: Cli, empty: None, backend: str
) -> None:
    refused = cli("audit", "verify", env={"SIGNPOST_MIGRATE_ON_START": "0"})
    assert refused.code != 0
    if backend == "sqlite":  # no file yet: no store to be behind
        assert "there is no store at" in refused.err and "signpost db upgrade" in refused.err
    else:
        assert "the database is at no revision (empty)" in refused.err and "run `signpost db upgrade`" in refused.err
    assert "Traceback" not in refused.err
    assert cli("db", "upgrade").code == 0
    assert cli("db", "current", env={"SIGNPOST_MIGRATE_ON_START": "0"}).code == 0


def test_current_and_history_on_a_sqlite_path_with_no_store_say_so_and_make_none(cli: Cli, tmp_path: Path) -> None:
    """`db current` and `db history` on a mistyped path created an empty store there (and said it
    was behind); like every command but import, seed-demo, run, console and `db upgrade`, they say
    there is no store."""
    missing = tmp_path / "typo.db"
    for step in ("current", "history"):
        run = cli("db", step, env={"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"})
        assert run.code == 2 and "there is no store at" in run.err, run.err
    assert not missing.exists()
