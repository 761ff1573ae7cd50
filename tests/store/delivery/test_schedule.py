"""Replicas' clocks disagree a little: a run another replica stamped up to one interval and
``CLOCK_SKEW`` ahead of this replica's clock is not run early; one stamped further ahead was set by
a clock ahead (set years on, then put right) and is due now (``store.delivery.schedule.claim_run``).
Held at the bound itself, to the microsecond, on each backend's own timestamp comparison."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from handlers.clock import FakeClock
from store.db import Database
from store.delivery import schedule
from store.skew import CLOCK_SKEW
from store.tables.delivery import ScheduledTask

HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)


async def _claim(db: Database, worker: str, now: datetime, interval: timedelta = HOUR) -> bool:
    async with db.write() as session:
        return await schedule.claim_run(session, "retention", worker, now, interval)


async def _row(db: Database) -> tuple[datetime, str]:
    async with db.read() as session:
        found = (await session.execute(select(ScheduledTask.next_run_at, ScheduledTask.claimed_by))).one()
    stamped, by = found
    return stamped.replace(tzinfo=None), by  # SQLite hands back naive UTC


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


@pytest.mark.parametrize("ahead", [timedelta(minutes=30), CLOCK_SKEW])
async def test_a_run_stamped_by_a_replica_up_to_the_skew_ahead_is_not_taken_early(
    db: Database, clock: FakeClock, ahead: timedelta
) -> None:
    """Replica B's clock ``ahead`` of A's (at most ``CLOCK_SKEW``): B's next run stands, A's claims
    find it not due until A's clock reaches it, and then A takes it."""
    now = clock.now()
    assert await _claim(db, "b", now + ahead)
    stamped = now + ahead + HOUR
    assert stamped <= schedule.ahead_after(now, HOUR)
    for when in (now, now + HOUR, stamped - TICK):
        assert not await _claim(db, "a", when), when
        assert await _row(db) == (_naive(stamped), "b")
    assert await _claim(db, "a", stamped)
    assert await _row(db) == (_naive(stamped + HOUR), "a")


@pytest.mark.parametrize("beyond", [TICK, timedelta(days=3925)])
async def test_a_run_stamped_further_ahead_than_the_skew_is_due_now(
    db: Database, clock: FakeClock, beyond: timedelta
) -> None:
    """Replica B's clock more than ``CLOCK_SKEW`` ahead (by a microsecond, or years): A takes the
    run at once and stamps the next one by its own clock, which then holds as any other."""
    now = clock.now()
    assert await _claim(db, "b", now + CLOCK_SKEW + beyond)
    assert schedule.stamped_ahead(now + CLOCK_SKEW + beyond + HOUR, now, HOUR)
    assert await _claim(db, "a", now)
    assert await _row(db) == (_naive(now + HOUR), "a")
    assert not await _claim(db, "c", now + HOUR - TICK), "the run A stamped holds by A's clock"


async def test_the_bound_grows_with_the_interval(db: Database, clock: FakeClock) -> None:
    """A daily task stamped a day and an hour ahead waits; a microsecond more is due now."""
    now, day = clock.now(), timedelta(days=1)
    assert await _claim(db, "b", now + CLOCK_SKEW, day)
    assert not await _claim(db, "a", now, day)
    async with db.write() as session:
        await session.execute(update(ScheduledTask).values(next_run_at=now + day + CLOCK_SKEW + TICK))
    assert await _claim(db, "a", now, day)
    assert await _row(db) == (_naive(now + day), "a")
