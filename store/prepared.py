"""Reads on the hot path, compiled once and run straight on the driver (issue 15).

Every chat command reads the same few rows (the actor, the switch-off date, the step-up
state, the idempotency key, the child and who is told of it). Through ``AsyncSession.execute``
each such statement spends 0.15-0.3 ms of CPU in SQLAlchemy's layers (the session's
bookkeeping, the execution context, the cache key, the result object) before and after the
driver's own ~0.05 ms: about three quarters of a keyed enquiry's CPU.

A ``Prepared`` statement is a Core SELECT compiled once per dialect, with its parameter order,
its literal values and its type processors worked out then; running it binds the parameters,
hands the SQL to the driver in the session's own transaction (one trip to aiosqlite's thread,
or asyncpg's prepared-statement cache), and converts the columns with the same processors
SQLAlchemy would. Engine listeners still see every statement (``before_cursor_execute``), and a
driver error is raised as SQLAlchemy's own ``DBAPIError`` subclass, with parameters hidden.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Insert, Select

from store.db import begin_pending, run_sqlite_many, tell_listeners

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the bound parameters, in the order the SQL takes them
    defaults: Mapping[str, Any]  # values written into the statement itself (literals)
    required: frozenset[str]  # parameters with no value of their own: each call must give them
    binds: tuple[Processor, ...]  # by position, as ``names``
    results: tuple[Processor, ...]  # by column
    row: Callable[..., tuple[Any, ...]]  # a named tuple of the columns


class Prepared:
    """A Core statement that returns rows (a SELECT, or an INSERT … RETURNING), with bound
    parameters by name and no expanding IN, for the hot path.

    ``await prepared.all(session, {"ref": 1})`` gives the rows as named tuples, as
    ``(await session.execute(statement, params)).all()`` would.
    """

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Select[*tuple[Any, ...]] | Insert) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return found

    async def all(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> list[Any]:
        ahead = _taken(session, self, params)
        if ahead is not None:
            return ahead
        [rows] = await all_of(session, [(self, params)])
        return rows

    async def first(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> Any | None:
        rows = await self.all(session, params)
        return rows[0] if rows else None


async def all_of(session: AsyncSession, reads: Sequence[tuple[Prepared, Mapping[str, Any] | None]]) -> list[list[Any]]:
    """Each statement's rows (as ``Prepared.all``), in the session's transaction, in order: on SQLite
    all of them in one trip to aiosqlite's thread; on PostgreSQL one after the other."""
    if session.autoflush and not session.sync_session._is_clean():
        await session.flush()  # as SQLAlchemy would before a statement: pending rows are read too
    sync, adapted = await _on(session)
    dialect = sync.dialect
    plans = [(prepared.compiled(dialect), params) for prepared, params in reads]
    statements = [(plan.sql, _bound(plan, params)) for plan, params in plans]
    for sql, bound in statements:
        tell_listeners(sync, sql, bound)
    try:
        if dialect.name == "sqlite":
            async with adapted._execute_mutex:
                driver = adapted._connection
                found = await driver._execute(run_sqlite_many, driver._conn, statements, begin_pending(driver))
        else:
            found = []
            async with adapted._execute_mutex:  # as SQLAlchemy's asyncpg cursor does
                if adapted._transaction is None:
                    await adapted._start_transaction()
                try:
                    asof = getattr(dialect, "_invalidate_schema_cache_asof", 0)
                    for sql, bound in statements:
                        ready, _ = await adapted._prepare(sql, asof)
                        found.append(await ready.fetch(*bound))
                except Exception as error:  # asyncpg's own: as the adapter's DBAPI error
                    adapted._handle_exception(error)
    except dialect.loaded_dbapi.Error as error:
        # Through SQLAlchemy's own handling, as a statement it ran: a connection the server ended
        # (a restart, pg_terminate_backend) is then invalidated with every other the pool held
        # from before, and the error says so (``connection_invalidated``). Raised as it was, the
        # dead connection went back to the pool and failed the next command too.
        sync._handle_dbapi_exception(error, "; ".join(sql for sql, _ in statements), None, None, None)
    return [_rows(plan, rows) for (plan, _), rows in zip(plans, found, strict=True)]


def _bound(plan: _Compiled, params: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """The parameters in the statement's order; a parameter the statement needs and was not given
    is refused by name, as ``session.execute`` refuses it (it was bound as NULL: a read whose day
    was forgotten read every planned end as past)."""
    if missing := plan.required.difference(params or ()):
        raise TypeError(f"a value is required for the parameter(s) {', '.join(sorted(missing))}")
    values = plan.defaults if not params else {**plan.defaults, **params}
    return tuple(
        values[name] if convert is None else convert(values[name])
        for name, convert in zip(plan.names, plan.binds, strict=True)
    )


def _rows(plan: _Compiled, rows: Sequence[Any]) -> list[Any]:
    make, results = plan.row, plan.results
    return [
        make(*(value if convert is None else convert(value) for value, convert in zip(row, results, strict=True)))
        for row in rows
    ]


_Key = tuple["Prepared", tuple[tuple[str, Any], ...]]
_AHEAD = "store.prepared.ahead"
"""``session.info`` key: rows read ahead in this transaction (``read_ahead``), not yet taken."""


def read_ahead(session: AsyncSession, prepared: Prepared, params: Mapping[str, Any] | None, rows: list[Any]) -> None:
    """Keep ``rows``, read by ``all_of`` with another statement in one round trip, for the
    ``prepared.all(session, params)`` that the command makes later in the same transaction: it
    takes them instead of reading again (once; any other transaction reads afresh)."""
    transaction = session.sync_session.get_transaction()
    kept: tuple[Any, dict[_Key, list[Any]]] | None = session.info.get(_AHEAD)
    if kept is None or kept[0] is not transaction:
        kept = session.info[_AHEAD] = (transaction, {})
    kept[1][(prepared, _params_key(params))] = rows


def _taken(session: AsyncSession, prepared: Prepared, params: Mapping[str, Any] | None) -> list[Any] | None:
    kept: tuple[Any, dict[_Key, list[Any]]] | None = session.info.get(_AHEAD)
    if kept is None or not kept[1] or kept[0] is not session.sync_session.get_transaction():
        return None
    return kept[1].pop((prepared, _params_key(params)), None)


def _params_key(params: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items())) if params else ()


_ON = "store.prepared.connection"
"""``session.info`` key: the transaction the session is in, its connection and the driver's."""


async def _on(session: AsyncSession) -> tuple[Connection, Any]:
    """The session's connection for its current transaction (begun if need be), and the adapted
    driver connection under it: looked up once a transaction, not twice a statement (each lookup
    is a greenlet switch into SQLAlchemy)."""
    transaction = session.sync_session.get_transaction()
    known = session.info.get(_ON)
    if transaction is not None and known is not None and known[0] is transaction:
        return known[1], known[2]
    sync = (await session.connection()).sync_connection
    assert sync is not None
    adapted = sync.connection.dbapi_connection
    session.info[_ON] = (session.sync_session.get_transaction(), sync, adapted)
    return sync, adapted


def _compile(statement: Select[*tuple[Any, ...]] | Insert, dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)
    names: Sequence[str] = compiled.positiontup or ()
    binds = compiled._bind_processors
    columns = compiled._result_columns
    results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
    row = namedtuple("Row", [column.keyname for column in columns], rename=True)  # type: ignore[misc]
    return _Compiled(
        sql=compiled.string,
        names=tuple(names),
        defaults=compiled.construct_params(_check=False),
        required=frozenset(name for name in names if compiled.binds[name].required),
        binds=tuple(binds.get(name) for name in names),
        results=results,
        row=row,
    )
