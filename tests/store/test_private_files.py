"""Files that hold practitioners' contact details are readable by their owner only (mode 0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Signpost
from store.db import Database, driver_failure, schema_behind
from store.files import make_private
from store.keys.backup import backup
from store.tables.lifecycle import Meta
from tests.factories import say


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common default umask (022), under which files are created world-readable unless we say otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def _write_something(db: Database) -> None:
    async with db.write() as session:
        await session.merge(Meta(key="probe", value="x"))


@pytest.mark.usefixtures("usual_umask")
async def test_new_sqlite_store_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    """A store created by Signpost is 0600, and so are its WAL and shared-memory files."""
    store = tmp_path / "signpost.db"
    db = await Database.open(f"sqlite+aiosqlite:///{store}")
    try:
        await _write_something(db)
        files = [store, Path(f"{store}-wal"), Path(f"{store}-shm")]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        await db.close()


@pytest.mark.usefixtures("usual_umask")
async def test_existing_world_readable_store_is_tightened_on_open(tmp_path: Path) -> None:
    """A store left 0644 by an older version (with its WAL and shm) is made 0600 when Signpost opens it."""
    store = tmp_path / "signpost.db"
    db = await Database.open(f"sqlite+aiosqlite:///{store}")
    await _write_something(db)
    await db.close()
    side = [Path(f"{store}-wal"), Path(f"{store}-shm")]
    for f in [store, *side]:
        f.touch()
        os.chmod(f, 0o644)
    db = await Database.open(f"sqlite+aiosqlite:///{store}")
    try:
        await _write_something(db)
        assert {f.name: mode(f) for f in [store, *side] if f.exists()} == {
            f.name: 0o600 for f in [store, *side] if f.exists()
        }
        assert mode(store) == 0o600
    finally:
        await db.close()


@pytest.mark.usefixtures("usual_umask")
async def test_backup_file_is_owner_only(signpost: Signpost, tmp_path: Path) -> None:
    """A backup (SQLite VACUUM INTO, or pg_dump) is written 0600 and is not empty."""
    await say(signpost, "P001", "help")
    target = tmp_path / "signpost.backup"
    size = await backup(signpost.ctx.db, target)
    assert size > 0
    assert mode(target) == 0o600


@pytest.mark.parametrize("kind", ["a text file", "a folder"])
async def test_a_database_url_naming_something_else_changes_nothing_there(tmp_path: Path, kind: str) -> None:
    """A mistyped SIGNPOST_DATABASE_URL (sqlite:////etc/passwd) made that file, or a folder, 0600:
    only a missing path, an empty file or a SQLite database is made private. SQLite then refuses
    to open it, and nothing else happens."""
    target = tmp_path / "passwd"
    if kind == "a folder":
        target.mkdir()
    else:
        target.write_text("root:x:0:0:root:/root:/bin/bash\n")
    target.chmod(0o755 if kind == "a folder" else 0o644)
    before = target.read_bytes() if kind == "a text file" else b""
    with pytest.raises(Exception) as refused:
        await Database.open(f"sqlite+aiosqlite:///{target}")
    assert driver_failure(refused.value) is not None
    assert stat.S_IMODE(target.stat().st_mode) == (0o755 if kind == "a folder" else 0o644)
    if kind == "a text file":
        assert target.read_bytes() == before


async def test_an_in_memory_store_opens() -> None:
    """sqlite:///:memory: was a TypeError (a pool size its pool does not take)."""
    db = await Database.open("sqlite+aiosqlite:///:memory:")
    try:
        assert await schema_behind(db) is None
    finally:
        await db.close()


@pytest.mark.usefixtures("usual_umask")
async def test_a_store_reached_through_a_symbolic_link_has_its_wal_and_shm_tightened_where_they_are(
    tmp_path: Path,
) -> None:
    """SIGNPOST_DATABASE_URL naming a link to the store (`signpost.db -> /srv/data/signpost.db`):
    SQLite keeps the WAL and shared memory beside the file the link names, and those left 0644 were
    never tightened (only names beside the link were tried, where nothing is)."""
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "signpost.db"
    db = await Database.open(f"sqlite+aiosqlite:///{real}")
    await _write_something(db)
    await db.close()
    side = [Path(f"{real}-wal"), Path(f"{real}-shm")]
    for f in [real, *side]:
        f.touch()
        os.chmod(f, 0o644)
    link = tmp_path / "signpost.db"
    link.symlink_to(real)
    db = await Database.open(f"sqlite+aiosqlite:///{link}")
    try:
        await _write_something(db)
        assert {f.name: mode(f) for f in [real, *side]} == {f.name: 0o600 for f in [real, *side]}
    finally:
        await db.close()


@pytest.mark.parametrize(("found", "left"), [(0o644, 0o600), (0o640, 0o600), (0o400, 0o400), (0o600, 0o600)])
def test_a_file_made_private_loses_what_others_could_do_and_gains_nothing(
    tmp_path: Path, found: int, left: int
) -> None:
    """Tightening takes group's and others' access away; a key file its operator made read-only
    (0400) stays so, not loosened to writable."""
    path = tmp_path / "signpost.key"
    path.write_text("{}")
    path.chmod(found)
    make_private(path)
    assert stat.S_IMODE(path.stat().st_mode) == left
