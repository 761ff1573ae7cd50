"""When each periodic task is next due, shared by every replica through the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from store.db import dialect_insert
from store.skew import ahead_after, stamped_ahead
from store.tables.delivery import ScheduledTask

# A next run further ahead than one interval and ``CLOCK_SKEW`` was set by a clock ahead of this one
# (a host whose clock was set years on, then put right): it is due now, or the task would wait for
# that clock's date (retention for years). Replicas whose clocks differ by more than ``CLOCK_SKEW``
# would each take every run (each task's work is claimed in the database, so nothing is done twice
# by it, but that deployment's clocks need putting right).
__all__ = ["ahead_after", "claim_run", "stamped_ahead"]  # the rule itself: store.skew


async def claim_run(session: AsyncSession, name: str, worker: str, now: datetime, interval: timedelta) -> bool:
    """True when this worker takes the run due now; every other replica then finds it not due.

    One statement: insert the task's first run, or move a due run ``interval`` ahead. On
    PostgreSQL a concurrent claimer waits for the row lock and then sees the run is no longer due.
    A run a clock ahead of this one set (``stamped_ahead``) is due now.
    """
    stmt = dialect_insert(session)(ScheduledTask).values(name=name, next_run_at=now + interval, claimed_by=worker)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ScheduledTask.name],
        set_={"next_run_at": stmt.excluded.next_run_at, "claimed_by": stmt.excluded.claimed_by},
        where=(ScheduledTask.next_run_at <= now) | (ScheduledTask.next_run_at > ahead_after(now, interval)),
    ).returning(ScheduledTask.name)
    return (await session.execute(stmt)).first() is not None
