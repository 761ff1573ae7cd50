"""A store this account may read but not write — a SQLite file of another account's, or a PostgreSQL
standby (``default_transaction_read_only``) — through the real `signpost` executable. Every command
writes its audit event before it answers, so none can run there: each was "stopped by an unexpected
error (OperationalError); the log says where", with two log lines of traceback (newcomer). It is
said as what it is, in one line and one log line, with exit status 2, and the store is unchanged."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from store.keys.crypto import KeyRing
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_main import write_feeds
from tests.databases import _dsn

pytestmark = pytest.mark.fresh_keys  # `signpost` works to the real date (tests/conftest.py keys)

READ_ONLY = {
    "sqlite": "signpost: the store is read-only to this account (its SQLite file, or the folder it is in, cannot be "
    "written): every command records its audit event in the store before it answers, so run signpost as "
    "the account that owns the store",
    "postgres": "signpost: the database is read-only (a standby, or default_transaction_read_only is on): every "
    "command records its audit event in the store before it answers, so point SIGNPOST_DATABASE_URL at the primary",
}


async def _read_only_database(url: str) -> None:
    """Make a PostgreSQL database read-only for every new session, as a standby is."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', "
            "current_database()); END $$"
        )
    finally:
        await conn.close()


def _read_only(backend: str, db_url: str) -> list[str]:
    """Make the test's store read-only to `signpost`; the command prefix that runs it so. As root, a
    file's mode binds only without the capability to override it (``setpriv``)."""
    if backend == "postgres":
        asyncio.run(_read_only_database(db_url))
        return []
    Path(db_url.split("///", 1)[1]).chmod(0o400)
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only SQLite file cannot be made so")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _events(db_url: str, backend: str) -> int:
    if backend == "postgres":
        return asyncio.run(_count_events(db_url))
    with sqlite3.connect(f"file:{db_url.split('///', 1)[1]}?mode=ro", uri=True) as conn:
        count: int = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    return count


async def _count_events(url: str) -> int:
    conn = await asyncpg.connect(_dsn(url))
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM audit_events")
    finally:
        await conn.close()
    return count


@pytest.mark.parametrize(
    "command",
    [["practitioner", "list"], ["import", "children.csv"], ["audit", "export"], ["console", "--as", "P002"]],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_read_only_store_is_said_in_one_line_and_one_log_line_without_a_traceback(
    cli: Cli, tmp_path: Path, backend: str, db_url: str, keys: KeyRing, command: list[str]
) -> None:
    imported = cli("import", *write_feeds(tmp_path))
    assert imported.code == 0, imported.err
    before = _events(db_url, backend)
    prefix = _read_only(backend, db_url)
    environment = {
        **os.environ,
        "SIGNPOST_DATABASE_URL": db_url,
        "SIGNPOST_KEY_FILE": str(keys.path),
        "SIGNPOST_LOG_FORMAT": "json",
        "SIGNPOST_LOG_FILE": str(tmp_path / "console.log"),
    }
    result = subprocess.run(
        [*prefix, str(Path(sys.executable).with_name("signpost")), *command],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        input="help\n",
        timeout=120,
    )
    said = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    if command[0] == "console":  # the console logs to its file, never into the conversation
        log = tmp_path / "console.log"
        logged = [json.loads(line) for line in log.read_text("utf-8").splitlines()] if log.exists() else []
    logged = [event for event in logged if event["event"] != "database_role_can_rewrite_audit"]  # a superuser's
    assert (result.returncode, said) == (2, [READ_ONLY[backend]]), result.stderr
    assert [event["event"] for event in logged] == ["store_read_only"], logged
    assert "exception" not in logged[0] and "Traceback" not in result.stderr
    assert _events(db_url, backend) == before


BUSY = (
    "signpost: the store is busy: another signpost command (an import, a retention run, a backup …) held "
    "it for longer than Signpost waits (1.5 s for the command, as long again to audit its failure); run this "
    "again when that command has finished"
)


@pytest.mark.sqlite_only  # PostgreSQL waits for a row lock; SQLite's one writer is waited for, then refused
def test_a_store_another_command_holds_too_long_is_said_busy_in_one_line_without_a_traceback(
    cli: Cli, tmp_path: Path, db_url: str, backend: str
) -> None:
    """A second `signpost` while an import of a national feed holds SQLite's write lock was "stopped by
    an unexpected error (OperationalError)" with two log lines of traceback (newcomer): it is told the
    store is busy and to run again, one log line, exit status 2, and runs once the lock is let go.
    It waits SIGNPOST_SQLITE_BUSY_SECONDS (30 s unset: this test waited a minute, twice that) and says so."""
    imported = cli("import", *write_feeds(tmp_path))
    assert imported.code == 0, imported.err
    before = _events(db_url, backend)
    holder = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # as an import's one transaction holds it
        busy = cli("practitioner", "list", env={"SIGNPOST_SQLITE_BUSY_SECONDS": "1.5"})
    finally:
        holder.close()
    logged = [json.loads(line) for line in busy.err.splitlines() if line.startswith("{")]
    assert (busy.code, busy.said) == (2, BUSY), busy.err
    assert [event["event"] for event in logged] == ["store_busy"] and "exception" not in logged[0], logged
    assert _events(db_url, backend) == before
    assert cli("practitioner", "list").code == 0


def test_sqlite_waits_for_another_process_s_write_lock_as_long_as_set(tmp_path: Path) -> None:
    """30 s by default (``SIGNPOST_SQLITE_BUSY_SECONDS``), and the store's every connection so."""
    from store.db import SQLITE_BUSY_SECONDS, Database, store_busy

    async def waits(busy_seconds: float | None = None) -> int:
        url = f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}"
        db = Database.connect(url) if busy_seconds is None else Database.connect(url, busy_seconds=busy_seconds)
        try:
            async with db.engine.connect() as conn:
                timeout: int = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
        finally:
            await db.close()
        return timeout

    assert SQLITE_BUSY_SECONDS == 30 and asyncio.run(waits()) == 30_000
    assert asyncio.run(waits(busy_seconds=1.5)) == 1_500
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert "(30 s for the command," in (store_busy(locked) or "")
