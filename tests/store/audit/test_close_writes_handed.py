"""An event handed to the audit writer is written even when its caller stops waiting for it (a
Ctrl-C, a drain that gave up): closing the writer finishes what it was handed before it stops, so a
command whose change committed apart (a code's verification) is not left without its event."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from handlers.clock import FakeClock
from handlers.vocabulary import Action, Origin
from store.audit.log import AuditLog, origin_event
from store.db import Database
from store.tables.audit import AuditEvent


async def count_events(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def test_an_event_whose_caller_was_cancelled_is_written_before_the_writer_closes(
    db: Database, clock: FakeClock
) -> None:
    log = AuditLog(db)
    before = await count_events(db)
    waiting = asyncio.ensure_future(log.record(origin_event(Origin.TERMINAL, Action.HELP, clock.now())))
    await asyncio.sleep(0)  # handed to the writer: queued, its caller waiting for it to be durable
    waiting.cancel()  # Ctrl-C: asyncio.run cancels the command's task
    await asyncio.gather(waiting, return_exceptions=True)
    await log.close()
    assert await count_events(db) == before + 1
