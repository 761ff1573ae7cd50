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
