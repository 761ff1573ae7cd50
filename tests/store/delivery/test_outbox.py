"""The outbox's claims: a notice is sent by one worker, once, and never after it was closed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import Notice
from store.delivery import notices, outbox
from store.tables.delivery import Notice as NoticeRow
from tests.access_helpers import load_access


async def test_a_notice_dropped_after_another_replica_read_it_is_not_claimed_nor_marked_delivered(
    signpost: Signpost,
) -> None:
    """Replica A reads the notice as pending; replica B drops it (its recipient made inactive, or
    linked nowhere for a week) and lets go of it. A's claim then took it, sent it and marked it
    delivered as well as dropped: a week-old notice to someone who had just linked, or a notice to
    someone no longer active. A dropped notice is closed like a delivered one."""
    await load_access(signpost)
    now = signpost.ctx.clock.now()
    async with signpost.ctx.db.write() as session:
        await signpost.ctx.notices.enqueue(session, [Notice("DM01", "info", "hello", dedupe_key="race:1")], now)
    async with signpost.ctx.db.read() as session:
        [nid] = [i for i, n in await notices.pending(session, signpost.ctx.keys, now) if n.dedupe_key == "race:1"]
    async with signpost.ctx.db.write() as session:  # replica B
        await outbox.dropped_many(session, [nid], now, "not sent: recipient not active")
    async with signpost.ctx.db.write() as session:  # replica A, with what it read before
        assert (await outbox.claim_many(session, [nid], "replica-a", now, timedelta(minutes=2))).attempts == {}
        assert await outbox.claim(session, nid, "replica-a", now + timedelta(minutes=3), timedelta(minutes=2)) is None
        await outbox.delivered_many(session, [nid], now)
    async with signpost.ctx.db.read() as session:
        row = (await session.execute(select(NoticeRow).where(NoticeRow.id == nid))).scalar_one()
    assert row.dropped_at is not None and row.delivered_at is None
    assert row.last_error == "not sent: recipient not active"
