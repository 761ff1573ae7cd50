"""Practitioners, their chat identities, and involvements with children."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Actor, Platform, Principal, Role
from store.db import dialect_insert
from store.tables.people import ChatIdentity, Practitioner
from store.tables.register import Involvement

CHUNK = 500
ACTIVE_STATUS, INACTIVE_STATUS = "active", "inactive"  # a practitioner's standing (``Practitioner.status``)


@dataclass(frozen=True, slots=True)
class PractitionerRow:
    id: str
    given_name: str
    family_name: str
    role: str
    organisation: str
    local_authority: str
    phone: str
    email: str
    roles: frozenset[Role]


@dataclass(frozen=True, slots=True)
class InvolvementRow:
    child_ref: int
    practitioner_id: str
    service: str
    started: date
    ended: date | None
    lead_professional: bool


def parse_roles(text: str) -> frozenset[Role]:
    return frozenset(Role(part.strip()) for part in text.split(";") if part.strip())


# What an Actor is made of: read as columns (no ORM object) on every command's path.
ACTOR_COLUMNS = (
    Practitioner.id,
    Practitioner.given_name,
    Practitioner.family_name,
    Practitioner.role,
    Practitioner.organisation,
    Practitioner.local_authority,
    Practitioner.roles,
    Practitioner.status,
    Practitioner.phone,
    Practitioner.email,
)


def actor_of(p: Any) -> Actor:
    """An Actor from a row holding ``ACTOR_COLUMNS``."""
    return Actor(
        practitioner_id=p.id,
        name=f"{p.given_name} {p.family_name}",
        role=p.role,
        organisation=p.organisation,
        local_authority=p.local_authority,
        roles=parse_roles(p.roles),
        status=p.status,
        phone=p.phone,
        email=p.email,
    )


async def upsert_practitioners(session: AsyncSession, rows: Sequence[PractitionerRow], now: datetime) -> int:
    """Insert or update practitioners by id; returns how many rows were new or changed."""
    if not rows:
        return 0
    existing: dict[str, tuple[object, ...]] = {}
    ids = [row.id for row in rows]
    for start in range(0, len(ids), CHUNK):
        result = await session.execute(select(Practitioner).where(Practitioner.id.in_(ids[start : start + CHUNK])))
        for p in result.scalars():
            existing[p.id] = _row_tuple(p)
    changes = [row for row in rows if existing.get(row.id) != _feed_tuple(row)]
    if not changes:
        return 0
    values = [
        {
            "id": r.id,
            "given_name": r.given_name,
            "family_name": r.family_name,
            "role": r.role,
            "organisation": r.organisation,
            "local_authority": r.local_authority,
            "phone": r.phone,
            "email": r.email,
            "roles": ";".join(sorted(r.roles)),
            "status": ACTIVE_STATUS,
            "updated_at": now,
        }
        for r in changes
    ]
    stmt = dialect_insert(session)(Practitioner.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Practitioner.id],
        # A new practitioner is active; a feed never changes one's standing: a leaver still listed by
        # a lagging feed stays gone (only ``signpost practitioner return`` brings them back).
        set_={c: stmt.excluded[c] for c in values[0] if c not in ("id", "status")},
    )
    await session.execute(stmt, values)
    return len(changes)


def _row_tuple(p: Practitioner) -> tuple[object, ...]:
    return (
        p.given_name,
        p.family_name,
        p.role,
        p.organisation,
        p.local_authority,
        p.phone,
        p.email,
        ";".join(sorted(parse_roles(p.roles))),
    )


def _feed_tuple(r: PractitionerRow) -> tuple[object, ...]:
    return (
        r.given_name,
        r.family_name,
        r.role,
        r.organisation,
        r.local_authority,
        r.phone,
        r.email,
        ";".join(sorted(r.roles)),
    )


async def upsert_involvements(session: AsyncSession, rows: Sequence[InvolvementRow]) -> int:
    """Insert or update involvements by (child, practitioner, service, started)."""
    if not rows:
        return 0
    keys = [(r.child_ref, r.practitioner_id, r.service, r.started) for r in rows]
    existing: dict[tuple[int, str, str, date], tuple[date | None, bool]] = {}
    key_cols = (Involvement.child_ref, Involvement.practitioner_id, Involvement.service, Involvement.started)
    for start in range(0, len(keys), CHUNK):
        result = await session.execute(
            select(*key_cols, Involvement.ended, Involvement.lead_professional).where(
                tuple_(*key_cols).in_(keys[start : start + CHUNK])
            )
        )
        for c, p, s, st, ended, lead in result:
            existing[(c, p, s, st)] = (ended, lead)
    changes = [r for r, k in zip(rows, keys, strict=True) if existing.get(k) != (r.ended, r.lead_professional)]
    if not changes:
        return 0
    stmt = dialect_insert(session)(Involvement.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key_cols),
        set_={"ended": stmt.excluded.ended, "lead_professional": stmt.excluded.lead_professional},
    )
    await session.execute(
        stmt,
        [
            {
                "child_ref": r.child_ref,
                "practitioner_id": r.practitioner_id,
                "service": r.service,
                "started": r.started,
                "ended": r.ended,
                "lead_professional": r.lead_professional,
            }
            for r in changes
        ],
    )
    return len(changes)


async def existing_ids(session: AsyncSession, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        result = await session.execute(select(Practitioner.id).where(Practitioner.id.in_(ids[start : start + CHUNK])))
        found.update(result.scalars())
    return found


async def all_ids(session: AsyncSession) -> set[str]:
    """Every practitioner id held (practitioners number in the hundreds of thousands at most)."""
    return set((await session.execute(select(Practitioner.id))).scalars())


async def get_actor(session: AsyncSession, practitioner_id: str) -> Actor | None:
    p = (await session.execute(select(*ACTOR_COLUMNS).where(Practitioner.id == practitioner_id))).first()
    return None if p is None else actor_of(p)


async def active_among(session: AsyncSession, ids: Collection[str]) -> set[str]:
    """Those of ``ids`` who are active practitioners now: the one test of "may still be told" at
    delivery (a notice for anyone else is not sent; see handlers/stand_in.py)."""
    if not ids:
        return set()
    found = await session.execute(
        select(Practitioner.id).where(Practitioner.id.in_(list(ids)), Practitioner.status == ACTIVE_STATUS)
    )
    return set(found.scalars())


async def recorded_email(session: AsyncSession, practitioner_id: str) -> str | None:
    """The practitioner's secure email as the register records it (for their own notices only)."""
    p = await session.get(Practitioner, practitioner_id)
    return None if p is None else p.email


async def link_identity(session: AsyncSession, principal: Principal, practitioner_id: str, now: datetime) -> None:
    session.add(
        ChatIdentity(
            platform=principal.platform.value,
            tenant=principal.tenant,
            user_id=principal.user_id,
            practitioner_id=practitioner_id,
            linked_at=now,
        )
    )
    await session.flush()


@dataclass(frozen=True, slots=True)
class Holders:
    """Who holds a role, and which role they were found by.

    ``role`` is the role asked for, or ``Role.ADMIN`` when the admin fallback answered, or None
    when nobody was found: a reply can then say truthfully who was told.
    """

    ids: tuple[str, ...]
    role: Role | None

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


async def holders(
    session: AsyncSession,
    role: Role,
    authority: str | None = None,
    *,
    fallback_to_admins: bool = True,
    excluding: Collection[str] = (),
) -> Holders:
    """The active practitioners holding ``role`` (for one local authority, or anywhere), by id.

    The one answer to "who is told": notices must reach someone, so by default an authority with
    no active holder (other than those ``excluding``, typically the practitioner concerned) falls
    back to every active admin, who may act for any authority. Pass ``fallback_to_admins=False``
    where a caller escalates to the admins itself. A notice someone must act on chooses among these
    those it can reach first (handlers/recipients.py).
    """
    found = await _holding(session, role, authority, excluding)
    if found or not fallback_to_admins or role is Role.ADMIN:
        return Holders(found, role if found else None)
    admins = await _holding(session, Role.ADMIN, None, excluding)
    return Holders(admins, Role.ADMIN if admins else None)


async def holding_in(session: AsyncSession, role: Role, authorities: Collection[str]) -> dict[str, tuple[str, ...]]:
    """The active practitioners holding ``role`` in each of these local authorities, by id (as
    ``holders`` finds them, with no fallback and nobody excluded), for many authorities in one
    statement; an authority with none is left out."""
    found: dict[str, list[str]] = {}
    if authorities:
        query = _role_query(role, Practitioner.local_authority).where(
            Practitioner.local_authority.in_(sorted(set(authorities)))
        )
        for pid, roles, authority in await session.execute(query):
            if _holds(roles, role):
                found.setdefault(authority, []).append(pid)
    return {authority: tuple(sorted(ids)) for authority, ids in found.items()}


def _role_query(role: Role, *more: Any) -> Select[Any]:
    # The LIKE only narrows the scan (admins are a handful among 330,000 practitioners); the
    # decision is the exact role after splitting the ';' list (``_holds``), so no role matches
    # inside another.
    return select(Practitioner.id, Practitioner.roles, *more).where(
        Practitioner.status == ACTIVE_STATUS, Practitioner.roles.contains(role.value, autoescape=True)
    )


def _holds(roles: str, role: Role) -> bool:
    return role.value in {part.strip() for part in roles.split(";")}


async def _holding(
    session: AsyncSession, role: Role, authority: str | None, excluding: Collection[str]
) -> tuple[str, ...]:
    query = _role_query(role)
    if authority is not None:
        query = query.where(Practitioner.local_authority == authority)
    if excluding:
        query = query.where(Practitioner.id.not_in(list(excluding)))
    rows = await session.execute(query)
    # Sorted here, not by ORDER BY: PostgreSQL's collation and SQLite's bytes could disagree.
    return tuple(sorted(pid for pid, roles in rows if _holds(roles, role)))


async def set_status(session: AsyncSession, practitioner_id: str, status: str) -> None:
    await session.execute(update(Practitioner).where(Practitioner.id == practitioner_id).values(status=status))


@dataclass(frozen=True, slots=True)
class LinkedIdentity:
    """A practitioner's link to one chat platform: ids and roles only, never a name."""

    practitioner_id: str
    local_authority: str
    roles: str
    platform: str
    status: str = ACTIVE_STATUS  # INACTIVE_STATUS once they have left (``signpost practitioner leave``)


async def linked_identities(session: AsyncSession, authority: str | None = None) -> list[LinkedIdentity]:
    """Every practitioner's chat links (optionally of one local authority), by id then platform."""
    stmt = (
        select(
            Practitioner.id,
            Practitioner.local_authority,
            Practitioner.roles,
            ChatIdentity.platform,
            Practitioner.status,
        )
        .join(ChatIdentity, ChatIdentity.practitioner_id == Practitioner.id)
        .order_by(Practitioner.id, ChatIdentity.platform)
    )
    if authority:
        stmt = stmt.where(Practitioner.local_authority == authority)
    return [LinkedIdentity(*row) for row in (await session.execute(stmt)).all()]


@dataclass(frozen=True, slots=True)
class Link:
    """A practitioner's chat account on one platform, and when it was linked."""

    account: Principal
    linked_at: datetime


async def links_on(session: AsyncSession, wanted: Collection[tuple[str, str]]) -> dict[tuple[str, str], Link]:
    """The accounts linked now to each (practitioner id, platform) of ``wanted``: one read through
    the links' unique (practitioner, platform) index, whatever their number."""
    if not wanted:
        return {}
    c = ChatIdentity
    stmt = select(c.practitioner_id, c.platform, c.tenant, c.user_id, c.linked_at).where(
        tuple_(c.practitioner_id, c.platform).in_(sorted(set(wanted)))
    )
    return {
        (pid, platform): Link(Principal(Platform(platform), tenant, user_id), linked_at)
        for pid, platform, tenant, user_id, linked_at in (await session.execute(stmt)).all()
    }
