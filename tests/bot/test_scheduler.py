"""The server's standard scheduled tasks (bot/scheduler.py), run as the server runs them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.notify import Outbox
from bot.scheduler import Scheduler, standard_tasks
from handlers.clock import FakeClock
from handlers.lifecycle import flows as lifecycle
from handlers.vocabulary import Outcome
from store.db import Database
from store.delivery import deliveries
from store.lifecycle import decommission
from store.tables.delivery import ScheduledTask
from store.tables.people import AccessRequest
from tests.access_helpers import load_access, notices, request_access
from tests.databases import terminate_backends
from tests.factories import SHIELDED
from tests.handlers.lifecycle.test_decommission_notices import ConsolePlatform, rows


async def test_the_standard_tasks_forget_delivery_ids_once_past_the_kept_window(
    signpost: Signpost, clock: FakeClock
) -> None:
    """The deliveries table does not grow for ever: an id older than KEEP is dropped, a recent one stays."""
    db = signpost.ctx.db
    async with db.write() as session:
        assert await deliveries.claim(session, "slack:command:old-trigger", clock.now())
    clock.advance(days=deliveries.KEEP.days + 1)
    async with db.write() as session:
        assert await deliveries.claim(session, "slack:command:new-trigger", clock.now())
    scheduler = Scheduler(signpost.ctx, standard_tasks(Outbox(signpost.ctx, [])))
    assert "prune_deliveries" in await scheduler.run_due()
    async with db.write() as session:
        # Forgotten: the old id is new again. Kept: the recent one is still "seen".
        assert await deliveries.claim(session, "slack:command:old-trigger", clock.now()) is True
        assert await deliveries.claim(session, "slack:command:new-trigger", clock.now()) is False
    clock.advance(timedelta(minutes=30))
    assert "prune_deliveries" not in await scheduler.run_due()  # hourly, not every tick


# Once switched off, only the work the decommissioning itself needs still runs (bot/scheduler.py).
STILL_RUNNING = {
    "deliver_notices",
    "retention",
    "decommission",
    "audit_checkpoint",
    "prune_deliveries",
    "drop_expired_parked",
    "export_checkpoint",
}


def test_every_standard_task_declares_whether_it_runs_once_switched_off(signpost: Signpost, tmp_path: Path) -> None:
    """No task is left to chance (an undeclared one would not run once switched off), and the split is
    the one chosen: destruction, its notices and the audit's proof run on; nobody is asked anything."""
    tasks = standard_tasks(Outbox(signpost.ctx, []), tmp_path)
    assert [task.name for task in tasks if not isinstance(task.after_switch_off, bool)] == []
    assert {task.name for task in tasks if task.after_switch_off} == STILL_RUNNING


async def test_once_switched_off_no_request_escalates_or_expires_while_destruction_work_runs_on(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A request undecided at switch-off: nobody can approve it any more (every command is refused), so
    no duty manager or admin is asked to, and its requester is not told it expired; the decommissioning's
    own work (its tick, retention, notice delivery, checkpoints) still runs."""
    await load_access(signpost)
    assert (await request_access(signpost, "P002", SHIELDED)).outcome is Outcome.DONE
    async with signpost.ctx.db.write() as session:
        await decommission.schedule(session, clock.now().date(), None, "AD01", clock.now(), at_once=True)
    asked = await notices(signpost)
    scheduler = Scheduler(signpost.ctx, standard_tasks(Outbox(signpost.ctx, [])))
    clock.advance(minutes=30)
    assert set(await scheduler.run_due()) == STILL_RUNNING - {"export_checkpoint"}
    clock.advance(hours=24)
    assert set(await scheduler.run_due()) == STILL_RUNNING - {"export_checkpoint"}
    told = [n for n in await notices(signpost) if n not in asked]
    assert [n.kind for n in told] == ["decommission"] * len(told) and told, "only the admins' switch-off notice"
    async with signpost.ctx.db.read() as session:
        [row] = (await session.execute(select(AccessRequest))).scalars()
    assert (row.state, row.escalation_level) == ("pending", 0)


async def test_once_switched_off_no_duty_manager_is_asked_to_decide_a_request_queued_before(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A request's Approve / Deny notice queued before the switch-off (or waiting for a retry) was
    still delivered after it (review): a duty manager was asked to decide what nobody can any more.
    Such notices are dropped at the switch-off; the admins' switch-off notice still goes."""
    await load_access(signpost)
    assert (await request_access(signpost, "P002", SHIELDED)).outcome is Outcome.DONE
    async with signpost.ctx.db.write() as session:
        await decommission.schedule(session, clock.now().date(), None, "AD01", clock.now(), at_once=True)
    platform = ConsolePlatform()
    scheduler = Scheduler(signpost.ctx, standard_tasks(Outbox(signpost.ctx, [platform])))
    for _ in range(2):  # the tick queues the switch-off notice; delivery sends it on the next pass
        clock.advance(minutes=1)
        await scheduler.run_due()
    kinds = sorted({notice.kind for _, notice in platform.sent})
    assert kinds == ["decommission"], kinds
    closed = [row for row in (await rows(signpost)).values() if row.kind == "access_request"]
    assert closed and all(row.dropped_at is not None and row.delivered_at is None for row in closed), closed


async def test_at_the_switch_off_dates_midnight_the_tick_closes_the_waiting_approve_deny_notices(
    signpost: Signpost, clock: FakeClock
) -> None:
    """Scheduled for tomorrow: the request's notice waits until the decommissioning's first tick on
    the switch-off date, which closes it unsent, as the at-once path does."""
    await load_access(signpost)
    assert (await request_access(signpost, "P002", SHIELDED)).outcome is Outcome.DONE
    tomorrow = clock.now().date() + timedelta(days=1)
    async with signpost.ctx.db.write() as session:
        await decommission.schedule(session, tomorrow, None, "AD01", clock.now())
    await lifecycle.decommission_tick(signpost.ctx, clock.now())
    assert all(row.dropped_at is None for row in (await rows(signpost)).values() if row.kind == "access_request")
    clock.advance(days=1)
    await lifecycle.decommission_tick(signpost.ctx, clock.now())
    closed = [row for row in (await rows(signpost)).values() if row.kind == "access_request"]
    assert closed and all(row.dropped_at is not None and row.delivered_at is None for row in closed), closed
    assert {row.last_error for row in closed} == {decommission.UNDECIDABLE}


async def next_runs(url: str) -> dict[str, object]:
    """Each task's next run as the database holds it, read on a pool of its own."""
    db = Database.connect(url)
    try:
        async with db.read() as session:
            rows = (await session.execute(select(ScheduledTask.name, ScheduledTask.next_run_at))).all()
            return {name: next_run for name, next_run in rows}
    finally:
        await db.close()


@pytest.mark.postgres_only
async def test_the_running_scheduler_goes_on_after_its_connections_are_ended(
    signpost: Signpost, db_url: str, clock: FakeClock
) -> None:
    """Every pooled connection ended by the server (a restart, ``pg_terminate_backend``): the
    scheduler's pass that meets a dead one fails, and the next tick claims and runs the tasks due.
    (A pass's first read raised out of ``run_forever``: the scheduler stopped until a restart.)"""
    scheduler = Scheduler(signpost.ctx, standard_tasks(Outbox(signpost.ctx, [])))
    assert "prune_deliveries" in await scheduler.run_due()  # the pool holds connections now
    ran_before = (await next_runs(db_url))["prune_deliveries"]
    assert await terminate_backends(db_url) >= 1
    clock.advance(timedelta(hours=2))  # every task due again
    going = scheduler.start(tick=0.01)
    try:
        for _ in range(3000):  # bounded: up to a minute on a loaded machine, usually a few ticks
            if going.done() or (await next_runs(db_url))["prune_deliveries"] != ran_before:
                break
            await asyncio.sleep(0.02)
        assert not going.done(), "the scheduler stopped"
        assert (await next_runs(db_url))["prune_deliveries"] != ran_before, "no task ran again"
    finally:
        await scheduler.finish(30)
