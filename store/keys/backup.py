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
from pathlib import Path

from sqlalchemy.engine import make_url

from store.db import PRIVATE_MODE, Database, make_private
from store.lifecycle.retention import raw_sqlite


class BackupFailed(Exception):
    """The backup was not written; the message is one line for the operator."""


async def backup(db: Database, target: Path) -> int:
    """Write a backup of the store to ``target`` (which must not exist); returns its size in bytes."""
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
    try:
        if db.dialect == "sqlite":
            async with db.engine.connect() as conn:
                await conn.run_sync(lambda sync: raw_sqlite(sync, "VACUUM INTO ?", (str(target),)))
        else:
            await _pg_dump(db, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    make_private(target)
    return target.stat().st_size


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
