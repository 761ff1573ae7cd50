"""Misuse detection's store: alerts already raised (one row per alert; each rule's alerts about a
practitioner form a chain, each keyed by the one before it, so two replicas raising the same alert
claim the same key and one wins) and the indexed counts the rules ask for."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from handlers.vocabulary import (
    BAD_CHECK_DIGIT,
    LOOKUP_ACTIONS,
    NOT_ACTIVE_DETAIL,
    ORIGINS,
    REACHED_OUTCOMES,
    Action,
    Outcome,
    Platform,
)
from store.audit.chain import utc
from store.audit.refusals import IDENTITY_REFUSED
from store.db import dialect_insert
from store.tables.audit import AuditEvent, AuditSubject, MisuseAlert
from store.tables.people import ChatIdentity
from store.tables.register import Child, Involvement


@dataclass(frozen=True, slots=True)
class Raised:
    """The latest alert of one rule about one practitioner."""

    dedupe_key: str
    raised_at: datetime


async def claim(session: AsyncSession, dedupe_key: str, rule: str, actor_id: str, now: datetime) -> bool:
    """Record an alert; False when this key was already claimed, by any replica (a racing claim
    waits for the other's transaction, then finds its row)."""
    result = await session.execute(
        dialect_insert(session)(MisuseAlert)
        .values(dedupe_key=dedupe_key, rule=rule, actor_id=actor_id, raised_at=utc(now))  # SQLite keeps no offset
        .on_conflict_do_nothing(index_elements=[MisuseAlert.dedupe_key])
        .returning(MisuseAlert.dedupe_key)
    )
    return result.first() is not None


async def raised_about(session: AsyncSession, dedupe_key: str) -> str | None:
    """The practitioner the alert claimed as ``dedupe_key`` is about (None if no such alert)."""
    found = select(MisuseAlert.actor_id).where(MisuseAlert.dedupe_key == dedupe_key)
    return (await session.execute(found)).scalar_one_or_none()


async def last_raised(session: AsyncSession, actor_id: str, rules: Collection[str]) -> dict[str, Raised]:
    """Per rule, the latest alert about this practitioner (by any replica): one read through the
    index on ``actor_id`` (a practitioner has few alerts, or none)."""
    if not rules:
        return {}
    result = await session.execute(
        select(MisuseAlert.rule, MisuseAlert.dedupe_key, MisuseAlert.raised_at)
        .where(MisuseAlert.actor_id == actor_id, MisuseAlert.rule.in_(sorted(rules)))
        .order_by(MisuseAlert.raised_at, MisuseAlert.dedupe_key)
    )
    return {rule: Raised(key, utc(at)) for rule, key, at in result}  # the last of each rule stays


# -- the counts the rules need: each one indexed by (actor_id, at) on audit_events -------------------

# Lookups count when they reached the register (``REACHED_OUTCOMES``). A step-up challenge
# ("challenged") only asked for a code: the same query runs again once it is given, so counting
# both would make one lookup two (and put a repeated name in the middle of a sweep). Refusals
# reached nothing.
REQUEST_ACTIONS = (Action.REQUEST_ACCESS, "request", "access_request")  # and earlier spellings


def _states_a_purpose() -> ColumnElement[bool]:
    """An event in which the actor said why they want a shielded child: an access request made
    (whatever a duty manager then decided), or a relay message passed on to the child's lead (the
    shielded answer offers both). A request or a relay message refused (a name in it, too short,
    the rate limit) was neither made nor passed on: no duty manager read a purpose."""
    made = AuditEvent.outcome == Outcome.DONE
    return and_(or_(AuditEvent.action.in_(REQUEST_ACTIONS), AuditEvent.action == Action.RELAY_MESSAGE), made)


def _from_chat() -> ColumnElement[bool]:
    """Events a chat user sent: not one of the origins (terminal, scheduler, enrolment page, batch)."""
    return AuditEvent.platform.not_in(sorted(ORIGINS))


def _involved(actor_id: str) -> ColumnElement[bool]:
    """The subject is a child the actor works or worked with: looking them up is their own work."""
    return (
        select(Involvement.id)
        .where(Involvement.child_ref == AuditSubject.child_ref, Involvement.practitioner_id == actor_id)
        .exists()
    )


def _lookups(actor_id: str, start: datetime, end: datetime) -> Select[int]:
    return select(AuditEvent.seq).where(
        AuditEvent.actor_id == actor_id,
        AuditEvent.at >= start,
        AuditEvent.at <= end,
        AuditEvent.action.in_(LOOKUP_ACTIONS),
        AuditEvent.outcome.in_(REACHED_OUTCOMES),
    )


async def children_looked_up(session: AsyncSession, actor_id: str, start: datetime, end: datetime) -> int:
    """Distinct children an actor's lookups and searches returned or touched in [start, end]."""
    seqs = _lookups(actor_id, start, end).subquery()
    result = await session.execute(
        select(func.count(func.distinct(AuditSubject.child_ref))).where(AuditSubject.seq.in_(select(seqs.c.seq)))
    )
    return int(result.scalar_one())


async def lookup_subjects(
    session: AsyncSession, actor_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """(time, child) for each child each of an actor's lookups touched: for baselines."""
    result = await session.execute(
        select(AuditEvent.at, AuditSubject.child_ref)
        .join(AuditSubject, AuditSubject.seq == AuditEvent.seq)
        .where(
            AuditEvent.actor_id == actor_id,
            AuditEvent.at >= start,
            AuditEvent.at < end,
            AuditEvent.action.in_(LOOKUP_ACTIONS),
            AuditEvent.outcome.in_(REACHED_OUTCOMES),
        )
    )
    return [(at, ref) for at, ref in result]


def guessed_reference() -> ColumnElement[bool]:
    """A lookup of a reference that failed its check digit (``invalid``): it reached nothing, but
    someone walking references (999 000 1000, 1001, …) types mostly these, so probing counts them."""
    return and_(
        AuditEvent.action == Action.LOOKUP, AuditEvent.outcome == Outcome.INVALID, AuditEvent.detail == BAD_CHECK_DIGIT
    )


async def outcomes(session: AsyncSession, actor_id: str, start: datetime, end: datetime) -> dict[str, int]:
    """How many of an actor's lookups and searches in [start, end] ended in each outcome (a
    reference that failed its check digit counted as ``invalid``)."""
    result = await session.execute(
        select(AuditEvent.outcome, func.count())
        .where(
            AuditEvent.actor_id == actor_id,
            AuditEvent.at >= start,
            AuditEvent.at <= end,
            AuditEvent.action.in_(LOOKUP_ACTIONS),
            or_(AuditEvent.outcome.in_(REACHED_OUTCOMES), guessed_reference()),
        )
        .group_by(AuditEvent.outcome)
    )
    return {outcome: int(n) for outcome, n in result}


async def recent_searches(
    session: AsyncSession, actor_id: str, start: datetime, end: datetime, limit: int
) -> list[tuple[bytes | None, str | None]]:
    """The sealed terms of an actor's last ``limit`` demographic searches in [start, end], oldest first.

    Searches whose terms were withheld (they named a destroyed cohort: nothing to read) are passed
    over, so that slipping such searches between the steps of a sweep does not hide it."""
    result = await session.execute(
        select(AuditEvent.terms, AuditEvent.terms_key)
        .where(
            AuditEvent.actor_id == actor_id,
            AuditEvent.terms.is_not(None),
            AuditEvent.at >= start,
            AuditEvent.at <= end,
            AuditEvent.action == Action.SEARCH,
            AuditEvent.outcome.in_(REACHED_OUTCOMES),
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.seq.desc())
        .limit(limit)
    )
    return [(terms, key) for terms, key in reversed(result.all())]


async def out_of_area_children(
    session: AsyncSession, actor_id: str, local_authority: str, start: datetime, end: datetime
) -> int:
    """Distinct children outside the actor's authority, none involving them, whose records they saw."""
    seqs = _lookups(actor_id, start, end).where(AuditEvent.outcome.in_((Outcome.ANSWERED, Outcome.SHIELDED))).subquery()
    result = await session.execute(
        select(func.count(func.distinct(AuditSubject.child_ref)))
        .join(Child, Child.ref == AuditSubject.child_ref)
        .where(
            AuditSubject.seq.in_(select(seqs.c.seq)),
            Child.local_authority != local_authority,
            ~_involved(actor_id),
        )
    )
    return int(result.scalar_one())


async def lookup_times(session: AsyncSession, actor_id: str, start: datetime, end: datetime) -> list[datetime]:
    result = await session.execute(
        select(AuditEvent.at).where(
            AuditEvent.actor_id == actor_id,
            AuditEvent.at >= start,
            AuditEvent.at <= end,
            AuditEvent.action.in_(LOOKUP_ACTIONS),
            AuditEvent.outcome.in_(REACHED_OUTCOMES),
        )
    )
    return list(result.scalars())


def _only_their_own(actor_id: str) -> ColumnElement[bool]:
    """The event touched children, and every one of them is a child the actor works or worked with."""
    touched = select(AuditSubject.seq).where(AuditSubject.seq == AuditEvent.seq)
    return and_(touched.exists(), ~touched.where(~_involved(actor_id)).exists())


async def lookup_times_not_their_own(
    session: AsyncSession, actor_id: str, start: datetime, end: datetime
) -> list[datetime]:
    """When an actor's lookups in [start, end] reached the register, leaving out those that touched
    only children they are involved with (their own work); one that found no child counts."""
    result = await session.execute(
        _lookups(actor_id, start, end).with_only_columns(AuditEvent.at).where(~_only_their_own(actor_id))
    )
    return list(result.scalars())


async def shielded_without_request(session: AsyncSession, actor_id: str, start: datetime, end: datetime) -> int:
    """Distinct shielded children an actor reached in [start, end] with no stated purpose: never
    involved with them, never requesting access to them, never sending their lead a relay message."""
    hits = _lookups(actor_id, start, end).where(AuditEvent.outcome == Outcome.SHIELDED).subquery()
    stated = (
        select(AuditSubject.child_ref)
        .join(AuditEvent, AuditEvent.seq == AuditSubject.seq)
        .where(AuditEvent.actor_id == actor_id, _states_a_purpose())
    )
    result = await session.execute(
        select(func.count(func.distinct(AuditSubject.child_ref))).where(
            AuditSubject.seq.in_(select(hits.c.seq)), AuditSubject.child_ref.not_in(stated), ~_involved(actor_id)
        )
    )
    return int(result.scalar_one())


def _refused_as_gone() -> ColumnElement[bool]:
    """A command refused because its sender is recorded as having left (whatever the command)."""
    return and_(AuditEvent.outcome == Outcome.REFUSED, AuditEvent.detail == NOT_ACTIVE_DETAIL)


async def used_after_leaving(session: AsyncSession, actor_id: str, start: datetime, end: datetime) -> int:
    """Commands sent in [start, end] from a chat account of a practitioner recorded as gone (each
    refused). The console is no such account: whoever uses it holds the host, and acting there as
    someone who left is an operator's doing, not an account someone else still holds."""
    result = await session.execute(
        select(func.count()).where(
            AuditEvent.actor_id == actor_id,
            AuditEvent.at >= start,
            AuditEvent.at <= end,
            _from_chat(),
            AuditEvent.platform != Platform.CONSOLE.value,
            _refused_as_gone(),
        )
    )
    return int(result.scalar_one())


async def _from_chat_count(
    session: AsyncSession, actor_id: str, start: datetime, end: datetime, which: ColumnElement[bool]
) -> int:
    """How many of an actor's events from chat in [start, end] are ``which``."""
    result = await session.execute(
        select(func.count()).where(
            AuditEvent.actor_id == actor_id, AuditEvent.at >= start, AuditEvent.at <= end, _from_chat(), which
        )
    )
    return int(result.scalar_one())


def _lockout() -> ColumnElement[bool]:
    """A step-up lockout: a ``code`` event whose outcome is ``locked``."""
    return and_(AuditEvent.action == Action.CODE, AuditEvent.outcome == Outcome.LOCKED)


async def lockouts(session: AsyncSession, actor_id: str, start: datetime, end: datetime) -> int:
    """An actor's step-up lockouts in [start, end] (``_lockout``)."""
    return await _from_chat_count(session, actor_id, start, end, _lockout())


def _reset_tried() -> ColumnElement[bool]:
    """A ``totp_reset`` event that is a reset tried: done or refused. Not the ``challenged`` event
    of a reset that asked for a fresh code first (each such reset writes both), nor a malformed one
    answered with its usage."""
    return and_(AuditEvent.action == Action.TOTP_RESET, AuditEvent.outcome.in_((Outcome.DONE, Outcome.REFUSED)))


async def resets(session: AsyncSession, actor_id: str, start: datetime, end: datetime) -> int:
    """An actor's authenticator resets tried in chat in [start, end], done or refused (``_reset_tried``;
    an admin's on the host are an origin's, not counted)."""
    return await _from_chat_count(session, actor_id, start, end, _reset_tried())


async def chat_platforms(
    session: AsyncSession, actor_id: str, start: datetime, end: datetime, settling: timedelta = timedelta(0)
) -> set[str]:
    """The chat platforms an actor's events in [start, end] came from (events with an origin
    excluded), leaving out a chat account's events in its first ``settling`` after it was linked
    to them: a duty manager has just approved it, so its first use is no second session."""
    last = func.max(AuditEvent.at)
    linked = ChatIdentity.linked_at
    result = await session.execute(
        select(AuditEvent.platform, last, linked)
        .outerjoin(
            ChatIdentity,
            and_(
                ChatIdentity.platform == AuditEvent.platform,
                ChatIdentity.tenant == AuditEvent.tenant,
                ChatIdentity.user_id == AuditEvent.user_id,
                ChatIdentity.practitioner_id == actor_id,
            ),
        )
        .where(AuditEvent.actor_id == actor_id, AuditEvent.at >= start, AuditEvent.at <= end, _from_chat())
        .group_by(AuditEvent.platform, AuditEvent.tenant, AuditEvent.user_id, linked)
    )
    return {platform for platform, at, since in result if since is None or utc(at) >= utc(since) + settling}


@dataclass(frozen=True, slots=True)
class SweepStarts:
    """Where each of the sweep's cheap counts starts (each ends at the sweep's ``now``)."""

    active: datetime  # the sweep looks at practitioners with any event since this
    failed: datetime  # no-match and ambiguous lookups, and references failing their check digit (probing)
    searches: datetime  # name-and-date searches that reached the register (sweeps)
    lookups: datetime  # lookups that reached the register (after hours)
    shielded: datetime  # shielded hits (shielded probing)
    lockouts: datetime  # step-up lockouts (lockouts)
    platforms: datetime  # chat platforms used (shared_login)
    children: datetime  # children named by lookups that reached the register (enumeration)
    out_of_area: datetime  # children named by lookups answered or shielded (out of area)
    refused: datetime  # texts refused for naming a child (identity guessing)
    gone: datetime  # commands refused because the sender has left (leaver)
    resets: datetime  # authenticator resets tried in chat (resets)


@dataclass(frozen=True, slots=True)
class SweepCounts:
    """One practitioner's events per count of ``SweepStarts``: upper bounds a rule needs to reach."""

    failed: int
    searches: int
    lookups: int
    shielded: int
    lockouts: int
    platforms: int
    children: int  # children named, counted once an event (so never fewer than the distinct ones)
    out_of_area: int
    refused: int
    gone: int
    resets: int


def _active(start: datetime, end: datetime) -> Select[str | None]:
    """Practitioners with any event in [start, end] (through the index on ``at``): only their
    longer windows are read, never everyone's."""
    recent = aliased(AuditEvent)
    return select(recent.actor_id).where(recent.at >= start, recent.at <= end, recent.actor_id.is_not(None)).distinct()


async def sweep_counts(
    session: AsyncSession, starts: SweepStarts, end: datetime, actors: Sequence[str] | None = None
) -> dict[str, SweepCounts]:
    """Per practitioner active since ``starts.active`` (of ``actors``, if given): the counts, in one
    grouped read through ``at`` (or ``actor_id, at``)."""
    ev = AuditEvent
    lookup = and_(ev.action.in_(LOOKUP_ACTIONS), ev.outcome.in_(REACHED_OUTCOMES))
    chat = _from_chat()

    def n(since: datetime, *cond: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((and_(ev.at >= since, *cond), 1), else_=0))

    # The children an event names, from its space-separated references: a bound on the distinct
    # children the enumeration and out-of-area rules count, without reading audit_subjects.
    named = case(
        (ev.subject_refs == "", 0),
        else_=func.length(ev.subject_refs) - func.length(func.replace(ev.subject_refs, " ", "")) + 1,
    )

    def kids(since: datetime, *cond: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((and_(ev.at >= since, *cond), named), else_=0))

    earliest: datetime = min(astuple(starts))
    result = await session.execute(
        select(
            ev.actor_id,
            n(starts.active),
            n(
                starts.failed,
                or_(and_(lookup, ev.outcome.in_((Outcome.NO_MATCH, Outcome.AMBIGUOUS))), guessed_reference()),
            ),
            n(starts.searches, ev.action == Action.SEARCH, ev.outcome.in_(REACHED_OUTCOMES)),
            n(starts.lookups, lookup),
            n(starts.shielded, lookup, ev.outcome == Outcome.SHIELDED),
            n(starts.lockouts, chat, _lockout()),
            func.count(func.distinct(case((and_(ev.at >= starts.platforms, chat), ev.platform)))),
            kids(starts.children, lookup),
            kids(starts.out_of_area, lookup, ev.outcome.in_((Outcome.ANSWERED, Outcome.SHIELDED))),
            n(starts.refused, ev.detail.startswith(IDENTITY_REFUSED, autoescape=True)),
            n(starts.gone, _refused_as_gone()),
            n(starts.resets, chat, _reset_tried()),
        )
        .where(
            ev.at >= earliest, ev.at <= end, ev.actor_id.in_(_active(starts.active, end) if actors is None else actors)
        )
        .group_by(ev.actor_id)
    )
    return {
        actor: SweepCounts(*(int(v or 0) for v in counts))
        for actor, active, *counts in result
        if actor is not None and active
    }
