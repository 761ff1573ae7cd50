"""Retention's pruning of closed notices: those delivered or dropped ``KEEP_CLOSED`` ago.

A notice's copy in the outbox is of no use once it is closed and nothing it was about can still be
acted on; kept, it is what a backup holds beside a reference (a lookup's notice names who looked and
how to reach them). Each retention run prunes the notices closed before the start of the day
``KEEP_CLOSED`` ago, one day of closing at a time (stepping over days when none closed; a busy
day read in windows of at most ``READ_AT_ONCE``), in batches of ``CHUNK`` in transactions of their
own, and records in ``retention_state`` (row ``notices``) the
day it has pruned through: the next run starts there, so the rows left as dedupe keys
(``store.delivery.notices.dies_with_its_day``) are never read again. A store's first run starts with
the first notice ever closed. A run stopped part way leaves the rest of its days for the next
(deleting again is harmless; a row already emptied is not counted twice).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database, dialect_insert
from store.delivery import notices
from store.delivery.notices import Pruned
from store.tables.lifecycle import RetentionState

log = structlog.get_logger("signpost.retention")
STATE_KEY = "notices"  # retention_state's row: every notice closed before this day is pruned
CHUNK = 500
READ_AT_ONCE = 10_000  # ids and keys read at once (~1.5 MB): a busier day is read in shorter windows
_DAY = timedelta(days=1)
_FINEST = timedelta(seconds=1)  # a window is not cut finer: what closed within one second is read whole


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def cutoff_day(now: datetime, keep: timedelta = notices.KEEP_CLOSED) -> date:
    """Notices closed before the start of this day (UTC) are due to be pruned at ``now``."""
    return (now - keep).astimezone(UTC).date()


async def pruned_before(session: AsyncSession) -> date | None:
    """The day before whose start every closed notice has been pruned (None: never yet)."""
    found = select(RetentionState.last_day).where(RetentionState.name == STATE_KEY)
    return (await session.execute(found)).scalar_one_or_none()


async def prune(
    db: Database,
    now: datetime,
    *,
    keep: timedelta = notices.KEEP_CLOSED,
    chunk: int = CHUNK,
    read_at_once: int = READ_AT_ONCE,
) -> int:
    """Prune the notices closed before the start of the day ``keep`` before ``now`` and since the
    day the last run recorded; how many were pruned (deleted, or emptied to their dedupe key).
    A day's notices are read ``read_at_once`` at most (``_windows``), so memory does not grow with
    a busy day."""
    through = cutoff_day(now, keep)
    async with db.read() as session:
        since = await pruned_before(session)
    if since is not None and since >= through:
        return 0
    done = Pruned()
    day = await _next_day_closed(db, since, through)
    while day is not None:
        async for start, end in _windows(db, _start_of(day), _start_of(day + _DAY), max(read_at_once, chunk)):
            async with db.read() as session:
                closed = await notices.closed_in(session, start, end)
            for first in range(0, len(closed), chunk):
                async with db.write() as session:
                    done += await notices.prune(session, closed[first : first + chunk])
        async with db.write() as session:
            await _record(session, day + _DAY, now)
        day = await _next_day_closed(db, day + _DAY, through)
    async with db.write() as session:
        await _record(session, through, now)
    if done.deleted or done.emptied:
        log.info("notices_pruned", deleted=done.deleted, emptied=done.emptied, closed_before=through.isoformat())
    return done.deleted + done.emptied


async def would_prune(session: AsyncSession, as_of: date) -> int:
    """How many notices a run on ``as_of`` would prune, of those closed already (reads only)."""
    since = await pruned_before(session)
    through = cutoff_day(_start_of(as_of))
    if since is not None and since >= through:
        return 0
    return await notices.count_closed(session, None if since is None else _start_of(since), _start_of(through))


async def _windows(
    db: Database, start: datetime, end: datetime, limit: int
) -> AsyncIterator[tuple[datetime, datetime]]:
    """[``start``, ``end``) as consecutive windows in which at most ``limit`` notices closed,
    halved in time until so (not below ``_FINEST``); windows in which none closed are left out.
    Each cut costs one count through the same two indexes as the read."""
    async with db.read() as session:
        count = await notices.count_closed(session, start, end)
    if count == 0:
        return
    if count <= limit or end - start <= _FINEST:
        yield start, end
        return
    middle = start + (end - start) / 2
    async for window in _windows(db, start, middle, limit):
        yield window
    async for window in _windows(db, middle, end, limit):
        yield window


async def _next_day_closed(db: Database, since: date | None, through: date) -> date | None:
    """The first day from ``since`` (the beginning, for None) and before ``through`` on which a
    notice was closed; None when there is none."""
    async with db.read() as session:
        first = await notices.first_closed(session, None if since is None else _start_of(since), _start_of(through))
    return None if first is None else first.astimezone(UTC).date()


async def _record(session: AsyncSession, day: date, now: datetime) -> None:
    """Record that every notice closed before ``day`` is pruned; never moves the day back (a
    replica running beside this one may have got further)."""
    insert = dialect_insert(session)(RetentionState).values(name=STATE_KEY, last_day=day, updated_at=now)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[RetentionState.name],
            set_={"last_day": insert.excluded.last_day, "updated_at": insert.excluded.updated_at},
            where=RetentionState.last_day < insert.excluded.last_day,
        )
    )
