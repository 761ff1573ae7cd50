"""One live run at a time of a piece of operator work, per store.

``alone`` holds a lock that dies with its holder's process (kill -9 included), so that whoever holds
it knows no other run of that work is live: a run of it whose audit still ends at ``started`` is
dead, never merely slow. PostgreSQL: a session advisory lock on a connection of its own, held for
the run (the server lets go when that connection closes). SQLite: an exclusive ``flock`` on
``<store file>.<name>.lock`` beside the store (the kernel lets go when the process dies; never a lock
on the store's own files, which SQLite's locks would lose when it closed), removed as it is let
go. An in-memory SQLite store lives and dies with its one process: the names held there are
remembered in it.

A holder that is gone without closing its connection (its machine lost power) keeps a PostgreSQL
lock until the server notices the connection is dead; meanwhile the work is refused, never run twice.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text

from store.db import Database, sqlite_path
from store.files import names_open_file

# The first of the two keys of every advisory lock of ours ("Sign"): apart from other software's.
_SPACE = 0x5369676E
_TRY = text("SELECT pg_try_advisory_lock(:space, :key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:space, :key)")
_HELD_IN_MEMORY: set[tuple[int, str]] = set()


@asynccontextmanager
async def alone(db: Database, name: str) -> AsyncIterator[bool]:
    """True while this is the only holder of ``name`` on ``db``'s store, from any process; False
    (holding nothing, waiting for nothing) when another holds it."""
    if db.dialect == "postgresql":
        lock = _postgres(db, name)
    else:
        path = sqlite_path(db.engine.url)
        lock = _in_memory(db, name) if path is None else _flock(path.with_name(f"{path.name}.{name}.lock"))
    async with lock as held:
        yield held


@asynccontextmanager
async def _postgres(db: Database, name: str) -> AsyncIterator[bool]:
    key = zlib.crc32(name.encode("utf-8")) - 2**31  # an int4, as the two-key form takes
    keys = {"space": _SPACE, "key": key}
    async with db.engine.connect() as conn:
        held = bool((await conn.execute(_TRY, keys)).scalar_one())
        await conn.commit()  # a session lock: it outlives the transaction, until unlocked or closed
        if not held:
            yield False
            return
        try:
            yield True
        finally:
            try:
                await conn.execute(_UNLOCK, keys)
                await conn.commit()
            except Exception:  # never back to the pool still holding it: closed, the server lets go
                await conn.invalidate()


@asynccontextmanager
async def _flock(path: Path) -> AsyncIterator[bool]:
    """The lock file is removed by its holder as it lets go (backups lock one per file name: none
    left to pile up), so a lock taken on a file no longer at ``path`` is let go and taken again."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        if names_open_file(path, fd):
            break
        os.close(fd)  # its holder let go and removed it after we opened it: the next one is ours
    try:
        yield True
    finally:
        path.unlink(missing_ok=True)  # while held: whoever opened it meanwhile finds it gone
        os.close(fd)  # closing the file lets go


@asynccontextmanager
async def _in_memory(db: Database, name: str) -> AsyncIterator[bool]:
    mine = (id(db), name)
    if mine in _HELD_IN_MEMORY:
        yield False
        return
    _HELD_IN_MEMORY.add(mine)
    try:
        yield True
    finally:
        _HELD_IN_MEMORY.discard(mine)
