"""Processed delivery ids: a key acts once, however many claims race for it (both backends)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from handlers.clock import FakeClock
from store.audit.chain import HEAD_ID
from store.audit.log import AuditLog, AuditRecord, AuditWriteFailed
from store.db import Database
from store.delivery import deliveries
from store.tables.audit import AuditChainHead, AuditEvent
from tests.store.audit.tamper import run_sql, unprotect


def event(clock: FakeClock, i: int) -> AuditRecord:
    return AuditRecord(
        at=clock.now(),
        actor_id=None,
        platform="slack",
        tenant="T0001",
        user_id="U0NURSE",
        actor_role=None,
        actor_org=None,
        actor_la=None,
        channel="channel",
        action="help",
        outcome="info",
        subject_refs=(),
        result_count=0,
        correlation_id=f"c{i}",
    )


async def correlation_ids(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.execute(select(AuditEvent.correlation_id).order_by(AuditEvent.seq))).scalars())


async def break_the_chain_head(db: Database) -> int:
    """Make every audit append fail (the head claims a later sequence); returns the true last seq."""
    async with db.read() as session:
        head = (await session.execute(select(AuditChainHead).where(AuditChainHead.id == HEAD_ID))).scalar_one()
        last_seq = head.last_seq
    await unprotect(db)
    await run_sql(db, "UPDATE audit_chain_head SET last_seq = 1000000000 WHERE id = :id", id=HEAD_ID)
    return last_seq


async def restore_the_chain_head(db: Database, last_seq: int) -> None:
    await run_sql(db, "UPDATE audit_chain_head SET last_seq = :seq WHERE id = :id", seq=last_seq, id=HEAD_ID)


async def test_a_key_is_new_once_then_seen(db: Database, clock: FakeClock) -> None:
    async with db.write() as session:
        assert await deliveries.claim(session, "slack:event:Ev1", clock.now()) is True
    async with db.write() as session:
        assert await deliveries.claim(session, "slack:event:Ev1", clock.now()) is False
        assert await deliveries.claim(session, "slack:event:Ev2", clock.now()) is True


async def test_concurrent_events_claiming_one_key_write_exactly_one_event_each(db: Database, clock: FakeClock) -> None:
    """Claims ride in the audit batch: of 10 answers to each of 5 deliveries, one event per delivery."""
    log = AuditLog(db)
    try:
        outcomes = await asyncio.gather(
            *(log.record(event(clock, i), claim=f"k{i % 5}") for i in range(50)), return_exceptions=True
        )
    finally:
        await log.close()
    assert [isinstance(o, int) for o in outcomes[:5]] == [True] * 5  # the first answer to each key wins
    assert all(isinstance(o, deliveries.AlreadyClaimed) for o in outcomes[5:])
    assert await correlation_ids(db) == [f"c{i}" for i in range(5)]


async def test_a_failed_audit_write_leaves_the_delivery_unclaimed_so_a_retry_acts(
    db: Database, clock: FakeClock
) -> None:
    """The claim is never durable without its event: if the event cannot be written, neither is the claim."""
    last_seq = await break_the_chain_head(db)
    log = AuditLog(db)
    try:
        with pytest.raises(AuditWriteFailed):
            await log.record(event(clock, 1), claim="slack:command:T1")
        async with db.read() as session:
            assert await deliveries.seen(session, "slack:command:T1") is False
        await restore_the_chain_head(db, last_seq)
        assert await log.record(event(clock, 2), claim="slack:command:T1") > 0
        with pytest.raises(deliveries.AlreadyClaimed):
            await log.record(event(clock, 3), claim="slack:command:T1")
    finally:
        await log.close()
    async with db.read() as session:
        assert await deliveries.seen(session, "slack:command:T1") is True
    assert await correlation_ids(db) == ["c2"]


async def test_rolled_back_claim_leaves_no_trace(db: Database, clock: FakeClock) -> None:
    try:
        async with db.write() as session:
            assert await deliveries.claim(session, "in-tx", clock.now()) is True
            raise RuntimeError("the command's change failed")
    except RuntimeError:
        pass
    async with db.write() as session:
        assert await deliveries.claim(session, "in-tx", clock.now()) is True


async def test_long_keys_are_hashed_to_fit_and_stay_distinct(db: Database, clock: FakeClock) -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    async with db.write() as session:
        assert await deliveries.claim_many(session, [a, b, a], clock.now()) == {a, b}
        assert await deliveries.claim(session, a, clock.now()) is False


async def test_prune_forgets_keys_older_than_the_cutoff(db: Database, clock: FakeClock) -> None:
    async with db.write() as session:
        await deliveries.claim(session, "old", clock.now())
    clock.advance(days=2)
    async with db.write() as session:
        await deliveries.claim(session, "new", clock.now())
        assert await deliveries.prune(session, clock.now()) == 1
        assert await deliveries.claim(session, "old", clock.now()) is True
        assert await deliveries.claim(session, "new", clock.now()) is False
