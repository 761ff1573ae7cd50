"""When each periodic task is next due, shared by every replica through the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from store.db import dialect_insert
from store.tables.delivery import ScheduledTask


async def claim_run(session: AsyncSession, name: str, worker: str, now: datetime, interval: timedelta) -> bool:
    """True when this worker takes the run due now; every other replica then finds it not due.

    One statement: insert the task's first run, or move a due run ``interval`` ahead. On
    PostgreSQL a concurrent claimer waits for the row lock and then sees the run is no longer due.
    """
    stmt = dialect_insert(session)(ScheduledTask).values(name=name, next_run_at=now + interval, claimed_by=worker)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ScheduledTask.name],
        set_={"next_run_at": stmt.excluded.next_run_at, "claimed_by": stmt.excluded.claimed_by},
        where=ScheduledTask.next_run_at <= now,
    ).returning(ScheduledTask.name)
    return (await session.execute(stmt)).first() is not None
