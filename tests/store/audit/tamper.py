"""What an insider with raw database access could do to the audit tables (for tamper tests only)."""

from __future__ import annotations

from sqlalchemy import select, text, update

from store.audit.chain import CANONICAL_FIELDS, EMPTY_HEAD, HEAD_ID, leaf_hash, link
from store.db import Database
from store.tables.audit import AuditChainEntry, AuditChainHead, AuditEvent

PROTECTED = (
    "audit_events",
    "audit_subjects",
    "audit_candidates",
    "audit_chain",
    "audit_checkpoints",
    "audit_chain_head",
)


async def unprotect(db: Database) -> None:
    """Switch the append-only triggers off, as a superuser (PostgreSQL) or file owner (SQLite) can."""
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            for table in PROTECTED:
                await conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        else:
            result = await conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            for name in result.scalars().all():
                await conn.exec_driver_sql(f"DROP TRIGGER {name}")


async def run_sql(db: Database, *statements: str, **params: object) -> None:
    """Raw SQL in one transaction, bypassing Signpost."""
    async with db.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement), params)


async def rechain(db: Database) -> None:
    """Recompute every leaf, link and the head from the events as they now are: a careful forger."""
    async with db.engine.begin() as conn:
        columns = [getattr(AuditEvent, name) for name in CANONICAL_FIELDS]
        events = (await conn.execute(select(*columns).order_by(AuditEvent.seq))).mappings().all()
        head, prev, size = EMPTY_HEAD, 0, 0
        for event in events:
            leaf = leaf_hash(event)
            head = link(head, leaf)
            await conn.execute(
                update(AuditChainEntry)
                .where(AuditChainEntry.seq == event["seq"])
                .values(prev_seq=prev, leaf_hash=leaf, head_hash=head)
            )
            prev, size = event["seq"], size + 1
        await conn.execute(
            update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(size=size, last_seq=prev, head_hash=head)
        )
