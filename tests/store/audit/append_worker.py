"""A stand-in bot replica for the concurrency test: appends N events to the given store, then exits.

Half go through the group-committing AuditLog (many at once), half through ``append`` in their own
write transactions, as changing commands do.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime

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


async def main(url: str, n: int, name: str) -> None:
    db = Database.connect(url)
    log = AuditLog(db)
    try:
        half = n // 2
        for start in range(0, half, 25):
            await asyncio.gather(*(log.record(record(name, i)) for i in range(start, min(start + 25, half))))
        for i in range(half, n):
            async with db.write() as session:
                await append(session, [record(name, i)])
    finally:
        await log.close()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
