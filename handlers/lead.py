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
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Request
from handlers.vocabulary import Action, Actor, Notice, Origin, format_ref
from store.audit.log import AlsoWrite, AuditRecord, origin_event
from store.people import lead as store
from store.people.lead import LeadNotices
from store.register.children import ChildRecord

NOTICE_KIND = "lead_informed"
AS_LEAD = "a child you are lead professional for"
AS_PRACTITIONER = "a child you are working with"


# Recorded in last_error (names nobody): the recipient no longer works with the child, or is no
# longer its lead professional when the notice called them so, or the child's record is archived
# (nobody is told of it any more), by the time it would be sent.
NO_LONGER_SO = "not sent: its recipient no longer works with the child as it said"
_KEY = re.compile(r"lead:[^:]*:(?P<ref>[0-9]+):.*")  # ``dedupe_key``'s


def notice_text(looker: store.Contact, ref: int, lead: bool) -> str:
    return f"{looker} looked up {format_ref(ref)}, {AS_LEAD if lead else AS_PRACTITIONER}."


def dedupe_key(looker_id: str, recipient_id: str, ref: int, day: str) -> str:
    """One notice per looker, child, recipient and day (ids hashed to fit the outbox's key)."""
    pair = hashlib.sha256(f"{looker_id}\x00{recipient_id}".encode()).hexdigest()[:32]
    return f"lead:{day}:{ref}:{pair}"


async def no_longer_so(session: AsyncSession, due: Sequence[tuple[int, Notice]], now: datetime) -> set[int]:
    """The lookup notices among ``due`` (by id) whose recipient is no longer what the notice tells
    them they are: working with the child (their involvement ended), or, for one sent to them as
    its lead professional, the lead (another made lead), as of ``now`` (an involvement reaches its
    planned end without a feed saying so), or the child's record archived since (``store.standing``:
    as a lookup would not, nobody is told of an archived child). The outbox closes them unsent: a notice
    waits for its recipient up to a week, and nobody who has stopped working with a child is told
    who now does. One statement, and none when no lookup notice is due."""
    asked: dict[int, tuple[int, str, bool]] = {}
    for notice_id, notice in due:
        if notice.kind == NOTICE_KIND and (key := _KEY.fullmatch(notice.dedupe_key or "")) is not None:
            asked[notice_id] = (int(key["ref"]), notice.recipient_id, notice.text.endswith(f"{AS_LEAD}."))
    if not asked:
        return set()
    still = await store.standing(session, {ref for ref, _, _ in asked.values()}, now)
    return {
        i for i, (ref, pid, as_lead) in asked.items() if (ref, pid) not in still or (as_lead and not still[(ref, pid)])
    }


async def inform(
    ctx: Context, req: Request, record: ChildRecord, session: AsyncSession, told: store.Told | None = None
) -> AlsoWrite | None:
    """Who is to be told that ``req``'s actor found this child, and how: the notices (and their
    event) to write with the lookup's own audit event, or None when nobody is to be told.

    Who is read in the lookup's own ``session``, or was read with the child (``told``: the keyed
    enquiry's one statement, ``children.enquire``; most lookups have nobody to tell: no lead
    professional, or the authority turned it off); the notices are written by the audit writer in
    the transaction that makes the lookup's event durable (``Result.also``), with the other
    lookups' of its batch in one statement, so a lookup takes no write transaction of its own (on
    SQLite, the one write lock) and the notice stands or falls with the event. The outbox's
    unique dedupe key keeps it to one notice per looker, child, recipient and day (told today
    already, or two lookups racing): the event counts only what was new, and there is none when
    nothing was.
    """
    looker = req.actor
    assert looker is not None
    ref = record.ref
    day = req.now.date().isoformat()
    if told is None:  # not read with the child (a shielded child, once a grant is found)
        told = await store.told_of(session, ref, record.local_authority, looker.practitioner_id, req.now)
    if not told.recipients:
        return None
    contact, who = store.contact_of(looker), told.setting
    notices = [
        Notice(r.practitioner_id, NOTICE_KIND, notice_text(contact, ref, r.lead), dedupe_key=key)
        for r in told.recipients
        for key in (dedupe_key(looker.practitioner_id, r.practitioner_id, ref, day),)
    ]
    as_lead = frozenset(n.dedupe_key for n, r in zip(notices, told.recipients, strict=True) if r.lead)
    return _Told(tuple((n, req.now) for n in notices), as_lead, looker, ref, req.now, req.command.correlation_id, who)


@dataclass(frozen=True, slots=True)
class _Told:
    """The lead's (or every current practitioner's) notices of one lookup, and the event saying
    how many were new (``store.audit.log.AlsoWrite``)."""

    notices: tuple[tuple[Notice, datetime], ...]
    as_lead: frozenset[str | None]  # the dedupe keys of the notices to lead professionals
    looker: Actor
    ref: int
    now: datetime
    correlation_id: str  # the lookup's
    who: LeadNotices

    def events(self, new: Collection[str]) -> list[AuditRecord]:
        if not new:
            return []
        leads = sum(1 for key in new if key in self.as_lead)
        event = origin_event(
            Origin.SCHEDULER,  # Signpost itself tells them; the looker is the actor it tells about
            Action.LEAD_PROFESSIONAL_INFORMED,
            self.now,
            actor=self.looker,
            subjects=(self.ref,),
            result_count=len(new),
            detail=f"{leads} lead, {len(new) - leads} other ({self.who.value})",
            correlation_id=self.correlation_id,
        )
        return [event]
