"""Whether the scheduler's retention run is failing: since when, and the last day the admins were
told (``handlers.lifecycle.flows.scheduled_retention``). One ``meta`` row, present only while it
fails, so the hourly run reads one row by its key to know whether a stall has just ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import dialect_insert
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


def _value(stall: Stall) -> str:
    return f"{stall.since.isoformat()} {stall.told.isoformat()}"


async def claim_day(session: AsyncSession, now: datetime) -> Stall | None:
    """Today's telling of a failing run, claimed in the caller's transaction: the stall (told today)
    when this caller is the first to claim it today, None when another run has (two replicas' runs
    may overlap). The row is locked as it is read (PostgreSQL; SQLite's writes are one at a time), and
    a first failure's row inserted only where none is, so two failing at once tell and audit once."""
    today = now.date()
    found = await session.execute(select(Meta.value).where(Meta.key == KEY).with_for_update())
    value = found.scalar_one_or_none()
    if value is None:
        stall = Stall(now, today)
        inserted = await session.execute(
            dialect_insert(session)(Meta)
            .values(key=KEY, value=_value(stall))
            .on_conflict_do_nothing(index_elements=[Meta.key])
            .returning(Meta.key)
        )
        return stall if inserted.first() is not None else None
    since, told = value.split(" ")
    if date.fromisoformat(told) >= today:
        return None
    stall = Stall(datetime.fromisoformat(since), today)
    await session.execute(update(Meta).where(Meta.key == KEY).values(value=_value(stall)))
    return stall


async def clear(session: AsyncSession) -> bool:
    """Forget the stall; whether there was one (two runs ending one at once: one says so)."""
    result = await session.execute(delete(Meta).where(Meta.key == KEY))
    return bool(getattr(result, "rowcount", 0))
