"""When each periodic task is next due, shared by every replica through the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import DateTime, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.db import dialect_insert
from store.models import Base


class ScheduledTask(Base):
    __tablename__ = "scheduled_tasks"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str] = mapped_column(String(64))


async def claim_run(
    session: AsyncSession, name: str, worker: str, now: datetime, interval: timedelta
) -> bool:
    """True when this worker takes the run due now; every other replica then finds it not due.

    One statement: insert the task's first run, or move a due run ``interval`` ahead. On
    PostgreSQL a concurrent claimer waits for the row lock and then sees the run is no longer due.
    """
    stmt = dialect_insert(session)(ScheduledTask).values(
        name=name, next_run_at=now + interval, claimed_by=worker
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[ScheduledTask.name],
        set_={"next_run_at": stmt.excluded.next_run_at, "claimed_by": stmt.excluded.claimed_by},
        where=ScheduledTask.next_run_at <= now,
    ).returning(ScheduledTask.name)
    return (await session.execute(stmt)).first() is not None
