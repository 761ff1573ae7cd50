"""Processed delivery and click ids, so a redelivered request or a double click acts once.

A front end puts the platform's id for one delivery (Slack's trigger id, event id, or the clicked
button's place in its message) on ``Command.idempotency_key``; the dispatcher claims the key
before it runs the command. A claim that finds the key already taken means "seen before": no
second effect and no second audit event. Read-only commands claim through ``ClaimLog`` (group
commit, like the audit log, so a busy bot does not pay one disk flush per request); commands that
write claim inside their own transaction, so the claim and the change commit together.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database, dialect_insert
from store.tables.delivery import Delivery

log = structlog.get_logger("signpost.deliveries")
KEY_LENGTH = 200
MAX_BATCH = 512
# How long a delivery id is remembered. Slack and Teams stop retrying within minutes; a week also
# covers a second click on an old message (its effect is then "already decided", not a repeat).
KEEP = timedelta(days=7)


class ClaimFailed(Exception):
    """The claim could not be made durable; the command must not run."""


def stored_key(key: str) -> str:
    """Keys longer than the column are hashed, so any platform id fits and stays unique."""
    if len(key) <= KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


async def claim_many(session: AsyncSession, keys: Sequence[str], now: datetime) -> set[str]:
    """Insert the keys not seen before (in the caller's transaction); returns those that were new."""
    unique = list(dict.fromkeys(stored_key(k) for k in keys))
    if not unique:
        return set()
    stmt = (
        dialect_insert(session)(Delivery).on_conflict_do_nothing(index_elements=[Delivery.key]).returning(Delivery.key)
    )
    result = await session.execute(stmt, [{"key": k, "seen_at": now} for k in unique])
    fresh = set(result.scalars())
    return {k for k in keys if stored_key(k) in fresh}


async def claim(session: AsyncSession, key: str, now: datetime) -> bool:
    """True when this key is new (and is now taken), False when it was processed before."""
    return key in await claim_many(session, [key], now)


async def release(session: AsyncSession, key: str) -> None:
    """Forget a key, so the same delivery may act again (e.g. it only asked for a step-up code)."""
    await session.execute(delete(Delivery).where(Delivery.key == stored_key(key)))


async def prune(session: AsyncSession, before: datetime) -> int:
    """Drop keys older than ``before`` (platform retries stop within minutes); returns how many."""
    result = await session.execute(delete(Delivery).where(Delivery.seen_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # CursorResult has rowcount


async def forget_old(db: Database, now: datetime, keep: timedelta = KEEP) -> int:
    """The scheduled clean-up: drop ids seen more than ``keep`` ago; returns how many."""
    async with db.write() as session:
        dropped = await prune(session, now - keep)
    if dropped:
        log.info("deliveries_pruned", count=dropped)
    return dropped


class ClaimLog:
    """Group-committing claims for read-only commands.

    Claims that arrive while a batch is being written wait and go in the next batch; each caller
    learns whether its key was new. The writer task exits when the queue is empty, so there is
    nothing to close.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[tuple[str, datetime, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    async def claim(self, key: str, now: datetime) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.append((key, now, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="delivery-claims")
        return await future

    async def release(self, key: str) -> None:
        async with self._db.write() as session:
            await release(session, key)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
            try:
                async with self._db.write() as session:
                    fresh = await claim_many(session, [key for key, _, _ in batch], batch[0][1])
            except Exception as exc:
                log.error("delivery_claims_failed", size=len(batch), error=type(exc).__name__)
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(ClaimFailed("the delivery id could not be recorded"))
                continue
            for key, _, future in batch:
                # The same key twice in one batch: only its first claimant is new.
                new = key in fresh
                fresh.discard(key)
                if not future.done():
                    future.set_result(new)
