"""The database: one async engine, SQLite (WAL) or PostgreSQL by URL, migrated on open."""

from __future__ import annotations

import ctypes
import os
import re
import sqlite3
import stat
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote
from weakref import WeakKeyDictionary

import structlog
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.util import EMPTY_DICT

from store import files

if TYPE_CHECKING:
    from alembic.config import Config

log = structlog.get_logger("signpost.store")

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_OPTION = "signpost_write"
PRIVATE_MODE = files.PRIVATE_MODE  # the store holds practitioners' contact details: owner only, like the key file
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
PG_POOL_MAX = 32  # pooled PostgreSQL connections per process, whatever the bound on work in flight


DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
URL_FORMS = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB"
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_COUNT = re.compile(r"[0-9]+")
_SSL_MODES = frozenset(
    {"disable", "allow", "prefer", "require", "verify-ca", "verify-full", "verify_ca", "verify_full"}
)
_SESSION_ATTRS = frozenset({"any", "primary", "standby", "read-write", "read-only", "prefer-standby"})


def _any_text(value: str) -> bool:
    return True


# The query options each driver takes from the URL, and what a value must look like (truthy: fits).
# Anything else reached the driver as a keyword it did not know or a value of a type it did not
# take, and stopped Signpost with a traceback (asyncpg: TypeError), or was dropped with a warning
# (pysqlite). asyncpg's timeout, statement_cache_size and max_cached_statement_* are not here:
# SQLAlchemy hands them over as text, which asyncpg cannot use.
QUERY_OPTIONS: dict[str, dict[str, Callable[[str], object]]] = {
    "sqlite+aiosqlite": {"timeout": _NUMBER.fullmatch},
    "postgresql+asyncpg": {
        "ssl": _SSL_MODES.__contains__,
        "command_timeout": _NUMBER.fullmatch,
        "prepared_statement_cache_size": _COUNT.fullmatch,
        "target_session_attrs": _SESSION_ATTRS.__contains__,
        "host": _any_text,  # a Unix socket's folder, or HOST:PORT once for each host of several
        "passfile": _any_text,
        "krbsrvname": _any_text,
        "gsslib": frozenset({"gssapi", "sspi"}).__contains__,
    },
}
_REPEATABLE = frozenset({"host"})
_OPTION_NAME = re.compile(r"[a-z_]{1,40}")  # how options are named: lower case, no digits
_HINTS = {"sslmode": " (asyncpg's is ssl, e.g. ssl=require)"}


def url_problem(url: str) -> str | None:
    """What is wrong with a database URL, in words for SIGNPOST_DATABASE_URL; None when Signpost can
    use it. Says which part is wrong and never quotes the URL: it may hold a password."""
    if not url.isprintable():
        return "holds a control character or an invisible formatting mark"
    if url != url.strip():
        return "starts or ends with a space"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"is not a database URL: expected {URL_FORMS}"
    if scheme not in DRIVERS:
        return f"the driver must be sqlite+aiosqlite or postgresql+asyncpg ({URL_FORMS})"
    port = _port_problem(rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2])
    if port:
        return port
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return f"cannot be read as a URL: expected {URL_FORMS}"
    if scheme == "sqlite+aiosqlite" and (parsed.username or parsed.password or parsed.host or parsed.port):
        return "a SQLite URL has no user, password, host or port: sqlite+aiosqlite:///PATH"
    if parsed.host and "@" in parsed.host:
        return "the host holds an @: write an @ in the user or password as %40"
    return _query_problem(scheme, parsed.query) or _connect_args_problem(parsed)


def _port_problem(host_and_port: str) -> str | None:
    """The port after the host (an IPv6 address in brackets), when one is given and is not 1-65535."""
    if host_and_port.startswith("["):
        end = host_and_port.find("]")
        if end < 0:
            return "the host is an IPv6 address without its closing ]"
        after = host_and_port[end + 1 :]
        if after and not after.startswith(":"):
            return "the host is malformed: an IPv6 address in brackets, then :PORT"
        port = after[1:] if after else None
    else:
        _, colon, port_text = host_and_port.partition(":")
        port = port_text if colon else None
    if port is None:
        return None
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        return "the port must be a number from 1 to 65535"
    return None


def _query_problem(driver: str, query: Mapping[str, str | tuple[str, ...]]) -> str | None:
    known = QUERY_OPTIONS[driver]
    for name, given in query.items():
        if name not in known:
            names = ", ".join(sorted(known))
            # Named back only when it reads as an option's name: the URL may hold a secret anywhere.
            said = f"query option {name}" if _OPTION_NAME.fullmatch(name) else "such query option"
            return f"{driver} takes no {said}{_HINTS.get(name, '')}; it takes {names}"
        values = given if isinstance(given, tuple) else (given,)
        if len(values) > 1 and name not in _REPEATABLE:
            return f"the query option {name} is given more than once"
        if not all(known[name](value) for value in values):
            return f"the query option {name} has a value {driver} cannot use"
    return None


def _connect_args_problem(parsed: URL) -> str | None:
    """What the dialect itself refuses when it turns the URL into connection arguments (it opens no
    connection): a multi-host list with a host or port missing, say."""
    try:
        parsed.get_dialect()().create_connect_args(parsed)
    except (ArgumentError, ValueError, TypeError):
        return "the hosts and ports cannot be read: HOST:PORT for each host"
    return None


DatabaseUrl = str | URL
"""Where a store is: a URL as typed (SIGNPOST_DATABASE_URL), or one built for a file (``sqlite_file_url``)."""


def sqlite_file_url(path: Path) -> URL:
    """The URL of the SQLite file at ``path`` (whatever characters its name holds)."""
    return URL.create("sqlite+aiosqlite", database=str(path.resolve()))


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a SQLite URL (None for an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_private(path: Path, *, create: bool = False) -> None:
    """Create ``path`` empty with mode 0600 (when asked and missing); take group's and others' access away if it exists.

    SQLite gives its WAL and shared-memory files the mode of the database file, so a database
    created 0600 keeps its side files 0600 too; existing 0644 files are tightened on open.
    """
    if create and path.parent.is_dir():
        with suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
    files.make_private(path)


SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite_or_empty(path: Path) -> bool:
    """Whether ``path`` is missing, an empty file or a SQLite database: a store Signpost may make
    private. A mistyped SIGNPOST_DATABASE_URL naming any other file, or a folder, is left as it is
    (it made /etc/passwd 0600), and SQLite's refusal to open it is what the operator is told."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return True
    if not stat.S_ISREG(info.st_mode):
        return False
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_HEADER))
    return head in (b"", SQLITE_HEADER)


def side_file(db_file: Path, suffix: str) -> Path:
    """SQLite's ``-wal``, ``-shm`` or ``-journal`` of ``db_file``: beside the file it names through
    any symbolic link, where SQLite keeps them (not beside the link)."""
    real = Path(os.path.realpath(db_file))
    return real.with_name(real.name + suffix)


def _make_store_private(db_file: Path) -> None:
    make_private(db_file)
    for suffix in SQLITE_SIDE_FILES:
        make_private(side_file(db_file, suffix))


# SQLite keeps a page cache per connection, filled as pages are read and never shrunk: with one
# connection per request in flight, a fixed size each grows the serving process with the
# register (64 MB each, 68 connections: RSS 691 MB at 1 M children, issue 15). The serving pool
# shares one budget instead; the operating system's file cache, shared by every connection and
# not counted in the process, holds the rest of the database. (In WAL mode a reader's cache is
# emptied anyway whenever another connection has written, as every enquiry's audit event does.)
SQLITE_CACHE_BUDGET_KIB = 64 * 1024  # all the pool's connections together
SQLITE_CACHE_MIN_KIB = 1024  # each connection at least (the interior pages of the hot indexes)
SQLITE_MAX_OVERFLOW = 4
SQLITE_BUSY_SECONDS = 30.0  # how long a SQLite write waits for another process's lock, by default
BULK_CACHE = "signpost_bulk_cache"  # connection-record flag: a bulk load raised its cache size


def sqlite_cache_kib(pool_size: int) -> int:
    """One serving connection's page cache, in KiB: the budget shared by the whole pool."""
    return max(SQLITE_CACHE_MIN_KIB, SQLITE_CACHE_BUDGET_KIB // (pool_size + SQLITE_MAX_OVERFLOW))


def release_freed_memory() -> None:
    """Give memory the C heap holds free back to the operating system (glibc keeps a bulk load's
    freed pages otherwise: 88 MB stay resident after a 100 k register's cache is let go, 13 MB
    with this). Best effort: elsewhere there is nothing to do."""
    with suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def mark_bulk_cache(conn: AsyncConnection) -> None:
    """Record that this connection's page cache was raised for a bulk load: it is put back to the
    serving size when the connection returns to the pool, whether the load committed or not."""
    conn.info[BULK_CACHE] = True


def _configure_sqlite(
    engine: AsyncEngine,
    db_file: Path | None,
    cache_kib: int,
    *,
    read_only: bool = False,
    busy_seconds: float = SQLITE_BUSY_SECONDS,
) -> None:
    """WAL, foreign keys, secure delete; real transactions (BEGIN IMMEDIATE for writes); a page
    cache per connection of ``cache_kib``; another process's write lock waited for ``busy_seconds``.
    ``read_only``: the file's journal mode is left as it is (switching to WAL writes to the file,
    and a read-only connection may not)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if _one_hop_fits(dbapi_connection):
            dbapi_connection.__class__ = _OneHopConnection  # one thread hand-off a statement
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (pysqlite's is broken)
        cursor = dbapi_connection.cursor()
        for pragma in (
            *(() if read_only else ("journal_mode=WAL",)),
            "synchronous=FULL",  # durable commits; group commit amortises the flush
            "foreign_keys=ON",
            "secure_delete=ON",
            f"busy_timeout={busy_ms(busy_seconds)}",
            f"cache_size=-{cache_kib}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
        if db_file is not None:
            _make_store_private(db_file)  # the WAL and shm now exist

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        # After an import in this process, its connection serves enquiries again: with the
        # serving cache, so the bulk load's pages are let go.
        if dbapi_connection is not None and record.info.pop(BULK_CACHE, False):
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
            cursor.execute("PRAGMA shrink_memory")  # free the pages past it now, not when reused
            cursor.close()
            release_freed_memory()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock up front, so it waits (busy_timeout) instead
        # of failing when another writer committed after its first read.
        mode = "BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN"
        # On the DBAPI cursor, not through exec_driver_sql: every transaction begins here, and
        # SQLAlchemy's execution context around a BEGIN cost more than the BEGIN (issue 15).
        tell_listeners(conn, mode, ())
        dbapi_connection = conn.connection.dbapi_connection
        if isinstance(dbapi_connection, _OneHopConnection):
            # Sent with the transaction's first statement, in its trip to aiosqlite's thread.
            _BEGIN[dbapi_connection._connection] = mode
            return
        cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(mode)
        finally:
            cursor.close()


def tell_listeners(conn: Connection, statement: str, parameters: Any) -> None:
    """Tell the engine's ``before_cursor_execute`` listeners (statement counts, traces) of a
    statement sent to the driver past SQLAlchemy's execution context (a BEGIN, a prepared read),
    as SQLAlchemy would have told them; there is no execution context to give them."""
    if conn._has_events or conn.engine._has_events:
        conn.dispatch.before_cursor_execute(conn, None, statement, parameters, None, False)


class _Ran(NamedTuple):
    """What one statement left on its sqlite3 cursor, read in aiosqlite's thread."""

    description: Any
    rowcount: int
    lastrowid: int | None
    rows: list[Any]


# A transaction begun on a one-hop connection whose BEGIN has not been sent yet: the BEGIN (or
# BEGIN IMMEDIATE) goes to aiosqlite's thread with the transaction's first statement, in the same
# trip (issue 15: a trip of its own was a third of a one-read transaction's). Keyed by aiosqlite's
# connection; read and changed on the event loop only, before a trip is handed over.
_BEGIN: WeakKeyDictionary[Any, str] = WeakKeyDictionary()


def begin_pending(driver: Any) -> str | None:
    """The deferred BEGIN of aiosqlite connection ``driver``'s transaction, taken: the caller sends
    it first, in the trip that carries the transaction's first statement. None: nothing to send."""
    return _BEGIN.pop(driver, None)


async def send_begin(driver: Any) -> None:
    """Send the deferred BEGIN of ``driver``'s transaction now, if there is one: for code that
    hands statements to aiosqlite itself, past the one-hop cursor (``copy_rows``)."""
    begin = begin_pending(driver)
    if begin is not None:
        await driver.execute(begin)


def run_sqlite(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool, begin: str | None = None
) -> _Ran:
    if begin is not None:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return _Ran(cursor.description, cursor.rowcount, cursor.lastrowid, rows)
    finally:
        cursor.close()


def run_sqlite_many(
    connection: sqlite3.Connection, statements: list[tuple[str, Any]], begin: str | None = None
) -> list[list[Any]]:
    """Several reads in one trip to aiosqlite's thread (``store.prepared.all_of``): each one's rows;
    ``begin``: the transaction's deferred BEGIN, sent first."""
    if begin is not None:
        connection.execute(begin)
    found = []
    for operation, parameters in statements:
        cursor = connection.cursor()
        try:
            cursor.execute(operation, parameters)
            found.append(cursor.fetchall() if cursor.description else [])
        finally:
            cursor.close()
    return found


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, in one trip to aiosqlite's thread a statement, not four.

    SQLAlchemy's adapter opens an aiosqlite cursor, executes, fetches and closes, each a hand-off
    to the connection's thread and back (a queue put, a self-pipe write, an event-loop wake-up):
    about 60 % of a keyed enquiry's driver time on SQLite. Here the statement runs, its rows are
    fetched and its cursor closed in one function on that thread (``aiosqlite.Connection._execute``,
    the queue every aiosqlite call goes through), under the adapter's own execute mutex.
    """

    __slots__ = ("_ran",)

    def __init__(self, adapt_connection: Any) -> None:  # no aiosqlite cursor: nothing to open
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # never used: see _ran
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._ran = _Ran(None, -1, None, [])

    @property
    def description(self) -> Any:
        return self._ran.description

    @property
    def rowcount(self) -> int:
        return self._ran.rowcount

    @property
    def lastrowid(self) -> Any:
        return self._ran.lastrowid

    async def _async_soft_close(self) -> None:
        return None  # the cursor was closed with its statement

    def close(self) -> None:
        self._rows.clear()

    async def _go(self, operation: Any, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            conn = self._connection
            begin = begin_pending(conn)
            self._ran = await conn._execute(run_sqlite, conn._conn, operation, parameters, many, begin)
            self._rows = deque(self._ran.rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._go(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._go(operation, seq_of_parameters, True)


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection, handing out ``_OneHopCursor``s (set on each of our
    engine's connections as it is made: no other engine in the process is touched)."""

    __slots__ = ()
    _cursor_cls = _OneHopCursor

    def rollback(self) -> None:
        # A session's close rolls its transaction back, then the pool's reset-on-return rolls
        # back again: a second trip to aiosqlite's thread, a quarter of a one-read transaction's
        # (issue 15). With no transaction open, pysqlite's rollback does nothing, so it is not
        # sent. (Read here, not on the thread: nothing else runs on this connection meanwhile.)
        # A transaction that sent no statement never sent its BEGIN either: nothing to end.
        _BEGIN.pop(self._connection, None)
        if self._open():
            super().rollback()

    def commit(self) -> None:
        _BEGIN.pop(self._connection, None)
        if self._open():  # as rollback: with no transaction open, pysqlite's commit does nothing
            super().commit()

    def _open(self) -> bool:
        """Whether the SQLite connection is in a transaction (or closed: then the adapter says so)."""
        inner = self._connection._connection
        return inner is None or inner.in_transaction


def _one_hop_fits(dbapi_connection: Any) -> bool:
    """Whether this connection is the SQLAlchemy and aiosqlite the one-hop cursor was written
    for (it uses their internals: the adapter's execute mutex, aiosqlite's call queue); any other
    keeps the stock cursor, slower but correct."""
    inner = getattr(dbapi_connection, "_connection", None)
    return (
        type(dbapi_connection) is AsyncAdapt_aiosqlite_connection
        and hasattr(dbapi_connection, "_execute_mutex")
        and callable(getattr(inner, "_execute", None))
        and isinstance(getattr(inner, "_conn", None), sqlite3.Connection)
    )


def missing_store_file(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist yet (or is empty): opening it would
    make a new, empty store. None for a store that exists, an in-memory one, and PostgreSQL (a
    database that does not exist cannot be connected to)."""
    path = sqlite_path(url) if url.startswith("sqlite") else None
    if path is None:
        return None
    try:
        if path.stat().st_size > 0 and not _rolls_back_to_nothing(path):
            return None
    except FileNotFoundError:
        pass
    return path


def _rolls_back_to_nothing(path: Path) -> bool:
    """Whether a hot rollback journal beside ``path`` began from an empty file (a copy killed while
    being written, `VACUUM INTO` for one): opening it would roll the file back to nothing, and a
    new store be made there. A journal header: magic, record count, nonce, then the file's size in
    pages before the write (bytes 16-20). A journal without the magic (zeroed) is cold."""
    try:
        with side_file(path, "-journal").open("rb") as journal:
            header = journal.read(20)
    except FileNotFoundError:
        return False
    return header[:8] == _JOURNAL_MAGIC and len(header) == 20 and int.from_bytes(header[16:20], "big") == 0


_JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")  # SQLite's rollback journal header


# A PostgreSQL server refusing a session, by SQLSTATE: the part of SIGNPOST_DATABASE_URL to check.
# The part, not its value: the server's own message quotes the names, and a URL may hold a password.
PG_REFUSALS = {
    "3D000": "the database named in SIGNPOST_DATABASE_URL does not exist",
    "28000": "the role named in SIGNPOST_DATABASE_URL does not exist or may not connect from here",
    "28P01": "the password of the role named in SIGNPOST_DATABASE_URL was refused",
    "42501": "the role named in SIGNPOST_DATABASE_URL lacks a privilege on that database (permission denied)",
    "53300": "the server has no connection free (too many connections): try again, or raise max_connections",
    "57P03": "the server is not accepting connections yet (starting up, shutting down or in recovery)",
}


# A store that is there but cannot be trusted, as the operator is told it (``store_damage``):
# distinct from a store that is missing or misnamed, which is a setting to check.
DAMAGED_FILE = "the database file is damaged (malformed): restore it from a backup"
NOT_A_DATABASE = (
    "the database file is damaged (not a SQLite database): restore it from a backup, "
    "or check SIGNPOST_DATABASE_URL if it names some other file"
)
NOT_A_WHOLE_STORE = (
    "this database holds no whole Signpost store (tables, or their keys, are missing: a restore that did not "
    "finish?): run `signpost db check`"
)


class StoreNotWhole(Exception):
    """The store's tables are there without their keys (``Database.refuse_unkeyed_tables``)."""


# How many of the named tables the current schema holds, and how many of those have their primary key (PostgreSQL).
_PRIMARY_KEYS = text(
    "SELECT count(*), count(c.oid) FROM pg_class t "
    "LEFT JOIN pg_constraint c ON c.conrelid = t.oid AND c.contype = 'p' "
    "WHERE t.relkind IN ('r', 'p') AND t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(:tables)"
)
_SQLITE_DAMAGE = {sqlite3.SQLITE_CORRUPT: DAMAGED_FILE, sqlite3.SQLITE_NOTADB: NOT_A_DATABASE}
# Undefined table; an ON CONFLICT no unique key matches (pg_restore of a dump cut short makes the
# tables, and their keys only after all the data: every upsert then fails, the key binding's first);
# a table already there when a migration makes it (a restore stopped before its migrations' record).
_PG_NOT_WHOLE = frozenset({"42P01", "42P10", "42P07"})


def store_damage(exc: BaseException) -> str | None:
    """The one line for the operator when ``exc`` (or what caused it) says the store itself cannot be
    trusted, else None: a SQLite file SQLite cannot read (``DAMAGED_FILE``, ``NOT_A_DATABASE``), or a
    database without Signpost's tables or their keys (``NOT_A_WHOLE_STORE``). Never the driver's message."""
    seen: BaseException | None = exc
    for _ in range(4):  # the exception, and the few it was raised from
        if seen is None:
            return None
        if isinstance(seen, StoreNotWhole):
            return NOT_A_WHOLE_STORE
        error = seen.orig if isinstance(seen, DBAPIError) else seen
        if isinstance(error, sqlite3.Error):
            damage = _SQLITE_DAMAGE.get(getattr(error, "sqlite_errorcode", 0) & 0xFF)
            if damage is not None:
                return damage
            if str(error).startswith("no such table"):  # SQLite's message names only the table
                return NOT_A_WHOLE_STORE
        if (getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)) in _PG_NOT_WHOLE:
            return NOT_A_WHOLE_STORE
        seen = seen.__cause__
    return None


READ_ONLY_SQLITE = (
    "the store is read-only to this account (its SQLite file, or the folder it is in, cannot be written): every "
    "command records its audit event in the store before it answers, so run signpost as the account that owns the store"
)
READ_ONLY_POSTGRES = (
    "the database is read-only (a standby, or default_transaction_read_only is on): every command records its "
    "audit event in the store before it answers, so point SIGNPOST_DATABASE_URL at the primary"
)


def store_read_only(exc: BaseException) -> str | None:
    """The one line for the operator when ``exc`` (or what caused it) is the store refusing a write
    because it is read-only here — a SQLite file (or its folder) this account cannot write
    (``SQLITE_READONLY``), a PostgreSQL standby or read-only default (SQLSTATE 25006) — else None.
    Every command writes its audit event first, so none can run there; this is no bug to trace."""
    seen: BaseException | None = exc
    for _ in range(4):  # the exception, and the few it was raised from
        if seen is None:
            return None
        error = seen.orig if isinstance(seen, DBAPIError) else seen
        if isinstance(error, sqlite3.Error) and getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY:
            return READ_ONLY_SQLITE
        if (getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)) == "25006":
            return READ_ONLY_POSTGRES
        seen = seen.__cause__
    return None


def busy_ms(seconds: float) -> int:
    """SQLite's ``busy_timeout`` for a wait of ``seconds`` (at least a millisecond)."""
    return max(1, round(seconds * 1000))


def store_busy(exc: BaseException, waited: float = SQLITE_BUSY_SECONDS) -> str | None:
    """The one line for the operator when ``exc`` (or what caused it) is SQLite's one writer held by
    another process for longer than ``busy_timeout`` (``SQLITE_BUSY``, ``SQLITE_LOCKED``), else None:
    a second `signpost` beside a long import is no bug to trace. ``waited``: the seconds Signpost
    waits for the lock (``SIGNPOST_SQLITE_BUSY_SECONDS``), said in the line."""
    seen: BaseException | None = exc
    for _ in range(4):  # the exception, and the few it was raised from
        if seen is None:
            return None
        error = seen.orig if isinstance(seen, DBAPIError) else seen
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF if isinstance(error, sqlite3.Error) else None
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return (
                "the store is busy: another signpost command (an import, a retention run, a backup …) held it for "
                f"longer than Signpost waits ({waited:g} s for the command, as long again to audit its failure); "
                "run this again when that command has finished"
            )
        seen = seen.__cause__
    return None


def sqlite_integrity(path: Path, *, quick: bool = False, limit: int = 10) -> list[str]:
    """What SQLite's own check finds wrong in the database file at ``path``, one line each (empty:
    sound); at most ``limit``. ``PRAGMA integrity_check``, or ``quick_check`` (every page and
    constraint, without matching each index to its table: O(N), not O(N log N)). Read-only: the
    file (a backup, say) is not changed. A file SQLite cannot read at all is one line."""
    pragma = "quick_check" if quick else "integrity_check"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            said = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}({int(limit)})")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [store_damage(exc) or f"SQLite cannot read the database file ({type(exc).__name__})"]
    if said == ["ok"]:
        return []
    # One row may hold several lines, under a heading naming the schema ("*** in database main ***").
    found = [line for row in said for line in row.splitlines() if line.strip() and not line.startswith("***")]
    return [f"the database file is damaged: SQLite's integrity check says {line}" for line in found[:limit]]


def driver_failure(exc: BaseException) -> str | None:
    """The one line for the operator when ``exc`` is the driver failing to open the store, else
    None: a store that is damaged or not whole (``store_damage``); for PostgreSQL the part of the
    URL that the server refused (``PG_REFUSALS``), for SQLite (a file that cannot be opened, say)
    the error's type and where to look. Never the driver's own message, which may quote the URL."""
    damage = store_damage(exc)
    if damage is not None:
        return damage
    if not isinstance(exc, DBAPIError):
        return None
    refusal = PG_REFUSALS.get(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    if refusal is not None:
        return f"cannot open the database: {refusal}"
    if isinstance(exc.orig, sqlite3.Error):
        return f"cannot open the database ({type(exc.orig).__name__}): check SIGNPOST_DATABASE_URL and its folder"
    # SQLAlchemy's asyncpg adapter wraps the driver's exception in one named "Error": name the driver's.
    cause = exc.orig.__cause__ if exc.orig is not None else None
    driver = cause if isinstance(cause, Exception) else exc.orig
    return f"cannot open the database ({type(driver).__name__}): check SIGNPOST_DATABASE_URL"


def is_deadlock(exc: BaseException) -> bool:
    """Whether PostgreSQL rolled this transaction back to end a deadlock (SQLSTATE 40P01): the
    whole transaction may simply be run again."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "40P01"


T = TypeVar("T")

# How many commits this task has asked of the store (``Database.write``): a unit of work that asked
# for one may have changed the store, even if the answer was lost with its connection.
_COMMITS_ASKED: ContextVar[int] = ContextVar("signpost_commits_asked", default=0)


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` is a pooled connection found dead (the server restarted, or ended the
    session: ``pg_terminate_backend``). SQLAlchemy has then invalidated it and every connection the
    pool held from before, so the next one the pool gives is fresh."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def once_more_if_lost(work: Callable[[], Awaitable[T]], **logged: object) -> T:
    """``work()``, run once more when it failed on a connection found dead before it asked for any
    commit: SQLAlchemy's "optimistic" handling of disconnects, instead of a ping before every
    checkout (``pool_pre_ping``, a round trip on the hot path). Everything it did was in
    transactions that never committed, so running it again repeats nothing. A connection lost
    during or after a commit is not retried: whether it committed is unknown. ``logged``: the
    correlation id and such, for the one warning line a retry writes."""
    asked = _COMMITS_ASKED.get()
    try:
        return await work()
    except DBAPIError as exc:
        if not exc.connection_invalidated or _COMMITS_ASKED.get() != asked:
            raise
        log.warning("database_connection_lost", retried=True, error=type(exc.orig).__name__, **logged)
    return await work()


class Database:
    """Owns the engine; hands out read and write sessions."""

    def __init__(self, engine: AsyncEngine, *, busy_seconds: float = SQLITE_BUSY_SECONDS) -> None:
        self.engine = engine
        # How long a SQLite write waits for another process's write lock (``busy_timeout``).
        self.busy_seconds = busy_seconds
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # What every write transaction carries for the store's reports once it commits (the
        # counter of dropped notices, ``store.delivery.drops.count_with``): given by the wiring.
        self.session_info: dict[str, Any] = {}

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 8, busy_seconds: float = SQLITE_BUSY_SECONDS) -> Database:
        """The engine hides SQL parameters in error messages: tracebacks are logged, data is not.

        ``pool_size``: the connections kept open; a server passes its bound on work in flight
        (``SIGNPOST_MAX_IN_FLIGHT``), so that work admitted never waits for, or opens and closes, a
        connection of its own (a new SQLite connection is a thread and six PRAGMAs). PostgreSQL
        keeps at most ``PG_POOL_MAX`` per process: replicas share the server's connection limit.
        ``busy_seconds``: how long a SQLite write waits for another process's (``SIGNPOST_SQLITE_BUSY_SECONDS``).
        """
        if url.startswith("sqlite"):
            db_file = sqlite_path(url)
            if db_file is not None and is_sqlite_or_empty(db_file):
                make_private(db_file, create=True)  # created 0600 before SQLite first opens it
            # LIFO: a quiet server keeps reusing its most recent connection, whose page cache is warm.
            # An in-memory database has one connection (SQLAlchemy's own pool for it takes no size).
            pooled = {"pool_size": pool_size, "max_overflow": SQLITE_MAX_OVERFLOW, "pool_use_lifo": True}
            engine = create_async_engine(url, hide_parameters=True, **(pooled if db_file is not None else {}))
            _configure_sqlite(engine, db_file, sqlite_cache_kib(pool_size), busy_seconds=busy_seconds)
        else:
            engine = create_async_engine(
                url,
                pool_size=min(pool_size, PG_POOL_MAX),
                max_overflow=8,
                pool_use_lifo=True,
                pool_pre_ping=False,
                hide_parameters=True,
            )
        return cls(engine, busy_seconds=busy_seconds)

    @classmethod
    def read_only(cls, url: str | URL) -> Database:
        """The store at ``url`` for reading only (a check of a store, or of a backup, changes nothing):
        a SQLite file is opened read-only, its mode and journal left as they are (a ``URL`` names any
        path, whatever characters it holds); a PostgreSQL session's transactions are read-only. Not
        migrated."""
        url = make_url(url)
        if url.get_backend_name() != "sqlite":
            read_only = {"server_settings": {"default_transaction_read_only": "on"}}
            return cls(create_async_engine(url, hide_parameters=True, connect_args=read_only))
        db_file = sqlite_path(url)
        if db_file is not None:  # as a URI, so that SQLite opens it read-only (the path quoted for it)
            uri = f"file:{quote(str(db_file.resolve()))}"
            url = URL.create(url.drivername, database=uri, query={"mode": "ro", "uri": "true"})
        engine = create_async_engine(url, hide_parameters=True)
        _configure_sqlite(engine, None, SQLITE_CACHE_MIN_KIB, read_only=True)
        return cls(engine)

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, pool_size: int = 8, busy_seconds: float = SQLITE_BUSY_SECONDS
    ) -> Database:
        db = cls.connect(url, pool_size=pool_size, busy_seconds=busy_seconds)
        if migrate:
            try:
                await db.migrate()
            except BaseException:  # a store that cannot be opened: its engine is let go, not left
                await db.close()
                raise
        if db.dialect == "postgresql":
            from store.roles import warn_if_audit_rewritable  # roles needs the tables; db must not

            try:
                await db.refuse_unkeyed_tables()
            except BaseException:
                await db.close()
                raise
            await warn_if_audit_rewritable(db)
        return db

    async def refuse_unkeyed_tables(self) -> None:
        """``StoreNotWhole`` when a PostgreSQL store's tables are there without their primary keys: a
        pg_restore cut short (of a dump cut short, or killed itself) makes every table and restores
        rows into them, but their keys, indexes, foreign keys and the audit's triggers only after
        all the data. Such a store must not be served: uniqueness and the audit's append-only rule
        are not enforced, and the first upsert fails. One query (``schema_gaps`` says what is missing)."""
        from store.tables import Base  # the tables need the store's types, not the reverse

        keyed = [t.name for t in Base.metadata.tables.values() if t.primary_key.columns]
        async with self.engine.connect() as conn:
            tables, keys = (await conn.execute(_PRIMARY_KEYS, {"tables": keyed})).one()
        if keys < tables:  # a database never migrated has neither: `schema_behind` says so
            raise StoreNotWhole(f"{tables - keys} of {tables} tables have no primary key")

    async def migrate(self) -> None:
        """Apply every Alembic revision (all heads: each feature has its own branch). A store
        already at ``SHIPPED_HEADS`` is left alone without loading Alembic and the scripts."""
        if await self._at_shipped_heads():
            return
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            await conn.run_sync(_upgrade)
            await conn.commit()

    async def _at_shipped_heads(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                rows = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                return tuple(sorted(row[0] for row in rows)) == SHIPPED_HEADS
        except DBAPIError:  # no version table yet (a new store): Alembic makes it
            return False

    async def ping(self) -> None:
        """One round trip to the database (readiness); raises if it cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on any error."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            async with AsyncSession(bind=conn, expire_on_commit=False, info=dict(self.session_info)) as session:
                try:
                    yield session
                    _COMMITS_ASKED.set(_COMMITS_ASKED.get() + 1)  # from here, it may have committed
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise

    async def close(self) -> None:
        await self.engine.dispose()


# The revisions this Signpost needs the database at: ``shipped_heads()`` read from the scripts,
# written out so that opening a store already there costs one SELECT, not Alembic and its scripts
# (~0.35 s of every CLI command's start). A test holds the two equal: a new migration adds its id.
SHIPPED_HEADS = (
    "0002_stepup",
    "0003_deliveries",
    "0006_lifecycle",
    "0008_name_counts",
    "0020_notice_reached",
    "0021_notice_account",
    "0022_notice_child",
    "0023_notice_dropped_index",
    "0024_audit_candidates",
    "0025_registration_expiry",
    "0026_claim_drop_wanted",
    "0030_account_stepped_up",
    "0031_stamped_ahead_indexes",
)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "heads")


def _applied(connection: Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


@dataclass(frozen=True, slots=True)
class Revision:
    """One migration: its id, what it follows, and the first paragraph of its description."""

    id: str
    follows: tuple[str, ...]
    title: str


def revisions() -> list[Revision]:
    """Every migration Signpost ships, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    found = []
    for rev in script.walk_revisions():
        down = rev.down_revision
        follows = () if down is None else (down,) if isinstance(down, str) else tuple(down)
        title = " ".join((rev.doc or "").strip().split("\n\n")[0].split())  # the whole first paragraph
        found.append(Revision(rev.revision, follows, title))
    return list(reversed(found))


def shipped_heads() -> tuple[str, ...]:
    """The revisions this Signpost needs the database at, read from the scripts."""
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


async def applied_heads(db: Database) -> tuple[str, ...]:
    """The revisions the database is at (empty: never migrated)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_applied)


async def schema_behind(db: Database) -> str | None:
    """One line saying how the database is behind this Signpost, or None when it is up to date."""
    applied, needed = await applied_heads(db), shipped_heads()
    if applied == needed:
        return None
    at = ", ".join(applied) or "no revision (empty)"
    return f"the database is at {at}; this Signpost needs {', '.join(needed)}: run `signpost db upgrade`"


@dataclass(frozen=True, slots=True)
class SchemaGaps:
    """What a store lacks of the schema this Signpost's models define (held equal to its
    migrations' heads by tests/store/test_migrations.py), by kind: names of the missing tables, of
    the tables without their primary key, of the missing indexes."""

    expected_tables: int
    missing: dict[str, list[str]]

    @property
    def whole(self) -> bool:
        return not any(self.missing.values())

    @property
    def begun(self) -> bool:
        """Whether any of Signpost's tables is there (a database never migrated has none)."""
        return len(self.missing["missing tables"]) < self.expected_tables

    def lines(self) -> list[str]:
        """One line for each kind of gap, for the operator."""
        return [f"{kind} ({len(names)}): {_some(names)}" for kind, names in self.missing.items() if names]


async def schema_gaps(db: Database) -> SchemaGaps:
    """What the store lacks of this Signpost's schema (reflected: a few queries, not one a table).
    A PostgreSQL restore cut short has every table, but none of their keys or indexes (pg_restore
    makes them after all the data) and only some of the data."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_schema_gaps)


def _schema_gaps(connection: Connection) -> SchemaGaps:
    from sqlalchemy import inspect

    from store.tables import Base  # the tables need the store's types, not the reverse

    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    there = [table for name, table in sorted(Base.metadata.tables.items()) if name in present]
    names = [table.name for table in there]
    keys = inspector.get_multi_pk_constraint(filter_names=names) if names else {}
    indexes = inspector.get_multi_indexes(filter_names=names) if names else {}
    missing = {
        "missing tables": sorted(set(Base.metadata.tables) - present),
        "tables without their primary key": [
            t.name for t in there if t.primary_key.columns and not _keyed(keys, t.name)
        ],
        "missing indexes": sorted(
            str(index.name)
            for t in there
            for index in t.indexes
            if index.name not in {found["name"] for found in _of(indexes, t.name)}
        ),
    }
    return SchemaGaps(len(Base.metadata.tables), missing)


def _of(reflected: Mapping[tuple[str | None, str], Any], table: str) -> Any:
    """What reflection found for ``table`` (keyed by schema and name; the default schema is None)."""
    return reflected.get((None, table)) or []


def _keyed(keys: Mapping[tuple[str | None, str], Any], table: str) -> bool:
    found = _of(keys, table)
    return bool(found and found.get("constrained_columns"))


def _some(names: list[str], shown: int = 6) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


_AFTER_COMMIT = "store.db.after_commit"
"""``session.info`` key: what to call when the session's transaction commits, in order, each with the
savepoint it was asked for in (None: the transaction itself)."""


def after_commit(session: AsyncSession, then: Callable[[], None]) -> None:
    """Call ``then`` once the caller's transaction commits (never, if it rolls back): what it
    reports is then true of the database. Asked for inside a savepoint (``begin_nested``), it is
    forgotten if that savepoint (or one around it) rolls back, and waits, if it is released, for the
    transaction to commit: a savepoint released is not yet committed.

    Two listeners a session, however many callers ask: the audit writer's batch asks once for every
    lead notice in it, and adding a listener costs more than the call.
    """
    sync = session.sync_session
    if not sync.in_transaction():
        sync.begin()  # asked before any statement: begun now (no I/O), so its end is seen (``ended``)
    asked = (sync.get_nested_transaction(), then)
    waiting: list[tuple[SessionTransaction | None, Callable[[], None]]] | None = session.info.get(_AFTER_COMMIT)
    if waiting is not None:
        waiting.append(asked)
        return
    waiting = session.info[_AFTER_COMMIT] = [asked]

    def committed(_session: Any) -> None:
        if sync.in_nested_transaction():  # a savepoint released: the transaction may yet roll back
            return
        calls = [call for _, call in waiting]
        waiting.clear()
        for call in calls:
            try:
                call()
            except Exception as exc:  # committed already: a report that fails must not undo that for the caller
                log.error("after_commit_failed", error=type(exc).__name__)  # its text could echo a value

    def rolled_back(_session: Any, transaction: SessionTransaction) -> None:
        undone: SessionTransaction | None = transaction  # what the rollback undid: a savepoint, or all
        while undone is not None and not undone.nested:
            undone = undone.parent
        waiting[:] = [(where, call) for where, call in waiting if undone is not None and not _within(where, undone)]

    def ended(_session: Any, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # the transaction itself: committed (called above) or not, over
            waiting.clear()  # a session closed or reset unfinished fires no rollback event

    event.listen(sync, "after_commit", committed)
    event.listen(sync, "after_soft_rollback", rolled_back)
    event.listen(sync, "after_transaction_end", ended)


def _within(transaction: SessionTransaction | None, savepoint: SessionTransaction) -> bool:
    """Whether ``transaction`` is ``savepoint`` or one begun inside it."""
    while transaction is not None:
        if transaction is savepoint:
            return True
        transaction = transaction.parent
    return False


DIALECT_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
"""Each dialect's INSERT, which knows ON CONFLICT, by dialect name (statements built once per dialect)."""


def dialect_insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both SQLite and PostgreSQL support it)."""
    return DIALECT_INSERTS[session.get_bind().dialect.name]
