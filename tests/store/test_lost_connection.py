"""``once_more_if_lost``: SQLAlchemy's optimistic disconnect handling, as every command and audit
batch uses it. A unit of work that met a connection the server ended runs once more on a fresh
one, unless it had asked for a commit (then whether it committed is unknown)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from store.db import Database, lost_connection, once_more_if_lost
from store.delivery import deliveries
from store.tables.delivery import Delivery
from tests.databases import terminate_backends

pytestmark = pytest.mark.postgres_only


async def warm(db: Database) -> None:
    async with db.read() as session:
        await session.execute(text("SELECT 1"))


async def test_a_read_on_a_dead_connection_runs_once_more_on_a_fresh_one(db: Database, db_url: str) -> None:
    await warm(db)
    assert await terminate_backends(db_url) >= 1
    tries = 0

    async def read() -> int:
        nonlocal tries
        tries += 1
        async with db.read() as session:
            return int((await session.execute(text("SELECT 7"))).scalar_one())

    assert await once_more_if_lost(read) == 7
    assert tries == 2


async def test_work_that_asked_for_a_commit_is_not_run_again(db: Database, db_url: str) -> None:
    """Its first transaction committed; the connection then lost: running it again would repeat that."""
    await warm(db)
    tries = 0

    async def claim_then_read() -> None:
        nonlocal tries
        tries += 1
        async with db.write() as session:
            await deliveries.claim(session, f"test:lost:{tries}", datetime.now(UTC))
        await terminate_backends(db_url)
        async with db.read() as session:
            await session.execute(text("SELECT 1"))

    with pytest.raises(DBAPIError) as raised:
        await once_more_if_lost(claim_then_read)
    assert lost_connection(raised.value) and tries == 1
    async with db.read() as session:
        assert (await session.execute(select(func.count()).select_from(Delivery))).scalar_one() == 1


async def test_a_connection_lost_twice_is_not_tried_a_third_time(db: Database, db_url: str) -> None:
    tries = 0

    async def read() -> None:
        nonlocal tries
        tries += 1
        async with db.read() as session:
            await session.execute(text("SELECT 1"))
        await terminate_backends(db_url)
        async with db.read() as session:
            await session.execute(text("SELECT 1"))

    with pytest.raises(DBAPIError) as raised:
        await once_more_if_lost(read)
    assert lost_connection(raised.value) and tries == 2
