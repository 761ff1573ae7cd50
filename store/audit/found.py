"""The child a practitioner's own search found shielded, read back from that search's audit event.

A shielded record found by name and date of birth is offered to its finder with buttons (Request
access, Send a message) that must not carry the child's reference: the finder never typed it and is
not to learn it. They carry the search's correlation id instead, and the event the search wrote
before it answered (``store.audit.log``) says which child it was. Only the practitioner who searched
can resolve it, and only for a while: the event's actor and time are part of the query.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Action, Outcome
from store.tables.audit import AuditEvent


async def shielded_found(
    session: AsyncSession, correlation_id: str, practitioner_id: str, since: datetime
) -> int | None:
    """The one child ``practitioner_id``'s search ``correlation_id`` found shielded no earlier than
    ``since``; None for anyone else's search, another kind of answer, or one older."""
    found = await session.execute(
        select(AuditEvent.subject_refs)
        .where(
            AuditEvent.correlation_id == correlation_id,  # indexed
            AuditEvent.actor_id == practitioner_id,
            AuditEvent.action == Action.SEARCH.value,
            AuditEvent.outcome == Outcome.SHIELDED.value,
            AuditEvent.at >= since,
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    refs = (found.scalar_one_or_none() or "").split()
    return int(refs[0]) if len(refs) == 1 else None
