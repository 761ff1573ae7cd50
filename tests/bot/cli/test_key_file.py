"""Only the key file a store was sealed under opens it: a missing, wrong or out-of-date key file
stops `signpost` at start with one line naming SIGNPOST_KEY_FILE (store/keys/binding.py), and a
fresh store still gets its key file made on first use."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import delete, select

from store.db import Database
from store.keys.binding import FINGERPRINT, fingerprint
from store.keys.crypto import KeyRing, key_file_use
from store.register.feeds import Feed, import_feeds
from store.tables.lifecycle import Meta
from tests.bot.cli.conftest import Cli, Run
from tests.bot.cli.test_main import write_feeds
from tests.factories import CHILDREN, INVOLVEMENTS, PRACTITIONERS
from tests.spread import either_store, spread
from tests.store.keys.test_backup import restored

pytestmark = pytest.mark.fresh_keys  # `signpost` works to the real date (tests/conftest.py keys)

LOOKUP = "999 000 0018"
FOUND = "Signposts for 999 000 0018: 3 involvements."


def imported(cli: Cli, tmp_path: Path) -> None:
    result = cli("import", *write_feeds(tmp_path))
    assert result.code == 0, result.err


def looks_up(cli: Cli) -> Run:
    """A practitioner's keyed enquiry in the console, enrolled first."""
    return cli("console", "--as", "P002", stdin=f"{LOOKUP}\n{enrol(cli)}\n:quit\n")


def refused_in_one_line(run: Run, *words: str) -> None:
    assert run.code == 2, run.err
    assert len(run.said.splitlines()) == 1, run.said
    assert run.said.startswith("signpost: SIGNPOST_KEY_FILE "), run.said
    for word in words:
        assert word in run.said, run.said


def other_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "other.key"
    KeyRing.generate(path).save()
    return path


async def recorded_fingerprint(db_url: str) -> str | None:
    db = Database.connect(db_url)
    try:
        async with db.read() as session:
            return (await session.execute(select(Meta.value).where(Meta.key == FINGERPRINT))).scalar()
    finally:
        await db.close()


@either_store  # a key file refused in one line, not the store: one store shows it (tests/spread.py)
def test_a_missing_key_file_for_a_store_holding_children_stops_and_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    """The newcomer's case: a new SIGNPOST_KEY_FILE path for a store holding children. Exit 2, one
    line naming the setting and saying why, and no key file made (the old code made one, exit 0)."""
    imported(cli, tmp_path)
    new = tmp_path / "new" / "signpost.key"
    new.parent.mkdir()
    run = cli("retention", "run", "--dry-run", env={"SIGNPOST_KEY_FILE": str(new)})
    refused_in_one_line(run, str(new), "sealed under another key file", "a new one cannot open it")
    assert list(new.parent.iterdir()) == []


@either_store  # a key file refused in one line, not the store: one store shows it (tests/spread.py)
@pytest.mark.parametrize("command", [("console",), ("run",)])
def test_a_missing_key_file_refused_at_the_console_or_run_leaves_no_serving_lock(
    cli: Cli, tmp_path: Path, command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console and `run` take the key file's serving lock before the store is opened: refused
    "(nothing was created)", they left an empty `signpost.key.serving.lock` in the new folder."""
    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):  # so `run` opens the console
        monkeypatch.delenv(name, raising=False)
    imported(cli, tmp_path)
    new = tmp_path / "new" / "signpost.key"
    new.parent.mkdir()
    run = cli(*command, "--as", "P002", stdin=":quit\n", env={"SIGNPOST_KEY_FILE": str(new)})
    refused_in_one_line(run, str(new), "sealed under another key file", "nothing was created")
    assert list(new.parent.iterdir()) == []


def test_a_serving_lock_held_by_another_process_stays_when_a_console_is_refused(cli: Cli, tmp_path: Path) -> None:
    """Only a serving lock nobody else holds is removed: one a live console holds (here, this test)
    stays, and so does its hold on it, when another console is refused with the same key file."""
    imported(cli, tmp_path)
    new = tmp_path / "new" / "signpost.key"
    new.parent.mkdir()
    with key_file_use(new, exclusive=False) as held:
        assert held
        run = cli("console", "--as", "P002", stdin=":quit\n", env={"SIGNPOST_KEY_FILE": str(new)})
        refused_in_one_line(run, "sealed under another key file")
        assert [p.name for p in new.parent.iterdir()] == ["signpost.key.serving.lock"]
        with key_file_use(new, exclusive=True) as rotation:
            assert not rotation  # still held: a rotation is refused


@either_store  # a key file refused in one line, not the store: one store shows it (tests/spread.py)
@pytest.mark.parametrize("command", [("audit", "verify"), ("console",), ("retention", "run", "--dry-run")])
def test_a_folder_named_as_the_key_file_is_refused_leaving_no_lock_file_beside_it(
    cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """SIGNPOST_KEY_FILE naming a folder was refused ("is not a regular file") only once its lock
    file had been made beside it, and `<folder>.lock` stayed behind: now refused before."""
    folder = tmp_path / "keys" / "signpost.key"
    folder.mkdir(parents=True)
    run = cli(*command, stdin=":quit\n", env={"SIGNPOST_KEY_FILE": str(folder)})
    assert (run.code, run.said) == (2, f"signpost: key file {folder} is not a regular file"), run.err
    assert sorted(p.name for p in folder.parent.iterdir()) == ["signpost.key"]


async def test_a_missing_key_file_is_refused_for_a_store_written_before_fingerprints(
    cli: Cli, db_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    """A store holding children and no fingerprint (written by an older Signpost): a missing key
    file is refused too, and none is created."""
    db = await Database.open(db_url)
    feeds = [Feed("p.csv", PRACTITIONERS), Feed("c.csv", CHILDREN), Feed("i.csv", INVOLVEMENTS)]
    try:
        await import_feeds(db, keys, feeds, datetime.now(UTC))
    finally:
        await db.close()
    new = tmp_path / "new.key"
    run = await cli.run("retention", "run", "--dry-run", env={"SIGNPOST_KEY_FILE": str(new)})
    refused_in_one_line(run, "sealed under another key file")
    assert not new.exists()


@either_store  # a key file refused in one line, not the store: one store shows it (tests/spread.py)
def test_another_key_file_is_refused_at_start(cli: Cli, tmp_path: Path) -> None:
    """A store opened with a key file of another store: refused before the console starts, in one line
    (the old code started, and the first lookup answered "something went wrong")."""
    imported(cli, tmp_path)
    other = other_key_file(tmp_path)
    run = cli("console", "--as", "P002", stdin=f"{LOOKUP}\n:quit\n", env={"SIGNPOST_KEY_FILE": str(other)})
    refused_in_one_line(run, str(other), "does not belong to this store")
    assert "went wrong" not in run.out


async def test_another_key_file_is_refused_by_a_store_written_before_fingerprints(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """A store that records no fingerprint yet: the first key file to open it must open its wrapped
    keys, so another store's key file is refused (and not recorded as this store's)."""
    await asyncio.to_thread(imported, cli, tmp_path)
    db = Database.connect(db_url)
    async with db.write() as session:
        await session.execute(delete(Meta).where(Meta.key == FINGERPRINT))  # as an older Signpost left it
    await db.close()
    run = await cli.run("retention", "run", "--dry-run", env={"SIGNPOST_KEY_FILE": str(other_key_file(tmp_path))})
    refused_in_one_line(run, "does not belong to this store")
    assert await recorded_fingerprint(db_url) is None
    assert (await cli.run("retention", "run", "--dry-run")).code == 0  # its own key file still opens it


def test_an_emptied_key_file_is_refused_by_a_store_not_being_decommissioned(cli: Cli, tmp_path: Path) -> None:
    """A key file as decommissioning leaves it (no KEK, no index key), given to a store that holds
    wrapped keys and is not being decommissioned: refused, as another store's key file or a key file
    beside a backup taken before decommissioning (tests/bot/cli/test_backup_beside_emptied_key_file.py).
    Only a store that has forgotten every wrapped key (decommissioning does so before it empties its
    key file) accepts one."""
    imported(cli, tmp_path)
    emptied = tmp_path / "emptied.key"
    emptied.write_text(
        json.dumps({"version": 1, "current_kek": "", "keks": {}, "index_key": "", "signing_seed": ""}), "utf-8"
    )
    run = cli("decommission", "status", env={"SIGNPOST_KEY_FILE": str(emptied)})
    refused_in_one_line(run, str(emptied), "If this store is another one, use its own key file.")
    assert cli("decommission", "status").code == 0  # its own key file still opens it


async def test_a_fresh_store_gets_its_key_file_and_works(cli: Cli, db_url: str, tmp_path: Path) -> None:
    """A fresh store and no key file (`make run` on a fresh clone): the key file is made (0600), the
    store records its fingerprint (a keyed hash, no key), and import and a lookup work."""
    key = tmp_path / "fresh.key"
    env = {"SIGNPOST_KEY_FILE": str(key)}
    assert (await cli.run("import", *write_feeds(tmp_path), env=env)).code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ring = KeyRing.load_or_create(key)  # it exists: loads
    recorded = await recorded_fingerprint(db_url)
    assert recorded == fingerprint(ring)
    assert all(recorded != secret.hex() for secret in (ring.index_key, ring.signing_seed, *ring.keks.values()))
    code = await asyncio.to_thread(enrol, cli, env)
    run = await cli.run("console", "--as", "P002", stdin=f"{LOOKUP}\n{code}\n:quit\n", env=env)
    assert run.code == 0, run.err
    assert FOUND in run.out


def enrol(cli: Cli, env: dict[str, str] | None = None) -> str:
    """Enrol P002's authenticator at the terminal (as an admin would); its current code."""
    return pyotp.TOTP(cli.enrol("P002", env=env)).now()


def test_after_keys_rotate_the_store_still_opens_and_still_knows_its_key_file(cli: Cli, tmp_path: Path) -> None:
    """`keys rotate` changes every key-encryption key but not the key file's identity: after it, a
    restarted console finds the child, and another store's key file is still refused."""
    imported(cli, tmp_path)
    assert cli("keys", "rotate").code == 0
    run = looks_up(cli)
    assert run.code == 0, run.err
    assert FOUND in run.out
    other = cli("retention", "run", "--dry-run", env={"SIGNPOST_KEY_FILE": str(other_key_file(tmp_path))})
    refused_in_one_line(other, "does not belong to this store")


async def test_a_backup_from_before_a_rotation_names_the_generation_it_needs(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """A backup taken before `keys rotate`, restored beside the rotated key file: refused at start in
    one line saying which key generation it needs and to restore the key file kept with the backup."""
    await asyncio.to_thread(imported, cli, tmp_path)
    backup_file = tmp_path / "before-rotation.backup"
    assert (await cli.run("backup", str(backup_file))).code == 0
    assert (await cli.run("keys", "rotate")).code == 0
    async with restored(db_url, backup_file) as old:
        url = old.engine.url.render_as_string(hide_password=False)
        run = await cli.run("retention", "run", "--dry-run", env={"SIGNPOST_DATABASE_URL": url})
    refused_in_one_line(
        run, "this store needs key generation 1, which the key file no longer holds", "restore the key file kept"
    )


@either_store  # a key file's mode, not the store: one store shows it (tests/spread.py)
def test_a_key_file_found_open_to_others_is_tightened_by_the_first_command_that_opens_it(
    cli: Cli, tmp_path: Path
) -> None:
    """A key file put back by hand (`cp` from a secret manager or a host backup, under umask 022) is
    0644: every account on the host could read the keys that open every child. The store is
    tightened to 0600 when opened; the key file, which opens it, was left as found by every command
    (read-only ones, and a retention run with nothing to destroy). It is made 0600, with the signing
    key file beside it, by the first command that opens it; its keys stay as they were."""
    signing = tmp_path / "signing.key"
    env = {"SIGNPOST_SIGNING_KEY_FILE": str(signing)}
    imported(cli, tmp_path)
    assert cli("audit", "verify", env=env).code == 0  # the seed moves to its own file
    key_file = Path(os.environ["SIGNPOST_KEY_FILE"])
    before = key_file.read_bytes()
    for path in (key_file, signing):
        path.chmod(0o644)
    run = cli("retention", "run", "--dry-run", env=env)
    assert run.code == 0, run.err
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in (key_file, signing)} == {
        key_file.name: 0o600,
        signing.name: 0o600,
    }
    assert key_file.read_bytes() == before


@either_store  # a key file refused in one line, not the store: one store shows it (tests/spread.py)
def test_a_key_file_too_large_to_be_one_stops_keys_rotate_in_one_line(cli: Cli, tmp_path: Path) -> None:
    """SIGNPOST_KEY_FILE naming a file over ``MAX_KEY_FILE`` (as /dev/zero was read, until memory
    ran out and `keys rotate` crashed with a traceback): exit 2, one line naming it, nothing read whole."""
    from store.keys.crypto import MAX_KEY_FILE

    imported(cli, tmp_path)
    large = tmp_path / "large.key"
    large.write_bytes(b"{" + b" " * MAX_KEY_FILE + b"}")
    run = cli("keys", "rotate", env={"SIGNPOST_KEY_FILE": str(large)})
    assert (run.code, run.out) == (2, "")
    assert run.said.splitlines() == [f"signpost: key file {large} is too large for a key file (over 1 MiB)"], run.said


# A key file edited by hand (or damaged) so that a value is of the wrong type, or a chain's entry
# has a name Signpost never writes: each once crashed with a traceback ("stopped by an unexpected
# error (AttributeError)", "… (ValueError)") where bad base64 got one line.
MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "index_key a number": (lambda doc: doc | {"index_key": 12345}, "index_key is not base64 text"),
    "signing_seed null": (lambda doc: doc | {"signing_seed": None}, "signing_seed is not base64 text"),
    "a chain entry's cutoff not a number": (
        lambda doc: doc | {"keks": doc["keks"] | {"~day:1:Qqx": "AAAA"}},
        "a key chain's entry has a name Signpost never writes",
    ),
}


@spread("malformed", list(MALFORMED))  # a key file read and refused: each on one store (tests/spread.py)
def test_a_key_file_with_a_malformed_value_is_refused_in_one_line(
    cli: Cli, keys: KeyRing, tmp_path: Path, malformed: str
) -> None:
    """A store with children, and a key file with a wrong-type or malformed value: `retention run
    --dry-run` stops (exit 2) with one line on stderr naming the problem, and `db check` reports it
    as one of its findings (exit 1); no traceback, no secret, either way."""
    assert keys.path is not None
    imported(cli, tmp_path)
    doc = json.loads(keys.path.read_text("utf-8"))
    edit, problem = MALFORMED[malformed]
    damaged = tmp_path / "damaged.key"
    damaged.write_text(json.dumps(edit(doc)), "utf-8")
    os.chmod(damaged, 0o600)
    said = f"cannot read key file {damaged}: {problem}"
    env = {"SIGNPOST_KEY_FILE": str(damaged)}
    stopped = cli("retention", "run", "--dry-run", env=env)
    assert (stopped.code, stopped.out, stopped.said) == (2, "", f"signpost: {said}"), stopped.err
    checked = cli("db", "check", env=env)
    assert (checked.code, checked.said) == (1, ""), checked.err
    assert f"FAILED: {said}" in checked.out.splitlines(), checked.out
    for run in (stopped, checked):
        assert "Traceback" not in run.err and "unexpected" not in run.err, run.err
        assert not any(secret in run.err + run.out for secret in (doc["index_key"], doc["signing_seed"]))


@spread("current", ["nope", "AAAA"])  # a key file read and refused: each on one store (tests/spread.py)
def test_totp_enrol_with_a_current_kek_the_key_file_does_not_hold_is_refused_in_one_line(
    cli: Cli, keys: KeyRing, tmp_path: Path, current: str
) -> None:
    """`current_kek` naming no key in keks stopped `totp enrol` with "unexpected error (KeyError)"
    (or ValueError): now one line naming the field, exit 2, and no secret file written."""
    assert keys.path is not None
    imported(cli, tmp_path)
    damaged = tmp_path / "damaged.key"
    damaged.write_text(json.dumps(json.loads(keys.path.read_text("utf-8")) | {"current_kek": current}), "utf-8")
    os.chmod(damaged, 0o600)
    secret = tmp_path / "p002.secret"
    run = cli("totp", "enrol", "P002", "--secret-file", str(secret), env={"SIGNPOST_KEY_FILE": str(damaged)})
    assert (run.code, run.out) == (2, ""), run.err
    assert run.said == f"signpost: cannot read key file {damaged}: current_kek names no key in keks", run.said
    assert not secret.exists()
