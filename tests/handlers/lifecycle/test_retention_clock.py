"""A wrong clock never destroys a record early: more than a month of days due waits for a person.

An operator found `faketime 2037-08-01 signpost retention run` caught up 3,890 days on the clock's
word and destroyed every child those years made 24, for good. Retention now processes more than
``UNCHECKED_DAYS`` days at once only when today's date was confirmed (``catch_up_to``); the
scheduler never confirms it, so its run stalls and the admins are told which two dates disagree and
what to run, and nothing is changed meanwhile."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.context import Context
from handlers.lifecycle import flows
from handlers.operator import lifecycle as operator
from handlers.operator.common import audited
from handlers.vocabulary import Action
from store.lifecycle import retention
from store.tables.audit import AuditEvent
from tests.handlers.lifecycle.test_retention_stalled import PERSONAL, _admin_notices, _failures, _retention_only, _texts
from tests.store.lifecycle.lifecycle_data import TURNS_18, TURNS_24, at, load, retention_on, snapshot
from tests.store.lifecycle.test_retention import state_of

NOV_2 = date(2026, 11, 2)
WRONG = date(2037, 8, 1)  # the clock an operator's faketime set


async def test_a_clock_years_ahead_destroys_nothing_and_the_admins_are_told(
    signpost: Signpost, clock: FakeClock
) -> None:
    await load(signpost)
    await retention_on(signpost, NOV_2)  # the last day processed: 2 November 2026
    assert await state_of(signpost, TURNS_24) == "archived"  # 24 on 3 November 2026
    before = await snapshot(signpost.ctx.db)
    clock.set(at(WRONG))
    scheduler = _retention_only(signpost)
    assert await scheduler.run_due() == []  # failed: nothing processed
    assert await state_of(signpost, TURNS_24) == "archived" and await state_of(signpost, TURNS_18) == "active"
    async with signpost.ctx.db.read() as session:
        assert await retention.last_day(session) == NOV_2
    stalled = _texts(await _admin_notices(signpost))
    assert len(stalled) == 2, "each admin told"
    said = stalled[0]
    assert (
        "the host's clock says today is 01/08/2037, 3,925 days after the last day retention processed (02/11/2026)"
        in said
    )
    # The date to confirm is the operator's to type, never the clock's handed to them to copy.
    assert "`signpost retention run --catch-up-to DD/MM/YYYY`" in said and "--catch-up-to 01/08/2037" not in said
    assert "overdue" in said
    assert [e.detail for e in await _failures(signpost)] == ["scheduled run failed: clock unchecked"]
    for text in stalled:
        assert not any(word in text for word in PERSONAL), text
    # Nothing but the stall's notices, its audit event, its meta row and the scheduler's own record changed.
    after = await snapshot(signpost.ctx.db)
    changed = {name for name in before if before[name] != after[name]}
    assert changed <= {"notices", "audit_events", "audit_chain", "audit_chain_head", "meta", "scheduled_tasks"}

    # The clock put right: four days due, run on the clock's word, though the scheduler's next run
    # was stamped in 2037.
    clock.set(at(NOV_2 + timedelta(days=4)))
    clock.advance(hours=1)
    assert await scheduler.run_due() == ["retention"]
    assert await state_of(signpost, TURNS_24) == "destroyed"
    assert any("running again" in text for text in _texts(await _admin_notices(signpost)))

    # Later, Signpost off for 40 days: the stall is told again (2037's telling does not hold it back).
    told = len(await _admin_notices(signpost))
    clock.advance(days=40)
    assert await scheduler.run_due() == []
    assert len(await _admin_notices(signpost)) == told + 2
    assert len(await _failures(signpost)) == 2


async def test_a_month_due_runs_and_a_day_more_waits_for_the_date_confirmed(signpost: Signpost) -> None:
    """Exactly ``UNCHECKED_DAYS`` due runs on the clock's word (a tick's worth); one more day waits
    for ``catch_up_to`` to be today, and any other date confirms nothing."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    ctx = signpost.ctx
    late = NOV_2 + timedelta(days=retention.UNCHECKED_DAYS + 1)
    for wrong in (None, late - timedelta(days=1), late + timedelta(days=1)):
        with pytest.raises(retention.ClockUnchecked) as stopped:
            await retention.run(ctx.db, ctx.keys, at(late), catch_up_to=wrong)
        assert (stopped.value.last, stopped.value.today) == (NOV_2, late)
    assert await state_of(signpost, TURNS_24) == "archived"
    report = await retention.run(ctx.db, ctx.keys, at(late), catch_up_to=late, max_days=366)
    assert (report.first_day, report.last_day) == (NOV_2 + timedelta(days=1), late)
    assert await state_of(signpost, TURNS_24) == "destroyed"

    on_its_word = late + timedelta(days=retention.UNCHECKED_DAYS)
    report = await retention.run(ctx.db, ctx.keys, at(on_its_word))
    assert report.last_day == on_its_word


async def test_a_first_run_long_after_the_import_waits_too(signpost: Signpost, clock: FakeClock) -> None:
    """A store never run since its import starts with the import's day: years on, that waits too."""
    await load(signpost)
    clock.set(at(WRONG))
    with pytest.raises(retention.ClockUnchecked):
        await flows.retention_tick(signpost.ctx, clock.now())
    assert await state_of(signpost, TURNS_24) == "archived"


async def test_a_confirmed_catch_up_that_runs_past_midnight_stays_confirmed(
    signpost: Signpost, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`retention run --catch-up-to` typed at 23:50, today's date then: the run works in passes
    (366 days each in service, 20 here: the same code, shorter for the test), and the clock passes
    midnight during the first. The later passes, on the next day by the clock, are not refused as
    unconfirmed (the date was checked once, at the start): the run ends with every day done,
    through the new day, and the operator's summary and the audit say so."""
    monkeypatch.setattr(operator, "MAX_DAYS", 20)
    await load(signpost)
    await retention_on(signpost, NOV_2)
    typed = NOV_2 + timedelta(days=70)
    clock.set(datetime.combine(typed, time(23, 50), tzinfo=UTC))
    passes: list[date] = []

    def a_minute_a_day(days: int) -> None:  # the catch-up's own pace: ten days take it past midnight
        clock.advance(minutes=days)

    tick = flows.retention_tick

    async def noted(ctx: Context, now: datetime, **kwargs: Any) -> retention.RetentionReport:
        passes.append(now.date())  # the date each pass runs to, by the clock as it starts
        return await tick(ctx, now, **kwargs)

    monkeypatch.setattr(flows, "retention_tick", noted)
    async with audited(signpost.ctx, "ops", Action.RETENTION_RUN) as audit:
        report = await operator.retention_run(signpost.ctx, audit, on_day=a_minute_a_day, catch_up_to=typed)
    after_midnight = typed + timedelta(days=1)
    assert passes[0] == typed and passes[1:] and set(passes[1:]) == {after_midnight}
    assert (report.first_day, report.last_day, report.pending_days) == (NOV_2 + timedelta(days=1), after_midnight, 0)
    assert f"Retention (03/11/2026 to {after_midnight:%d/%m/%Y})" in report.summary()
    async with signpost.ctx.db.read() as session:
        assert await retention.last_day(session) == after_midnight
        outcome = (
            await session.execute(
                select(AuditEvent.outcome)
                .where(AuditEvent.action == Action.RETENTION_RUN.value)
                .order_by(AuditEvent.seq.desc())
                .limit(1)
            )
        ).scalar_one()
    assert str(outcome) == "done"
    assert await state_of(signpost, TURNS_24) == "destroyed" and await state_of(signpost, TURNS_18) == "archived"
