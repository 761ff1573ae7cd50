"""``store.db.after_commit``: what a caller reports once its transaction is durable (the notices
it queued, counted in /metrics), called after the commit, in order, and never for a rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from store.db import Database, after_commit


async def test_each_call_runs_once_after_the_commit_in_order(db: Database) -> None:
    called: list[str] = []
    async with db.write() as session:
        for name in ("first", "second", "third"):
            after_commit(session, lambda name=name: called.append(name))  # type: ignore[misc]
        await session.execute(text("SELECT 1"))
        assert called == []
    assert called == ["first", "second", "third"]


async def test_one_listener_a_session_however_many_callers(db: Database) -> None:
    """The audit writer's batch asks once for every lead notice in it: one listener, not one each."""
    async with db.write() as session:
        for _ in range(5):
            after_commit(session, lambda: None)
        assert len(session.sync_session.dispatch.after_commit) == 1


async def test_nothing_is_called_for_a_rollback(db: Database) -> None:
    called: list[str] = []
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            after_commit(session, lambda: called.append("committed"))
            await session.execute(text("SELECT 1"))
            raise RuntimeError("the command failed")
    assert called == []


async def test_nothing_asked_inside_a_savepoint_rolled_back_is_called(db: Database) -> None:
    """Asked for inside a savepoint (or one within it) that rolls back: forgotten, though the
    transaction commits; what was asked for outside it is called."""
    called: list[str] = []
    async with db.write() as session:
        after_commit(session, lambda: called.append("before"))
        savepoint = await session.begin_nested()
        after_commit(session, lambda: called.append("in the savepoint"))
        async with session.begin_nested():
            after_commit(session, lambda: called.append("within it, released"))
        await savepoint.rollback()
        after_commit(session, lambda: called.append("after"))
    assert called == ["before", "after"]


async def test_a_savepoint_released_waits_for_the_commit_and_a_rollback_forgets_it(db: Database) -> None:
    called: list[str] = []
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            async with session.begin_nested():
                after_commit(session, lambda: called.append("released, rolled back"))
            assert called == []
            raise RuntimeError("the command failed after the savepoint")
    async with db.write() as session:
        async with session.begin_nested():
            after_commit(session, lambda: called.append("released, committed"))
        assert called == []
    assert called == ["released, committed"]
