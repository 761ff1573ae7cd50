"""Backups: a consistent copy of the store; its keys wrapped, its practitioners in clear.

The key file (KEKs, the birth-date and month key chains) never enters a backup: without it a
child's identity in it is ciphertext and keyed hashes. Practitioners' names and contact details
and the involvements (a child's reference beside its practitioner) are stored in clear, so a
backup holds them in clear whatever becomes of the key file (decommissioning says so). Because a
child's data key is wrapped under the key of their birth-date cohort, and retention destroys that
key in the key file, a child destroyed after a backup was taken cannot be decrypted from that
backup with any later key file.

- SQLite: ``VACUUM INTO`` (one read transaction, so consistent; free pages are not copied, so no
  deleted bytes travel with it), then SQLite's quick check of the copy before it takes its name:
  a damaged store is said to be damaged, never copied into a backup that looks whole.
- PostgreSQL: ``pg_dump --format=custom`` (one snapshot); restore with ``pg_restore``.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from store.db import PRIVATE_MODE, Database, make_private, sqlite_integrity, store_damage
from store.files import fsync_directory
from store.lifecycle.retention import raw_sqlite


class BackupFailed(Exception):
    """The backup was not written; the message is one line for the operator."""


PARTIAL = ".signpost-partial"  # a backup being written is named FILE.signpost-partial until it is whole


async def backup(
    db: Database,
    target: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    named: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Write a backup of the store to ``target`` (which must not exist); returns its size in bytes.

    The copy is written as ``FILE.signpost-partial`` and takes its name only once whole, so a copy
    cut short (kill -9, a full disk) never looks like a backup; what such a run left in the folder
    is removed by the next backup there. ``on_total`` is told the size the backup is expected to
    reach (the database's used size: an estimate, told the real size at the end), and
    ``on_progress`` how many more bytes have been written, every ``WATCH_EVERY`` seconds.

    ``named`` is told the size once the backup has its name (its outcome, to record), and only then
    does the partial name go: a run killed in between leaves both names on the one file, which is
    how ``named_unrecorded`` knows a backup whose outcome may never have been written.
    """
    if target.exists():
        raise BackupFailed(f"{target} already exists: choose a new file name")
    if not target.parent.is_dir():
        raise BackupFailed(f"the folder {target.parent} does not exist")
    remove_partials(target.parent)
    partial = target.with_name(target.name + PARTIAL)
    # Created empty and 0600 first (VACUUM INTO and pg_dump both write into an empty file and keep
    # its mode): a backup holds practitioners' contact details, so only the owner may read it. Held
    # locked while it is written, so that another run's ``remove_partials`` leaves it alone.
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        raise BackupFailed(f"another backup to {target} is being written") from None
    watcher = _Watcher(partial, on_progress)
    watching = asyncio.create_task(watcher.run()) if on_progress is not None else None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not _same_file(fd, partial):  # another run's remove_partials took it before our lock
            raise BackupFailed(f"another backup into {target.parent} interfered: run this one again")
        if on_total is not None:  # inside: a failure here leaves no empty file behind either
            on_total(await _expected_size(db))
        if db.dialect == "sqlite":
            await _sqlite_copy(db, partial)
        else:
            await _pg_dump(db, partial)
        make_private(partial)
        _publish(partial, target)
        if named is not None:
            await named(target.stat().st_size)
    finally:
        _remove(partial)
        os.close(fd)
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
    size = target.stat().st_size
    if on_total is not None:
        on_total(size)
    watcher.target = target
    watcher.look()
    return size


async def _sqlite_copy(db: Database, partial: Path) -> None:
    """``VACUUM INTO`` the partial file, then SQLite's quick check of what was written (every page
    and constraint; the copy's indexes were built afresh from its tables). VACUUM reads every page in
    use, so a damaged store usually stops it: either way, one line and no backup."""
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(lambda sync: raw_sqlite(sync, "VACUUM INTO ?", (str(partial),)))
    except Exception as exc:
        damage = store_damage(exc)
        if damage is None:
            raise
        raise BackupFailed(f"nothing was backed up: {damage}") from None
    if await asyncio.to_thread(sqlite_integrity, partial, quick=True, limit=1):
        raise BackupFailed(
            "nothing was backed up: the copy did not pass SQLite's integrity check, so the store (or the disk "
            f"under {partial.parent}) is damaged: run `signpost db check`"
        )


def _publish(partial: Path, target: Path) -> None:
    """Give the whole copy its name durably, never over an existing file."""
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    try:
        os.link(partial, target)  # atomic, and refuses an existing name
    except FileExistsError:
        raise BackupFailed(f"{target} already exists: choose a new file name") from None
    except OSError:  # a filesystem without hard links: a rename, after one more look
        if target.exists():
            raise BackupFailed(f"{target} already exists: choose a new file name") from None
        os.rename(partial, target)
    fsync_directory(target.parent)


def named_unrecorded(target: Path) -> int | None:
    """The size of the backup at ``target`` when the run that wrote it was killed after giving it its
    name, before its outcome was written (its partial name, removed only after that, is still the
    same file, and no running backup holds it); None otherwise."""
    try:
        fd = os.open(target.with_name(target.name + PARTIAL), os.O_RDONLY)
    except OSError:
        return None
    try:
        if not _same_file(fd, target):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its run is still going: it records its own outcome
            return None
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def forget_partial_name(target: Path) -> None:
    """Remove the partial name a run killed after naming ``target`` left on it (the backup stays)."""
    partial = target.with_name(target.name + PARTIAL)
    if named_unrecorded(target) is not None:
        partial.unlink(missing_ok=True)
        fsync_directory(target.parent)


def remove_partials(folder: Path) -> list[str]:
    """Remove what backups cut short left in ``folder`` (a partial copy and SQLite's journal for it),
    leaving those a running backup still holds, and the second name of a whole backup whose run was
    killed before recording it (its rerun records it: ``named_unrecorded``); returns the names removed."""
    removed = []
    for partial in sorted(folder.glob(f"*{PARTIAL}")):
        if _remove_unless_held(partial):
            removed.append(partial.name)
    for journal in sorted(folder.glob(f"*{PARTIAL}-journal")):
        if not journal.with_name(journal.name.removesuffix("-journal")).exists():
            journal.unlink(missing_ok=True)
            removed.append(journal.name)
    return removed


def _remove_unless_held(partial: Path) -> bool:
    """Remove a partial copy (and its journal) unless a running backup holds its lock, which dies
    with its process, kill -9 included. Removed while holding the lock ourselves, so that a backup
    starting at that moment finds its file gone (``_same_file``) rather than writing into it."""
    try:
        fd = os.open(partial, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    if _same_file(fd, partial.with_name(partial.name.removesuffix(PARTIAL))):
        os.close(fd)  # a whole backup's second name: ``named_unrecorded`` needs it
        return False
    try:
        _remove(partial)
    finally:
        os.close(fd)
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(f"{path}-journal").unlink(missing_ok=True)


WATCH_EVERY = 0.25  # seconds between looks at the backup's size while it is written


class _Watcher:
    """Tells ``on_progress`` how many more bytes the backup file holds than at the last look."""

    def __init__(self, target: Path, on_progress: Callable[[int], None] | None) -> None:
        self.target, self.on_progress, self.seen = target, on_progress, 0

    def look(self) -> None:
        try:
            size = self.target.stat().st_size
        except OSError:
            return
        if size > self.seen and self.on_progress is not None:
            self.on_progress(size - self.seen)
            self.seen = size

    async def run(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            self.look()


async def _expected_size(db: Database) -> int:
    """About how big a backup will be: the pages in use (SQLite), the database's size (PostgreSQL)."""
    async with db.engine.connect() as conn:
        if db.dialect == "sqlite":
            pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
            free = (await conn.exec_driver_sql("PRAGMA freelist_count")).scalar_one()
            size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar_one()
            return int((pages - free) * size)
        return int((await conn.exec_driver_sql("SELECT pg_database_size(current_database())")).scalar_one())


async def _pg_dump(db: Database, target: Path) -> None:
    tool = shutil.which("pg_dump")
    if tool is None:
        raise BackupFailed("pg_dump is not on PATH: install the PostgreSQL client tools to back up PostgreSQL")
    url = make_url(db.engine.url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # never on the command line, where ps would show it
    # Uncompressed: the personal data is ciphertext, which does not compress, and a plain layout lets
    # an auditor grep a backup for what must not be in it.
    args = [
        tool,
        "--format=custom",
        "--compress=0",
        "--no-owner",
        f"--file={target}",
        "--dbname",
        str(url.database),
    ]
    for flag, value in (("--host", url.host), ("--port", url.port), ("--username", url.username)):
        if value is not None:
            args += [flag, str(value)]
    proc = await asyncio.create_subprocess_exec(
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_dies_with(os.getpid()),
    )
    try:
        _, err = await proc.communicate()
    finally:
        if proc.returncode is None:  # cancelled (Ctrl-C, a deadline): pg_dump must not carry on alone
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        first = (err.decode(errors="replace").strip().splitlines() or ["unknown error"])[0]
        raise BackupFailed(f"pg_dump failed: {first[:200]}")


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _dies_with(parent: int) -> Callable[[], None] | None:
    """Run in the child between fork and exec: the kernel kills it (SIGKILL) when signpost dies,
    however it dies (a kill -9 included), so pg_dump never finishes a backup nobody audits. The
    libc function is looked up before the fork, so the child only calls it. Linux only; elsewhere
    the ``finally`` above covers a cancellation, not a kill -9."""
    if _LIBC is None:
        return None
    prctl = _LIBC.prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # signpost died before the line above: do not start at all
            os._exit(1)

    return arm
