"""Notices held by a clock ahead are sent when the clock is put right (``store.skew``).

A retry stamped while the host's clock read 2037 (``not_before``: that clock's now and a backoff)
waited for 2037, and held back every later notice to its recipient; a claim a worker died holding
then kept its notice from every other worker as long. A hold further ahead than any hold is
(``HELD_AT_MOST``) and ``CLOCK_SKEW`` is now no hold: due now, or taken over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.notify import Outbox
from handlers.clock import FakeClock
from handlers.vocabulary import Notice, Platform, Principal
from store.delivery import outbox
from store.delivery.notices import HELD_AT_MOST, pending
from store.skew import CLOCK_SKEW
from store.tables.delivery import Notice as NoticeRow
from tests.access_helpers import load_access
from tests.bot.test_notify import FakePlatform, _enqueue, _link, _row
from tests.statements import sqlite_plan, statements_sent

AHEAD = datetime(2037, 8, 1, 9, 0, tzinfo=UTC)
SLACK = Principal(Platform.SLACK, "T1", "U1")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def test_a_retry_stamped_while_the_clock_read_2037_is_sent_now_and_holds_nothing_back(
    app: Signpost, clock: FakeClock
) -> None:
    """Slack fails P001's notice at 2037 (retry due at 2037 and 30 s). Put right, a second notice is
    queued: both go in the next pass, in the order queued, not in 2037."""
    real = clock.now()
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, SLACK, "P001")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent, failures=1)])
    clock.set(AHEAD)
    await _enqueue(app, Notice("P001", "access_approved", "Request 7 approved.", dedupe_key="first"))
    assert (await box.deliver_due()).retried == 1
    assert (await _row(app)).not_before.replace(tzinfo=UTC) == AHEAD + timedelta(seconds=30)

    clock.set(real)
    await _enqueue(app, Notice("P001", "grant_expired", "Your access has ended.", dedupe_key="second"))
    assert (await box.deliver_due()).delivered == 2
    assert [n.text for _, n in sent] == ["Request 7 approved.", "Your access has ended."]


async def test_a_retry_held_within_its_longest_backoff_and_the_skew_still_waits(
    app: Signpost, clock: FakeClock
) -> None:
    """Control: a retry due as far ahead as a hold ever is, with replicas' clocks a little apart
    (``HELD_AT_MOST`` and ``CLOCK_SKEW``, a minute short), is not due before its time."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, SLACK, "P001")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent, failures=1)])
    real = clock.now()
    clock.set(real + CLOCK_SKEW - timedelta(minutes=1))
    await _enqueue(app, Notice("P001", "test", "one", dedupe_key="one"))
    async with app.ctx.db.write() as session:
        await outbox.retry_later(session, 1, 0, clock.now(), "slack: DeliveryFailed", wait=HELD_AT_MOST)
    clock.set(real)
    assert (await box.deliver_due()).delivered == 0
    assert sent == []


async def test_a_claim_a_worker_died_holding_at_2037_is_taken_over_when_the_clock_is_put_right(
    app: Signpost, clock: FakeClock
) -> None:
    """A worker claimed P001's notice at 2037 (for two minutes of that clock) and died. Put right,
    the next pass takes the claim over and sends it; a claim within its hold still holds."""
    real = clock.now()
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, SLACK, "P001")
    await _enqueue(app, Notice("P001", "test", "Request 7 approved.", dedupe_key="first"))
    notice_id = (await _row(app)).id
    async with app.ctx.db.write() as session:
        claimed = await outbox.claim_many(session, [notice_id], "dead-worker", AHEAD, timedelta(minutes=2))
    assert claimed.attempts == {notice_id: 0}
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent)])
    clock.set(real)
    assert (await box.deliver_due()).delivered == 1
    assert [n.text for _, n in sent] == ["Request 7 approved."]

    await _enqueue(app, Notice("P001", "test", "held", dedupe_key="held"))
    async with app.ctx.db.read() as session:
        held_id = (await session.execute(select(NoticeRow.id).where(NoticeRow.dedupe_key == "held"))).scalar_one()
    async with app.ctx.db.write() as session:
        claimed = await outbox.claim_many(session, [held_id], "live-worker", clock.now(), timedelta(minutes=2))
    assert claimed.attempts == {held_id: 0}
    assert (await box.deliver_due()).delivered == 0, "a claim still held is left to its worker"


@pytest.mark.sqlite_only
async def test_notices_held_ahead_are_found_through_the_pending_index(app: Signpost, clock: FakeClock) -> None:
    """Those due and those held by a clock ahead are each read through a range of
    ``ix_notices_pending``, never every undelivered notice."""
    await _enqueue(app, Notice("P001", "test", "one", dedupe_key="one"))
    with statements_sent(app.ctx.db) as seen:
        async with app.ctx.db.read() as session:
            assert len(await pending(session, app.ctx.keys, clock.now())) == 1
    plans = [await sqlite_plan(app.ctx.db, sent) for sent in seen if sent.verb == "SELECT"]
    assert len(plans) == 2, "due, then held ahead"
    for plan in plans:
        assert "ix_notices_pending" in plan and "SCAN notices" not in plan, plan
