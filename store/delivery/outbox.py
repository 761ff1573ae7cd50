"""Delivery bookkeeping for the notice outbox: claims (so replicas never send a notice twice),
retries with backoff, and who can be reached on which platform.

The outbox itself (table ``notices``, enqueue/pending/mark_delivered) lives in store/notices.py;
claims are kept in their own table so that the core table stays as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, String, and_, case, delete, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Platform, Principal
from store.db import dialect_insert
from store.delivery import drops
from store.delivery.notices import EMAIL_KIND, HELD_AT_MOST, SENT_BODY, claim_held
from store.people.practitioners import ACTIVE_STATUS, active_among
from store.tables.delivery import Notice as NoticeRow
from store.tables.delivery import NoticeClaim
from store.tables.people import ChatIdentity, Practitioner

FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = HELD_AT_MOST  # no retry waits longer: one held further is a clock ahead's (notices.pending)


async def claim(session: AsyncSession, notice_id: int, worker: str, now: datetime, hold: timedelta) -> int | None:
    """Claim an undelivered notice for ``hold`` (at most ``HELD_AT_MOST``); returns its attempt
    count, or None if not ours.

    One statement decides: a new claim row, or taking over a claim no longer held (``claim_held``).
    """
    stmt = dialect_insert(session)(NoticeClaim).values(notice_id=notice_id, claimed_by=worker, claimed_until=now + hold)
    stmt = stmt.on_conflict_do_update(
        index_elements=[NoticeClaim.notice_id],
        set_={"claimed_by": stmt.excluded.claimed_by, "claimed_until": stmt.excluded.claimed_until},
        where=~claim_held(NoticeClaim.claimed_until, now),
    ).returning(NoticeClaim.notice_id, NoticeClaim.drop_wanted)
    if (taken := (await session.execute(stmt)).first()) is None:
        return None
    row = (
        await session.execute(
            select(NoticeRow.attempts, NoticeRow.delivered_at, NoticeRow.dropped_at).where(NoticeRow.id == notice_id)
        )
    ).first()
    if row is None or row.delivered_at is not None or row.dropped_at is not None:
        return None  # delivered, or dropped, by someone else whose claim had just run out
    if taken.drop_wanted is not None:  # dropped while a worker whose claim ran out held it
        await close_for_drops(session, {notice_id: taken.drop_wanted}, now)
        await release(session, notice_id)
        return None
    return int(row.attempts)


@dataclass(frozen=True, slots=True)
class Claimed:
    """What ``claim_many`` did: each notice claimed here, by its attempt count (``attempts``); and
    each it closed unsent instead, by id with the drop's reason (``closed``, names nobody)."""

    attempts: Mapping[int, int]
    closed: Sequence[tuple[int, str]] = ()


async def claim_many(
    session: AsyncSession, notice_ids: Sequence[int], worker: str, now: datetime, hold: timedelta
) -> Claimed:
    """``claim`` for several notices at once: each one claimed here, by its attempt count.

    Two statements whatever the number: the claims (new, or taking over those whose time ran
    out), then the attempt counts of those not delivered meanwhile. One dropped while a worker that
    then died held it is closed with the drop's reason, not claimed (two statements more): the
    caller says so (``Claimed.closed``), as for every notice closed unsent.
    """
    if not notice_ids:
        return Claimed({})
    # Core's insert with the rows as executemany parameters: one multi-row statement, compiled
    # once (``.values(rows)`` has no cache key and was compiled afresh on every call).
    claims = NoticeClaim.__table__
    rows = [{"notice_id": i, "claimed_by": worker, "claimed_until": now + hold} for i in notice_ids]
    stmt = dialect_insert(session)(claims)
    stmt = stmt.on_conflict_do_update(
        index_elements=[claims.c.notice_id],
        set_={"claimed_by": stmt.excluded.claimed_by, "claimed_until": stmt.excluded.claimed_until},
        where=~claim_held(claims.c.claimed_until, now),
    ).returning(claims.c.notice_id, claims.c.drop_wanted)
    taken = {int(row.notice_id): row.drop_wanted for row in await session.execute(stmt, rows)}
    if not taken:
        return Claimed({})
    found = await session.execute(
        select(NoticeRow.id, NoticeRow.attempts).where(
            # Not delivered nor dropped meanwhile (another replica read it as pending before either).
            NoticeRow.id.in_(sorted(taken)),
            NoticeRow.delivered_at.is_(None),
            NoticeRow.dropped_at.is_(None),
        )
    )
    attempts = {int(row.id): int(row.attempts) for row in found}
    # Dropped while a worker whose claim then ran out held it (``notices._drop``): closed as the
    # drop wanted, not sent. None but after a worker died mid-send, so no statement otherwise.
    wanted = {notice_id: why for notice_id, why in taken.items() if why is not None and notice_id in attempts}
    closed: list[int] = []
    if wanted:
        closed = await close_for_drops(session, wanted, now)
        await release_many(session, sorted(wanted))
    return Claimed(
        {notice_id: tried for notice_id, tried in attempts.items() if notice_id not in wanted},
        [(notice_id, wanted[notice_id]) for notice_id in closed],
    )


async def release(session: AsyncSession, notice_id: int) -> None:
    await _release(session, [notice_id])


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … at most an hour between tries."""
    return min(FIRST_RETRY * (1 << min(attempts, 16)), LONGEST_RETRY)


async def retry_later(
    session: AsyncSession,
    notice_id: int,
    attempts: int,
    now: datetime,
    error: str,
    reached: str | None = None,
    *,
    release: bool = True,
    wait: timedelta | None = None,
) -> datetime | None:
    """Count a failed attempt and push the notice back; returns when it is due again. ``reached``:
    the platforms that have taken it now (a notice every account must see), when that changed.
    ``wait``: how long the platform said to wait (a rate limit's Retry-After), when longer than
    the backoff.

    Its claim let go first, unless the caller has already (``let_go``): one a drop found claimed
    while this attempt was made is closed with the drop's reason instead (``close_for_drops``),
    never put back in the queue; then None."""
    if release and (wanted := await _release(session, [notice_id])):
        await close_for_drops(session, wanted, now)
        return None
    due = now + max(backoff(attempts), wait or timedelta(0))
    values: dict[str, object] = {"attempts": attempts + 1, "not_before": due, "last_error": error[:200]}
    if reached is not None:
        values["reached"] = reached
    await session.execute(
        update(NoticeRow)
        .where(NoticeRow.id == notice_id, NoticeRow.delivered_at.is_(None), NoticeRow.dropped_at.is_(None))
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return due


async def keep_reached(session: AsyncSession, notice_id: int, reached: str) -> None:
    """Record the platforms that have taken a notice still to be sent, without counting an attempt
    (a pass stopped between its accounts): a retry goes to the others only."""
    await session.execute(
        update(NoticeRow)
        .where(NoticeRow.id == notice_id, NoticeRow.delivered_at.is_(None), NoticeRow.dropped_at.is_(None))
        .values(reached=reached)
        .execution_options(synchronize_session=False)
    )


async def delivered(session: AsyncSession, notice_id: int, now: datetime) -> None:
    await delivered_many(session, [notice_id], now)


async def delivered_many(
    session: AsyncSession, notice_ids: Sequence[int], now: datetime, *, release: bool = True
) -> None:
    """Record notices as delivered (two statements, one if the caller has let their claims go
    already, ``let_go``): one a drop wished closed while it was being sent (``notices._drop``)
    went through all the same, so it is recorded as delivered, as its recipient saw it."""
    if not notice_ids:
        return
    if release:
        await _release(session, notice_ids)
    await session.execute(
        update(NoticeRow)
        .where(NoticeRow.id.in_(notice_ids), NoticeRow.dropped_at.is_(None))
        .values(delivered_at=now, attempts=NoticeRow.attempts + 1, last_error=None, body=SENT_BODY)
        .execution_options(synchronize_session=False)
    )


async def release_many(session: AsyncSession, notice_ids: Sequence[int]) -> None:
    if notice_ids:
        await _release(session, notice_ids)


async def _release(session: AsyncSession, notice_ids: Sequence[int]) -> dict[int, str]:
    """Delete these notices' claims; the drops wished on those a drop found claimed
    (``notices._drop``), by notice. First, before any notice's row: every writer takes the claims,
    by id, before the notices, so that a drop and a worker recording its sends never wait for
    each other."""
    ids = sorted(notice_ids)
    if session.get_bind().dialect.name == "postgresql":
        # Row locks in id order first: a DELETE takes them in the order it finds the rows, so it
        # could hold a higher id while it waits for a lower one a drop holds, and deadlock with it.
        await session.execute(
            select(NoticeClaim.notice_id)
            .where(NoticeClaim.notice_id.in_(ids))
            .order_by(NoticeClaim.notice_id)
            .with_for_update()
        )
    result = await session.execute(
        delete(NoticeClaim)
        .where(NoticeClaim.notice_id.in_(ids))
        .returning(NoticeClaim.notice_id, NoticeClaim.drop_wanted)
        .execution_options(synchronize_session=False)
    )
    return {int(row.notice_id): row.drop_wanted for row in result if row.drop_wanted is not None}


async def let_go(session: AsyncSession, notice_ids: Sequence[int]) -> dict[int, str]:
    """Let go of these notices' claims, as a worker does when it records how its sends went (one
    statement); the reason of each a drop wished closed while it was claimed (``notices._drop``).
    The caller records a send that went through as delivered, and closes every other one of them
    with its reason (``close_for_drops``): neither retried nor left due, to go out late."""
    if not notice_ids:
        return {}
    return await _release(session, notice_ids)


async def close_for_drops(session: AsyncSession, wanted: Mapping[int, str], now: datetime) -> list[int]:
    """Close, unsent, these notices a drop found claimed (by id, the drop's reason, which names
    nobody), those still undelivered and open: one statement per reason (one, as a rule); the ids
    closed, each logged and counted once the caller commits (``drops.close``)."""
    by_reason: dict[str, list[int]] = {}
    for notice_id, why in wanted.items():
        by_reason.setdefault(why, []).append(notice_id)
    closed: list[int] = []
    for why, notice_ids in sorted(by_reason.items()):
        dropped = await drops.close(session, NoticeRow.id.in_(sorted(notice_ids)), now, why[:200])
        closed.extend(notice.notice_id for notice in dropped)
    return sorted(closed)


async def identities(
    session: AsyncSession, practitioner_ids: Sequence[str], platforms: Sequence[Platform]
) -> dict[str, list[Principal]]:
    """Each active practitioner's linked identities on the given platforms (console: the id itself).

    A practitioner who is not active (or no longer in the register) is left out of the answer
    altogether, so that nobody who must not be told is told: their notices are dropped, not sent.
    """
    found: dict[str, list[Principal]] = {pid: [] for pid in sorted(await active_among(session, practitioner_ids))}
    if Platform.CONSOLE in platforms:
        for pid in found:
            found[pid].append(Principal(Platform.CONSOLE, "local", pid))
    chat = [p.value for p in platforms if p is not Platform.CONSOLE]
    if chat and found:
        result = await session.execute(
            select(ChatIdentity).where(ChatIdentity.practitioner_id.in_(list(found)), ChatIdentity.platform.in_(chat))
        )
        for row in result.scalars():
            found[row.practitioner_id].append(Principal(Platform(row.platform), row.tenant, row.user_id))
    return found


async def reachable(
    session: AsyncSession, practitioner_ids: Sequence[str], platforms: Collection[Platform]
) -> set[str]:
    """Those of ``practitioner_ids`` a notice can reach on ``platforms`` now: active, and linked on
    one of them (the console reaches every active practitioner). The one answer to "can this person
    be reached": the outbox sends to those ``identities`` finds linked (anyone else's notice fails as
    having no linked platform, then closes unsent), and a relay chooses among them
    (handlers/access/relay.py), so that a message is never "delivered" to someone it cannot reach."""
    found = await identities(session, sorted(set(practitioner_ids)), sorted(platforms))
    return {pid for pid, linked in found.items() if linked}


async def addresses(session: AsyncSession, practitioner_ids: Sequence[str]) -> dict[str, str]:
    """Each active practitioner's recorded secure email ("" if none is recorded), for the e-mail
    notices; as in ``identities``, one who is not active (or no longer in the register) is left out,
    so that their notices are dropped, not sent."""
    active = await active_among(session, practitioner_ids)
    if not active:
        return {}
    result = await session.execute(select(Practitioner.id, Practitioner.email).where(Practitioner.id.in_(list(active))))
    return {pid: email or "" for pid, email in result}


async def reached(session: AsyncSession, notice_ids: Sequence[int]) -> dict[int, frozenset[str]]:
    """The platforms that have taken each of these notices so far (only notices every account must
    see record them), for those that have any."""
    if not notice_ids:
        return {}
    result = await session.execute(
        select(NoticeRow.id, NoticeRow.reached).where(
            NoticeRow.id.in_(list(notice_ids)), NoticeRow.reached.is_not(None)
        )
    )
    return {int(row.id): frozenset(filter(None, row.reached.split(","))) for row in result}


def _expired(queued_before: datetime, now: datetime) -> ColumnElement[bool]:
    """Chat notices still to be sent, queued before ``queued_before``, to an active practitioner
    (one who is not is closed at delivery, with stand-ins, handlers/stand_in.py), that no worker is
    sending now (no claim still held)."""
    return and_(
        NoticeRow.delivered_at.is_(None),
        NoticeRow.dropped_at.is_(None),
        NoticeRow.created_at < queued_before,
        NoticeRow.kind != EMAIL_KIND,
        NoticeRow.recipient_id.in_(select(Practitioner.id).where(Practitioner.status == ACTIVE_STATUS)),
        ~exists().where(NoticeClaim.notice_id == NoticeRow.id, claim_held(NoticeClaim.claimed_until, now)),
    )


async def any_expired(session: AsyncSession, queued_before: datetime, now: datetime) -> bool:
    """Whether ``close_expired`` has anything to close (one read, so that a pass takes the write
    lock only when it does)."""
    found = await session.execute(select(NoticeRow.id).where(_expired(queued_before, now)).limit(1))
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class Expiry:
    """Why a notice still unsent at the end of its life was not sent, by its last refusal
    (``last_error``): ``by_error`` for those named, ``untried`` for one never tried (None), else
    ``failed`` with the refusal in brackets."""

    by_error: Mapping[str, str]
    untried: str
    failed: str


async def close_expired(
    session: AsyncSession, queued_before: datetime, now: datetime, why: Expiry
) -> list[tuple[int, str, str]]:
    """Close, unsent, every chat notice ``_expired`` (queued before ``queued_before``), with the
    reason ``why`` gives it; each one's id, kind and reason as logged (``drops.close``: a failure's
    without its last refusal). Three statements however many, so that
    a backlog after a long outage is closed at once: not one a pass, nor filling the passes that
    should send fresh ones.

    Each is claimed first, as ``claim_many`` claims (taking over a claim whose hold ran out), and
    only those claimed here are closed, their claims then let go: on PostgreSQL a replica claiming
    one meanwhile waits for this claim, then finds it closed; a notice another claimed first (its
    claim not yet visible when this statement began) is left to it. Closing by the notices' rows
    alone let both happen at once: sent by the other, and recorded here as not sent. One a drop
    found claimed by a worker that died holding it is closed with the drop's reason instead."""
    claims = NoticeClaim.__table__
    marker = f"closing:{uuid.uuid4().hex}"
    take = dialect_insert(session)(claims).from_select(
        [claims.c.notice_id, claims.c.claimed_by, claims.c.claimed_until],
        select(NoticeRow.id, literal(marker, String), literal(now, claims.c.claimed_until.type)).where(
            _expired(queued_before, now)
        ),
    )
    take = take.on_conflict_do_update(
        index_elements=[claims.c.notice_id],
        set_={"claimed_by": take.excluded.claimed_by, "claimed_until": take.excluded.claimed_until},
        where=~claim_held(claims.c.claimed_until, now),
    )
    await session.execute(take)
    refused = literal(f"{why.failed} (", String) + NoticeRow.last_error + literal(")", String)
    expired = case(
        *[(NoticeRow.last_error == error, literal(said, String)) for error, said in sorted(why.by_error.items())],
        (NoticeRow.last_error.is_(None), literal(why.untried, String)),
        else_=func.substr(refused, 1, 200),
    )
    # A drop that found it claimed by a worker that then died (``notices._drop``) is why it went
    # unsent, not its week: the claim taken over above keeps the drop's reason.
    wanted = select(claims.c.drop_wanted).where(claims.c.notice_id == NoticeRow.id).scalar_subquery()
    reason = func.coalesce(wanted, expired)
    ours = NoticeRow.id.in_(select(claims.c.notice_id).where(claims.c.claimed_by == marker))

    def logged(stored: str) -> str:
        """Logged as failing for a week, without the last refusal (a platform's words, kept in the row)."""
        return why.failed if stored.startswith(why.failed) else stored

    dropped = await drops.close(session, ours, now, reason, said=logged)
    await session.execute(delete(NoticeClaim).where(NoticeClaim.claimed_by == marker))
    return [(notice.notice_id, notice.kind, notice.reason) for notice in dropped]


async def close_expired_email(
    session: AsyncSession, queued_before: datetime, now: datetime, why: str
) -> list[tuple[int, str]]:
    """Close, unsent, every e-mail notice (``EMAIL_KIND``) the mailer has not taken, queued and due
    before ``queued_before`` (``why``, which names nobody); each one's id and kind. One statement
    however many, read through ``ix_notices_pending`` (undelivered, due before the bound): e-mail
    notices have no claims, and are due when queued."""
    waited = and_(
        NoticeRow.delivered_at.is_(None),
        NoticeRow.not_before < queued_before,
        NoticeRow.dropped_at.is_(None),
        NoticeRow.created_at < queued_before,
        NoticeRow.kind == EMAIL_KIND,
    )
    return [(notice.notice_id, notice.kind) for notice in await drops.close(session, waited, now, why[:200])]


async def email_delivered(session: AsyncSession, notice_id: int, now: datetime, expired: str) -> bool:
    """Record an e-mail notice as sent by the mailer: one closed meanwhile stays closed, unless it
    was closed as a week old (``expired``, ``close_expired_email``) after the mailer had taken it:
    it was sent, so it is recorded as delivered. Whether this call recorded it delivered (not one
    already delivered, nor one closed that stays closed): what the delivered count counts."""
    result = await session.execute(
        update(NoticeRow)
        .where(
            NoticeRow.id == notice_id,
            NoticeRow.delivered_at.is_(None),
            or_(NoticeRow.dropped_at.is_(None), NoticeRow.last_error == expired),
        )
        .values(delivered_at=now, dropped_at=None, attempts=NoticeRow.attempts + 1, last_error=None, body=SENT_BODY)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]  # CursorResult at runtime


async def dropped_many(session: AsyncSession, notice_ids: Sequence[int], now: datetime, reason: str) -> list[int]:
    """Close notices without sending them, on purpose (those still open: one delivered or dropped
    meanwhile keeps what closed it); ``reason`` must name no person's data. The ids closed, each
    logged and counted once the caller commits (``drops.close``)."""
    if not notice_ids:
        return []
    await _release(session, notice_ids)
    dropped = await drops.close(session, NoticeRow.id.in_(sorted(notice_ids)), now, reason[:200])
    return [notice.notice_id for notice in dropped]
