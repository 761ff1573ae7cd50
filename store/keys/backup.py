"""Backups: a consistent copy of the store holding wrapped keys only.

The key file (KEKs, the birth-date and month key chains) never enters a backup: without it a
backup is ciphertext and keyed hashes. Because a child's data key is wrapped under the key of
their birth-date cohort, and retention destroys that key in the key file, a child destroyed after
a backup was taken cannot be decrypted from that backup with any later key file.

- SQLite: ``VACUUM INTO`` (one read transaction, so consistent; free pages are not copied, so no
  deleted bytes travel with it).
- PostgreSQL: ``pg_dump --format=custom`` (one snapshot); restore with ``pg_restore``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from store.db import PRIVATE_MODE, Database, make_private
from store.lifecycle.retention import raw_sqlite


class BackupFailed(Exception):
    """The backup was not written; the message is one line for the operator."""


async def backup(
    db: Database,
    target: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> int:
    """Write a backup of the store to ``target`` (which must not exist); returns its size in bytes.

    ``on_total`` is told the size the backup is expected to reach (the database's used size: an
    estimate, told the real size at the end), and ``on_progress`` how many more bytes have been
    written, every ``WATCH_EVERY`` seconds while the copy runs.
    """
    if target.exists():
        raise BackupFailed(f"{target} already exists: choose a new file name")
    if not target.parent.is_dir():
        raise BackupFailed(f"the folder {target.parent} does not exist")
    # Created empty and 0600 first (VACUUM INTO and pg_dump both write into an empty file and keep
    # its mode): a backup holds practitioners' contact details, so only the owner may read it.
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
    except FileExistsError:
        raise BackupFailed(f"{target} already exists: choose a new file name") from None
    watcher = _Watcher(target, on_progress)
    watching = asyncio.create_task(watcher.run()) if on_progress is not None else None
    try:
        if on_total is not None:  # inside: a failure here leaves no empty file behind either
            on_total(await _expected_size(db))
        if db.dialect == "sqlite":
            async with db.engine.connect() as conn:
                await conn.run_sync(lambda sync: raw_sqlite(sync, "VACUUM INTO ?", (str(target),)))
        else:
            await _pg_dump(db, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
    make_private(target)
    size = target.stat().st_size
    if on_total is not None:
        on_total(size)
    watcher.look()
    return size


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
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        target.unlink(missing_ok=True)
        first = (err.decode(errors="replace").strip().splitlines() or ["unknown error"])[0]
        raise BackupFailed(f"pg_dump failed: {first[:200]}")
