"""Fresh databases for tests: a migrated template per run, cloned per test (SQLite file copy or
PostgreSQL ``CREATE DATABASE … TEMPLATE``), so every test starts empty and runs never collide.

Tests that need a large starting state (a synthetic authority, weeks of audit) ask for a *derived*
template: built once per run and backend, then cloned per test the same way, so each test still
gets a database of its own to change."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import asyncpg

from store.db import Database

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("SIGNPOST_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + "/" + database
    return dsn


async def drop_role(url: str, role: str) -> None:
    """Drop a PostgreSQL role a test made (``grant-runtime``), with what it owns and its grants."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await conn.execute(f'DROP OWNED BY "{role}"')
            await conn.execute(f'DROP ROLE "{role}"')
    finally:
        await conn.close()


def with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


async def postgres_problem() -> str | None:
    """None when PostgreSQL answers, else a one-line reason."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(_dsn(postgres_url())), timeout=5)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(_dsn(postgres_url()))
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def _create_from(name: str, template: str | None) -> None:
    """Create database ``name`` (a copy of ``template`` when given) whose sessions commit without
    waiting for the WAL to reach the disk (``synchronous_commit = off``).

    Why: the suite's PostgreSQL half shares one server whose checkpoints (every ``DROP DATABASE``
    forces one) keep the disk busy, and each commit's WAL flush queued behind them. A test sees the
    same rows either way (a commit is visible to every session at once, whether flushed or not);
    only a crash of the PostgreSQL server itself could lose the last commits, and no test crashes
    the server (the bot's own process is killed, never the database's)."""
    copy = f' TEMPLATE "{template}"' if template is not None else ""
    await _admin(f'CREATE DATABASE "{name}"{copy}', f'ALTER DATABASE "{name}" SET synchronous_commit = off')


async def _drop_together(names: list[str], at_once: int) -> None:
    """Drop databases concurrently, ``at_once`` connections at most, so that their drops wait for
    the same checkpoints (a server short of connections is waited for, not failed)."""
    gate = asyncio.Semaphore(at_once)

    async def drop(name: str) -> None:
        async with gate:
            for attempt in range(60):
                try:
                    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    return
                except asyncpg.TooManyConnectionsError:
                    if attempt == 59:
                        raise
                    await asyncio.sleep(1)

    await asyncio.gather(*(drop(name) for name in names))


class Templates:
    """Migrated template databases for one test run.

    PostgreSQL clones cost about a second each when made one at a time but run well in parallel,
    so a small pool of threads keeps a few clones ready ahead of the tests.

    Used clones are dropped in the background, on a thread of their own and many at once: every
    ``DROP DATABASE`` waits for a checkpoint of the whole server (2–25 s on a loaded host), and
    drops issued together share one. In the clones' pool, each test's drop queued ahead of the next
    test's clone, so PostgreSQL tests ran no faster than the checkpoints; with a fixed batch the
    drops fell behind. Each drop run takes every clone used by the time it starts.
    """

    AHEAD = 6
    # Connections a drop run uses at most. Each worker's drops wait for fewer checkpoints with more, but
    # a server shared by several suites runs out of its ~100 (12 a worker did, on a box with four suites).
    DROP_AT_ONCE = 4

    def __init__(self, workdir: Path) -> None:
        self.run_id = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        self.sqlite_template = workdir / "template.db"
        self.pg_template = f"signpost_tpl_{self.run_id}"
        self._pg_ready = False
        self._sqlite_ready = False
        self._counter = 0
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pg-clone")
        self._ahead: deque[Future[str]] = deque()
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drop")
        self._drop_lock = threading.Lock()
        self._to_drop: list[str] = []
        self._drop_run: Future[None] | None = None
        self._drops: list[Future[None]] = []
        self._derived: dict[tuple[str, str], str] = {}

    async def _migrate(self, url: str) -> None:
        db = await Database.open(url)
        await db.close()

    def sqlite(self) -> str:
        if not self._sqlite_ready:
            asyncio.run(self._migrate(f"sqlite+aiosqlite:///{self.sqlite_template}"))
            self._sqlite_ready = True
        self._counter += 1
        path = self.workdir / f"t{self._counter}.db"
        shutil.copyfile(self.sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"

    def _clone(self, name: str) -> str:
        asyncio.run(_create_from(name, self.pg_template))
        return with_database(postgres_url(), name)

    def _order_clone(self) -> None:
        self._counter += 1
        self._ahead.append(self._workers.submit(self._clone, f"signpost_t_{self.run_id}_{self._counter}"))

    def postgres(self) -> str:
        """A fresh, migrated PostgreSQL database of its own."""
        if not self._pg_ready:
            asyncio.run(_create_from(self.pg_template, None))
            asyncio.run(self._migrate(with_database(postgres_url(), self.pg_template)))
            self._pg_ready = True
        while len(self._ahead) < self.AHEAD:
            self._order_clone()
        url = self._ahead.popleft().result()
        self._order_clone()
        return url

    def derived(self, backend: str, name: str, build: Callable[[str], None], *, base: str | None = None) -> str:
        """A database of its own holding what ``build`` wrote: a copy of ``template(...)``."""
        return self._derived_copy(backend, self.template(backend, name, build, base=base))

    def template(self, backend: str, name: str, build: Callable[[str], None], *, base: str | None = None) -> str:
        """The URL of the derived template ``name``, built on first use for this run and backend.

        ``build`` gets the URL of a fresh migrated database (a copy of the derived template ``base``,
        which must exist already, when given), fills it and closes every connection it opened."""
        key = (backend, name)
        if key not in self._derived:
            if base is not None:
                url = self._derived_copy(backend, self._derived[(backend, base)])
            else:
                url = self.sqlite() if backend == "sqlite" else self.postgres()
            build(url)
            if backend == "sqlite":  # fold the write-ahead log into the file, so a file copy is whole
                with sqlite3.connect(url.split("///", 1)[1]) as conn:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._derived[key] = url
        return self._derived[key]

    def _derived_copy(self, backend: str, source: str) -> str:
        self._counter += 1
        if backend == "sqlite":
            path = self.workdir / f"t{self._counter}.db"
            shutil.copyfile(source.split("///", 1)[1], path)
            return f"sqlite+aiosqlite:///{path}"
        name = f"signpost_t_{self.run_id}_{self._counter}"
        asyncio.run(_create_from(name, source.rsplit("/", 1)[1]))
        return with_database(postgres_url(), name)

    def drop_postgres(self, url: str) -> None:
        with self._drop_lock:
            self._to_drop.append(url.rsplit("/", 1)[1])
        run = self._drop_run
        if run is None or run.running() or run.done():  # else a run not started yet will take it
            self._drop_run = self._dropper.submit(self._drop_pending)
            self._drops.append(self._drop_run)

    def _drop_pending(self) -> None:
        with self._drop_lock:
            names, self._to_drop = self._to_drop, []
        if names:
            asyncio.run(_drop_together(names, self.DROP_AT_ONCE))

    def close(self) -> None:
        while self._ahead:
            self.drop_postgres(self._ahead.popleft().result())
        for (backend, _), url in self._derived.items():
            if backend == "postgres":
                self.drop_postgres(url)
        for drop in self._drops:
            drop.result()
        self._workers.shutdown()
        self._dropper.shutdown()
        if self._pg_ready:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{self.pg_template}" WITH (FORCE)'))
