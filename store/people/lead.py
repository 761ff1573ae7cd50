"""Who is told when a child is looked up: each authority's setting, the child's current
practitioners, and the looker's contact signpost (issue 18, part 1)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, String, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from handlers.vocabulary import Actor
from store.prepared import Prepared
from store.register.current import as_of, current
from store.tables.lifecycle import Meta
from store.tables.people import Practitioner
from store.tables.register import Child, Involvement

_SETTING_KEY = "lead_notices:"  # + the authority's name, in the meta table


class LeadNotices(StrEnum):
    """Who hears that a child of the authority was looked up."""

    OFF = "off"
    LEAD = "lead"  # the child's lead professional (the default)
    ALL = "all"  # every practitioner currently working with the child


DEFAULT = LeadNotices.LEAD


def _key(authority: str) -> str:
    return (_SETTING_KEY + authority)[:64]


# The reads of every lookup that finds a child, built once in Core (the ORM's per-call build costs
# about as much again as running them).
_META, _INVOLVEMENTS, _PEOPLE = Meta.__table__, Involvement.__table__, Practitioner.__table__
_CHILDREN = Child.__table__
_SETTING = select(_META.c.value).where(_META.c.key == bindparam("key"))


def _current(*columns: Any) -> Select[Any]:
    """``columns`` of the involvements current on the bound day (``store.register.current``: run it
    with ``as_of(now)``), of active practitioners: the one rule for who is working with a child now."""
    return (
        select(*columns)
        .join(_PEOPLE, _PEOPLE.c.id == _INVOLVEMENTS.c.practitioner_id)
        .where(current(_INVOLVEMENTS.c.ended), _PEOPLE.c.status == "active")
    )


_CURRENT = _current(_INVOLVEMENTS.c.practitioner_id, _INVOLVEMENTS.c.lead_professional).where(
    _INVOLVEMENTS.c.child_ref == bindparam("ref")
)
_RECIPIENTS = {
    LeadNotices.ALL: _CURRENT,
    LeadNotices.LEAD: _CURRENT.where(_INVOLVEMENTS.c.lead_professional.is_(True)),
}
_CONTACT = select(
    _PEOPLE.c.given_name,
    _PEOPLE.c.family_name,
    _PEOPLE.c.role,
    _PEOPLE.c.organisation,
    _PEOPLE.c.phone,
    _PEOPLE.c.email,
).where(_PEOPLE.c.id == bindparam("id"))


async def setting(session: AsyncSession, authority: str) -> LeadNotices:
    """The authority's setting (the default, lead professional only, until one is set)."""
    value = (await session.execute(_SETTING, {"key": _key(authority)})).scalar()
    return LeadNotices(value) if value is not None and value in LeadNotices._value2member_map_ else DEFAULT


async def set_setting(session: AsyncSession, authority: str, value: LeadNotices) -> None:
    await session.merge(Meta(key=_key(authority), value=value.value))
    await session.flush()


@dataclass(frozen=True, slots=True)
class Recipient:
    practitioner_id: str
    lead: bool  # lead professional for the child (else: another current practitioner)


async def recipients(
    session: AsyncSession, ref: int, who: LeadNotices, now: datetime, excluding: Collection[str] = ()
) -> list[Recipient]:
    """The active practitioners with an involvement current at ``now`` (lead only, or all) with the
    child, by id."""
    if who is LeadNotices.OFF:
        return []
    leads: dict[str, bool] = {}
    for pid, lead in await session.execute(_RECIPIENTS[who], {"ref": ref, **as_of(now)}):
        if pid not in excluding:
            leads[pid] = leads.get(pid, False) or bool(lead)
    return [Recipient(pid, leads[pid]) for pid in sorted(leads)]


async def leads_of(session: AsyncSession, refs: Collection[int], now: datetime) -> dict[int, tuple[str, ...]]:
    """Each child's active lead professionals with an involvement current at ``now`` (``recipients``
    with ``LeadNotices.LEAD``), by id, for many children in one statement; a child with none is left out."""
    found: dict[int, set[str]] = {}
    if refs:
        stmt = _current(_INVOLVEMENTS.c.child_ref, _INVOLVEMENTS.c.practitioner_id).where(
            _INVOLVEMENTS.c.lead_professional.is_(True), _INVOLVEMENTS.c.child_ref.in_(sorted(set(refs)))
        )
        for ref, pid in await session.execute(stmt, as_of(now)):
            found.setdefault(ref, set()).add(pid)
    return {ref: tuple(sorted(pids)) for ref, pids in found.items()}


async def standing(session: AsyncSession, refs: Collection[int], now: datetime) -> dict[tuple[int, str], bool]:
    """Who works with each of these children at ``now`` (``_current``: an active practitioner, an
    involvement current that day), by (child, practitioner id): whether as its lead professional.
    Only children a lookup would still tell anyone of: an archived (or destroyed) record has
    nobody (a lookup never reaches one, ``handlers.search``); a shielded one keeps its own.
    One statement however many children (the outbox asks it of a pass's lookup notices)."""
    found: dict[tuple[int, str], bool] = {}
    if refs:
        stmt = (
            _current(_INVOLVEMENTS.c.child_ref, _INVOLVEMENTS.c.practitioner_id, _INVOLVEMENTS.c.lead_professional)
            .join(_CHILDREN, _CHILDREN.c.ref == _INVOLVEMENTS.c.child_ref)
            .where(_INVOLVEMENTS.c.child_ref.in_(sorted(set(refs))), _CHILDREN.c.state == "active")
        )
        for ref, pid, is_lead in await session.execute(stmt, as_of(now)):
            found[(ref, pid)] = found.get((ref, pid), False) or bool(is_lead)
    return found


def setting_of(authority: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[str | None]:
    """An authority's setting as a column of a larger read (``children.enquire``): its meta row,
    keyed in SQL exactly as ``_key`` keys it (the prefix and the name, cut at 64 characters)."""
    key = func.substr(literal(_SETTING_KEY, String).concat(authority), 1, 64)
    return select(_META.c.value).where(_META.c.key == key).scalar_subquery()


_TOLD = Prepared(
    _CURRENT.add_columns(
        select(_META.c.value).where(_META.c.key == bindparam("key")).scalar_subquery().label("setting")
    )
)


@dataclass(frozen=True, slots=True)
class Told:
    """Who is to be told of a lookup (what they are told of the looker is the looker's own contact
    signpost, ``contact_of``: read with the looker's standing, not here)."""

    setting: LeadNotices
    recipients: list[Recipient]


async def told_of(session: AsyncSession, ref: int, authority: str, looker: str, now: datetime) -> Told:
    """``setting`` and ``recipients`` at ``now`` (never the ``looker``, a practitioner id), in one
    statement: a lookup's first question, asked of every child found once a grant lets a shielded
    child's lead be told (an unshielded child's read brings it, ``children.enquire``)."""
    rows = await _TOLD.all(session, {"ref": ref, "key": _key(authority), **as_of(now)})
    if not rows:
        return Told(DEFAULT, [])
    return told_from(rows[0].setting, [(r.practitioner_id, r.lead_professional) for r in rows], looker)


def told_from(setting: str | None, current: Iterable[tuple[str, bool]], looker: str) -> Told:
    """Who is told, from the authority's stored ``setting`` and the ``current`` involvements (active
    practitioner, current that day: id and lead flag), never the ``looker``: the one rule for ``told_of``
    and for a keyed enquiry that read them with the child (``children.enquire``)."""
    who = LeadNotices(setting) if setting is not None and setting in LeadNotices._value2member_map_ else DEFAULT
    leads: dict[str, bool] = {}
    for pid, lead in current:
        if who is LeadNotices.OFF or pid == looker or (who is LeadNotices.LEAD and not lead):
            continue
        leads[pid] = leads.get(pid, False) or bool(lead)
    return Told(who, [Recipient(pid, leads[pid]) for pid in sorted(leads)])


@dataclass(frozen=True, slots=True)
class Contact:
    """A practitioner's contact signpost: how a colleague reaches them, nothing more."""

    name: str
    role: str
    organisation: str
    phone: str
    email: str

    def __str__(self) -> str:
        ways = ", ".join(way for way in (self.phone, self.email) if way)
        return f"{self.name}, {self.role}, {self.organisation} ({ways})"


async def contact(session: AsyncSession, practitioner_id: str) -> Contact | None:
    """Columns, not an ORM object: read on the hot path of every lookup that tells someone."""
    p = (await session.execute(_CONTACT, {"id": practitioner_id})).first()
    if p is None:
        return None
    return _contact(p)


def _contact(p: Any) -> Contact:
    """A contact signpost from a row with the contact columns (``_CONTACT``'s)."""
    return Contact(f"{p.given_name} {p.family_name}", p.role, p.organisation, p.phone, p.email)


def contact_of(actor: Actor) -> Contact:
    """A practitioner's contact signpost from their standing (``practitioners.ACTOR_COLUMNS``)."""
    return Contact(actor.name, actor.role, actor.organisation, actor.phone, actor.email)
