"""Processed delivery ids: a key acts once, however many claims race for it (both backends)."""

from __future__ import annotations

import asyncio

from handlers.clock import FakeClock
from store.db import Database
from store.delivery import deliveries


async def test_a_key_is_new_once_then_seen(db: Database, clock: FakeClock) -> None:
    async with db.write() as session:
        assert await deliveries.claim(session, "slack:event:Ev1", clock.now()) is True
    async with db.write() as session:
        assert await deliveries.claim(session, "slack:event:Ev1", clock.now()) is False
        assert await deliveries.claim(session, "slack:event:Ev2", clock.now()) is True


async def test_concurrent_claims_of_one_key_through_the_claim_log_give_exactly_one_winner(
    db: Database, clock: FakeClock
) -> None:
    log = deliveries.ClaimLog(db)
    results = await asyncio.gather(*(log.claim(f"k{i % 5}", clock.now()) for i in range(50)))
    assert sum(results) == 5
    assert [results[i] for i in range(5)] == [True] * 5  # the first claimant of each key wins


async def test_released_key_can_act_again_and_rolled_back_claim_leaves_no_trace(db: Database, clock: FakeClock) -> None:
    log = deliveries.ClaimLog(db)
    assert await log.claim("click", clock.now()) is True
    await log.release("click")
    assert await log.claim("click", clock.now()) is True
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
