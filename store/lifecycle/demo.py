"""Whether this store is a disposable demo store, the only kind the development clock may touch.

The dev clock (``SIGNPOST_DEV_CLOCK=1`` in the console) moves Signpost's time forward for real: it
can destroy children early, advance the key chains irreversibly, and write future-dated audit
events. So it runs only on a store that ``seed-demo`` created from nothing and marked so; a store
that held anything before seeding is never marked, and a real import removes the mark.
"""

from __future__ import annotations

from sqlalchemy import delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Action
from store.db import Database
from store.tables.audit import AuditChainEntry, AuditEvent
from store.tables.base import Base
from store.tables.lifecycle import Meta
from store.tables.people import Practitioner
from store.tables.register import Child, Involvement

DISPOSABLE = "disposable_demo"
# Rows every store has from the moment it is migrated, which say nothing about use.
_BOOKKEEPING = frozenset({"meta", "audit_chain_head", "name_counts", "alembic_version"})


async def holds_anything(session: AsyncSession) -> bool:
    """True when any table (but the store's own bookkeeping) has a row. The events of seed-demo
    itself say nothing about use: a seed cut short (killed mid-import) leaves only its 'started'
    (and that event's link in the chain), and the next seed may still mark the store."""
    for table in Base.metadata.sorted_tables:
        if table.name in _BOOKKEEPING or table.name == AuditChainEntry.__tablename__:
            continue
        count = select(func.count()).select_from(table)
        if table.name == AuditEvent.__tablename__:
            count = count.where(AuditEvent.action != Action.SEED_DEMO.value)
        if (await session.execute(count)).scalar_one():
            return True
    return False


async def holds_a_register(db: Database) -> bool:
    """True when any child, practitioner or involvement is stored (what a feed import writes)."""
    async with db.read() as session:
        for table in (Child, Practitioner, Involvement):
            if (await session.execute(select(literal(1)).select_from(table).limit(1))).first() is not None:
                return True
    return False


async def may_mark(db: Database) -> bool:
    """Before seeding: True when the store is already a disposable demo store, or holds nothing at all."""
    if await is_disposable(db):
        return True
    async with db.read() as session:
        return not await holds_anything(session)


async def is_disposable(db: Database) -> bool:
    async with db.read() as session:
        return (await session.execute(select(Meta.value).where(Meta.key == DISPOSABLE))).scalar() is not None


async def mark_disposable(session: AsyncSession, seeded_at: str) -> None:
    """Record, in the seed's own transaction, that seed-demo created this store from nothing (call
    only when it was empty): a seed killed after its commit leaves the store marked, as it is."""
    await session.merge(Meta(key=DISPOSABLE, value=seeded_at))


async def unmark(session: AsyncSession) -> None:
    """Data came in (an import, in the importing transaction): this store is no longer disposable."""
    await session.execute(delete(Meta).where(Meta.key == DISPOSABLE))
