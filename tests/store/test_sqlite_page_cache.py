"""SQLite's page cache per connection: the serving pool shares one budget, whatever the register's
size, and a bulk import's large cache does not stay on the connection that serves afterwards
(issue 15: the serving process grew with the register, 691 MB at 1 M children)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import text

from bot.app import Signpost
from store.db import (
    SQLITE_CACHE_BUDGET_KIB,
    SQLITE_CACHE_MIN_KIB,
    SQLITE_MAX_OVERFLOW,
    Database,
    sqlite_cache_kib,
)
from store.register.feeds import Feed, FeedRejected, import_feeds
from tests.factories import CHILDREN_HEADER, load_standard

pytestmark = pytest.mark.sqlite_only


async def cache_sizes(db: Database, connections: int) -> list[int]:
    """``PRAGMA cache_size`` on ``connections`` pooled connections held at once (so every one of
    them, not just the most recent, is asked)."""
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(db.read()) for _ in range(connections)]
        results = await asyncio.gather(*(session.execute(text("PRAGMA cache_size")) for session in sessions))
        return [int(result.scalar_one()) for result in results]


@pytest.mark.parametrize("pool_size", [8, 64])
async def test_the_pool_shares_one_page_cache_budget(db_url: str, pool_size: int) -> None:
    """Every connection, overflow included, gets the same share; together they stay within the
    budget (or the floor each, when the pool is very large)."""
    db = Database.connect(db_url, pool_size=pool_size)
    try:
        connections = pool_size + SQLITE_MAX_OVERFLOW
        sizes = await cache_sizes(db, connections)
    finally:
        await db.close()
    share = sqlite_cache_kib(pool_size)
    assert sizes == [-share] * connections  # negative: KiB, not pages
    assert share * connections <= max(SQLITE_CACHE_BUDGET_KIB, SQLITE_CACHE_MIN_KIB * connections)
    assert share < 65536  # the old fixed 64 MB a connection


async def test_an_import_gives_its_connection_back_with_the_serving_cache(signpost: Signpost) -> None:
    """The import raises its own connection's cache for the load; the connection that then serves
    enquiries (the same one: the pool is last in, first out) has the serving size again."""
    db = signpost.ctx.db
    serving = -sqlite_cache_kib(db.engine.pool.size())  # type: ignore[attr-defined]
    await load_standard(signpost)
    assert await cache_sizes(db, 1) == [serving]
    assert set(await cache_sizes(db, db.engine.pool.size())) == {serving}  # type: ignore[attr-defined]


async def test_a_rejected_import_also_gives_back_the_serving_cache(signpost: Signpost) -> None:
    """All-or-nothing: a feed with a bad row is rolled back, and its connection still serves with
    the serving cache."""
    db = signpost.ctx.db
    serving = -sqlite_cache_kib(db.engine.pool.size())  # type: ignore[attr-defined]
    bad = f"{CHILDREN_HEADER}\nnot-a-reference,Amy,Jones,,2014-04-03,F,M1 2AB,Southvale,false\n"
    with pytest.raises(FeedRejected):
        await import_feeds(db, signpost.ctx.keys, [Feed("children.csv", bad)], signpost.ctx.clock.now())
    assert await cache_sizes(db, 1) == [serving]
