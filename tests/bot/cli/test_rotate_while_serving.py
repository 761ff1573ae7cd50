"""`signpost keys rotate` beside a Signpost that is serving: refused on its host, before anything
changes; and what a replica that kept serving through a rotation sealed is found by `db check` and
named, with what to do, by the next rotation. Real `signpost` processes throughout."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.cli.common import ROTATING
from handlers.vocabulary import Action, Outcome
from store.audit.log import last_of
from store.db import Database
from store.keys.crypto import KeyRing, key_file_use
from store.people import credentials
from tests.bot.process import run_signpost, standard_store
from tests.bot.slack.test_run import base_env, start_slack_server
from tests.fakes.slack_api import FakeSlackApi

SERVING = "a Signpost server on this host is serving with this key file"


async def last_rotation(db_url: str) -> tuple[Outcome, str] | None:
    db = Database.connect(db_url)
    try:
        async with db.read() as session:
            return await last_of(session, Action.KEYS_ROTATE)
    finally:
        await db.close()


async def rotate(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    done = await asyncio.to_thread(run_signpost, "keys", "rotate", env=env, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


async def test_keys_rotate_is_refused_while_signpost_run_serves(tmp_path: Path, fake_slack: FakeSlackApi) -> None:
    """While `signpost run` serves with the key file, a rotation is refused in one line (exit 2,
    audited refused) and the key file is left as it was; once the server is stopped it rotates."""
    env = base_env(tmp_path)
    key_file = tmp_path / "signpost.key"
    _, server = await start_slack_server(tmp_path, fake_slack)
    try:
        before = key_file.read_bytes()
        status, out, err = await rotate(env, tmp_path)
        assert status == 2, out + err
        [said] = err.strip().splitlines()[-1:]
        assert SERVING in said and "stop every replica" in said and "then rotate" in said, said
        assert key_file.read_bytes() == before  # nothing changed
        refused = await last_rotation(env["SIGNPOST_DATABASE_URL"])
        assert refused is not None and refused[0] is Outcome.REFUSED
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.communicate(), 60)
    status, out, err = await rotate(env, tmp_path)
    assert status == 0, err
    assert KeyRing.load(key_file).current_kek_id == "k2"


async def test_keys_rotate_is_refused_while_the_console_is_open(tmp_path: Path) -> None:
    """The console holds the keys in memory too: a rotation while it is open is refused."""
    env = base_env(tmp_path)
    seeded = await asyncio.to_thread(run_signpost, "seed-demo", "--children", "20", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    console = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        "--as",
        "NS-P0001",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert console.stdout is not None and console.stdin is not None
        await asyncio.wait_for(console.stdout.readuntil(b"Signpost console"), 60)  # it is open
        status, out, err = await rotate(env, tmp_path)
        assert status == 2, out + err
        assert SERVING in err
        console.stdin.close()
        await asyncio.wait_for(console.communicate(), 60)
    finally:
        if console.returncode is None:
            console.kill()
            await console.wait()
    status, _, err = await rotate(env, tmp_path)
    assert status == 0, err


async def test_a_key_a_stale_replica_sealed_is_found_by_db_check_and_named_by_the_next_rotation(
    db_url: str, tmp_path: Path
) -> None:
    """A replica with its own copy of the key file (another host) that kept serving through a
    rotation seals P003's authenticator under the old KEK: `db check` fails, counting it; the
    next rotation fails before changing anything, saying how many and what to do; once P003's
    credential is reset, it rotates and `db check` passes."""
    env = standard_store(db_url, tmp_path)
    enrolled = run_signpost("totp", "enrol", "P001", "--secret-file", str(tmp_path / "p001.txt"), env=env, cwd=tmp_path)
    assert enrolled.returncode == 0, enrolled.stderr
    key_file = Path(env["SIGNPOST_KEY_FILE"])
    stale = tmp_path / "replica.key"
    shutil.copy(key_file, stale)  # the other host's copy, as it was before the rotation
    status, _, err = await rotate(env, tmp_path)
    assert status == 0, err
    db = Database.connect(db_url)  # the stale replica: an enrolment sealed with the keys it still holds
    try:
        async with db.write() as session:
            await credentials.enrol(session, KeyRing.load(stale), "P003", secrets.token_bytes(20), datetime.now(UTC))
    finally:
        await db.close()

    check = await asyncio.to_thread(run_signpost, "db", "check", env=env, cwd=tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    [found] = [line for line in check.stdout.splitlines() if "totp_credentials" in line]
    assert found.startswith("FAILED: ") and "1 wrapped key" in found and "signpost totp reset P003" in found, found

    before = key_file.read_bytes()
    status, out, err = await rotate(env, tmp_path)
    assert status == 2, out + err
    said = err.strip().splitlines()[-1]
    assert "totp_credentials: 1 wrapped key" in said and "signpost totp reset P003" in said, said
    assert key_file.read_bytes() == before  # no half-made generation 3
    assert KeyRing.load(key_file).current_kek_id == "k2"

    reset = await asyncio.to_thread(run_signpost, "totp", "reset", "P003", env=env, cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    status, _, err = await rotate(env, tmp_path)
    assert status == 0, err
    check = await asyncio.to_thread(run_signpost, "db", "check", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_rotate_help_says_running_servers_refuse_it() -> None:
    """`signpost keys rotate --help` says it is refused while a Signpost serves with the key file."""
    shown = run_signpost("keys", "rotate", "--help", cwd=Path.cwd())
    assert shown.returncode == 0
    assert "serving" in shown.stdout and "replica" in shown.stdout, shown.stdout


def test_a_console_started_during_a_rotation_is_refused_in_one_line(tmp_path: Path) -> None:
    """While a rotation holds the key file's serving lock (held here as `keys rotate` holds it),
    a Signpost that would serve with the keys about to be replaced is refused at start, in one line."""
    env = base_env(tmp_path)
    seeded = run_signpost("seed-demo", "--children", "5", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    with key_file_use(tmp_path / "signpost.key", exclusive=True) as alone:
        assert alone
        started = run_signpost("console", "--as", "NS-P0001", env=env, cwd=tmp_path, stdin="help\n")
    assert started.returncode == 2, started.stdout + started.stderr
    assert started.stderr.strip().splitlines()[-1] == f"signpost: {ROTATING}"
    started = run_signpost("console", "--as", "NS-P0001", env=env, cwd=tmp_path, stdin="help\n")
    assert started.returncode == 0, started.stderr


async def test_a_store_whose_only_authenticator_a_stale_replica_sealed_still_starts_and_can_be_reset(
    db_url: str, tmp_path: Path
) -> None:
    """The key binding at start read one wrapped key per table: when the one it read of
    `totp_credentials` was the one a stale replica sealed under the old generation (here the only
    one), every command was refused ("this store needs key generation 1, which the key file no
    longer holds"), `signpost totp reset P003` (the remedy `db check` names) among them. The store's
    other keys are under the generation the key file holds, so it is this key file's store: it
    starts, `db check` names the stale key and its remedy, and the remedy runs."""
    env = standard_store(db_url, tmp_path)
    key_file = Path(env["SIGNPOST_KEY_FILE"])
    stale = tmp_path / "replica.key"
    shutil.copy(key_file, stale)
    status, _, err = await rotate(env, tmp_path)
    assert status == 0, err
    db = Database.connect(db_url)  # the stale replica enrols P003, the first to enrol since the rotation
    try:
        async with db.write() as session:
            await credentials.enrol(session, KeyRing.load(stale), "P003", secrets.token_bytes(20), datetime.now(UTC))
    finally:
        await db.close()

    listed = await asyncio.to_thread(run_signpost, "practitioner", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    check = await asyncio.to_thread(run_signpost, "db", "check", env=env, cwd=tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    [found] = [line for line in check.stdout.splitlines() if "totp_credentials" in line]
    assert "1 wrapped key" in found and "signpost totp reset P003" in found, found
    assert not [line for line in check.stdout.splitlines() if "key binding" in line and "FAILED" in line], check.stdout
    reset = await asyncio.to_thread(run_signpost, "totp", "reset", "P003", env=env, cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    check = await asyncio.to_thread(run_signpost, "db", "check", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
