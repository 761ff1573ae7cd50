"""The lead professional is told (issue 18, part 1).

When a practitioner finds a child and is shown the signposts, the child's lead professional (or,
where the child's authority turns it on, every practitioner currently working with the child) gets
a private notice through the outbox: who looked (their contact signpost) and the child's
reference, never an identity field, so both sides can reach each other. At most one notice per
looker, child and day; nobody is told about their own lookup; archived, destroyed and (without a
grant) shielded children never get this far (``handlers.search.answer_for``).
"""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Request
from handlers.vocabulary import Action, Notice, Origin, format_ref
from store.audit.log import append, origin_event
from store.people import lead as store
from store.register.children import ChildRecord

NOTICE_KIND = "lead_informed"
AS_LEAD = "a child you are lead professional for"
AS_PRACTITIONER = "a child you are working with"


def notice_text(looker: store.Contact, ref: int, lead: bool) -> str:
    return f"{looker} looked up {format_ref(ref)}, {AS_LEAD if lead else AS_PRACTITIONER}."


def dedupe_key(looker_id: str, recipient_id: str, ref: int, day: str) -> str:
    """One notice per looker, child, recipient and day (ids hashed to fit the outbox's key)."""
    pair = hashlib.sha256(f"{looker_id}\x00{recipient_id}".encode()).hexdigest()[:32]
    return f"lead:{day}:{ref}:{pair}"


async def inform(ctx: Context, req: Request, record: ChildRecord, session: AsyncSession) -> int:
    """Tell the child's lead professional (or current practitioners) who found them; returns how many.

    Runs after the signposts were read: a read-only lookup writes the notices and their audit event
    in a short write transaction of their own (``Request.write``). Whether anyone is to be told is
    read first in the lookup's own ``session``: most lookups tell nobody new (no lead professional,
    the authority turned it off, or told today already), and then no write transaction (on SQLite,
    the one write lock) is taken at all. The write transaction reads it all again.
    """
    looker = req.actor
    assert looker is not None
    ref = record.ref
    if not await _anyone_new(session, looker.practitioner_id, record, req.now.date().isoformat()):
        return 0

    async def work(session: AsyncSession) -> int:
        who = await store.setting(session, record.local_authority)
        found = await store.recipients(session, ref, who, excluding=(looker.practitioner_id,))
        if not found:
            return 0
        day = req.now.date().isoformat()
        keyed = {dedupe_key(looker.practitioner_id, r.practitioner_id, ref, day): r for r in found}
        sent = await store.queued(session, keyed)
        fresh = {key: r for key, r in keyed.items() if key not in sent}
        contact = await store.contact(session, looker.practitioner_id)
        if not fresh or contact is None:
            return 0
        notices = [
            Notice(r.practitioner_id, NOTICE_KIND, notice_text(contact, ref, r.lead), dedupe_key=key)
            for key, r in fresh.items()
        ]
        await ctx.notices.enqueue(session, notices, req.now)
        leads = sum(1 for r in fresh.values() if r.lead)
        event = origin_event(
            Origin.SCHEDULER,  # Signpost itself tells them; the looker is the actor it tells about
            Action.LEAD_PROFESSIONAL_INFORMED,
            req.now,
            actor=looker,
            subjects=(ref,),
            result_count=len(notices),
            detail=f"{leads} lead, {len(notices) - leads} other ({who.value})",
            correlation_id=req.command.correlation_id,
        )
        await append(session, [event])
        return len(notices)

    return await req.write(work)


async def _anyone_new(session: AsyncSession, looker_id: str, record: ChildRecord, day: str) -> bool:
    """Whether this lookup would tell anyone who has not been told today (a read, no lock)."""
    who = await store.setting(session, record.local_authority)
    found = await store.recipients(session, record.ref, who, excluding=(looker_id,))
    if not found:
        return False
    keyed = {dedupe_key(looker_id, r.practitioner_id, record.ref, day) for r in found}
    return bool(keyed - await store.queued(session, keyed))
