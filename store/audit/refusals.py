"""Free text refused for naming a child, counted from the audit.

A refusal of a relayed message, an answer, an access request's purpose or a denial reason because
it names the child (``handlers.access.screening``) is its command's own audit event, whose detail
starts with ``IDENTITY_REFUSED``. Counting those events (one practitioner's, indexed by
``(actor_id, at)``, about one child) needs no table of its own and keeps no refused text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.tables.audit import AuditEvent, AuditSubject
from store.tables.people import Practitioner

IDENTITY_REFUSED = "identity refused"  # how the detail of every such event starts
# A text refused for giving any child's reference, date of birth or postcode, read from the text
# alone (``handlers.access.screening.refuse_details``): audited, never counted (it answers no guess).
DETAILS_REFUSED = "details refused"
# A text refused for holding the writer's own current authenticator code
# (``handlers.access.screening.refuse_code``): audited, never counted (it reads nothing of any child).
CODE_REFUSED = "code refused"


def refused_detail(what: str) -> str:
    """The audit detail of a refusal: ``identity refused: purpose`` (``what`` is fixed text, never input)."""
    return f"{IDENTITY_REFUSED}: {what}"


async def hold_practitioner(session: AsyncSession, practitioner_id: str) -> None:
    """Lock the practitioner's row until this transaction ends, so that two of their commands at once
    cannot both count before either's event is written. PostgreSQL only: SQLite runs one writing
    transaction at a time (BEGIN IMMEDIATE), and SQLAlchemy leaves FOR UPDATE out there."""
    await session.execute(select(Practitioner.id).where(Practitioner.id == practitioner_id).with_for_update())


async def identity_refusals(session: AsyncSession, actor_id: str, ref: int, since: datetime) -> int:
    """How many of this practitioner's texts about this child were refused for naming it since ``since``."""
    stmt = (
        select(func.count())
        .select_from(AuditEvent)
        .join(AuditSubject, AuditSubject.seq == AuditEvent.seq)
        .where(
            AuditEvent.actor_id == actor_id,
            AuditEvent.at >= since,
            AuditEvent.detail.startswith(IDENTITY_REFUSED, autoescape=True),
            AuditSubject.child_ref == ref,
        )
    )
    return int((await session.execute(stmt)).scalar_one())


async def identity_refusals_since(
    session: AsyncSession, actor_id: str, since: datetime, until: datetime
) -> tuple[int, int]:
    """(texts refused for naming a child, distinct children they were about) of one practitioner's in
    ``[since, until)``: the misuse rule ``identity_guessing`` (through the ``(actor_id, at)`` index)."""
    stmt = (
        select(func.count(func.distinct(AuditEvent.seq)), func.count(func.distinct(AuditSubject.child_ref)))
        .select_from(AuditEvent)
        .join(AuditSubject, AuditSubject.seq == AuditEvent.seq)
        .where(
            AuditEvent.actor_id == actor_id,
            AuditEvent.at >= since,
            AuditEvent.at < until,
            AuditEvent.detail.startswith(IDENTITY_REFUSED, autoescape=True),
        )
    )
    texts, children = (await session.execute(stmt)).one()
    return int(texts), int(children)
