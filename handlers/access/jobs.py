"""Periodic access-control work: grants expire, undecided requests escalate and then expire, and
so do undecided registrations; a relayed message nobody it went to can take any more is handed on.

Each step claims its row with a conditional UPDATE in the same transaction as its audit event and
notices, so several replicas running these jobs at once change (and tell) everything exactly once.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access import registration, relay
from handlers.access.notices import (
    asked_of,
    authority_now,
    escalation_targets,
    grant_expired_notice,
    request_expired_notice,
    request_notices,
    requester_text,
)
from handlers.access.policy import POLICY
from handlers.clock import waited
from handlers.context import Context
from handlers.vocabulary import Action, Origin
from store.audit.log import AuditRecord, append, origin_event
from store.delivery.notices import (
    ENDED,
    NO_LONGER_THEIRS,
    drop_decided,
    drop_keyed,
    dropped_keyed,
    waiting_keyed,
)
from store.people import access as store
from store.people import practitioners
from store.people import relay as relays
from store.tables.people import AccessRequest

BATCH = 100


def system_event(action: Action, ref: int, detail: str, now: datetime) -> AuditRecord:
    """An audit event for something Signpost did by itself (no person acted) about one child."""
    return origin_event(Origin.SCHEDULER, action, now, subjects=(ref,), detail=detail)


async def expire_grants(ctx: Context, now: datetime) -> int:
    """Mark grants past their end as expired, audit it, and tell the holder; returns how many."""
    done = 0
    async with ctx.db.write() as session:
        for grant in await store.due_grant_expiries(session, ctx.keys, now, BATCH):
            if not await store.expire_grant(session, grant.id, now):
                continue  # another replica took it
            await append(session, [system_event(Action.GRANT_EXPIRED, grant.child_ref, f"grant {grant.id}", now)])
            notice = grant_expired_notice(
                grant.id, grant.request_id, grant.practitioner_id, grant.child_ref, grant.ref_withheld
            )
            await ctx.notices.enqueue(session, [notice], now)
            # Its approval, if still undelivered (the holder's platform failing), would now say
            # "approved until" a time past, after "has ended": closed unsent instead.
            await drop_decided(session, "access_approved", f"access:{grant.request_id}:decided", now, ENDED)
            done += 1
    return done


async def escalate_requests(ctx: Context, now: datetime) -> int:
    """Send requests undecided for the escalation period to the next person on the list."""
    done = 0
    async with ctx.db.write() as session:
        for row in await store.due_escalations(session, ctx.keys, now, BATCH):
            if await _escalate(ctx, session, row, now):
                done += 1
    return done


async def _escalate(ctx: Context, session: AsyncSession, row: AccessRequest, now: datetime) -> bool:
    level = row.escalation_level + 1
    authority = await authority_now(session, ctx.keys, row)
    asked = await asked_of(session, row)
    recipients, more = await escalation_targets(session, authority, row.requester_id, ctx.reaches, asked)
    next_at = now + POLICY.escalate_after if more else None
    if not await store.escalate(session, row.id, row.escalation_level, next_at):
        return False
    detail = f"request {row.id} level {level} to {'admins' if not more else 'duty manager'}"
    await append(session, [system_event(Action.REQUEST_ESCALATED, row.child_ref, detail, now)])
    who = requester_text(await practitioners.get_actor(session, row.requester_id), row.requester_id)
    notices = request_notices(row.id, row.child_ref, recipients, level, who, waited(row.created_at, now))
    await ctx.notices.enqueue(session, notices, now)
    return True


async def expire_requests(ctx: Context, now: datetime) -> int:
    """Close access requests and registrations nobody decided within their lifetime (their asks to
    duty managers taken back), and tell who asked; returns how many."""
    done = 0
    async with ctx.db.write() as session:
        for row in await store.due_request_expiries(session, ctx.keys, now, BATCH):
            if not await store.expire_request(session, row.id, now):
                continue
            await append(session, [system_event(Action.REQUEST_EXPIRED, row.child_ref, f"request {row.id}", now)])
            await ctx.notices.enqueue(
                session, [request_expired_notice(row.id, row.requester_id, row.child_ref, row.ref_withheld)], now
            )
            done += 1
        done += await _expire_registrations(ctx, session, now)
    return done


async def _expire_registrations(ctx: Context, session: AsyncSession, now: datetime) -> int:
    opened_by = registration.lifetime_cutoff(now)
    done = 0
    for row in await store.due_registration_expiries(session, opened_by, now, BATCH):
        if not await store.expire_registration(session, row.id, opened_by, now):
            continue  # decided meanwhile, or another replica took it
        event = origin_event(Origin.SCHEDULER, Action.REGISTRATION_EXPIRED, now, detail=f"registration R{row.id}")
        await append(session, [event])
        await ctx.notices.enqueue(session, [registration.expired_notice(row)], now)
        done += 1
    return done


async def drop_no_longer_theirs(ctx: Context, after: int, waiting: Collection[str], now: datetime) -> int:
    """Drop those of the waiting relay notices ``waiting`` still not to be sent: ``hand_on_relays``
    chose them (``relay.untaken``) from the page of unanswered relays after ``after`` in a read
    transaction, and a recipient may have been made one again since (a feed re-imported), so the page
    is read and judged again under the write lock, in as many statements whatever it holds, and only
    the notices both judgements agree on are dropped. Returns how many were dropped."""
    async with ctx.db.write() as session:
        page = await relays.unanswered(session, ctx.keys, after, BATCH)
        still = set(relay.untaken(page, await relay.taken(session, ctx.keys, page, ctx.reaches, now)))
        return await drop_keyed(session, relay.NOTICE_KIND, still.intersection(waiting), now, NO_LONGER_THEIRS)


async def tell_taken_again(ctx: Context, after: int, untold: Collection[str], now: datetime) -> int:
    """Send those of the relay notices ``untold`` still unsent: ``hand_on_relays`` found them dropped
    (their recipient could no longer take the message, ``relay.UNTOLD``) though their recipient may
    take it again now, in a read transaction; so the page is read and judged again under the write
    lock, as ``drop_no_longer_theirs`` does, and only those both judgements agree on are sent.
    Returns how many."""
    async with ctx.db.write() as session:
        page = await relays.unanswered(session, ctx.keys, after, BATCH)
        told = relay.takers_notices(page, await relay.taken(session, ctx.keys, page, ctx.reaches, now))
        return len(await relay.tell_again(session, [n for n in told if n.dedupe_key in untold], now))


async def hand_on_relays(ctx: Context, now: datetime) -> int:
    """Hand on every unanswered relayed message none of whose recipients can take it any more
    (``relay.taken``), to whoever the relay would choose now, or tell its sender it was not
    delivered (``relay.hand_on``, which checks again and claims it); returns how many. The one
    place that notices every way a recipient stops being one (a feed ends an involvement or moves
    a child, a role or status changes), whichever path made the change. A recipient who can no
    longer take a message another still can is not sent its notice if it still waits
    (``relay.untaken``); one who can take it again, whose notice was not sent for that (or because
    the message was handed on from them, or they were inactive), is told after all
    (``relay.tell_again``). Read a page at a time, in as many statements whatever the page holds;
    only a message to hand on, or a notice to drop, takes the write lock."""
    done, after = 0, 0
    while True:
        async with ctx.db.read() as session:
            page = await relays.unanswered(session, ctx.keys, after, BATCH)
            judged = await relay.taken(session, ctx.keys, page, ctx.reaches, now)
            due = [found.id for found in page if not judged[found.id].by]
            waiting = await waiting_keyed(session, relay.NOTICE_KIND, relay.untaken(page, judged))
            takers = [n.dedupe_key or "" for n in relay.takers_notices(page, judged)]
            untold = await dropped_keyed(session, relay.NOTICE_KIND, takers, relay.UNTOLD)
        if waiting:
            await drop_no_longer_theirs(ctx, after, waiting, now)
        if untold:
            await tell_taken_again(ctx, after, untold, now)
        for relay_id in due:
            async with ctx.db.write() as session:
                notices = await relay.hand_on(session, ctx.keys, relay_id, now, ctx.reaches)
                await ctx.notices.enqueue(session, notices, now)
            done += bool(notices)
        if len(page) < BATCH:
            return done
        after = page[-1].id
