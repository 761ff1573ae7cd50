"""Whether the scheduler's retention run is failing, since when, and whether the admins were told
(``handlers.lifecycle.flows.scheduled_retention``). They are told (and it is audited) at most once a
day that it fails, and that it runs again only when the stall that ends is one they were told of:
runs that fail and succeed in turn (one replica's key file damaged, older code in a rolling upgrade,
a busy store) begin a new stall each time, and would otherwise tell both every hour.

Two ``meta`` rows. ``retention_stalled`` is present only while it fails, so the hourly run reads one
row by its key to know whether a stall has just ended (its value is the one older versions read and
write). ``retention_told`` is the last day the admins were told that it fails, kept once written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import dialect_insert
from store.tables.lifecycle import Meta

KEY = "retention_stalled"  # value: "<since, ISO datetime> <last day this stall was told, ISO date>"
TOLD = "retention_told"  # value: "<last day told that it fails, ISO date>"
_UNTOLD = date.min  # a stall's day told while it has not been told (a date long past to older versions)


@dataclass(frozen=True, slots=True)
class Stall:
    since: datetime  # the first failed run of this stall
    told: date | None  # the last day its failure was audited and the admins told; None: not yet


async def current(session: AsyncSession) -> Stall | None:
    return _stall((await session.execute(select(Meta.value).where(Meta.key == KEY))).scalar_one_or_none())


def _stall(value: str | None) -> Stall | None:
    if value is None:
        return None
    since, told = value.split(" ")
    day = date.fromisoformat(told)
    return Stall(datetime.fromisoformat(since), None if day == _UNTOLD else day)


def _value(stall: Stall) -> str:
    return f"{stall.since.isoformat()} {(stall.told or _UNTOLD).isoformat()}"


async def _day_told(session: AsyncSession) -> date | None:
    """The last day the admins were told that it fails, its row locked as it is read (PostgreSQL)."""
    found = await session.execute(select(Meta.value).where(Meta.key == TOLD).with_for_update())
    value = found.scalar_one_or_none()
    return None if value is None else date.fromisoformat(value)


async def _mark_told(session: AsyncSession, day: date) -> None:
    insert = dialect_insert(session)(Meta).values(key=TOLD, value=day.isoformat())
    await session.execute(insert.on_conflict_do_update(index_elements=[Meta.key], set_={"value": day.isoformat()}))


async def claim_day(session: AsyncSession, now: datetime) -> Stall | None:
    """A failed run, recorded in the caller's transaction (a stall begun at ``now`` when none was):
    the stall, told today, when the admins are to be told of it, which is when no run has told them
    today that it fails; else None (told today already, of this stall or of one that ended; or
    another run failing at once has just begun it and decided). Both rows are locked as they are read
    (PostgreSQL; SQLite's writes are one at a time), and a first failure's row inserted only where
    none is, so two runs failing at once (two replicas' may overlap) tell and audit once."""
    today = now.date()
    last = await _day_told(session)
    found = await session.execute(select(Meta.value).where(Meta.key == KEY).with_for_update())
    stall = _stall(found.scalar_one_or_none())
    if stall is None:
        stall = Stall(now, None)
        inserted = await session.execute(
            dialect_insert(session)(Meta)
            .values(key=KEY, value=_value(stall))
            .on_conflict_do_nothing(index_elements=[Meta.key])
            .returning(Meta.key)
        )
        if inserted.first() is None:
            return None
    told_before = max(day for day in (last, stall.told, _UNTOLD) if day is not None)  # an older version's too
    # Only today's telling counts: a day told later than today was told by a clock ahead (set years
    # on, then put right), and holding to it would keep every stall untold until that day.
    if told_before == today:
        return None
    stall = Stall(stall.since, today)
    await session.execute(update(Meta).where(Meta.key == KEY).values(value=_value(stall)))
    await _mark_told(session, today)
    return stall


async def clear(session: AsyncSession) -> Stall | None:
    """Forget the stall, keeping the last day told: the stall that ended when the admins were told
    of it (to be told it runs again), else None (no stall; one they were not told of; or another run
    ending it at once has just said so). The rows are locked in ``claim_day``'s order."""
    last = await _day_told(session)
    found = await session.execute(delete(Meta).where(Meta.key == KEY).returning(Meta.value))
    stall = _stall(found.scalar_one_or_none())
    if stall is None or stall.told is None:
        return None
    if last is None or last < stall.told:  # told by an older version, which keeps no other row
        await _mark_told(session, stall.told)
    return stall
