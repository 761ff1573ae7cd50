"""A replica's own record of when each task is next due (``Scheduler._local_due``, which saves a
database round trip a tick) follows the shared claim's rule (``store.delivery.schedule``): a next
run it stamped with its clock up to one interval and ``CLOCK_SKEW`` ahead of the clock now is not
run early; one stamped further ahead (its clock was set on, then put right) is due now."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete

from bot.app import Signpost
from bot.scheduler import Scheduler, Task
from handlers.clock import FakeClock
from handlers.context import Context
from store.skew import CLOCK_SKEW
from store.tables.delivery import ScheduledTask

HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)


def _scheduler(signpost: Signpost, ran: list[datetime]) -> Scheduler:
    """One replica running one hourly task, which notes the time of each run."""

    async def probe(ctx: Context, now: datetime) -> None:
        ran.append(now)

    return Scheduler(signpost.ctx, [Task("probe", HOUR, probe, after_switch_off=True)], worker="a")


@pytest.mark.parametrize("ahead", [timedelta(minutes=30), CLOCK_SKEW])
async def test_a_next_run_stamped_up_to_the_skew_ahead_waits_for_its_time(
    signpost: Signpost, clock: FakeClock, ahead: timedelta
) -> None:
    """The clock ``ahead`` when the task ran, then put back: the task waits until the clock reaches
    the next run it stamped, not a microsecond less."""
    right = clock.now()
    ran: list[datetime] = []
    scheduler = _scheduler(signpost, ran)
    clock.set(right + ahead)
    assert await scheduler.run_due() == ["probe"]
    stamped = right + ahead + HOUR
    for when in (right, right + HOUR, stamped - TICK):
        clock.set(when)
        assert await scheduler.run_due() == [], when
    clock.set(stamped)
    assert await scheduler.run_due() == ["probe"]
    assert ran == [right + ahead, stamped]


async def test_the_replicas_own_record_holds_the_run_before_the_database_is_asked(
    signpost: Signpost, clock: FakeClock
) -> None:
    """At the bound exactly, the replica's record alone keeps the task waiting: with the shared row
    gone (which would make the run due to any replica asking), it still does not run early."""
    right = clock.now()
    ran: list[datetime] = []
    scheduler = _scheduler(signpost, ran)
    clock.set(right + CLOCK_SKEW)
    assert await scheduler.run_due() == ["probe"]
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(ScheduledTask))
    clock.set(right)
    assert await scheduler.run_due() == []
    assert ran == [right + CLOCK_SKEW]
    assert await _scheduler(signpost, []).run_due() == ["probe"], "another replica, asking the database, runs it"


@pytest.mark.parametrize("beyond", [TICK, timedelta(days=3925)])
async def test_a_next_run_stamped_further_ahead_is_due_now(
    signpost: Signpost, clock: FakeClock, beyond: timedelta
) -> None:
    """The clock more than ``CLOCK_SKEW`` ahead when the task ran (by a microsecond, or years), then
    put right: the task runs at the next tick, and from then on by the clock as it is."""
    right = clock.now()
    ran: list[datetime] = []
    scheduler = _scheduler(signpost, ran)
    clock.set(right + CLOCK_SKEW + beyond)
    assert await scheduler.run_due() == ["probe"]
    clock.set(right)
    assert await scheduler.run_due() == ["probe"]
    clock.set(right + HOUR - TICK)
    assert await scheduler.run_due() == []
    clock.set(right + HOUR)
    assert await scheduler.run_due() == ["probe"]
    assert ran == [right + CLOCK_SKEW + beyond, right, right + HOUR]
