"""A store that cannot be trusted, as the operator meets it: `signpost db check` (on the store and on a
backup), `signpost backup` refusing a damaged store, and one plain line — never a traceback — from
any command opened on a damaged SQLite file or on a PostgreSQL restore cut short. Real files and
real databases: a store truncated and zeroed with file writes, a real pg_dump restored in part."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli.check import LEFTOVER_UNZEROED
from store.audit.chain import make_checkpoint
from store.audit.signing import Signer
from store.db import DAMAGED_FILE, NOT_A_DATABASE, NOT_A_WHOLE_STORE, Database
from store.keys.backup import PARTIAL
from store.keys.crypto import KeyRing
from tests.bot.cli.conftest import Cli, Run
from tests.bot.process import clean_environment
from tests.databases import _admin, _dsn, postgres_url, with_database
from tests.spread import either_store
from tests.store.audit.tamper import run_sql, unprotect

# Each test marked either_store below is about the key file and its folder (another store's, missing,
# its lock, a read-only disk), not the store: one store shows it (tests/spread.py).

PAGE = 4096  # SQLite's page size for Signpost's stores
ANOTHER = 1000  # another account's uid: the one that runs Signpost, when the tests run as root


def said_plainly(run: Run, line: str) -> None:
    """The command stopped with exactly ``line`` for the operator, exit status 2, and nothing of a
    crash: no traceback on stderr, not even inside a log line."""
    assert (run.code, run.said) == (2, f"signpost: {line}"), run
    assert "Traceback" not in run.err and "command_crashed" not in run.err and '"frames"' not in run.err


def seeded(cli: Cli, children: int = 300) -> None:
    """A store holding children, practitioners, audit events and its key binding."""
    assert cli("seed-demo", "--children", str(children)).code == 0


def store_file(db_url: str) -> Path:
    """The SQLite file, with its write-ahead log folded in (so that file writes reach every page)."""
    path = Path(db_url.split("///", 1)[1])
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_db_check_passes_a_sound_store(cli: Cli, backend: str) -> None:
    """Every check named, in one OK line, exit status 0 (SQLite's own integrity check on SQLite)."""
    seeded(cli, 20)
    run = cli("db", "check")
    assert run.code == 0, run
    assert run.out.startswith("OK: ") and len(run.out.splitlines()) == 1
    for passed in (
        "every table, key and index of this Signpost's migrations",
        "the key binding matches SIGNPOST_KEY_FILE",
        "the audit chain is intact",
    ):
        assert passed in run.out
    assert ("SQLite's integrity check" in run.out) == (backend == "sqlite")
    assert cli("db", "check").out == run.out  # read-only: no audit event of its own (the count is the same)


@pytest.mark.sqlite_only
def test_db_check_of_a_sqlite_backup_passes_it_and_leaves_the_file_as_it_was(cli: Cli, tmp_path: Path) -> None:
    """`db check --file` on a backup: OK, and the backup is not changed by the check (opened read-only:
    its bytes, its mode, no WAL left beside it)."""
    seeded(cli, 20)
    backup = tmp_path / "nightly.db"
    assert cli("backup", str(backup)).code == 0
    before = (digest(backup), backup.stat().st_mode)
    run = cli("db", "check", "--file", str(backup))
    assert run.code == 0 and run.out.startswith("OK: SQLite's integrity check; "), run
    assert (digest(backup), backup.stat().st_mode) == before
    assert sorted(p.name for p in tmp_path.glob("nightly.db*")) == ["nightly.db"]


@pytest.mark.postgres_only
def test_db_check_sends_a_pg_dump_archive_to_be_restored_first(cli: Cli, tmp_path: Path) -> None:
    backup = tmp_path / "nightly.dump"
    assert cli("backup", str(backup)).code == 0
    run = cli("db", "check", "--file", str(backup))
    assert run.code == 2
    assert run.said.startswith(f"signpost: {backup} is a pg_dump archive: restore it into a new, empty database")


@pytest.mark.sqlite_only
def test_db_check_names_a_backup_cut_short(cli: Cli, tmp_path: Path) -> None:
    """A copy a killed `signpost backup` left (FILE.signpost-partial) is never to be restored."""
    seeded(cli, 20)
    assert cli("backup", str(tmp_path / "whole.db")).code == 0
    cut = tmp_path / ("nightly.db" + PARTIAL)
    shutil.copyfile(tmp_path / "whole.db", cut)
    run = cli("db", "check", "--file", str(cut))
    assert run.code == 1
    assert f"FAILED: nightly.db{PARTIAL} is a backup that was cut short" in run.out


# `VACUUM INTO` (as `signpost backup` copies) killed -9 part-way, once the copy has begun: its
# rollback journal is left hot beside the copy.
_KILLED_MID_COPY = """
import os, signal, sqlite3, sys
source, target = sys.argv[1], sys.argv[2]
db = sqlite3.connect(source)
db.execute("PRAGMA cache_size=1")  # pages reach the copy as they are written


def die_once_copying():
    if os.path.exists(target + "-journal") and os.path.getsize(target) > 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return 0


db.set_progress_handler(die_once_copying, 100)
db.execute("VACUUM INTO ?", (target,))
"""


@pytest.mark.sqlite_only
def test_db_check_names_a_backup_killed_mid_copy_with_its_hot_journal(cli: Cli, tmp_path: Path) -> None:
    """A real kill leaves the partial copy with a hot rollback journal, which a read-only open cannot
    roll back (SQLite: "attempt to write a readonly database"): the check said "cannot open the
    database … check SIGNPOST_DATABASE_URL" instead of naming the file as a backup cut short."""
    seeded(cli, 20)
    assert cli("backup", str(tmp_path / "whole.db")).code == 0
    cut = tmp_path / ("nightly.db" + PARTIAL)
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_COPY, str(tmp_path / "whole.db"), str(cut)])
    assert killed.returncode == -signal.SIGKILL and Path(f"{cut}-journal").stat().st_size > 0
    run = cli("db", "check", "--file", str(cut))
    assert run.code == 1, run.err
    assert f"FAILED: nightly.db{PARTIAL} is a backup that was cut short" in run.out


@pytest.mark.sqlite_only
def test_a_backup_cut_short_restored_with_its_journal_is_no_store_to_any_command(cli: Cli, tmp_path: Path) -> None:
    """Restored under the store's name with the journal beside it, the copy would be rolled back to
    the empty file its journal began from, and a fresh store made in its place: `audit verify` said
    "OK: 0 events". It is refused as no store, and the file is left as it was."""
    seeded(cli, 20)
    assert cli("backup", str(tmp_path / "whole.db")).code == 0
    cut = tmp_path / ("nightly.db" + PARTIAL)
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_COPY, str(tmp_path / "whole.db"), str(cut)])
    assert killed.returncode == -signal.SIGKILL
    restored = tmp_path / "restored.db"
    shutil.copyfile(cut, restored)
    shutil.copyfile(f"{cut}-journal", f"{restored}-journal")
    before = restored.read_bytes()
    run = cli("audit", "verify", env={"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{restored}"})
    assert run.code == 2 and f"there is no store at {restored}" in run.said, run.out + run.err
    assert restored.read_bytes() == before


@pytest.mark.sqlite_only
def test_a_backup_cut_short_restored_with_its_journal_behind_a_symbolic_link_is_no_store_either(
    cli: Cli, tmp_path: Path
) -> None:
    """The same copy and journal restored where a link points (SIGNPOST_DATABASE_URL naming
    `restored.db -> data/restored.db`): SQLite finds the journal beside the file the link names,
    but Signpost looked beside the link, found none, and let SQLite roll the file back to nothing."""
    seeded(cli, 20)
    assert cli("backup", str(tmp_path / "whole.db")).code == 0
    cut = tmp_path / ("nightly.db" + PARTIAL)
    killed = subprocess.run([sys.executable, "-c", _KILLED_MID_COPY, str(tmp_path / "whole.db"), str(cut)])
    assert killed.returncode == -signal.SIGKILL
    (tmp_path / "data").mkdir()
    restored = tmp_path / "data" / "restored.db"
    shutil.copyfile(cut, restored)
    shutil.copyfile(f"{cut}-journal", f"{restored}-journal")
    link = tmp_path / "restored.db"
    link.symlink_to(restored)
    before = restored.read_bytes()
    run = cli("audit", "verify", env={"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{link}"})
    assert run.code == 2 and f"there is no store at {link}" in run.said, run.out + run.err
    assert restored.read_bytes() == before


@either_store
def test_db_check_names_a_key_file_that_is_not_the_stores_and_makes_none(
    cli: Cli, tmp_path: Path, backend: str
) -> None:
    seeded(cli, 20)
    other = KeyRing.generate(tmp_path / "other.key")
    other.save()
    run = cli("db", "check", env={"SIGNPOST_KEY_FILE": str(other.path)})
    assert run.code == 1
    assert f"FAILED: SIGNPOST_KEY_FILE {other.path} does not belong to this store" in run.out
    assert run.out.splitlines()[-1] == "Do not trust this store as it is: 1 problem."

    missing = tmp_path / "nowhere.key"
    run = cli("db", "check", env={"SIGNPOST_KEY_FILE": str(missing)})
    assert run.code == 1
    assert f"FAILED: SIGNPOST_KEY_FILE {missing} does not exist: the key binding cannot be checked" in run.out
    assert "NOT CHECKED: the audit chain (no key file to take its public key from)" in run.out
    assert not missing.exists()  # a check never makes a key file


@either_store
def test_db_check_with_another_stores_key_file_does_not_call_the_audit_chain_broken(
    cli: Cli, tmp_path: Path, backend: str
) -> None:
    """With another store's key file, after the right line (`… does not belong to this store`) came
    `FAILED: the audit chain fails at seq N: bad checkpoint — the checkpoint … belongs to another log`,
    which reads as tampering. The checkpoints are signed with the key this store's own key file holds:
    another key file cannot check them, and that is what is said (the key file stays the one problem)."""
    seeded(cli, 20)
    assert cli("audit", "checkpoint").code == 0
    other = KeyRing.generate(tmp_path / "other.key")
    other.save()
    run = cli("db", "check", env={"SIGNPOST_KEY_FILE": str(other.path)})
    assert run.code == 1
    assert [line for line in run.out.splitlines() if line.startswith("FAILED: ")] == [
        f"FAILED: SIGNPOST_KEY_FILE {other.path} does not belong to this store "
        "(it was sealed under another key file): use the key file kept with it"
    ]
    assert (
        "NOT CHECKED: the audit chain (its checkpoints are signed with the key in this store's own key file, "
        "and SIGNPOST_KEY_FILE is another store's: `signpost audit verify --public-key` checks it without one)"
    ) in run.out.splitlines()
    assert "another log" not in run.out and "fails at seq" not in run.out
    assert run.out.splitlines()[-1] == "Do not trust this store as it is: 1 problem."


@either_store
def test_db_check_with_another_key_file_still_checks_the_chain_with_its_own_signing_key_file(
    cli: Cli, tmp_path: Path, backend: str
) -> None:
    """Where the signing key lives in a file of its own (SIGNPOST_SIGNING_KEY_FILE), the checkpoints
    need nothing of the key file: the chain is checked, and found intact, beside the key file's problem."""
    seeded(cli, 20)
    signing = {"SIGNPOST_SIGNING_KEY_FILE": str(tmp_path / "signing.key")}
    assert cli("audit", "checkpoint", env=signing).code == 0  # the key file's seed moves there
    other = KeyRing.generate(tmp_path / "other.key")
    other.save()
    run = cli("db", "check", env={"SIGNPOST_KEY_FILE": str(other.path), **signing})
    assert run.code == 1
    assert "does not belong to this store" in run.out and "NOT CHECKED" not in run.out
    assert "the audit chain is intact" in run.out
    assert run.out.splitlines()[-1] == "Do not trust this store as it is: 1 problem."


async def test_db_check_with_its_own_key_file_still_fails_a_checkpoint_of_another_log(
    cli: Cli, db_url: str, tmp_path: Path, backend: str
) -> None:
    """Tampering is still called so with the store's own key file: a checkpoint signed by another
    Signpost's key, slipped into the store, fails the chain (and the key binding passes)."""
    await cli.run("seed-demo", "--children", "20")
    stranger = KeyRing.generate(tmp_path / "stranger.key")
    db = await Database.open(db_url)
    try:
        await make_checkpoint(db, Signer(stranger), datetime.now(UTC))
    finally:
        await db.close()
    run = await cli.run("db", "check")
    assert run.code == 1
    assert "the key binding matches SIGNPOST_KEY_FILE" in run.out
    [failed] = [line for line in run.out.splitlines() if line.startswith("FAILED: ")]
    assert failed.startswith("FAILED: the audit chain fails at seq ") and "belongs to another log" in failed


async def test_db_check_finds_an_audit_event_altered(cli: Cli, db_url: str, backend: str) -> None:
    await cli.run("seed-demo", "--children", "20")
    db = await Database.open(db_url)
    try:
        await unprotect(db)
        await run_sql(db, "UPDATE audit_events SET outcome = 'no_match' WHERE seq = 1")
    finally:
        await db.close()
    run = await cli.run("db", "check")
    assert run.code == 1
    assert "FAILED: the audit chain fails at seq 1: edited" in run.out


# -- SQLite: a damaged file ------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_a_truncated_sqlite_store_is_said_to_be_damaged_by_every_command(cli: Cli, db_url: str, tmp_path: Path) -> None:
    """Half the file gone: every command says the file is damaged (not "check SIGNPOST_DATABASE_URL
    and its folder": it is there, and named right), in one line, exit status 2."""
    seeded(cli)
    path = store_file(db_url)
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    for command in (
        ("db", "current"),
        ("audit", "verify"),
        ("practitioner", "list"),
        ("backup", str(tmp_path / "b.db")),
    ):
        said_plainly(cli(*command), DAMAGED_FILE)
    assert not (tmp_path / "b.db").exists()
    check = cli("db", "check")
    assert check.code == 1
    assert check.out.splitlines()[0] == f"FAILED: {DAMAGED_FILE}"


@pytest.mark.sqlite_only
def test_a_sqlite_store_whose_header_is_gone_is_not_a_database(cli: Cli, db_url: str) -> None:
    seeded(cli, 20)
    path = store_file(db_url)
    with path.open("r+b") as handle:
        handle.write(bytes(100))  # SQLite's file header
    said_plainly(cli("audit", "verify"), NOT_A_DATABASE)
    assert cli("db", "check").out.splitlines()[0] == f"FAILED: {NOT_A_DATABASE}"


@pytest.mark.sqlite_only
def test_zeroed_pages_are_found_by_db_check_and_stop_a_backup(cli: Cli, db_url: str, tmp_path: Path) -> None:
    """Twenty pages zeroed mid-file: `audit verify` reads only the audit's pages and still says OK,
    but `db check` names the damage, and `backup` says so and writes nothing (it crashed with a
    traceback in the log, and a damaged store was never checked by anything)."""
    seeded(cli)
    path = store_file(db_url)
    pages = path.stat().st_size // PAGE
    with path.open("r+b") as handle:
        handle.seek(pages // 2 * PAGE)
        handle.write(bytes(20 * PAGE))

    check = cli("db", "check")
    assert check.code == 1
    damage = [line for line in check.out.splitlines() if line.startswith("FAILED: ")]
    assert damage and all(line.startswith("FAILED: the database file is damaged") for line in damage), check.out
    assert len(damage) <= 6  # the first few of SQLite's findings, then how many more
    assert check.out.splitlines()[-1].startswith("Do not trust this store as it is: ")

    target = tmp_path / "nightly.db"
    backup = cli("backup", str(target))  # stopped where the damage is first read: opening, or copying
    assert backup.code == 2 and backup.said.endswith(DAMAGED_FILE), backup
    assert "Traceback" not in backup.err and '"frames"' not in backup.err
    assert not target.exists() and not list(tmp_path.glob(f"*{PARTIAL}*"))


@pytest.mark.sqlite_only
def test_a_backup_of_a_store_damaged_where_only_the_copy_reads_says_so_and_writes_nothing(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """The involvements table's root page zeroed: opening the store never reads it, the copy does.
    The backup is audited failed, and the operator reads why, in one line."""
    seeded(cli)
    path = store_file(db_url)
    with sqlite3.connect(path) as conn:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'involvements'").fetchone()
    with path.open("r+b") as handle:
        handle.seek((root - 1) * PAGE)
        handle.write(bytes(PAGE))
    target = tmp_path / "nightly.db"
    said_plainly(cli("backup", str(target)), f"nothing was backed up: {DAMAGED_FILE}")
    assert not target.exists() and not list(tmp_path.glob(f"*{PARTIAL}*"))


@pytest.mark.sqlite_only
def test_a_backup_whose_copy_fails_sqlites_check_says_so_and_writes_nothing(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """Damage that copying reads straight past: a NULL stored in a NOT NULL column of the
    involvements (the table's declaration edited underneath it, as a broken tool or disk might).
    VACUUM INTO copies the row as it is; only the check of the copy sees it, so the operator is
    told the store is damaged and no file is left that a restore would trust."""
    seeded(cli)
    path = store_file(db_url)
    with sqlite3.connect(path) as conn:
        (declared,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'involvements'").fetchone()
    column = "lead_professional"
    loosened = declared.replace(f"{column} BOOLEAN NOT NULL", f"{column} BOOLEAN", 1)
    assert loosened != declared, declared
    for sql in (loosened, None, declared):
        with sqlite3.connect(path) as conn:
            if sql is None:
                conn.execute(
                    f"UPDATE involvements SET {column} = NULL WHERE rowid = (SELECT min(rowid) FROM involvements)"
                )
                continue
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'involvements'", (sql,))
    target = tmp_path / "nightly.db"
    backup = cli("backup", str(target))
    assert backup.code == 2 and backup.err.count("\n") == 1, backup
    assert backup.err.startswith("signpost: nothing was backed up: the copy did not pass SQLite's integrity check"), (
        backup
    )
    assert backup.err.rstrip().endswith("is damaged: run `signpost db check`"), backup
    assert not target.exists() and not list(tmp_path.glob(f"*{PARTIAL}*"))


# -- PostgreSQL: a restore cut short ---------------------------------------------------------------


@pytest.fixture
def restored_in_part(cli: Cli, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real `signpost backup` (pg_dump) of a store holding data, and an empty database to restore
    it into: (the dump, the new database's URL). Dropped afterwards."""
    seeded(cli)
    dump = tmp_path / "nightly.dump"
    assert cli("backup", str(dump)).code == 0
    name = f"signpost_restored_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield dump, with_database(postgres_url(), name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pg_restore(dump: Path, url: str, *sections: str) -> int:
    return subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={_dsn(url)}", *(f"--section={s}" for s in sections), str(dump)],
        capture_output=True,
        check=False,
    ).returncode


@pytest.mark.postgres_only
def test_a_restore_of_the_tables_alone_is_one_plain_line_and_db_check_says_what_is_missing(
    cli: Cli, restored_in_part: tuple[Path, str]
) -> None:
    """pg_restore stopped before the data: every table, no row, no key (keys come after the data).
    `db current` said "up to date" and every command stopped with a ProgrammingError traceback."""
    dump, url = restored_in_part
    assert pg_restore(dump, url, "pre-data") == 0
    env = {"SIGNPOST_DATABASE_URL": url}
    current = cli("db", "current", env=env)
    assert current.code == 1 and current.out.startswith("not whole: Signpost's tables are here in part, ")
    for command in (
        ("audit", "verify"),
        ("practitioner", "list"),
        ("backup", str(dump.with_name("again.dump"))),
        ("db", "upgrade"),
    ):
        said_plainly(cli(*command, env=env), NOT_A_WHOLE_STORE)
    check = cli("db", "check", env=env)
    assert check.code == 1
    assert check.out.startswith("FAILED: no migration is recorded, but Signpost's tables are here")
    assert "FAILED: tables without their primary key (" in check.out
    assert "NOT CHECKED: the key binding and the audit chain (the store's tables are not whole)" in check.out


@pytest.mark.postgres_only
def test_a_restore_of_a_backup_cut_short_is_one_plain_line_for_any_command(
    cli: Cli, restored_in_part: tuple[Path, str]
) -> None:
    """The dump a killed `signpost backup` left (its first part), restored as far as it goes: some
    tables' rows, none of their keys. The key binding's upsert failed with a traceback."""
    dump, url = restored_in_part
    cut = dump.with_name(dump.name + PARTIAL)
    cut.write_bytes(dump.read_bytes()[: dump.stat().st_size * 6 // 10])
    assert pg_restore(cut, url) != 0  # "could not read from input file: end of file"
    env = {"SIGNPOST_DATABASE_URL": url}
    said_plainly(cli("audit", "verify", env=env), NOT_A_WHOLE_STORE)
    current = cli("db", "current", env=env)
    assert current.code == 1 and current.out.startswith("not whole: ")
    check = cli("db", "check", env=env)
    assert check.code == 1 and check.out.startswith("FAILED: tables without their primary key (")


def _unzeroed(key_file: Path, names: str) -> str:
    return f"FAILED: SIGNPOST_KEY_FILE {key_file}: {LEFTOVER_UNZEROED.format(names=names)}"


def _no_key_material(run: Run, key_file: Path) -> None:
    held = json.loads(key_file.read_text("utf-8"))
    assert '"keks"' not in run.out + run.err
    assert not any(value in run.out + run.err for value in held["keks"].values())


@either_store
@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other accounts needs root")
def test_db_check_by_an_account_that_cannot_take_the_key_files_lock_checks_everything(cli: Cli, keys: KeyRing) -> None:
    """`db check` only reads: run by an account that is not the one running Signpost (an auditor's;
    here the lock file is another account's), it checks everything and passes a sound store. A copy
    a write cut short left beside the key file, which it may not zero, is one problem saying how to
    clear it; run as the account that runs Signpost, the check zeroes and removes it."""
    seeded(cli, 5)
    assert keys.path is not None
    lock = Path(f"{keys.path}.lock")
    assert lock.exists()  # seed-demo took it
    for path in (keys.path, lock):
        os.chown(path, ANOTHER, ANOTHER)  # the service account's files; the check run as root
    passed = cli("db", "check")
    assert passed.code == 0, passed
    assert "the key binding matches SIGNPOST_KEY_FILE" in passed.out and "the audit chain is intact" in passed.out

    left = keys.path.with_name(f"{keys.path.name}.replaced.tmp")
    left.write_bytes(keys.path.read_bytes())  # the file an edit replaced, killed before its zeros
    found = cli("db", "check")
    assert found.code == 1
    assert [line for line in found.out.splitlines() if line.startswith("FAILED")] == [
        _unzeroed(keys.path, left.name)
    ], found
    assert "the key binding matches SIGNPOST_KEY_FILE" in found.out and "the audit chain is intact" in found.out
    _no_key_material(found, keys.path)
    assert left.read_bytes() == keys.path.read_bytes()  # not this account's to touch

    os.chown(lock, os.geteuid(), os.getegid())  # now run as the account that runs Signpost
    cleared = cli("db", "check")
    assert cleared.code == 0, cleared
    assert not left.exists()


def _read_only_mount(folder: Path, command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` run with ``folder`` a read-only mount (in a mount namespace of its own, gone with
    it): how a folder is read-only even to root, which the tests run as."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(folder), *command],
        env=env,
        cwd=folder.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@either_store
def test_db_check_with_the_key_files_folder_read_only_checks_everything(
    cli: Cli, keys: KeyRing, db_url: str, tmp_path: Path
) -> None:
    """The key file on a read-only disk (a backup's): `db check` cannot make its lock there, and
    still checks everything; a copy a write cut short left there is one problem, left as it is."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is needed for a read-only mount")
    seeded(cli, 5)
    assert keys.path is not None
    folder = tmp_path / "keys"
    folder.mkdir()
    key_file = folder / "signpost.key"
    shutil.copy2(keys.path, key_file)
    env = clean_environment(db_url, folder)
    probe = _read_only_mount(folder, ["touch", str(folder / "probe")], env)
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"no read-only mount here (needs the privilege to mount): {probe.stderr.strip()}")
    check = [sys.executable, "-m", "bot", "db", "check"]

    passed = _read_only_mount(folder, check, env)
    assert passed.returncode == 0, passed
    assert "the key binding matches SIGNPOST_KEY_FILE" in passed.stdout and "the audit chain is intact" in passed.stdout

    left = folder / "signpost.key.replaced.tmp"
    left.write_bytes(key_file.read_bytes())
    found = _read_only_mount(folder, check, env)
    assert found.returncode == 1, found
    assert [line for line in found.stdout.splitlines() if line.startswith("FAILED")] == [
        _unzeroed(key_file, left.name)
    ], found
    assert "the key binding matches SIGNPOST_KEY_FILE" in found.stdout
    _no_key_material(Run(found.returncode, found.stdout, found.stderr), key_file)
    assert left.read_bytes() == key_file.read_bytes() and sorted(p.name for p in folder.iterdir()) == [
        "signpost.key",
        "signpost.key.replaced.tmp",
    ]
