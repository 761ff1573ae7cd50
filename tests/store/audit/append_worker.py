"""A stand-in bot replica for the concurrency test: appends N events to the given store, then exits.

Half go through the group-committing AuditLog (many at once), half through ``append`` in their own
write transactions, as changing commands do.

Two barriers make the overlap certain rather than likely (on a loaded machine one process could
otherwise finish before the other was scheduled): the worker says ``ready`` once connected and
waits for ``go`` on its standard input; then it appends its first batch, says ``started`` and waits
for ``go`` again. The test releases both workers together each time, so both have events in the
chain before either writes the rest, and the rest (most of the events) is written concurrently.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from store.audit.log import AuditLog, AuditRecord, append
from store.db import Database


def record(name: str, i: int) -> AuditRecord:
    return AuditRecord(
        at=datetime.now(UTC),
        actor_id=None,
        platform="console",
        tenant="replica",
        user_id=name,
        actor_role=None,
        actor_org=None,
        actor_la=None,
        channel="batch",
        action="help",
        outcome="info",
        subject_refs=(1000 + i,),
        result_count=0,
        correlation_id=uuid.uuid4().hex,
        terms=b"t%d" % i,
    )


async def barrier(said: str) -> None:
    """Tell the test we reached this point; go on only when it releases every worker."""
    print(said, flush=True)
    if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
        raise SystemExit(f"the test did not release the barrier after {said!r}")


async def main(url: str, n: int, name: str) -> None:
    db = Database.connect(url)
    log = AuditLog(db)
    try:
        async with db.read() as session:  # connected and warm before the first barrier
            await session.execute(text("SELECT 1"))
        await barrier("ready")
        half = n // 2
        batches = [range(start, min(start + 25, half)) for start in range(0, half, 25)]
        for number, batch in enumerate(batches):
            await asyncio.gather(*(log.record(record(name, i)) for i in batch))
            if number == 0:
                await barrier("started")
        for i in range(half, n):
            async with db.write() as session:
                await append(session, [record(name, i)])
    finally:
        await log.close()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
