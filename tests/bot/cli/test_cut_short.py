"""Operator work cut short (kill -9, a failure part-way) leaves its audit trace, and nothing half done
that looks whole: a key rotation is audited before it changes anything and a rerun finishes it; a
backup is audited before it starts, its pg_dump dies with signpost, and a partial copy never takes
the backup's name."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, update

from bot.app import Signpost, build
from handlers.clock import FakeClock
from handlers.lifecycle.flows import decommission_tick, finish_destruction
from handlers.operator import lifecycle
from handlers.operator.common import Refused, audited
from handlers.vocabulary import CUT_SHORT, Action
from store.db import Database
from store.keys import keychain, rotation
from store.keys.backup import PARTIAL, BackupFailed, backup, remove_partials
from store.keys.binding import open_key_file
from store.keys.crypto import DecryptionError, KeyRing, child_aad, temporary_name
from store.lifecycle import decommission
from store.lifecycle.decommission import backups_taken
from store.register.feeds import Feed, import_feeds
from store.tables import wrapped_key_tables
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice
from store.tables.lifecycle import Decommission
from store.tables.register import ChildKey
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_key_file import other_key_file, refused_in_one_line
from tests.bot.cli.test_main import write_feeds
from tests.factories import AMY, CHILDREN_HEADER
from tests.store.lifecycle.lifecycle_data import load

pytestmark = pytest.mark.fresh_keys  # `signpost` works to the real date (tests/conftest.py keys)

ROOT = Path(__file__).resolve().parents[3]


class Killed(BaseException):
    """The process dying at this point: nothing of ours catches it (as nothing runs after a kill -9)."""


async def events(db: Database, action: str) -> list[tuple[str, str]]:
    """Each event's outcome and detail; a backup's label (``backup_label``) read back as the file name
    it stands for, and its SHA-256 left out, so that the steps read as the files they name."""
    async with db.read() as session:
        found = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return [(str(outcome), _named(str(detail))) for outcome, detail in found.all()]


BACKUP_FILES = ("nightly.db", "other.db", "x.dump", "whole.db", "a.backup")


def _named(detail: str) -> str:
    key_file = os.environ.get("SIGNPOST_KEY_FILE")
    if key_file is None or not detail.startswith("backup "):
        return detail
    keys = KeyRing.load(Path(key_file))
    for name in BACKUP_FILES:
        detail = detail.replace(lifecycle.backup_label(keys, name), name)
    return re.sub(r", sha256 [0-9a-f]{16}", "", detail)


def _taken(name: str) -> str:
    """A backup as decommissioning names it (``backups_taken``), read back as its file's name."""
    name = re.sub(r" \(sha256 [0-9a-f]{16}\)$", "", _named(name.removeprefix(f"a partial copy (*{PARTIAL}) by ")))
    return name


def generations_on_disk(keys: KeyRing) -> set[str]:
    assert keys.path is not None
    return {k for k in KeyRing.load(keys.path).keks if k.startswith("k")}


# -- keys rotate ---------------------------------------------------------------------------------


async def rotate(signpost: Signpost, on_progress: Callable[[int], None] | None = None) -> rotation.RotationReport:
    """`signpost keys rotate` as the command line runs it: the use case inside its audit."""
    async with audited(signpost.ctx, "ops", Action.KEYS_ROTATE) as audit:
        return await lifecycle.rotate_keys(signpost.ctx, audit, on_progress=on_progress)


async def test_a_rotation_cut_short_is_audited_before_it_changed_anything_and_a_rerun_finishes_it(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its first batch (key file k1+k2, some rows under generation 2), the rotation has
    already written 'started generation 2'. The rerun records that run failed, cut short, says it
    is finishing generation 2 (not starting a third), re-wraps the rest, removes k1 and records
    generation 2 done."""
    await load(signpost)
    monkeypatch.setattr(rotation, "BATCH", 3)

    def die_after_the_first_batch(done: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        await rotate(signpost, on_progress=die_after_the_first_batch)
    assert await events(signpost.ctx.db, "keys_rotate") == [("started", "generation 2")]
    assert generations_on_disk(signpost.ctx.keys) == {"k1", "k2"}
    async with signpost.ctx.db.read() as session:
        under = [kek[:2] for kek in (await session.execute(select(ChildKey.kek_id))).scalars()]
    assert under.count("d2") == 3 and under.count("d1") > 0  # half applied, as the review found it

    report = await rotate(signpost)
    assert report.finishing and report.new_generation == 2
    assert await events(signpost.ctx.db, "keys_rotate") == [
        ("started", "generation 2"),
        ("failed", f"generation 2: {CUT_SHORT}"),
        ("started", "finishing generation 2 (a rotation cut short)"),
        ("done", "generation 2"),
    ]
    assert generations_on_disk(signpost.ctx.keys) == {"k2"}
    async with signpost.ctx.db.read() as session:
        assert {kek[:2] for kek in (await session.execute(select(ChildKey.kek_id))).scalars()} == {"d2"}


async def test_a_rotation_killed_after_its_last_step_is_recorded_finished_not_rotated_again(
    signpost: Signpost,
) -> None:
    """Killed after the key file's last write (generation 1 removed, every row under 2) but before
    its outcome: the audit held only 'started generation 2', and a rerun began generation 3, so
    generation 2's outcome was never recorded (crash-forensics review). The rerun records it
    finished and changes nothing."""
    await load(signpost)
    with pytest.raises(Killed):
        async with audited(signpost.ctx, "ops", Action.KEYS_ROTATE) as audit:
            await audit.started("generation 2")
            await rotation.rotate(signpost.ctx.db, signpost.ctx.keys, signpost.ctx.clock.now().date())
            raise Killed
    assert await events(signpost.ctx.db, "keys_rotate") == [("started", "generation 2")]
    assert generations_on_disk(signpost.ctx.keys) == {"k2"}

    report = await rotate(signpost)
    assert report.finishing and report.new_generation == 2
    assert await events(signpost.ctx.db, "keys_rotate") == [
        ("started", "generation 2"),
        ("done", "generation 2: a rotation cut short after its last step, recorded finished"),
    ]
    assert generations_on_disk(signpost.ctx.keys) == {"k2"}
    report = await rotate(signpost)  # an ordinary rotation afterwards moves on
    assert not report.finishing and report.new_generation == 3


async def test_a_rotation_that_fails_is_audited_started_then_failed(signpost: Signpost) -> None:
    """A wrapped key no KEK opens: 'started generation 2', then 'failed generation 2'; the operator
    is told why."""
    await load(signpost)
    async with signpost.ctx.db.write() as session:
        row = (await session.execute(select(ChildKey).limit(1))).scalar_one()
        row.wrapped = b"\0" * 60
    with pytest.raises(Refused, match="could not be opened"):
        await rotate(signpost)
    assert await events(signpost.ctx.db, "keys_rotate") == [("started", "generation 2"), ("failed", "generation 2")]


_KILLED_AFTER_THE_FIRST_BATCH = """
import os, signal, sys
import store.keys.rotation as rotation
from bot.cli.main import main

rotation.BATCH = 2
rewrap = rotation._rewrap_table


async def first_batch_then_die(db, ring, spec, gen, on_progress=None):
    if spec.table.name != "child_keys":
        return await rewrap(db, ring, spec, gen, on_progress)
    def die(done):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 once the first batch is committed
    return await rewrap(db, ring, spec, gen, die)


rotation._rewrap_table = first_batch_then_die
main(["keys", "rotate"])
"""


async def test_signpost_keys_rotate_killed_part_way_leaves_its_started_event_and_the_rerun_finishes(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path
) -> None:
    """The review's case as a real process: `signpost keys rotate` killed (SIGKILL) once its first
    batch of child keys is committed under generation 2. 'started generation 2' is already in the
    audit; `signpost keys rotate` again says it finished generation 2 and the log says so too, and
    records the killed run failed, cut short, under its own correlation id (as a backup, an import,
    retention and decommissioning do): each 'started' has its one outcome."""
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    died = subprocess.run([sys.executable, "-c", _KILLED_AFTER_THE_FIRST_BATCH], cwd=tmp_path, env=_pythonpath())
    assert died.returncode == -signal.SIGKILL
    assert await events(db, "keys_rotate") == [("started", "generation 2")]
    assert generations_on_disk(keys) == {"k1", "k2"}
    async with db.read() as session:
        under = [kek[:2] for kek in (await session.execute(select(ChildKey.kek_id))).scalars()]
    assert under.count("d2") == 2 and under.count("d1") > 0

    again = await cli.run("keys", "rotate")
    assert again.code == 0, again.err
    assert "rotation to generation 2 that was cut short is finished" in again.out
    assert await events(db, "keys_rotate") == [
        ("started", "generation 2"),
        ("failed", f"generation 2: {CUT_SHORT}"),
        ("started", "finishing generation 2 (a rotation cut short)"),
        ("done", "generation 2"),
    ]
    assert generations_on_disk(keys) == {"k2"}
    await _each_started_answered_once(cli, "keys_rotate")


def _pythonpath() -> dict[str, str]:
    """The environment for ``python -c``: the test's settings, and this checkout importable."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


# -- backup --------------------------------------------------------------------------------------

_KILLED_WHILE_COPYING = """
import os, signal, sys
from pathlib import Path
import store.keys.backup
from bot.cli.main import main


def copy_half_then_die(sync, sql, params):
    Path(params[0]).write_bytes(b"SQLite format 3\\0" + b"\\1" * 4096)  # part of the copy
    Path(params[0] + "-journal").write_bytes(b"\\0" * 512)
    os.kill(os.getpid(), signal.SIGKILL)


store.keys.backup.raw_sqlite = copy_half_then_die
main(["backup", sys.argv[1]])
"""


def _beside(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.sqlite_only
async def test_a_sqlite_backup_killed_part_way_is_audited_and_leaves_nothing_that_looks_like_a_backup(
    cli: Cli, db: Database, db_url: str, tmp_path: Path
) -> None:
    """`signpost backup` killed (SIGKILL) part-way through the copy, as a real process: the audit
    already holds 'started' with the file's name; no file has the backup's name; the next backup
    into that folder removes the partial copy and its journal, and is audited started then done,
    having first recorded the dead run's outcome (failed, cut short, under its correlation id): its
    'started' was left with none for ever, a dead run indistinguishable from a live one (forensics)."""
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "nightly.db"
    died = subprocess.run([sys.executable, "-c", _KILLED_WHILE_COPYING, str(target)], cwd=tmp_path, env=_pythonpath())
    assert died.returncode == -signal.SIGKILL
    assert await events(db, "backup") == [("started", "nightly.db")]
    assert not target.exists()
    assert _beside(folder) == ["nightly.db.signpost-partial", "nightly.db.signpost-partial-journal"]
    store = Path(db_url.split("///", 1)[1])
    assert len(list(store.parent.glob(f"{store.name}.backup-*.lock"))) == 1  # the dead run's, let go by the kernel
    again = await cli.run("backup", str(target))
    assert again.code == 0, again.err
    assert _beside(folder) == ["nightly.db"]
    assert not list(store.parent.glob(f"{store.name}.*.lock"))  # each removed as it is let go: none pile up
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    size = target.stat().st_size
    assert await events(db, "backup") == [
        ("started", "nightly.db"),
        ("failed", "nightly.db: a run cut short before its outcome, recorded failed by the next run"),
        ("started", "nightly.db"),
        ("done", f"nightly.db: {size} bytes"),
    ]
    await _each_started_answered_once(cli, "backup")


async def _each_started_answered_once(cli: Cli, action: str) -> None:
    """What an auditor reads of ``action`` in `signpost audit export`: every 'started' has exactly one
    outcome under its correlation id, the cut short one under the dead run's own; and the chain verifies."""
    found = await exported(cli, action)
    one_outcome_per_started(found)
    for event in found:
        if event["outcome"] == "failed" and event["detail"].endswith(CUT_SHORT):
            [dead] = [e for e in found if e["correlation_id"] == event["correlation_id"] and e["outcome"] == "started"]
            assert dead["user_id"] == event["user_id"] and found.index(dead) < found.index(event)
    verify = await cli.run("audit", "verify")
    assert verify.code == 0 and verify.out.startswith("OK"), verify.err


_LIVE_WHILE_COPYING = """
import os, signal, sys
from pathlib import Path
import store.keys.backup
from bot.cli.main import main

copy = store.keys.backup._sqlite_copy


async def stopped_then_copy(db, partial):
    if Path(partial).name.startswith(Path(sys.argv[1]).name):
        os.kill(os.getpid(), signal.SIGSTOP)  # its 'started' is durable; it is live, not dead
    return await copy(db, partial)


store.keys.backup._sqlite_copy = stopped_then_copy
main(["backup", sys.argv[1]])
"""


@pytest.mark.sqlite_only
async def test_a_backup_still_being_written_is_not_taken_for_one_cut_short(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """While one `signpost backup nightly.db` is live (stopped, SIGSTOP, as it copies): a backup to
    another name runs alongside it and records nothing of it; a second one to the same name is
    refused, saying one is running, and records nothing of it either. Let go on, the first records
    its own outcome, the only one its 'started' has."""
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "nightly.db"
    live = subprocess.Popen([sys.executable, "-c", _LIVE_WHILE_COPYING, str(target)], cwd=tmp_path, env=_pythonpath())
    try:
        _, status = os.waitpid(live.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        assert (await cli.run("backup", str(folder / "other.db"))).code == 0
        second = await cli.run("backup", str(target))
        assert second.code != 0 and "another `signpost backup` to nightly.db is running" in second.said
        assert [e for e in await events(db, "backup") if e[1].startswith("nightly.db")] == [
            ("started", "nightly.db"),
            ("refused", "nightly.db; another run is live"),
        ]
    finally:
        live.send_signal(signal.SIGCONT)
        code = live.wait()
    assert code == 0
    found = [e for e in await events(db, "backup") if e[1].startswith("nightly.db")]
    assert [outcome for outcome, _ in found] == ["started", "refused", "done"]
    await _each_started_answered_once(cli, "backup")


_KILLED_AFTER_NAMING = """
import os, signal, sys
import store.keys.backup
from bot.cli.main import main

publish = store.keys.backup._publish


def publish_then_die(partial, target):
    publish(partial, target)  # whole, checked and named (durably) before the kill
    os.kill(os.getpid(), signal.SIGKILL)


store.keys.backup._publish = publish_then_die
main(["backup", sys.argv[1]])
"""


async def test_a_backup_killed_once_it_took_its_name_is_recorded_finished_by_the_rerun(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """`signpost backup` killed (SIGKILL) just after the whole copy took its name, before its
    outcome was written: a backup exists under the name, yet the audit held only 'started', and
    `signpost backup FILE` again was refused ('already exists'), so no event ever said it was
    written (forensics review). The rerun records it finished with its size, as a rotation cut
    short after its last step is, and leaves the one file; a third run is refused."""
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "nightly.db"
    died = subprocess.run([sys.executable, "-c", _KILLED_AFTER_NAMING, str(target)], cwd=tmp_path, env=_pythonpath())
    assert died.returncode == -signal.SIGKILL
    assert target.exists() and await events(db, "backup") == [("started", "nightly.db")]
    size = target.stat().st_size

    again = await cli.run("backup", str(target))
    assert again.code == 0, again.err
    assert "cut short after it took its name" in again.out
    assert _beside(folder) == ["nightly.db"] and target.stat().st_size == size
    assert await events(db, "backup") == [
        ("started", "nightly.db"),
        ("done", f"nightly.db: {size} bytes: a backup cut short after it took its name, recorded finished"),
    ]
    third = await cli.run("backup", str(target))
    assert third.code != 0 and "already exists" in third.err
    assert [outcome for outcome, _ in await events(db, "backup")][-1] == "refused"


_KILLED_AFTER_RECORDING = """
import os, signal, sys
from handlers.operator.common import Audit
from bot.cli.main import main

done = Audit.done


async def done_then_die(self, detail=None):
    await done(self, detail)  # the outcome is durable; the partial name is still on the file
    os.kill(os.getpid(), signal.SIGKILL)


Audit.done = done_then_die
main(["backup", sys.argv[1]])
"""


async def test_a_backup_killed_after_its_outcome_is_not_recorded_twice(cli: Cli, db: Database, tmp_path: Path) -> None:
    """Killed once its outcome is written, before its partial name goes: the rerun removes that
    name, records nothing more for the backup, and is refused as for any file that exists; a backup
    into the folder under another name meanwhile leaves the second name alone, not taking it for a
    partial copy."""
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "nightly.db"
    died = subprocess.run([sys.executable, "-c", _KILLED_AFTER_RECORDING, str(target)], cwd=tmp_path, env=_pythonpath())
    assert died.returncode == -signal.SIGKILL
    size = target.stat().st_size
    assert await events(db, "backup") == [("started", "nightly.db"), ("done", f"nightly.db: {size} bytes")]
    assert (await cli.run("backup", str(folder / "other.db"))).code == 0
    assert _beside(folder) == ["nightly.db", "nightly.db" + PARTIAL, "other.db"]

    again = await cli.run("backup", str(target))
    assert again.code != 0 and "already exists" in again.err
    assert _beside(folder) == ["nightly.db", "other.db"] and target.stat().st_size == size
    assert [e for e in await events(db, "backup") if e[1].startswith("nightly.db")] == [
        ("started", "nightly.db"),
        ("done", f"nightly.db: {size} bytes"),
    ]


async def test_a_backup_being_written_is_left_alone_by_another(signpost: Signpost, tmp_path: Path) -> None:
    """A partial copy whose backup is still running (its lock held) is not another run's leftover:
    a second backup into the folder leaves it, and one to the same name is refused."""
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "a.backup"
    running = folder / ("a.backup" + PARTIAL)
    fd = os.open(running, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert await backup(signpost.ctx.db, folder / "b.backup") > 0
        assert running.exists()
        with pytest.raises(BackupFailed, match="being written"):
            await backup(signpost.ctx.db, target)
    finally:
        os.close(fd)
    assert remove_partials(folder) == ["a.backup" + PARTIAL]
    assert _beside(folder) == ["b.backup"]


def _children_of(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``: their ids and command names (from /proc)."""
    found = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if int(rest[1]) == pid:
            found[int(stat_file.parent.name)] = name
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is not)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split()[0] not in ("Z", "X")


def _wait_for(what: str, condition: Callable[[], object], timeout: float = 120) -> None:
    """Poll until ``condition`` holds: the test waits for an event, never a guessed duration."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.postgres_only
async def test_a_postgres_backup_killed_once_pg_dump_runs_takes_pg_dump_with_it(
    cli: Cli, db: Database, db_url: str, tmp_path: Path
) -> None:
    """`signpost backup` (the real executable) killed -9 while its pg_dump runs (held by a table lock,
    so it cannot finish first): pg_dump dies with it instead of writing a whole, unaudited dump;
    'started' is in the audit; nothing has the backup's name, and the next backup clears the partial."""
    target = tmp_path / "x.dump"
    holder = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("LOCK TABLE involvements IN ACCESS EXCLUSIVE MODE")  # pg_dump waits for it
        signpost = subprocess.Popen(
            [str(Path(sys.executable).with_name("signpost")), "backup", str(target)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for("pg_dump to start", lambda: "pg_dump" in _children_of(signpost.pid).values())
            (dump,) = [pid for pid, name in _children_of(signpost.pid).items() if name == "pg_dump"]
            signpost.kill()
            assert signpost.wait() == -signal.SIGKILL
            _wait_for("pg_dump to die with signpost", lambda: not _alive(dump))
        finally:
            signpost.kill()
            signpost.wait()
        await lock.rollback()
    finally:
        await holder.close()
    assert await events(db, "backup") == [("started", "x.dump")]
    assert not target.exists()
    again = await cli.run("backup", str(target))
    assert again.code == 0, again.err
    assert _beside(tmp_path) == [n for n in _beside(tmp_path) if not n.endswith(PARTIAL)]
    assert [e[0] for e in await events(db, "backup")] == ["started", "failed", "started", "done"]
    await _each_started_answered_once(cli, "backup")


# -- decommission destroy ------------------------------------------------------------------------

STRACE = shutil.which("strace")
needs_strace = pytest.mark.skipif(STRACE is None, reason="kills the real process at a chosen rename() with strace")


def killed_at_rename(of: Path, nth: int, *command: str, env: dict[str, str] | None = None) -> int:
    """`signpost COMMAND…` as a real process, killed -9 as it is about to put the ``nth`` new
    version of the file ``of`` in its place (its rename(), by strace's fault injection, as the
    forensic reviews did it): the new version is written but not yet the file. Returns its exit
    status."""
    assert STRACE is not None
    tmp = str(temporary_name(of))
    run = [STRACE, "-f", "-qq", "-P", tmp, "-e", "trace=rename", "-e", f"inject=rename:signal=SIGKILL:when={nth}"]
    signpost = [str(Path(sys.executable).with_name("signpost")), *command]
    done = subprocess.run([*run, "-o", "/dev/null", *signpost], env={**os.environ, **(env or {})}, capture_output=True)
    return done.returncode


def _destroy_killed_at_rename(of: Path, nth: int, env: dict[str, str] | None = None) -> int:
    """`signpost decommission destroy`, killed -9 at the ``nth`` rename of ``of`` (``killed_at_rename``)."""
    return killed_at_rename(of, nth, "decommission", "destroy", env=env)


def _on_disk(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


async def switched_off_today(cli: Cli, tmp_path: Path) -> None:
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    today = datetime.now(UTC).date().isoformat()
    assert (await cli.run("decommission", "schedule", "--switch-off", today, "--at-once")).code == 0


async def _told_admins(db: Database) -> list[str]:
    """The text of every decommissioning notice queued for the admins, in order."""
    async with db.read() as session:
        found = await session.execute(select(Notice.body).where(Notice.kind == "decommission").order_by(Notice.id))
        return [json.loads(body)["text"] for body in found.scalars()]


@needs_strace
async def test_a_destroy_killed_before_the_signing_seed_went_is_finished_by_the_next_destroy(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path
) -> None:
    """The review's F1: `decommission destroy` killed -9 as it writes the key file for the last time
    (the certificate signed, the signing seed still in the key file). Status does not say all is
    destroyed; the next `decommission destroy` destroys the seed and the half-written copy beside
    the key file, says so and audits it; then status says destroyed and nothing can be signed."""
    assert keys.path is not None
    await switched_off_today(cli, tmp_path)
    assert _destroy_killed_at_rename(keys.path, 2) == -signal.SIGKILL
    left = _on_disk(keys.path)
    assert left["signing_seed"] and left["keks"] == {} and left["index_key"] == ""  # where the review killed it
    status = await cli.run("decommission", "status")
    assert "has been destroyed" not in status.out and "steps done: keys, data, compact" in status.out

    again = await cli.run("decommission", "destroy")
    assert again.code == 0, again.err
    assert "Destroyed what a destruction cut short left: signing seed (key file)" in again.out
    assert "decommissioning complete" in again.out
    assert _on_disk(keys.path)["signing_seed"] == "" and _on_disk(keys.path)["signing_public"]
    assert sorted(p.name for p in tmp_path.glob(f"{keys.path.name}*")) == [keys.path.name, f"{keys.path.name}.lock"]
    assert "all personal data has been destroyed" in (await cli.run("decommission", "status")).out
    assert (await cli.run("audit", "checkpoint")).code != 0  # nothing can be signed any more
    [(outcome, finished)] = [e for e in await events(db, "decommission_destroy") if "finished" in e[1]]
    assert outcome == "done" and "signing seed (key file)" in finished
    assert (await cli.run("decommission", "destroy")).code != 0  # and then it is refused: all is done
    assert sum("decommissioning complete" in text for text in await _told_admins(db)) == 1


@needs_strace
async def test_an_audit_checkpoint_after_a_destroy_killed_before_the_seed_went_signs_nothing(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path
) -> None:
    """In that window an operator's `audit checkpoint` signed with the seed the destruction had left.
    It now finishes the destruction first (the seed goes, audited) and is refused."""
    assert keys.path is not None
    await switched_off_today(cli, tmp_path)
    assert _destroy_killed_at_rename(keys.path, 2) == -signal.SIGKILL
    assert _on_disk(keys.path)["signing_seed"]
    signed = await cli.run("audit", "checkpoint")
    assert signed.code != 0 and "BEGIN" not in signed.out
    assert _on_disk(keys.path)["signing_seed"] == ""
    [(outcome, finished)] = [e for e in await events(db, "decommission_destroy") if "finished" in e[1]]
    assert outcome == "done" and "signing seed (key file)" in finished
    assert "all personal data has been destroyed" in (await cli.run("decommission", "status")).out


@needs_strace
async def test_a_destroy_killed_before_the_signing_key_file_lost_its_seed_is_finished_by_the_next_destroy(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path
) -> None:
    """F1 with a signing key file of its own: killed -9 as it writes that file (the key file already
    emptied). The next `decommission destroy` empties it and removes its `.tmp` copy; the public key stays."""
    signing = tmp_path / "sign.key"
    env = {"SIGNPOST_SIGNING_KEY_FILE": str(signing)}
    await switched_off_today(cli, tmp_path)
    assert (await cli.run("audit", "checkpoint", "--public-key", env=env)).code == 0  # the seed moves there
    assert _destroy_killed_at_rename(signing, 1, env) == -signal.SIGKILL
    assert _on_disk(signing)["signing_seed"] and (tmp_path / "sign.key.tmp").exists()
    status = await cli.run("decommission", "status", env=env)
    assert "all personal data has been destroyed" not in status.out

    again = await cli.run("decommission", "destroy", env=env)
    assert again.code == 0, again.err
    assert "signing seed (signing key file), leftover copy sign.key.tmp" in again.out
    assert _on_disk(signing)["signing_seed"] == "" and _on_disk(signing)["public_key"]
    assert not (tmp_path / "sign.key.tmp").exists()
    assert "all personal data has been destroyed" in (await cli.run("decommission", "status", env=env)).out
    assert (await cli.run("audit", "checkpoint", env=env)).code != 0


@needs_strace
async def test_a_destroy_killed_before_the_key_file_was_wiped_never_told_admins_the_keys_were_destroyed(
    cli: Cli, db: Database, db_url: str, keys: KeyRing, tmp_path: Path
) -> None:
    """The review's F4: killed -9 as step 1 writes the emptied key file. Step 1 is not recorded, and
    no admin is told "keys destroyed", while the key file still holds every key; the rerun after
    the dead run's lease wipes it, and only then tells them, with the keys it counted before."""
    assert keys.path is not None
    await switched_off_today(cli, tmp_path)
    assert _destroy_killed_at_rename(keys.path, 1) == -signal.SIGKILL
    assert _on_disk(keys.path)["keks"] and _on_disk(keys.path)["index_key"]  # the kill came before the wipe
    assert not [text for text in await _told_admins(db) if "step 1 of 4" in text]
    assert "steps done: none yet" in (await cli.run("decommission", "status")).out

    later = FakeClock(datetime.now(UTC) + decommission.LEASE + timedelta(minutes=1))
    app = build(Database.connect(db_url), KeyRing.load(keys.path), later)
    try:
        async with audited(app.ctx, "ops", Action.DECOMMISSION_DESTROY) as audit:
            said = await lifecycle.decommission_destroy(app.ctx, audit)
        assert "decommissioning complete" in said
    finally:
        await app.close()
    assert _on_disk(keys.path)["keks"] == {} and _on_disk(keys.path)["index_key"] == ""
    [step_1] = [text for text in await _told_admins(db) if "step 1 of 4" in text]
    assert "keys destroyed" in step_1 and "key_encryption_keys: 1" in step_1 and "key_chains: 3" in step_1


# -- decommission destroy killed at the key file's wipe ----------------------------------------

_KILLED_AT_THE_KEY_FILE_WIPE = """
import os, signal, sys
from store.lifecycle import decommission
from bot.cli.main import main

wipe = decommission._wipe_key_file


def wipe_then_die(keys):
    if sys.argv[1] == "after":
        wipe(keys)  # on disk (fsync) before the kill
    os.kill(os.getpid(), signal.SIGKILL)


decommission._wipe_key_file = wipe_then_die
main(["decommission", "destroy"])
"""

# Step 1 killed -9 just before its wipe of the key file, and just after it (the review's case).
at_the_key_file_wipe = pytest.mark.parametrize(
    "killed", ["before", "after"], ids=lambda when: f"killed-{when}-the-wipe"
)


async def wrapped_keys_held(db: Database) -> dict[str, int]:
    """The rows of every table of wrapped keys (from the tables' classification)."""
    async with db.read() as session:
        return {
            table.name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table, _, _ in wrapped_key_tables()
        }


async def destroy_killed_at_the_key_file_wipe(cli: Cli, db: Database, keys: KeyRing, killed: str) -> dict[str, int]:
    """A real `decommission destroy` killed -9 at that point; the wrapped keys the store held before.
    The store has forgotten them durably either way; the key file is emptied only after the wipe."""
    assert keys.path is not None
    held = await wrapped_keys_held(db)
    assert held["child_keys"] > 0  # the checks on the counts below can fail
    script = [sys.executable, "-c", _KILLED_AT_THE_KEY_FILE_WIPE, killed]
    died = subprocess.run(script, cwd=keys.path.parent, env=_pythonpath())
    assert died.returncode == -signal.SIGKILL
    assert sum((await wrapped_keys_held(db)).values()) == 0  # nothing the key file opened is left in the store
    on_disk = _on_disk(keys.path)
    assert bool(on_disk["keks"]) == bool(on_disk["index_key"]) == (killed == "before")
    return held


async def lease_run_out(db: Database) -> None:
    """Where the dead run's lease has run out (as 15 minutes after the kill): any process may resume."""
    async with db.write() as session:
        await session.execute(update(Decommission).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))


def destroyed_as_counted(certificate: dict[str, Any], held: dict[str, int]) -> None:
    """The certificate counts the wrapped keys the killed run deleted, and the key file's keys."""
    destroyed = certificate["certificate"]["destroyed"]
    assert {table: destroyed[table] for table in held} == held
    assert destroyed["key_encryption_keys"] == 1 and destroyed["key_chains"] == 3


@at_the_key_file_wipe
async def test_a_destroy_killed_at_the_key_file_wipe_is_finished_by_the_next_destroy(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path, killed: str
) -> None:
    """Step 1 of `decommission destroy` killed -9 just before or just after it wipes the key file.
    The store forgot its wrapped keys first (committed), so the key file left, full or emptied,
    opens nothing personal yet still opens the store: status answers and does not say destroyed, no
    admin is told "keys destroyed", another store's key file is still refused. The next destroy
    finishes; the certificate and step 1's notice count what the killed run deleted. A destroy within
    the dead run's lease is refused (it might be live); the one after it records the dead run failed,
    cut short, under its correlation id, before its own 'started': each 'started' has one outcome.
    (Killed after the wipe, the old code rolled the wrapped keys back, and from then on every
    command was refused: "does not belong".)"""
    assert keys.path is not None
    await switched_off_today(cli, tmp_path)
    held = await destroy_killed_at_the_key_file_wipe(cli, db, keys, killed)
    status = await cli.run("decommission", "status")
    assert status.code == 0, status.err
    assert "has been destroyed" not in status.out and "steps done: none yet" in status.out
    assert not [text for text in await _told_admins(db) if "step 1 of 4" in text]
    other = await cli.run("decommission", "status", env={"SIGNPOST_KEY_FILE": str(other_key_file(tmp_path))})
    refused_in_one_line(other, "does not belong to this store")

    early = await cli.run("decommission", "destroy")  # within the dead run's lease: it may be live
    assert early.code != 0 and "another Signpost process is destroying" in early.said
    await lease_run_out(db)
    again = await cli.run("decommission", "destroy")
    assert again.code == 0, again.err
    assert "decommissioning complete" in again.out
    assert "all personal data has been destroyed" in (await cli.run("decommission", "status")).out
    left = _on_disk(keys.path)
    assert left["keks"] == {} and left["index_key"] == "" and left["signing_seed"] == ""
    certificate = await cli.run("decommission", "certificate")
    destroyed_as_counted(json.loads(certificate.out), held)
    [step_1] = [text for text in await _told_admins(db) if "step 1 of 4" in text]
    assert "keys destroyed" in step_1 and f"child_keys: {held['child_keys']}" in step_1
    assert "key_encryption_keys: 1" in step_1 and "key_chains: 3" in step_1
    schedule_id = (await events(db, "decommission_destroy"))[0][1]
    assert await events(db, "decommission_destroy") == [
        ("started", schedule_id),
        ("refused", f"{schedule_id}; claimed by another process"),
        ("failed", f"{schedule_id}: {CUT_SHORT}"),
        ("started", schedule_id),
        ("done", schedule_id),
    ]
    await _each_started_answered_once(cli, "decommission_destroy")


async def test_a_destroy_within_a_killed_runs_lease_says_it_may_have_stopped_and_when_to_try_again(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path
) -> None:
    """After `kill -9` of `decommission destroy` every rerun for 15 minutes was refused with
    "another Signpost process is destroying the data right now", untrue when it had died: the
    refusal says it is being destroyed or a run stopped part-way, and when the lease runs out."""
    await switched_off_today(cli, tmp_path)
    await destroy_killed_at_the_key_file_wipe(cli, db, keys, "after")
    async with db.read() as session:
        lease = (await session.execute(select(Decommission.lease_until))).scalar_one()
    assert lease is not None
    early = await cli.run("decommission", "destroy")
    assert early.code == 2, (early.out, early.err)
    said = " ".join(early.said.split())
    assert "right now" not in said, said
    assert "stopped part-way less than 15 minutes ago" in said, said
    until = (lease.replace(tzinfo=lease.tzinfo or UTC) + timedelta(minutes=1)).astimezone(UTC)
    assert f"try again after {until:%H:%M} UTC" in said, said
    assert len(early.said.splitlines()) == 1 and "Traceback" not in early.err


@at_the_key_file_wipe
async def test_a_destroy_killed_at_the_key_file_wipe_is_finished_by_the_tick_at_the_destroy_by_date(
    cli: Cli, db: Database, db_url: str, keys: KeyRing, tmp_path: Path, killed: str
) -> None:
    """The same crash left to the scheduler: a server opening the store with the key file left
    (checked as at every start, store/keys/binding.py) is not refused, and its tick at the destroy-by
    date finishes the destruction, counting what the killed run deleted, having recorded the killed
    run failed, cut short, under that run's own origin and correlation id."""
    assert keys.path is not None
    await switched_off_today(cli, tmp_path)
    held = await destroy_killed_at_the_key_file_wipe(cli, db, keys, killed)
    async with db.read() as session:
        row = await decommission.current(session)
    assert row is not None
    later = FakeClock(datetime.combine(row.destroy_by, datetime.min.time(), UTC) + timedelta(hours=9))
    store = Database.connect(db_url)
    app = build(store, await open_key_file(store, keys.path, later.now().date()), later)
    try:
        certificate = await decommission_tick(app.ctx, later.now())
    finally:
        await app.close()
    assert certificate is not None
    destroyed_as_counted(certificate, held)
    assert "all personal data has been destroyed" in (await cli.run("decommission", "status")).out
    assert _on_disk(keys.path)["keks"] == {} and _on_disk(keys.path)["index_key"] == ""
    found = await exported(cli, "decommission_destroy")  # the tick recorded the operator's dead run
    assert [(e["outcome"], e["platform"]) for e in found] == [
        ("started", "terminal"),
        ("failed", "terminal"),
        ("started", "scheduler"),
        ("done", "scheduler"),
    ]
    await _each_started_answered_once(cli, "decommission_destroy")


# -- an import that destroys ---------------------------------------------------------------------

_KILLED_BEFORE_COMPACTION = """
import os, signal, sys
import store.register.feeds
from bot.cli.main import main


async def die(db, report):
    os.kill(os.getpid(), signal.SIGKILL)


store.register.feeds._compact = die
main(["import", "--destroy-redated", sys.argv[1]])
"""


def _store_files(db_url: str) -> dict[str, bytes]:
    """The SQLite store's database file, WAL and shared memory as they lie on disk."""
    path = Path(db_url.split("///", 1)[1])
    return {p.name: p.read_bytes() for p in path.parent.glob(path.name + "*")}


@pytest.mark.sqlite_only
async def test_an_import_killed_between_destroying_and_compacting_leaves_nothing_once_the_store_is_next_used(
    cli: Cli, db: Database, db_url: str, tmp_path: Path
) -> None:
    """`import --destroy-redated` killed -9 after its commit, before it compacts: the destroyed child's
    wrapped key (its birth-date key lives on for the others born that day) is still in the database
    file's old pages, as README says. The next `signpost` command to use the store (any one: here
    `audit verify`, a real process) leaves it in none of the store's files."""
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    async with db.read() as session:
        wrapped = (await session.execute(select(ChildKey.wrapped).where(ChildKey.child_ref == int(AMY)))).scalar_one()
    await db.close()
    redated = tmp_path / "redated.csv"
    redated.write_text(
        f"{CHILDREN_HEADER}\n{AMY},Amy,Jones,,{date.today().year - 30}-04-03,F,M1 2AB,Northshire,false\n",
        encoding="utf-8",
    )
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_BEFORE_COMPACTION, str(redated)], cwd=tmp_path, env=_pythonpath()
    )
    assert killed.returncode == -signal.SIGKILL
    assert any(wrapped in data for data in _store_files(db_url).values())
    verify = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "audit", "verify"], cwd=tmp_path, env=_pythonpath(), capture_output=True
    )
    assert verify.returncode == 0, verify.stderr
    assert not [name for name, data in _store_files(db_url).items() if wrapped in data]


# -- any run cut short before its outcome (import, seed-demo, retention run) ---------------------

_IMPORT_STOPPED_AFTER_STARTED = """
import os, signal, sys
import handlers.operator.register as register
from bot.cli.main import main

import_feeds = register.import_feeds


async def stopped_then_import(*args, **kwargs):
    os.kill(os.getpid(), signal.{signal})  # its 'started' is durable; nothing imported yet
    return await import_feeds(*args, **kwargs)


register.import_feeds = stopped_then_import
main(["import", *sys.argv[1:]])
"""


def _import_stopping_with(sig: str, feeds: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """`signpost import FEEDS` as a real process, sent ``sig`` by itself once its 'started' is durable."""
    script = _IMPORT_STOPPED_AFTER_STARTED.replace("{signal}", sig)
    return subprocess.Popen([sys.executable, "-c", script, *feeds], cwd=cwd, env=_pythonpath())


async def exported(cli: Cli, action: str) -> list[dict[str, Any]]:
    """The events of ``action`` as `signpost audit export` shows them to an auditor."""
    run = await cli.run("audit", "export")
    assert run.code == 0, run.err
    return [event for line in run.out.splitlines() if (event := json.loads(line))["action"] == action]


def one_outcome_per_started(events: list[dict[str, Any]]) -> None:
    """Every 'started' has exactly one outcome after it, under the same correlation id."""
    runs: dict[str, list[str]] = {}
    for event in events:
        runs.setdefault(event["correlation_id"], []).append(event["outcome"])
    for outcomes in runs.values():
        if "started" in outcomes:
            assert len(outcomes) == 2 and outcomes[0] == "started" and outcomes[1] != "started", runs


async def test_signpost_import_killed_after_started_is_recorded_cut_short_by_the_next_import(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """`signpost import` killed (SIGKILL) once its 'started' is durable left the audit ending at
    'started', and a rerun said nothing of it: an auditor could not tell a run in progress from a
    dead one (forensics review). The next import first records the dead run's outcome, failed and
    cut short, under that run's correlation id; every 'started' then has one outcome, and the chain
    verifies."""
    feeds = write_feeds(tmp_path)
    killed = _import_stopping_with("SIGKILL", feeds, tmp_path)
    assert killed.wait() == -signal.SIGKILL
    [first] = await exported(cli, "import")
    assert first["outcome"] == "started"

    again = await cli.run("import", *feeds)
    assert again.code == 0, again.err
    events = await exported(cli, "import")
    assert [(e["outcome"], e["detail"]) for e in events[:3]] == [
        ("started", first["detail"]),
        ("failed", f"{first['detail']}: a run cut short before its outcome, recorded failed by the next run"),
        ("started", first["detail"]),
    ]
    assert [e["outcome"] for e in events] == ["started", "failed", "started", "done"]
    assert events[1]["correlation_id"] == first["correlation_id"] and events[1]["user_id"] == first["user_id"]
    one_outcome_per_started(events)
    verify = await cli.run("audit", "verify")
    assert verify.code == 0 and verify.out.startswith("OK"), verify.err


async def test_an_import_still_running_is_not_taken_for_one_cut_short(cli: Cli, db: Database, tmp_path: Path) -> None:
    """A second `signpost import` while the first is live (stopped, SIGSTOP, just after its
    'started'): the second is refused, saying another import is running, and records nothing about
    the first; the first, let go on, finishes with its own outcome, the only one its 'started' has."""
    feeds = write_feeds(tmp_path)
    live = _import_stopping_with("SIGSTOP", feeds, tmp_path)
    try:
        _, status = os.waitpid(live.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        second = await cli.run("import", *feeds)
        assert second.code != 0
        assert "another `signpost import` is running" in second.said
        assert [e["outcome"] for e in await exported(cli, "import")] == ["started", "refused"]
    finally:
        live.send_signal(signal.SIGCONT)
        code = live.wait()
    assert code == 0
    events = await exported(cli, "import")
    assert [e["outcome"] for e in events] == ["started", "refused", "done"]
    one_outcome_per_started(events)


async def test_a_retention_run_cut_short_is_recorded_by_the_next_retention_command_even_a_dry_run(
    signpost: Signpost,
) -> None:
    """`signpost retention run` killed after its 'started': the next `retention run` command of any
    kind (here a dry run, which writes no 'started' of its own) records it failed, cut short, so a
    later dry run's outcome never buries it; a real run afterwards finds nothing to record."""
    await load(signpost)
    with pytest.raises(Killed):
        async with audited(signpost.ctx, "ops", Action.RETENTION_RUN) as audit:
            await audit.started()
            raise Killed
    assert await events(signpost.ctx.db, "retention_run") == [("started", "")]

    async with audited(signpost.ctx, "ops", Action.RETENTION_RUN) as audit:
        await lifecycle.retention_preview(signpost.ctx, audit, None)
    async with audited(signpost.ctx, "ops", Action.RETENTION_RUN) as audit:
        await lifecycle.retention_run(signpost.ctx, audit)
    found = await events(signpost.ctx.db, "retention_run")
    assert [outcome for outcome, _ in found] == ["started", "failed", "done", "started", "done"]
    assert found[1] == ("failed", "a run cut short before its outcome, recorded failed by the next run")


_RETENTION_KILLED_BEFORE_THE_PUNCTURE = """
import os, signal
import store.keys.keychain as keychain
from bot.cli.main import main

puncture = keychain.puncture


def killed_at_the_day_chain(ring, chain, cutoff, today):
    if chain is keychain.Chain.DAY:
        os.kill(os.getpid(), signal.SIGKILL)  # the day's destruction committed; the key file not yet written
    return puncture(ring, chain, cutoff, today)


keychain.puncture = killed_at_the_day_chain
main(["retention", "run"])
"""


async def test_signpost_retention_run_killed_before_its_puncture_leaves_a_backup_unreadable_after_the_next_run(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path
) -> None:
    """`signpost retention run` (a real process) killed -9 after the commit that destroyed a child
    turning 24 today, before the key file lost its birth-date key: the store holds it destroyed,
    and its wrapped key as a backup taken before holds it still opens with the key file, as README
    says. The next `signpost retention run` finishes the puncture before anything else: that key
    opens with the key file no more, the dead run is recorded failed, and the audit chain verifies."""
    today = datetime.now(UTC).date()  # the day `signpost retention run` works to
    born = date(today.year - 24, today.month, 28 if (today.month, today.day) == (2, 29) else today.day)
    feed = tmp_path / "children.csv"
    feed.write_text(f"{CHILDREN_HEADER}\n{AMY},Amy,Jones,,{born:%Y-%m-%d},F,M1 2AB,Northshire,false\n", "utf-8")
    yesterday = datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC)
    await import_feeds(db, keys, [Feed("children.csv", feed.read_text("utf-8"))], yesterday)
    async with db.read() as session:
        wrapped = (
            await session.execute(select(ChildKey.kek_id, ChildKey.wrapped).where(ChildKey.child_ref == int(AMY)))
        ).one()
    await db.close()
    assert keys.path is not None

    def opens_with_the_key_file() -> bool:
        ring = KeyRing.load(keys.path)  # type: ignore[arg-type]
        keychain.install(ring, today)
        try:
            ring.unwrap(wrapped.kek_id, wrapped.wrapped, child_aad(int(AMY)))
        except DecryptionError:
            return False
        return True

    died = subprocess.run(
        [sys.executable, "-c", _RETENTION_KILLED_BEFORE_THE_PUNCTURE], cwd=tmp_path, env=_pythonpath()
    )
    assert died.returncode == -signal.SIGKILL
    assert opens_with_the_key_file()  # the window README names, until the next run
    async with db.read() as session:
        assert await session.get(ChildKey, int(AMY)) is None

    again = await cli.run("retention", "run")
    assert again.code == 0, again.err
    assert not opens_with_the_key_file()
    assert [e["outcome"] for e in await exported(cli, "retention_run")] == ["started", "failed", "started", "done"]
    verify = await cli.run("audit", "verify")
    assert verify.code == 0 and verify.out.startswith("OK"), verify.err


async def test_a_seed_demo_killed_part_way_leaves_a_store_the_next_seed_demo_marks_disposable(
    signpost: Signpost,
) -> None:
    """`seed-demo` killed mid-import (a newcomer's Ctrl-\\ or kill -9) leaves nothing but its own
    'started' event; the next seed-demo said "This store held data before seeding: it is not marked
    as a disposable demo store", so the dev clock was refused on a store that only ever held demo
    data. The next run now marks it, as the store held nothing else; the mark is written with the
    data, so a seed killed after its commit leaves it marked too."""
    from handlers.operator import register

    def killed(done: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        async with audited(signpost.ctx, "ops", Action.SEED_DEMO) as audit:
            await register.seed_demo(signpost.ctx, audit, 60, if_empty=False, on_progress=killed)
    assert await register.is_disposable_demo(signpost.ctx) is False

    async with audited(signpost.ctx, "ops", Action.SEED_DEMO) as audit:
        seeded = await register.seed_demo(signpost.ctx, audit, 60, if_empty=False)
    assert seeded.seeded and seeded.marked
    assert await register.is_disposable_demo(signpost.ctx) is True


# SQLite only: the kill is a hook on SQLite's copy (``_KILLED_WHILE_COPYING``); which runs
# decommissioning names is read from the audit log alike on both (the next test runs on both).
@pytest.mark.sqlite_only
async def test_a_backup_killed_part_way_is_named_by_decommissioning_with_the_partial_copy_it_left(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """A backup killed while copying leaves FILE.signpost-partial, practitioners' contact details in
    it in clear, until the next backup into that folder (nightly folders: never). Decommissioning named
    only the backups recorded done, so its list of what must be deleted left that copy out."""
    folder = tmp_path / "2026-12-05"
    folder.mkdir()
    target = folder / "nightly.db"
    died = subprocess.run([sys.executable, "-c", _KILLED_WHILE_COPYING, str(target)], cwd=tmp_path, env=_pythonpath())
    assert died.returncode == -signal.SIGKILL
    assert (folder / ("nightly.db" + PARTIAL)).exists()
    assert (await cli.run("backup", str(tmp_path / "whole.db"))).code == 0  # another folder: the partial stays
    async with db.read() as session:
        named = [taken.name for taken in await backups_taken(session)]
    assert named[0].startswith(f"a partial copy (*{PARTIAL}) by backup ")  # the audit keeps no file name
    assert [_taken(n) for n in named] == ["nightly.db", "whole.db"]
    # The next night's backup of that name, into a folder of its own, records the dead run failed (cut
    # short, under its own correlation id): the copy it left is still there, and still named.
    (tmp_path / "2026-12-06").mkdir()
    assert (await cli.run("backup", str(tmp_path / "2026-12-06" / "nightly.db"))).code == 0
    assert (folder / ("nightly.db" + PARTIAL)).exists()
    async with db.read() as session:
        named = [_taken(taken.name) for taken in await backups_taken(session)]
    assert named == ["nightly.db", "whole.db", "nightly.db"]


async def test_a_backup_that_failed_and_removed_its_copy_is_not_named_as_a_partial_copy(signpost: Signpost) -> None:
    """A backup that fails (a full disk, say) records its failure under its own run and removes its
    partial copy as it ends; decommissioning's list of copies to delete named it all the same, as a
    partial copy no one could find (found by review). A killed run, which records no end, still is."""
    with pytest.raises(BackupFailed):
        async with audited(signpost.ctx, "ops", Action.BACKUP) as audit:
            audit.detail = "nightly.db"
            await audit.started()
            raise BackupFailed("the disk is full")
    async with signpost.ctx.db.read() as session:
        assert [taken.name for taken in await backups_taken(session)] == []


# -- decommission destroy killed between the key file's rename and the zeros over the old file ------

_KILLED_AFTER_THE_KEY_FILE_RENAME = """
import os, signal, sys
from pathlib import Path
from bot.cli.main import main

key_file = os.path.realpath(os.environ["SIGNPOST_KEY_FILE"])
rename = os.replace
renames = []


def rename_then_die(src, dst):
    rename(src, dst)
    if os.path.realpath(dst) == key_file:
        renames.append(dst)
        if len(renames) == int(sys.argv[1]):  # kill -9 once that new key file has its name
            os.kill(os.getpid(), signal.SIGKILL)


os.replace = rename_then_die
main(["decommission", "destroy"])
"""


@pytest.mark.parametrize("next_start", [("db", "check"), ("decommission", "status")], ids=" ".join)
async def test_a_destroy_killed_before_the_zeros_over_the_old_key_file_leaves_no_reader_a_key(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path, next_start: tuple[str, ...]
) -> None:
    """The forensic review's case: `decommission destroy` killed -9 between the rename that puts the
    emptied key file in place and the zeros over the file it replaced. A reader that had the old file
    open (a backup agent mid-copy) kept every destroyed key: nothing ever zeroed it. The next start
    that takes the key file (`db check`, which only reads, included) zeroes it, and leaves nothing
    beside the key file but its locks."""
    assert keys.path is not None
    await switched_off_today(cli, tmp_path)
    held = os.open(keys.path, os.O_RDONLY)  # as a backup agent reading it when the destruction comes
    try:
        died = subprocess.run(
            [sys.executable, "-c", _KILLED_AFTER_THE_KEY_FILE_RENAME, "1"], cwd=tmp_path, env=_pythonpath()
        )
        assert died.returncode == -signal.SIGKILL
        assert _on_disk(keys.path)["keks"] == {}  # killed once the emptied file took the name
        await cli.run(*next_start)
        assert os.pread(held, 1 << 16, 0).strip(b"\0") == b""
    finally:
        os.close(held)
    assert not [p.name for p in tmp_path.glob(f"{keys.path.name}.*") if not p.name.endswith(".lock")]


async def test_a_destroy_killed_once_the_seed_went_is_finished_and_audited_by_the_next_destroy(
    cli: Cli, db: Database, keys: KeyRing, tmp_path: Path
) -> None:
    """The forensic review's case: `decommission destroy` killed -9 once its last write of the key file
    (the signing seed gone) has its name, before the destruction is recorded complete. The next
    `decommission destroy` records it complete and prints the certificate: audited, in the
    transaction that records it (it was not, as nothing was left to destroy)."""
    assert keys.path is not None
    await switched_off_today(cli, tmp_path)
    script = [sys.executable, "-c", _KILLED_AFTER_THE_KEY_FILE_RENAME, "2"]
    assert subprocess.run(script, cwd=tmp_path, env=_pythonpath()).returncode == -signal.SIGKILL
    assert _on_disk(keys.path)["signing_seed"] == ""
    before = await events(db, "decommission_destroy")

    again = await cli.run("decommission", "destroy")
    assert again.code == 0, again.err
    assert "decommissioning complete" in again.out
    [(outcome, finished)] = (await events(db, "decommission_destroy"))[len(before) :]
    assert outcome == "done" and "finished" in finished
    assert "all personal data has been destroyed" in (await cli.run("decommission", "status")).out
    assert (await cli.run("decommission", "destroy")).code != 0  # and then refused, audited so
    assert [e[0] for e in (await events(db, "decommission_destroy"))[len(before) + 1 :]] == ["refused"]


async def test_two_finishers_of_a_destroy_killed_after_the_key_file_rename_audit_it_once(
    db: Database, cli: Cli, keys: KeyRing, tmp_path: Path
) -> None:
    """A destroy killed once its key file has its name, then finished by two processes at once (a
    server's tick or start beside `decommission destroy`): one records the destruction complete and
    audits it; the other, finding it recorded and nothing left to destroy, audits nothing (review)."""
    assert keys.path is not None
    await switched_off_today(cli, tmp_path)
    script = [sys.executable, "-c", _KILLED_AFTER_THE_KEY_FILE_RENAME, "2"]
    assert subprocess.run(script, cwd=tmp_path, env=_pythonpath()).returncode == -signal.SIGKILL
    before = await events(db, "decommission_destroy")
    one, other = build(db, KeyRing.load(keys.path)), build(db, KeyRing.load(keys.path))
    now = datetime.now(UTC)
    await asyncio.gather(finish_destruction(one.ctx, now), finish_destruction(other.ctx, now))
    new = (await events(db, "decommission_destroy"))[len(before) :]
    assert len(new) == 1, new
