"""Whether the scheduler's retention run is failing: since when, and the last day the admins were
told (``handlers.lifecycle.flows.scheduled_retention``). One ``meta`` row, present only while it
fails, so the hourly run reads one row by its key to know whether a stall has just ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.tables.lifecycle import Meta

KEY = "retention_stalled"  # value: "<since, ISO datetime> <last day told, ISO date>"


@dataclass(frozen=True, slots=True)
class Stall:
    since: datetime  # the first failed run of this stall
    told: date  # the last day its failure was audited and the admins told


async def current(session: AsyncSession) -> Stall | None:
    value = (await session.execute(select(Meta.value).where(Meta.key == KEY))).scalar_one_or_none()
    if value is None:
        return None
    since, told = value.split(" ")
    return Stall(datetime.fromisoformat(since), date.fromisoformat(told))


async def record(session: AsyncSession, stall: Stall) -> None:
    await session.merge(Meta(key=KEY, value=f"{stall.since.isoformat()} {stall.told.isoformat()}"))


async def clear(session: AsyncSession) -> bool:
    """Forget the stall; whether there was one (two runs ending one at once: one says so)."""
    result = await session.execute(delete(Meta).where(Meta.key == KEY))
    return bool(getattr(result, "rowcount", 0))
