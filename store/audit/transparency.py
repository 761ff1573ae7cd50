"""Counts for the public transparency report: a handful of grouped queries per month, no rows.

Every query here is bounded by an indexed range on ``audit_events.at`` (``[start, end)``, computed
by the caller, so month bucketing is the same on SQLite and PostgreSQL) and GROUPs in the database;
none runs once per event, practitioner or child. What comes back is raw counts keyed by authority,
role, action and outcome: the caller suppresses small numbers before anything leaves handlers/.
Misuse alerts and retention runs keep their figures in ``detail`` ("rule: actor", "archived N
destroyed M …"), so those are grouped by ``detail`` and read by the caller.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Platform
from store.audit.chain import current_head, utc
from store.register.feeds import authority_names
from store.tables.audit import AuditChainEntry, AuditCheckpoint, AuditEvent
from store.tables.people import Practitioner

CHAT_PLATFORMS = tuple(platform.value for platform in Platform)


@dataclass(frozen=True, slots=True)
class ActionCount:
    authority: str | None  # the actor's local authority; None for events no practitioner sent
    action: str
    outcome: str
    count: int
    about_a_child: bool = False  # the events name a child: e.g. a decision on an access request, not a registration


@dataclass(frozen=True, slots=True)
class DetailCount:
    authority: str | None  # the actor's local authority; None for events no practitioner sent
    detail: str
    events: int
    results: int  # their ``result_count``s summed


@dataclass(frozen=True, slots=True)
class RoleCount:
    authority: str | None  # None: the national figure (distinct people across every authority)
    role: str
    count: int


@dataclass(frozen=True, slots=True)
class ChainAt:
    """The audit chain as it stood at a moment: its length and head, and the last signed checkpoint."""

    size: int
    head_hash: bytes | None
    checkpoint_size: int | None
    checkpoint_head: bytes | None
    checkpoint_at: datetime | None
    first_at: datetime | None = None  # the oldest event still in the audit (None: empty): where reports begin


def _in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(AuditEvent.at >= start, AuditEvent.at < end)


authorities = authority_names  # the authorities practitioners belong to: the report's only columns


async def action_counts(
    session: AsyncSession, start: datetime, end: datetime, actions: Collection[str]
) -> list[ActionCount]:
    """Events in ``[start, end)`` of these actions, grouped by authority, action, outcome and whether
    they name a child (an approval of an access request does; of a registration, none)."""
    named = case((AuditEvent.subject_refs == "", 0), else_=1).label("names_a_child")  # grouped by its name
    stmt = (
        select(AuditEvent.actor_la, AuditEvent.action, AuditEvent.outcome, named, func.count())
        .where(_in(start, end), AuditEvent.action.in_(sorted(actions)))
        .group_by(AuditEvent.actor_la, AuditEvent.action, AuditEvent.outcome, named)
    )
    return [
        ActionCount(la, action, outcome, int(n), bool(child))
        for la, action, outcome, child, n in await session.execute(stmt)
    ]


async def detail_counts(session: AsyncSession, start: datetime, end: datetime, action: str) -> list[tuple[str, int]]:
    """Events of one action in ``[start, end)``, grouped by their detail text."""
    stmt = (
        select(AuditEvent.detail, func.count())
        .where(_in(start, end), AuditEvent.action == action)
        .group_by(AuditEvent.detail)
    )
    return [(detail or "", int(n)) for detail, n in await session.execute(stmt)]


async def detail_counts_by_authority(
    session: AsyncSession, start: datetime, end: datetime, action: str
) -> list[DetailCount]:
    """Events of one action in ``[start, end)``, grouped by authority and detail: how many, and
    their result counts summed (e.g. lead professionals told: "2 lead, 1 other (all)")."""
    stmt = (
        select(AuditEvent.actor_la, AuditEvent.detail, func.count(), func.sum(AuditEvent.result_count))
        .where(_in(start, end), AuditEvent.action == action)
        .group_by(AuditEvent.actor_la, AuditEvent.detail)
    )
    return [
        DetailCount(la, detail or "", int(n), int(told or 0)) for la, detail, n, told in await session.execute(stmt)
    ]


async def active_by_role(session: AsyncSession, start: datetime, end: datetime) -> list[RoleCount]:
    """Distinct practitioners who sent at least one chat command in ``[start, end)``, by role:
    per authority, and nationally (authority None) counted once each however many they belong to."""
    where = [_in(start, end), AuditEvent.actor_id.is_not(None), AuditEvent.platform.in_(CHAT_PLATFORMS)]
    role = func.coalesce(AuditEvent.actor_role, "")
    people = func.count(distinct(AuditEvent.actor_id))
    local = select(AuditEvent.actor_la, role, people).where(*where).group_by(AuditEvent.actor_la, role)
    national = select(role, people).where(*where).group_by(role)
    rows = [RoleCount(la, r, int(n)) for la, r, n in await session.execute(local) if la is not None]
    rows += [RoleCount(None, r, int(n)) for r, n in await session.execute(national)]
    return rows


async def registered_by_role(session: AsyncSession) -> list[RoleCount]:
    """Active practitioners on the register now, by authority and role (authority None: national)."""
    active = Practitioner.status == "active"
    local = (
        select(Practitioner.local_authority, Practitioner.role, func.count())
        .where(active)
        .group_by(Practitioner.local_authority, Practitioner.role)
    )
    rows = [RoleCount(la, role, int(n)) for la, role, n in await session.execute(local)]
    national: dict[str, int] = {}
    for row in rows:
        national[row.role] = national.get(row.role, 0) + row.count
    return rows + [RoleCount(None, role, n) for role, n in national.items()]


async def authorities_of(session: AsyncSession, practitioner_ids: Iterable[str]) -> dict[str, str]:
    """Each named practitioner's local authority (one query; unknown ids are left out)."""
    ids = sorted(set(practitioner_ids))
    if not ids:
        return {}
    stmt = select(Practitioner.id, Practitioner.local_authority).where(Practitioner.id.in_(ids))
    return {pid: la for pid, la in await session.execute(stmt)}


async def chain_at(session: AsyncSession, end: datetime) -> ChainAt:
    """The chain head after the last event recorded before ``end``, and the last checkpoint signed before it.

    The last event is found backwards along the ``at`` index. The chain's size there is counted over
    whichever side of it is shorter (the entries up to it, or the current size less those after it),
    so a recent month's report counts a month of entries, not the whole log. The oldest event's time
    comes in the same statement (the first entry of the ``at`` index).
    """
    last = (
        select(AuditEvent.seq)
        .where(AuditEvent.at < end)
        .order_by(AuditEvent.at.desc(), AuditEvent.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    oldest = select(func.min(AuditEvent.at)).scalar_subquery()
    last_seq, first = (await session.execute(select(last, oldest))).one()
    first_at = None if first is None else utc(first)
    size, head = 0, None
    if last_seq is not None:
        head = (
            await session.execute(select(AuditChainEntry.head_hash).where(AuditChainEntry.seq == last_seq))
        ).scalar()
        now = await current_head(session)
        entries = select(func.count()).select_from(AuditChainEntry)
        if 2 * last_seq >= now.last_seq:
            after = (await session.execute(entries.where(AuditChainEntry.seq > last_seq))).scalar() or 0
            size = now.size - int(after)
        else:
            size = int((await session.execute(entries.where(AuditChainEntry.seq <= last_seq))).scalar() or 0)
    checkpoint = (
        await session.execute(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.at < end)
            .order_by(AuditCheckpoint.at.desc(), AuditCheckpoint.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if checkpoint is None:
        return ChainAt(size, head, None, None, None, first_at)
    return ChainAt(size, head, checkpoint.size, checkpoint.head_hash, utc(checkpoint.at), first_at)
