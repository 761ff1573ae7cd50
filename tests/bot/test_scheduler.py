"""The server's standard scheduled tasks (bot/scheduler.py), run as the server runs them."""

from __future__ import annotations

from datetime import timedelta

from bot.app import Signpost
from bot.notify import Outbox
from bot.scheduler import Scheduler, standard_tasks
from handlers.clock import FakeClock
from store.delivery import deliveries


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
