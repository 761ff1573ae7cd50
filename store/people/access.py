"""Registration requests, access requests to shielded records, and time-bound grants.

Every state change is one conditional UPDATE (``... WHERE state = 'pending'``) whose row count says
whether this caller made it: on SQLite writers are serialised (BEGIN IMMEDIATE); on PostgreSQL the
second UPDATE waits for the first one's row lock and then re-checks its WHERE clause. Either way
the first decision wins and a second one changes nothing.

A row stamped by a clock ahead of this one (``store.skew``: a registration, request or grant whose
start is later than now and ``CLOCK_SKEW``, as a host whose clock was set years on and then put
right leaves them) is not in force: no grant, nothing pending, nothing to decide. The expiry jobs
find it with those past their end (``due_*``) and close it through the same audited and told path,
as of its expiry. Its end is its start and a lifetime the policy bounds, so a start not ahead is an
end no further ahead than that lifetime and the skew: the start alone is judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Actor, Principal
from store.delivery.notices import CLOSED, DECIDED, drop_decided
from store.keys.crypto import KeyRing
from store.register.children import first_held, still_held
from store.skew import ahead_after, due_then_ahead
from store.tables.people import AccessGrant, AccessRequest, ChatIdentity, Practitioner, RegistrationRequest
from store.tables.register import Child

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"
ACTIVE = "active"


def utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; every timestamp we store is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def started(start: Any, now: datetime) -> ColumnElement[bool]:
    """``start`` (a row's ``created_at`` or ``granted_at``) was stamped by a clock that agrees with
    ``now``'s: not later than ``store.skew.ahead_after(now)``."""
    return start <= ahead_after(now)  # type: ignore[no-any-return]


def started_ahead(start: Any, now: datetime) -> ColumnElement[bool]:
    """``start`` was stamped by a clock ahead of ``now``'s (the other side of ``started``)."""
    return start > ahead_after(now)  # type: ignore[no-any-return]


async def _due_or_ahead(
    session: AsyncSession, keys: KeyRing, due: Select[Any], ahead: Select[Any], child_ref: Any, key: Any, limit: int
) -> list[Any]:
    """The first ``limit`` rows past their end (``due``), then those stamped ahead (``ahead``),
    none about a child destroyed whatever its row says (``first_held``)."""

    async def read(stmt: Select[Any], n: int) -> list[Any]:
        return await first_held(session, keys, stmt, child_ref, key, n)

    return await due_then_ahead(read, due, ahead, limit)


def _no_sync(stmt: Any) -> Any:
    return stmt.execution_options(synchronize_session=False)


async def _changed(session: AsyncSession, stmt: Any) -> bool:
    result = await session.execute(_no_sync(stmt))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult at runtime


# --- registration ---------------------------------------------------------------------------


async def open_registration(
    session: AsyncSession, principal: Principal, practitioner_id: str, local_authority: str, now: datetime
) -> int:
    row = RegistrationRequest(
        practitioner_id=practitioner_id,
        platform=principal.platform.value,
        tenant=principal.tenant,
        user_id=principal.user_id,
        local_authority=local_authority,
        state=PENDING,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row.id


# A registration lives from ``created_at`` for the policy's lifetime (handlers.access.policy), so
# the callers pass ``opened_after``: now less that lifetime. One opened then or before is closed,
# whether or not the expiry job has marked it yet (it runs once a minute, not at once); so is one
# opened by a clock ahead (``started``).


def _open_registration(opened_after: datetime, now: datetime) -> tuple[ColumnElement[bool], ...]:
    r = RegistrationRequest
    return r.state == PENDING, r.created_at > opened_after, started(r.created_at, now)


async def pending_registration_for(
    session: AsyncSession, principal: Principal, opened_after: datetime, now: datetime
) -> RegistrationRequest | None:
    result = await session.execute(
        select(RegistrationRequest)
        .where(
            RegistrationRequest.platform == principal.platform.value,
            RegistrationRequest.tenant == principal.tenant,
            RegistrationRequest.user_id == principal.user_id,
            *_open_registration(opened_after, now),
        )
        .order_by(RegistrationRequest.id.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def get_registration(session: AsyncSession, request_id: int) -> RegistrationRequest | None:
    """Read from the database, not the session's cache: a concurrent decision may have landed."""
    result = await session.execute(
        select(RegistrationRequest)
        .where(RegistrationRequest.id == request_id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def decide_registration(
    session: AsyncSession, request_id: int, state: str, by: str, now: datetime, opened_after: datetime
) -> bool:
    """Move a pending, unexpired registration to ``state``; False when someone else decided first,
    or it was closed (or is past its lifetime)."""
    return await _changed(
        session,
        update(RegistrationRequest)
        .where(RegistrationRequest.id == request_id, *_open_registration(opened_after, now))
        .values(state=state, decided_by=by, decided_at=now),
    )


async def pending_registrations(
    session: AsyncSession, local_authority: str | None, opened_after: datetime, now: datetime, limit: int = 20
) -> list[RegistrationRequest]:
    """Open registrations to act as a practitioner of ``local_authority`` now (None: of every
    authority, for admins; one who changed post since asking is their new authority's to decide,
    not the one recorded on the request)."""
    stmt = select(RegistrationRequest).where(*_open_registration(opened_after, now))
    if local_authority is not None:
        stmt = stmt.join(Practitioner, Practitioner.id == RegistrationRequest.practitioner_id).where(
            Practitioner.local_authority == local_authority
        )
    result = await session.execute(stmt.order_by(RegistrationRequest.id).limit(limit))
    return list(result.scalars())


async def pending_registrations_to_act_as(
    session: AsyncSession, practitioner_id: str, platform: str, opened_after: datetime, now: datetime
) -> list[RegistrationRequest]:
    """Open registrations asking to link an account on ``platform`` to ``practitioner_id``, by id."""
    r = RegistrationRequest
    stmt = select(r).where(*_open_registration(opened_after, now), r.practitioner_id == practitioner_id)
    return list((await session.execute(stmt.where(r.platform == platform).order_by(r.id))).scalars())


async def due_registration_expiries(
    session: AsyncSession, opened_by: datetime, now: datetime, limit: int = 100
) -> list[RegistrationRequest]:
    """Pending registrations opened at ``opened_by`` or before (now less their lifetime), oldest
    first, then those opened by a clock ahead of ``now``'s (``started_ahead``), each range through
    ``ix_registration_requests_state_created_at``."""
    r = RegistrationRequest

    async def read(opened: Any, n: int) -> list[RegistrationRequest]:
        page = select(r).where(r.state == PENDING, opened).order_by(r.created_at, r.id).limit(n)
        return list((await session.execute(page)).scalars())

    return await due_then_ahead(read, r.created_at <= opened_by, started_ahead(r.created_at, now), limit)


async def _take_back_registration_asks(
    session: AsyncSession, registration_ids: Sequence[int], now: datetime, why: str
) -> None:
    """As ``_take_back_asks``, for registrations: the duty managers' undelivered asks are dropped."""
    for registration_id in registration_ids:
        await drop_decided(session, "registration_request", f"registration:{registration_id}:", now, why)


async def expire_registration(session: AsyncSession, request_id: int, opened_by: datetime, now: datetime) -> bool:
    """Close a pending registration nobody decided within its lifetime (opened at ``opened_by`` or
    before, or by a clock ahead of ``now``'s), taking back its asks; False when it was closed
    already (decided, or another replica)."""
    r = RegistrationRequest
    expired = await _changed(
        session,
        update(r)
        .where(
            r.id == request_id,
            r.state == PENDING,
            (r.created_at <= opened_by) | started_ahead(r.created_at, now),
        )
        .values(state=EXPIRED, decided_at=now),
    )
    if expired:
        await _take_back_registration_asks(session, [request_id], now, CLOSED)
    return expired


async def identity_owner(session: AsyncSession, platform: str, tenant: str, user_id: str) -> str | None:
    result = await session.execute(
        select(ChatIdentity.practitioner_id).where(
            ChatIdentity.platform == platform, ChatIdentity.tenant == tenant, ChatIdentity.user_id == user_id
        )
    )
    return result.scalar_one_or_none()


# --- access requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewRequest:
    requester_id: str
    child_ref: int
    local_authority: str
    reason: bytes | None
    reason_key: str | None
    ref_withheld: bool = False  # found by name and date of birth: the requester never saw the reference


async def open_request(
    session: AsyncSession, new: NewRequest, now: datetime, lifetime: timedelta, escalate_at: datetime | None
) -> int:
    row = AccessRequest(
        requester_id=new.requester_id,
        child_ref=new.child_ref,
        local_authority=new.local_authority,
        reason=new.reason,
        reason_key=new.reason_key,
        state=PENDING,
        created_at=now,
        expires_at=now + lifetime,
        escalation_level=0,
        escalate_at=escalate_at,
        ref_withheld=new.ref_withheld,
    )
    session.add(row)
    await session.flush()
    return row.id


async def get_request(session: AsyncSession, keys: KeyRing, request_id: int) -> AccessRequest | None:
    """Read from the database, not the session's cache: a concurrent decision may have landed.
    None for one about a child destroyed whatever its row says (``destroyed_since``: a store
    restored from an older backup), as once retention has deleted it."""
    one = select(AccessRequest).where(AccessRequest.id == request_id).execution_options(populate_existing=True)
    found = await still_held(session, keys, one, AccessRequest.child_ref)
    return found[0] if found else None


def _open_request(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Pending, within its lifetime, and opened by a clock that agrees with ``now``'s."""
    return AccessRequest.state == PENDING, AccessRequest.expires_at > now, started(AccessRequest.created_at, now)


def _closing_request(now: datetime) -> ColumnElement[bool]:
    """Past its lifetime, or opened by a clock ahead of ``now``'s: the expiry job closes it."""
    return (AccessRequest.expires_at <= now) | started_ahead(AccessRequest.created_at, now)


async def pending_request_for(
    session: AsyncSession, requester_id: str, child_ref: int, now: datetime
) -> AccessRequest | None:
    result = await session.execute(
        select(AccessRequest)
        .where(
            AccessRequest.requester_id == requester_id,
            AccessRequest.child_ref == child_ref,
            *_open_request(now),
        )
        .limit(1)
    )
    return result.scalar_one_or_none()


async def _take_back_asks(session: AsyncSession, request_ids: Sequence[int], now: datetime, why: str) -> None:
    """A request no longer pending asks nobody for a decision any more: its undelivered asks (to a
    duty manager, or escalated) are dropped in the transaction that closed it, however it closed."""
    for request_id in request_ids:
        await drop_decided(session, "access_request", f"access:{request_id}:", now, why)


async def decide_request(session: AsyncSession, request_id: int, state: str, by: str, now: datetime) -> bool:
    """Approve or deny a pending, unexpired request; False when it was decided or expired already."""
    decided = await _changed(
        session,
        update(AccessRequest)
        .where(AccessRequest.id == request_id, *_open_request(now))
        .values(state=state, decided_by=by, decided_at=now, escalate_at=None),
    )
    if decided:
        await _take_back_asks(session, [request_id], now, DECIDED)
    return decided


async def pending_requests(
    session: AsyncSession, keys: KeyRing, local_authority: str | None, now: datetime, limit: int = 20
) -> list[AccessRequest]:
    """Open requests about children of one authority now (None: every authority, for admins): a
    child who moved since is its new authority's, not the one recorded on the request; none about
    a child destroyed whatever its row says (``get_request``)."""
    stmt = select(AccessRequest).where(*_open_request(now))
    if local_authority is not None:
        stmt = stmt.join(Child, Child.ref == AccessRequest.child_ref).where(Child.local_authority == local_authority)
    return await first_held(session, keys, stmt, AccessRequest.child_ref, AccessRequest.id, limit)


async def due_escalations(session: AsyncSession, keys: KeyRing, now: datetime, limit: int = 100) -> list[AccessRequest]:
    """Requests due to escalate; none about a child destroyed whatever its row says (``get_request``)."""
    due = select(AccessRequest).where(AccessRequest.escalate_at <= now, *_open_request(now))
    return await first_held(session, keys, due, AccessRequest.child_ref, AccessRequest.id, limit)


async def escalate(session: AsyncSession, request_id: int, from_level: int, next_at: datetime | None) -> bool:
    """Claim one escalation step (exactly one replica moves a request from ``from_level``)."""
    return await _changed(
        session,
        update(AccessRequest)
        .where(
            AccessRequest.id == request_id,
            AccessRequest.state == PENDING,
            AccessRequest.escalation_level == from_level,
        )
        .values(escalation_level=from_level + 1, escalate_at=next_at),
    )


async def due_request_expiries(
    session: AsyncSession, keys: KeyRing, now: datetime, limit: int = 100
) -> list[AccessRequest]:
    """Requests past their lifetime (through ``ix_access_requests_state_expires_at``), then those
    opened by a clock ahead of ``now``'s (``ix_access_requests_state_created_at``); none about a
    child destroyed whatever its row says: on a store restored from a backup older than its
    destruction such a request is as deleted (the next retention run deletes it), so it is neither
    closed, audited nor told of (``destroyed_since``)."""
    a = AccessRequest
    due = select(a).where(a.state == PENDING, a.expires_at <= now)
    ahead = select(a).where(a.state == PENDING, started_ahead(a.created_at, now))
    return await _due_or_ahead(session, keys, due, ahead, a.child_ref, a.id, limit)


async def expire_request(session: AsyncSession, request_id: int, now: datetime) -> bool:
    """Close a pending request nobody decided within its lifetime (or opened by a clock ahead of
    ``now``'s); False when it was closed already."""
    expired = await _changed(
        session,
        update(AccessRequest)
        .where(AccessRequest.id == request_id, AccessRequest.state == PENDING, _closing_request(now))
        .values(state=EXPIRED, decided_at=now, escalate_at=None),
    )
    if expired:
        await _take_back_asks(session, [request_id], now, CLOSED)
    return expired


# --- grants ---------------------------------------------------------------------------------


async def create_grant(
    session: AsyncSession, request: AccessRequest, by: str, now: datetime, expires_at: datetime
) -> int:
    row = AccessGrant(
        request_id=request.id,
        practitioner_id=request.requester_id,
        child_ref=request.child_ref,
        granted_by=by,
        granted_at=now,
        expires_at=expires_at,
        state=ACTIVE,
        ref_withheld=request.ref_withheld,
    )
    session.add(row)
    await session.flush()
    return row.id


async def current_grant(
    session: AsyncSession, practitioner_id: str, child_ref: int, now: datetime
) -> AccessGrant | None:
    """The longest-lasting grant in force now (expiry is checked here, not only by the scheduler;
    so is a start stamped by a clock ahead, ``started``)."""
    result = await session.execute(
        select(AccessGrant)
        .where(
            AccessGrant.practitioner_id == practitioner_id,
            AccessGrant.child_ref == child_ref,
            AccessGrant.state == ACTIVE,
            AccessGrant.expires_at > now,
            started(AccessGrant.granted_at, now),
        )
        .order_by(AccessGrant.expires_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def due_grant_expiries(
    session: AsyncSession, keys: KeyRing, now: datetime, limit: int = 100
) -> list[AccessGrant]:
    """Grants past their end (``ix_access_grants_state_expires_at``), then those granted by a clock
    ahead of ``now``'s (``ix_access_grants_state_granted_at``); none about a child destroyed
    whatever its row says (as ``due_request_expiries``)."""
    g = AccessGrant
    due = select(g).where(g.state == ACTIVE, g.expires_at <= now)
    ahead = select(g).where(g.state == ACTIVE, started_ahead(g.granted_at, now))
    return await _due_or_ahead(session, keys, due, ahead, g.child_ref, g.id, limit)


async def expire_grant(session: AsyncSession, grant_id: int, now: datetime) -> bool:
    """End a grant past its end, or granted by a clock ahead of ``now``'s (its end is then
    ``now``: it was never in force here); False when it had ended already."""
    g = AccessGrant
    return await _changed(
        session,
        update(g)
        .where(g.id == grant_id, g.state == ACTIVE, (g.expires_at <= now) | started_ahead(g.granted_at, now))
        .values(state=EXPIRED, expires_at=case((g.expires_at > now, now), else_=g.expires_at)),
    )


@dataclass(frozen=True, slots=True)
class Closed:
    """What ``close_for_leaver`` ended: undecided requests, and grants still in force."""

    requests: int
    grants: int
    registrations: int = 0


async def close_for_leaver(session: AsyncSession, practitioner_id: str, now: datetime) -> Closed:
    """A leaver's access ends with their standing: requests they made that await a decision are
    closed undecided (a duty manager's Approve then changes nothing), and grants in force end now,
    so a practitioner who returns within a grant's days sees no shielded record without a new one.
    So are registrations asking to act as them: no chat account is linked to a leaver, and nobody
    is asked to decide one once the chat platform takes notices again."""
    closed = await session.execute(
        _no_sync(
            update(AccessRequest)
            .where(AccessRequest.requester_id == practitioner_id, AccessRequest.state == PENDING)
            .values(state=EXPIRED, decided_at=now, escalate_at=None)
            .returning(AccessRequest.id)
        )
    )
    request_ids = list(closed.scalars())
    await _take_back_asks(session, request_ids, now, CLOSED)
    grants = await session.execute(
        _no_sync(
            update(AccessGrant)
            .where(
                AccessGrant.practitioner_id == practitioner_id,
                AccessGrant.state == ACTIVE,
                AccessGrant.expires_at > now,
            )
            .values(state=EXPIRED, expires_at=now)
        )
    )
    registrations = await session.execute(
        _no_sync(
            update(RegistrationRequest)
            .where(RegistrationRequest.practitioner_id == practitioner_id, RegistrationRequest.state == PENDING)
            .values(state=EXPIRED, decided_at=now)
            .returning(RegistrationRequest.id)
        )
    )
    registration_ids = list(registrations.scalars())
    await _take_back_registration_asks(session, registration_ids, now, CLOSED)
    granted = grants.rowcount  # type: ignore[attr-defined]  # CursorResult at runtime
    return Closed(len(request_ids), granted, len(registration_ids))


class GrantTable:
    """The GrantChecker behind shielded searches: a grant in force for this actor and child."""

    async def grant_expires_at(
        self, session: AsyncSession, actor: Actor, child_ref: int, now: datetime
    ) -> datetime | None:
        grant = await current_grant(session, actor.practitioner_id, child_ref, now)
        return None if grant is None else grant.expires_at
