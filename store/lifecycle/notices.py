"""Retention's pruning of closed notices: those delivered or dropped ``KEEP_CLOSED`` ago.

A notice's copy in the outbox is of no use once it is closed and nothing it was about can still be
acted on; kept, it is what a backup holds beside a reference (a lookup's notice names who looked and
how to reach them). Each retention run prunes, in bounded batches of their own transactions, the
notices closed before the start of the day ``KEEP_CLOSED`` ago, and records that day in
``retention_state`` (row ``notices``): the next run starts there, so a day's notices are looked at
once and the rows left as dedupe keys (``store.delivery.notices.dies_with_its_day``) are never read
again. A store's first run has no such day and takes every notice closed before it. A run stopped
part way leaves its day unrecorded, and the next run goes over it again (deleting is idempotent;
a row already emptied is not counted twice).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database, dialect_insert
from store.delivery import notices
from store.tables.lifecycle import RetentionState

log = structlog.get_logger("signpost.retention")
STATE_KEY = "notices"  # retention_state's row: notices closed before this day are pruned
CHUNK = 500


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def cutoff_day(now: datetime, keep: timedelta = notices.KEEP_CLOSED) -> date:
    """Notices closed before the start of this day (UTC) are due to be pruned at ``now``."""
    return (now - keep).astimezone(UTC).date()


async def pruned_before(session: AsyncSession) -> date | None:
    """The day before whose start every closed notice has been pruned (None: never yet)."""
    found = select(RetentionState.last_day).where(RetentionState.name == STATE_KEY)
    return (await session.execute(found)).scalar_one_or_none()


async def prune(db: Database, now: datetime, *, keep: timedelta = notices.KEEP_CLOSED, chunk: int = CHUNK) -> int:
    """Prune the notices closed before the start of the day ``keep`` before ``now`` and after the
    last run's day; how many were pruned (deleted, or emptied to their dedupe key)."""
    through = cutoff_day(now, keep)
    async with db.read() as session:
        since = await pruned_before(session)
    if since is not None and since >= through:
        return 0
    start, end = (None if since is None else _start_of(since)), _start_of(through)
    deleted = emptied = 0
    after = 0
    while True:
        async with db.write() as session:
            batch = await notices.prune_closed(session, start, end, after, chunk)
            deleted, emptied = deleted + batch.deleted, emptied + batch.emptied
            if batch.last_id is None:
                await _record(session, since, through, now)
                break
        after = batch.last_id
    if deleted or emptied:
        log.info("notices_pruned", deleted=deleted, emptied=emptied, closed_before=through.isoformat())
    return deleted + emptied


async def would_prune(session: AsyncSession, as_of: date) -> int:
    """How many notices a run on ``as_of`` would prune, as far as they are closed already (reads only)."""
    since = await pruned_before(session)
    through = cutoff_day(_start_of(as_of))
    if since is not None and since >= through:
        return 0
    return await notices.count_closed(session, None if since is None else _start_of(since), _start_of(through))


async def _record(session: AsyncSession, since: date | None, through: date, now: datetime) -> None:
    """Move the recorded day from ``since`` to ``through`` (compare-and-set: a replica that got there
    first has recorded it, or a later day, already)."""
    if since is None:
        await session.execute(
            dialect_insert(session)(RetentionState)
            .values(name=STATE_KEY, last_day=through, updated_at=now)
            .on_conflict_do_nothing(index_elements=[RetentionState.name])
        )
    else:
        await session.execute(
            update(RetentionState)
            .where(RetentionState.name == STATE_KEY, RetentionState.last_day == since)
            .values(last_day=through, updated_at=now)
        )
