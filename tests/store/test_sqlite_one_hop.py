"""SQLite's one-hop cursor (issue 15): each statement runs, is fetched and closed in one trip to
aiosqlite's thread. It replaces SQLAlchemy's stock cursor on every connection of our engine, so it
must behave exactly like it: rows, row counts, many-row writes, and errors translated into
SQLAlchemy's own exceptions (which the store's callers catch), with the connection usable after."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, text
from sqlalchemy.exc import IntegrityError, OperationalError

from store.db import Database, _OneHopConnection
from store.register.children import copy_rows

pytestmark = pytest.mark.sqlite_only


async def test_every_connection_of_the_engine_uses_the_one_hop_cursor(db: Database) -> None:
    async with db.read() as session:
        raw = await (await session.connection()).get_raw_connection()
        assert type(raw.driver_connection).__name__ == "Connection"  # aiosqlite's
        assert isinstance(raw.dbapi_connection, _OneHopConnection)


async def test_rows_counts_and_many_row_writes_are_as_the_stock_cursor_gives(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE hop (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        inserted = await conn.execute(text("INSERT INTO hop (v) VALUES (:v)"), [{"v": f"v{i}"} for i in range(5)])
        assert inserted.rowcount == 5
        one = await conn.execute(text("INSERT INTO hop (v) VALUES ('last')"))
        assert one.lastrowid == 6
        updated = await conn.execute(text("UPDATE hop SET v = 'x' WHERE k <= 3"))
        assert updated.rowcount == 3
        rows = (await conn.execute(text("SELECT k, v FROM hop ORDER BY k"))).all()
        assert [tuple(r) for r in rows] == [(1, "x"), (2, "x"), (3, "x"), (4, "v3"), (5, "v4"), (6, "last")]
        assert (await conn.execute(text("SELECT v FROM hop WHERE k = 99"))).first() is None


async def test_driver_errors_surface_as_sqlalchemys_and_the_connection_goes_on(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE hop2 (k INTEGER PRIMARY KEY)")
        await conn.exec_driver_sql("INSERT INTO hop2 (k) VALUES (1)")
    async with db.engine.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.exec_driver_sql("INSERT INTO hop2 (k) VALUES (1)")
        await conn.rollback()
        with pytest.raises(OperationalError):
            await conn.exec_driver_sql("SELECT nothing FROM nowhere")
        await conn.rollback()
        assert (await conn.exec_driver_sql("SELECT count(*) FROM hop2")).scalar_one() == 1


async def _counting(db: Database, trips: list[str]) -> tuple[Any, Any]:
    """The pooled connection's driver with every trip to its thread named in ``trips`` (the pool
    hands the same connection back: one at a time here)."""
    async with db.read() as session:
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
    assert driver is not None
    run = driver._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", "?"))
        return await run(fn, *args, **kwargs)

    driver._execute = counted
    return driver, run


async def test_a_one_read_transaction_is_two_trips_to_the_drivers_thread(db: Database) -> None:
    """The BEGIN goes with the transaction's first statement, then the rollback: the pool's reset
    after the session's own rollback finds no transaction open and sends nothing (it was a fourth
    trip, and the BEGIN on its own a third)."""
    trips: list[str] = []
    driver, run = await _counting(db, trips)
    try:
        async with db.read() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        async with db.write() as session:
            await session.execute(text("SELECT 1"))
        async with db.read() as session:
            await session.connection()  # begun, nothing sent: nothing to end either
    finally:
        driver._execute = run
    assert trips == ["run_sqlite", "rollback", "run_sqlite", "commit"], trips


async def test_a_read_transaction_sees_one_snapshot_though_its_begin_waits_for_its_first_read(
    db: Database,
) -> None:
    """The BEGIN is sent with the first read, not on its own, and still holds: a row committed by
    another connection between two reads of the same transaction is not seen by the second."""
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE hop4 (k INTEGER PRIMARY KEY)")
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM hop4"))).scalar_one() == 0
        async with db.write() as other:
            await other.execute(text("INSERT INTO hop4 (k) VALUES (1)"))
        assert (await session.execute(text("SELECT count(*) FROM hop4"))).scalar_one() == 0
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM hop4"))).scalar_one() == 1


async def test_a_write_transaction_holds_the_write_lock_from_its_first_statement(db: Database) -> None:
    """BEGIN IMMEDIATE goes with the first statement: a second writer waits for the first to
    commit, then sees its row (the two never interleave)."""
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE hop5 (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        await conn.exec_driver_sql("INSERT INTO hop5 (k, n) VALUES (1, 0)")
    order: list[str] = []

    async def bump(name: str, pause: float) -> None:
        async with db.write() as session:
            n = (await session.execute(text("SELECT n FROM hop5 WHERE k = 1"))).scalar_one()
            order.append(f"{name} read {n}")
            await asyncio.sleep(pause)
            await session.execute(text("UPDATE hop5 SET n = :n WHERE k = 1"), {"n": n + 1})

    await asyncio.gather(bump("first", 0.2), bump("second", 0))
    async with db.read() as session:
        assert (await session.execute(text("SELECT n FROM hop5"))).scalar_one() == 2
    assert order in (["first read 0", "second read 1"], ["second read 0", "first read 1"]), order


async def test_a_transaction_ended_is_not_ended_twice_and_an_open_one_is(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("CREATE TABLE hop3 (k INTEGER PRIMARY KEY)")
        await conn.commit()
    async with db.write() as session:
        await session.execute(text("INSERT INTO hop3 (k) VALUES (1)"))
    async with db.engine.connect() as conn:
        await conn.begin()
        await conn.exec_driver_sql("INSERT INTO hop3 (k) VALUES (2)")
        await conn.rollback()  # an open transaction: rolled back on the driver
        assert (await conn.exec_driver_sql("SELECT count(*) FROM hop3")).scalar_one() == 1


async def test_rows_copied_straight_to_the_driver_are_in_the_transaction(db: Database) -> None:
    """``copy_rows`` hands rows to aiosqlite itself, past the cursor: as the first statement of a
    transaction it still runs inside it (the deferred BEGIN is sent first), so a transaction that
    fails after it leaves none of its rows."""
    hop6 = Table("hop6", MetaData(), Column("k", Integer, primary_key=True), Column("v", Text, nullable=False))
    async with db.engine.begin() as conn:
        await conn.run_sync(hop6.metadata.create_all)
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            await copy_rows(session, hop6, ("k", "v"), [(1, "a"), (2, "b")])
            raise RuntimeError("the rest of the load failed")
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM hop6"))).scalar_one() == 0
    async with db.write() as session:
        await copy_rows(session, hop6, ("k", "v"), [(1, "a"), (2, "b")])
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM hop6"))).scalar_one() == 2
