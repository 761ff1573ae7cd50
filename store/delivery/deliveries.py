"""Processed delivery and click ids, so a redelivered request or a double click acts once.

A front end puts the platform's id for one delivery (Slack's trigger id, event id, or the clicked
button's place in its message) on ``Command.idempotency_key``; the dispatcher claims it as the
sending account's (``account_key``) when it records the command's audit event. A claim that
finds the key already taken means "seen before": no second effect and no second audit event.
Commands that write claim inside their own transaction, so the claim, the change and the event
commit together; read-only commands claim in the audit log's group-committed batch
(``store.audit.log.AuditLog.record``), so the claim and the event commit together. Either way a
request is never "seen" without its audit event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database, dialect_insert
from store.prepared import Prepared
from store.tables.delivery import KEY_LENGTH as DELIVERY_KEY_LENGTH
from store.tables.delivery import Delivery
from store.tables.people import PARKED_KEY_LENGTH

log = structlog.get_logger("signpost.deliveries")
# A delivery id is kept as it is only when every column that keeps one can hold it (a parked
# command's is the shorter): one id kept two ways (as it is here, hashed there) was not recognised
# when the parked command resumed, and a redelivery after the code ran the command again.
KEY_LENGTH = min(DELIVERY_KEY_LENGTH, PARKED_KEY_LENGTH)
# How long a delivery id is remembered. Slack and Teams stop retrying within minutes; a week also
# covers a second click on an old message (its effect is then "already decided", not a repeat).
KEEP = timedelta(days=7)


_DELIVERIES = Delivery.__table__


class AlreadyClaimed(Exception):
    """The delivery id was claimed first by another answer to the same request."""


def stored_key(key: str) -> str:
    """Keys longer than the columns are hashed, so any platform id fits and stays unique; so are keys
    holding a character no database can keep (a NUL in a forged trigger id failed the command on
    PostgreSQL)."""
    if len(key) <= KEY_LENGTH and key.isprintable():
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class Delivered(Protocol):
    """A request as a front end delivered it: who sent it and the platform's id for it."""

    @property
    def principal(self) -> object: ...

    @property
    def idempotency_key(self) -> str | None: ...


def account_key(request: Delivered) -> str | None:
    """The delivery id a request is claimed by: the sending account's own. A retry of one person's
    request carries its id again and acts once; another account's request carrying the same id (a
    forged or reused one) is a request of its own, answered and audited, not dropped as a
    duplicate of someone else's. The id is taken as kept (``stored_key``), so a parked command's
    id, kept hashed, is the same delivery when it resumes."""
    if request.idempotency_key is None:
        return None
    return f"{request.principal}:{stored_key(request.idempotency_key)}"


async def claim_many(session: AsyncSession, keys: Sequence[str], now: datetime) -> set[str]:
    """Insert the keys not seen before (in the caller's transaction); returns those that were new."""
    unique = list(dict.fromkeys(stored_key(k) for k in keys))
    if not unique:
        return set()
    # Core's insert with the keys as executemany parameters: one multi-row statement, compiled
    # once (``.values(rows)`` has no cache key and was compiled afresh on every call).
    rows = [{"key": k, "seen_at": now} for k in unique]
    stmt = dialect_insert(session)(_DELIVERIES)
    stmt = stmt.on_conflict_do_nothing(index_elements=[_DELIVERIES.c.key]).returning(_DELIVERIES.c.key)
    result = await session.execute(stmt, rows)
    fresh = set(result.scalars())
    return {k for k in keys if stored_key(k) in fresh}


async def claim(session: AsyncSession, key: str, now: datetime) -> bool:
    """True when this key is new (and is now taken), False when it was processed before."""
    return key in await claim_many(session, [key], now)


# Built once, in Core: every read-only command asks this (a statement built per call, through the
# ORM, costs about as much again as running it).
# ``key``: a stored key (``stored_key``). Read-only commands ask it with the asker's standing
# (``store.people.standing``), in the statement that reads who is asking.
SEEN = select(_DELIVERIES.c.key).where(_DELIVERIES.c.key == bindparam("key"))
_SEEN = Prepared(SEEN)


async def seen(session: AsyncSession, key: str) -> bool:
    """Whether this key was claimed already (a read: the claim itself is made with the event)."""
    return await _SEEN.first(session, {"key": stored_key(key)}) is not None


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
