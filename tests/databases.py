"""Fresh databases for tests: a migrated template per run, cloned per test (SQLite file copy or
PostgreSQL ``CREATE DATABASE … TEMPLATE``), so every test starts empty and runs never collide.

Tests that need a large starting state (a synthetic authority, weeks of audit) ask for a *derived*
template: built once per run and backend, then cloned per test the same way, so each test still
gets a database of its own to change."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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


# Which host a run's databases come from (6 hex digits of its name's hash), in each name beside
# the run's process id: the sweep judges a process id only on the host that can see it.
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
# A run's template and its clones: signpost_tpl_<pid>_<host><8 hex>, signpost_t_<pid>_<host><8 hex>_<n>.
_RUN_NAME = re.compile(r"signpost_(?:tpl|t)_(\d+)_([0-9a-f]{6})[0-9a-f]{8}(?:_\d+)?")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (another account's counts: it is not ours to judge)."""
    try:
        os.kill(pid, 0)  # signal 0: asks only whether it exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(names: Iterable[str]) -> list[str]:
    """Of database ``names``, those a run on this host left behind when it was cut short (Ctrl-C,
    SIGTERM: no teardown ran): its name says so and its process has ended. A live run's (another
    suite now), another host's, or any other name is never chosen."""
    chosen = []
    for name in names:
        run = _RUN_NAME.fullmatch(name)
        if run is not None and run[2] == HOST and not pid_alive(int(run[1])):
            chosen.append(name)
    return chosen


def sweep_leftovers() -> list[str]:
    """Drop the databases ``leftovers`` chooses on the test server; returns their names."""

    async def sweep() -> list[str]:
        conn = await asyncpg.connect(_dsn(postgres_url()))
        try:
            names = [r[0] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'signpost%'")]
        finally:
            await conn.close()
        doomed = leftovers(names)
        await _drop_together(doomed, Templates.DROP_AT_ONCE)
        return doomed

    return asyncio.run(sweep())


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


_FINGERPRINT = r"""
SELECT md5(string_agg(item, E'\n' ORDER BY item)) FROM (
    SELECT 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || c.relpersistence::text
           || c.relrowsecurity::text || ' ' || coalesce(c.relacl::text, '') || ' '
           || coalesce(array_to_string(c.reloptions, ','), '')
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
    UNION ALL
    SELECT 'col ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || ' ' || a.attnotnull::text || a.attidentity::text || a.attgenerated::text
           || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'idx ' || pg_get_indexdef(i.indexrelid) || ' ' || i.indisclustered::text || i.indisvalid::text
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'trg ' || tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text || ' ' || pg_get_triggerdef(oid)
      FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'fn ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc) || ' ' || coalesce(p.proacl::text, '')
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT 'nsp ' || nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%'
    UNION ALL
    SELECT 'typ ' || typnamespace::regnamespace::text || '.' || typname || ' ' || typtype::text FROM pg_type
     WHERE typnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND typnamespace::regnamespace::text NOT LIKE 'pg\_%'
    UNION ALL
    SELECT 'rule ' || ev_class::regclass::text || ' ' || rulename FROM pg_rewrite r
      JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'pol ' || polname FROM pg_policy
    UNION ALL SELECT 'ext ' || extname || ' ' || extversion FROM pg_extension
    UNION ALL SELECT 'defacl ' || defaclacl::text FROM pg_default_acl
    UNION ALL SELECT 'pub ' || pubname FROM pg_publication
    UNION ALL SELECT 'lo ' || count(*) FROM pg_largeobject_metadata
    UNION ALL SELECT 'xact ' || count(*) FROM pg_prepared_xacts WHERE database = current_database()
    UNION ALL SELECT 'set ' || setrole || ' ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
     WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL SELECT 'db ' || coalesce(datacl::text, '') || ' ' || datallowconn::text || ' ' || datconnlimit::text
      FROM pg_database WHERE datname = current_database()
    UNION ALL SELECT 'ver ' || version_num FROM alembic_version
) AS items (item)
"""
"""Everything in a test database but its rows that a test could change and a later test notice:
its schema, grants, triggers (and whether they are enabled), functions, settings and migration
heads. A database whose fingerprint is the template's is emptied and used again; any other is
dropped."""


async def _sizes(conn: asyncpg.Connection) -> dict[str, int]:
    """The size on disk (indexes and TOAST included) of each table whose own file has no page."""
    rows = await conn.fetch(
        "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p') AND pg_relation_size(oid) = 0"
    )
    return {str(name): int(size) for name, size in rows}


_ENABLE = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "R": "ENABLE REPLICA TRIGGER", "D": "DISABLE TRIGGER"}


@dataclass(frozen=True)
class Pristine:
    """What a recycled database is put back to: the template as migrated."""

    fingerprint: str
    tables: tuple[str, ...]  # emptied: every table but alembic_version
    seeds: dict[str, str]  # the rows the migrations wrote, by table, as JSON
    sequences: tuple[tuple[str, int, bool], ...]
    triggers: tuple[tuple[str, str, str], ...]  # (table, trigger, tgenabled): the append-only guards
    # Each table's size on disk with its indexes and TOAST, for those whose own file is empty (no
    # page, so no row): one still so is as the template left it, and is not rewritten (``restore``).
    empty_sizes: dict[str, int]

    @classmethod
    async def read(cls, url: str) -> Pristine:
        conn = await asyncpg.connect(_dsn(url))
        try:
            fingerprint = str(await conn.fetchval(_FINGERPRINT))
            tables = tuple(
                str(name)
                for (name,) in await conn.fetch(
                    "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                    " AND relkind IN ('r', 'p') AND relname <> 'alembic_version' ORDER BY relname"
                )
            )
            seeds = {}
            for table in tables:
                rows = await conn.fetchval(f'SELECT json_agg(t) FROM "{table}" AS t')
                if rows is not None:
                    seeds[table] = str(rows)
            sequences = tuple(
                (str(name), int(value), bool(called))
                for name, value, called in await conn.fetch(
                    "SELECT sequencename, coalesce(last_value, start_value), last_value IS NOT NULL"
                    " FROM pg_sequences WHERE schemaname = 'public'"
                )
            )
            triggers = tuple(
                (str(table), str(name), str(enabled))
                for table, name, enabled in await conn.fetch(
                    "SELECT c.relname, t.tgname, t.tgenabled::text"
                    " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                    " WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace ORDER BY 1, 2"
                )
            )
            empty_sizes = {
                table: size for table, size in (await _sizes(conn)).items() if table in tables and table not in seeds
            }
        finally:
            await conn.close()
        return cls(fingerprint, tables, seeds, sequences, triggers, empty_sizes)

    async def restore(self, url: str) -> bool:
        """Empty the database at ``url`` back to this, if nothing but its rows changed; whether it was."""
        conn = await asyncpg.connect(_dsn(url))
        try:
            await conn.execute("SET lock_timeout = '20s'")
            # What the test left connected (a killed bot's session, say) goes, as DROP … WITH (FORCE) does.
            await conn.execute(
                "SELECT pg_terminate_backend(pid, 20000) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if await conn.fetchval(_FINGERPRINT) != self.fingerprint:
                return False
            async with conn.transaction():
                # The audit tables refuse TRUNCATE by triggers that fire in every replication role: each
                # is switched off for this transaction and back to the state it had.
                for table, name, _ in self.triggers:
                    await conn.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER "{name}"')
                # Only the tables a test wrote to: TRUNCATE gives each table and index a new file, and
                # its commit waits for the disk (0.6 s a database, most of it for tables never written).
                # A table whose file has no page holds no row, live or dead; its indexes and TOAST the
                # template's size: none was written (an insert, even one rolled back, takes a page).
                # CASCADE: with the tables whose foreign keys name them (PostgreSQL asks that, empty or not).
                sizes = await _sizes(conn)
                written = [t for t in self.tables if t not in self.empty_sizes or sizes.get(t) != self.empty_sizes[t]]
                await conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in written) + " RESTART IDENTITY CASCADE")
                for table, rows in self.seeds.items():
                    await conn.execute(
                        f'INSERT INTO "{table}" OVERRIDING SYSTEM VALUE'
                        f' SELECT * FROM json_populate_recordset(NULL::"{table}", $1::json)',
                        rows,
                    )
                for table, name, enabled in self.triggers:
                    await conn.execute(f'ALTER TABLE "{table}" {_ENABLE[enabled]} "{name}"')
                for name, value, called in self.sequences:
                    await conn.execute("SELECT setval($1::regclass, $2, $3)", f'"{name}"', value, called)
                # The planner's column statistics of the rows gone (TRUNCATE resets the tables' sizes).
                await conn.execute(
                    "DELETE FROM pg_statistic WHERE starelid IN"
                    " (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)"
                )
            await conn.execute("SELECT pg_stat_reset()")  # vacuum times, dead rows: as a new database's
            return bool(await conn.fetchval(_FINGERPRINT) == self.fingerprint)
        except (asyncpg.PostgresError, OSError):
            return False
        finally:
            await conn.close()


class Templates:
    """Migrated template databases for one test run.

    PostgreSQL clones cost about a second each when made one at a time but run well in parallel,
    so a small pool of threads keeps a few clones ready ahead of the tests.

    Used clones are dropped in the background, on a thread of their own and many at once: every
    ``DROP DATABASE`` waits for a checkpoint of the whole server (2–25 s on a loaded host), and
    drops issued together share one. In the clones' pool, each test's drop queued ahead of the next
    test's clone, so PostgreSQL tests ran no faster than the checkpoints; with a fixed batch the
    drops fell behind. Each drop run takes every clone used by the time it starts.

    Most are not dropped at all but emptied and used again (``Pristine.restore``): a clone writes its
    template's 8 MB (mostly the system catalogs) through the WAL, and each drop forces a checkpoint
    that writes and syncs every clone made since, so the PostgreSQL half of a run spent its time in
    the server's checkpoints (1,000 an hour, 53 minutes of it syncing files). A used database whose
    schema, grants, triggers, settings and migration heads are still the template's (its
    fingerprint) is truncated, given back the rows the migrations wrote, its sequences, planner
    statistics and activity counters reset, and handed to the next test; any other is dropped.
    """

    AHEAD = 6
    # Connections a drop run uses at most. Each worker's drops wait for fewer checkpoints with more, but
    # a server shared by several suites runs out of its ~100 (12 a worker did, on a box with four suites).
    DROP_AT_ONCE = 4

    def __init__(self, workdir: Path) -> None:
        self.run_id = f"{os.getpid()}_{HOST}{uuid.uuid4().hex[:8]}"  # read back by ``leftovers``
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
        self._pristine: Pristine | None = None
        self._free: deque[str] = deque()  # emptied back to the template, ready for a test
        self._left: list[str] = []  # given back as the run ended: dropped after it (``close``)
        self.dropping: subprocess.Popen[bytes] | None = None  # what drops them (``close``)
        self.recycled = 0
        self._closing = False

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
            self._pristine = asyncio.run(Pristine.read(with_database(postgres_url(), self.pg_template)))
            self._pg_ready = True
        with self._drop_lock:
            if self._free:
                return with_database(postgres_url(), self._free.popleft())
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
        """Done with this database: it is emptied for another test, or dropped (in the background)."""
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
            asyncio.run(self._recycle_or_drop(names))

    async def _recycle_or_drop(self, names: list[str]) -> None:
        doomed = []
        for name in names:
            if self._closing:  # the run is ending: what is left is dropped after it (``close``)
                with self._drop_lock:
                    self._left.append(name)
                continue
            assert self._pristine is not None
            if await self._pristine.restore(with_database(postgres_url(), name)):
                with self._drop_lock:
                    self._free.append(name)
                    self.recycled += 1
            else:
                doomed.append(name)
        await _drop_together(doomed, self.DROP_AT_ONCE)

    def settle(self) -> None:
        """Wait for the databases given back so far to be emptied or dropped."""
        for drop in list(self._drops):
            drop.result()

    def close(self) -> None:
        """The run's end: its PostgreSQL databases are dropped by a process of their own, which this
        one does not wait for.

        Every ``DROP DATABASE`` waits for a checkpoint of the whole server; the ten or so a worker
        holds at its end (the clones ready ahead, those emptied for reuse, the derived templates,
        the template) took 20-100 s, and the run ended only when its last worker had dropped them.
        Should that process not finish (the machine stops), the next run's sweep drops them
        (``sweep_leftovers``: their names carry this process's id, which has ended by then)."""
        self._closing = True
        for clone in self._ahead:
            clone.cancel()  # not started: nothing to drop
        names = [clone.result().rsplit("/", 1)[1] for clone in self._ahead if not clone.cancelled()]
        self._ahead.clear()
        for drop in self._drops:  # a database being emptied or dropped now is finished; the rest left
            drop.result()
        self._workers.shutdown()
        self._dropper.shutdown()
        with self._drop_lock:
            names += self._left + self._to_drop + list(self._free)
            self._left, self._to_drop, self._free = [], [], deque()
        names += [url.rsplit("/", 1)[1] for (backend, _), url in self._derived.items() if backend == "postgres"]
        if self._pg_ready:
            names.append(self.pg_template)
        if names:
            self.dropping = drop_after(names)


def drop_after(names: list[str]) -> subprocess.Popen[bytes]:
    """Drop databases ``names`` from a process of their own, in a session of its own (a Ctrl-C at
    the terminal does not reach it), that outlives this one; the process, for a test to wait on."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.databases", *names],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def terminate_backends(url: str) -> int:
    """End every session connected to the database at ``url`` from another connection, as an
    administrator's ``pg_terminate_backend`` or a server restart does to a pool; how many ended."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        ended = await conn.fetch(
            "SELECT pg_terminate_backend(pid, 20000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return sum(1 for row in ended if row[0])


if __name__ == "__main__":  # ``drop_after``: python -m tests.databases NAME…
    asyncio.run(_drop_together(sys.argv[1:], Templates.DROP_AT_ONCE))
