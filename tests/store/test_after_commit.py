"""``store.db.after_commit``: what a caller reports once its transaction is durable (the notices
it queued, counted in /metrics), called after the commit, in order, and never for a rollback."""

from __future__ import annotations

import pytest
import structlog.testing
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


async def test_a_call_that_fails_is_logged_and_the_others_still_run(db: Database) -> None:
    """The transaction has committed: a call that fails cannot undo it, and must not turn the
    commit into an error for the caller or keep the calls after it from running."""
    called: list[str] = []

    def fails() -> None:
        raise ValueError("a counter that broke")

    with structlog.testing.capture_logs() as lines:
        async with db.write() as session:
            after_commit(session, fails)
            after_commit(session, lambda: called.append("second"))
            await session.execute(text("SELECT 1"))
    assert called == ["second"]
    assert [line["event"] for line in lines] == ["after_commit_failed"]


async def test_nothing_asked_in_a_transaction_closed_unfinished_is_called_at_a_later_commit(db: Database) -> None:
    """A session closed (or reset) with its transaction unfinished has rolled it back, though no
    rollback event says so: what it asked for is forgotten, not called at the session's next commit."""
    called: list[str] = []
    async with db.write() as session:
        after_commit(session, lambda: called.append("asked before any statement, then closed"))
        await session.close()
        await session.execute(text("SELECT 1"))
        after_commit(session, lambda: called.append("asked after a statement, then reset"))
        await session.reset()
        after_commit(session, lambda: called.append("asked in the next transaction"))
        await session.execute(text("SELECT 1"))
    assert called == ["asked in the next transaction"]
