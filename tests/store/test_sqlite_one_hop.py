"""SQLite's one-hop cursor (issue 15): each statement runs, is fetched and closed in one trip to
aiosqlite's thread. It replaces SQLAlchemy's stock cursor on every connection of our engine, so it
must behave exactly like it: rows, row counts, many-row writes, and errors translated into
SQLAlchemy's own exceptions (which the store's callers catch), with the connection usable after."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from store.db import Database, _OneHopConnection

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


async def test_a_one_read_transaction_is_three_trips_to_the_drivers_thread(db: Database) -> None:
    """BEGIN, the read, the rollback: the pool's reset after the session's own rollback finds no
    transaction open and sends nothing (it was a fourth trip, a quarter of the transaction's)."""
    trips: list[str] = []
    async with db.read() as session:
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
    assert driver is not None
    run = driver._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", "?"))
        return await run(fn, *args, **kwargs)

    driver._execute = counted  # this pooled connection only (the pool hands the same one back)
    try:
        async with db.read() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        async with db.write() as session:
            await session.execute(text("SELECT 1"))
    finally:
        driver._execute = run
    assert trips == ["run_sqlite", "run_sqlite", "rollback", "run_sqlite", "run_sqlite", "commit"], trips


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
