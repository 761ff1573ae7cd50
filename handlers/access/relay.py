"""A blind relay for shielded children (issue 18, part 2).

A practitioner who finds a shielded record without a grant may send a short message (their purpose
and how to reach them). Signpost passes it to the child's lead professional, or with none to the
duty managers of the child's authority, without telling the sender who received it. The text
must not identify the child (``handlers.access.screening``: a refused message counts toward the
sender's 3 a day, and the limit is checked before the text is read); it and any reply are sealed under the child's
data key, so they die with the child. The sender is told only "delivered" and, if the recipient
answers through the relay, "answered" with the answer. Notices carry no message text: each side
reads it with ``relay ID``, so the outbox never holds it in plain. ``relay ID`` is transient
(``Spec.transient``): front ends never leave what it shows in a chat's history. A message none of
whose recipients can take it any more is handed on by the same rule (``hand_on``, called by
handlers/stand_in.py when the outbox drops a recipient's notice), or its sender told it was not.
A recipient holds a message only while they hold what it was sent to them as (``taking``: still
the child's lead professional, still a duty manager of the child's authority as it is now, still
an admin), and only while Signpost can reach them (``store.delivery.outbox.reachable``: linked on
a platform served, their notice of it not closed unsent at the end of its week; nobody else is
given a message in the first place): one who no longer does is answered as for a message that is
not theirs, and the scheduled ``hand_on_relays`` (handlers/access/jobs.py) hands on an unanswered message that nobody
can take any more, however that came about (a feed, a role or status change, a child who moved).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access import found as found_by_name
from handlers.access import screening
from handlers.access.notices import when
from handlers.access.requests import handle_gone, split_target, target_ref
from handlers.clock import waited
from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, StepUp, bad_reference, parsed_by, reference_in
from handlers.grammar import MAX_ID, UsageError, parse_number
from handlers.refs import InvalidReference
from handlers.vocabulary import Action, Button, Input, Notice, Origin, Outcome, Platform, Reply, Role, format_ref
from store.audit.log import append, origin_event
from store.delivery.notices import HANDED_ON, NO_LONGER_THEIRS, NOT_ACTIVE, closed_unsent_keyed, drop_keyed, renew
from store.delivery.outbox import reachable
from store.keys.crypto import KeyRing
from store.people import lead, relay
from store.people.practitioners import holders, holding_in
from store.register import children

# Messages one sender may send about one child in any 24 hours, those refused for naming the child
# included: the same number as every practitioner's daily refusals about a child.
PER_DAY = screening.PER_DAY
MIN_TEXT = 10  # a message: a purpose and how to reach the sender
MIN_ANSWER = 2
TRAFFIC_DAYS = 30
LEAD = "lead"  # a relay's recipient_role for the child's lead professional (else a Role's value, or "none")

MESSAGE_USAGE = (
    "message REFERENCE TEXT, e.g. message 999 000 1146 section 47 enquiry; please call me on 0161 496 0002 "
    "(your purpose and how to reach you; never the child's name, date of birth or postcode, nor the reference again)"
)
READ_USAGE = "relay ID, e.g. relay 7"
REPLY_USAGE = (
    "reply ID TEXT, e.g. reply 7 please call me this afternoon (no child's name, date of birth, postcode or reference)"
)
TRAFFIC_SUMMARY = (
    f"relay traffic about your authority's children in the last {TRAFFIC_DAYS} days "
    "(counts, senders and ages, never who received them; an admin sees every authority)"
)

NO_RECORD = "No record found for that reference. Check the digits."
# A message or answer that names the child (each refusal then says how many tries are left today).
IDENTITY_REFUSED = (
    "Signpost cannot pass this on: it names the child or gives their date of birth, postcode or reference. "
    "Signpost already knows which record it is about; please send it again without them."
)
NOT_YOURS = "There is no relayed message {id} for you."
DELIVERED = (
    "Message {id} about {ref} delivered to the professional responsible for this child. Signpost does not say "
    "who they are; you'll be told here if they answer through the relay, or they may contact you directly."
)
NOBODY = "Signpost has nobody to pass a message about {ref} to yet. Please contact your duty manager or request access."
GONE = "(no longer readable: the child's record has been destroyed)"
UNDELIVERED_NOTICE = (
    "Your message {id} about {ref} could not be delivered: the professional it was passed to is no longer "
    "available, and Signpost has nobody else to pass it to. Please contact your duty manager or request access."
)
UNDELIVERED = "not delivered: the professional it was passed to is no longer available, and nobody else could take it"
# None of its recipients can be reached with it (``_status``), and the scheduled ``hand_on_relays``
# has not yet passed it on, or told the sender it could not.
PASSING_ON = (
    "not delivered yet: the professional it was passed to cannot be reached; Signpost is passing it to "
    "whoever else is responsible, and will tell you here if nobody can take it"
)


def read_button(relay_id: int) -> Button:
    return Button("relay_read", "Read", f"relay {relay_id}", style="primary")


def reply_button(relay_id: int) -> Button:
    return Button(
        "relay_reply",
        "Reply through Signpost",
        f"reply {relay_id}",
        input=Input(
            name="text",
            label="Your answer (no child's name, date of birth, postcode or reference)",
            max_length=screening.MAX_TEXT,
        ),
    )


def _id(args: str) -> tuple[int, str]:
    first, _, rest = args.strip().partition(" ")
    relay_id = parse_number(first, 1, MAX_ID)
    if relay_id is None:
        raise UsageError("please give the message number, e.g. 7")
    return relay_id, rest.strip()


def _answer_args(args: str) -> tuple[int, str]:
    """``reply ID TEXT``: the message number and the answer, whitespace run together. No answer at
    all is the command's usage, said before any message is looked up: "There is no relayed message
    1 for you" was the answer to `reply 1` from anyone the message was not for."""
    relay_id, rest = _id(args)
    text = _text_of(rest)
    if not text:
        raise UsageError(f"please write your answer after the message number: reply {relay_id} TEXT")
    return relay_id, text


def _read_id(args: str) -> int:
    """``relay ID``: text after the number is an answer typed to the wrong command (reply's neighbour),
    which reading the message would drop without a word."""
    relay_id, rest = _id(args)
    if any(char.isalpha() for char in rest):  # a second number ("relay 1 2") is a word too many (Spec.words)
        raise UsageError(f"to answer message {relay_id}, send: reply {relay_id} TEXT (relay only reads a message)")
    return relay_id


# Whom a message goes to, in order: the first of these with anyone who can take it has it.
CHOICE = (LEAD, Role.DUTY_MANAGER.value, Role.ADMIN.value)


async def _recipients(
    session: AsyncSession,
    ref: int,
    authority: str,
    sender: str,
    reaches: Collection[Platform],
    now: datetime,
    relay_id: int = 0,
) -> tuple[tuple[str, ...], str]:
    """The child's lead professional; with none Signpost can reach, the duty managers of the child's
    authority; then the admins ("none": nobody). Only those a notice can reach (``reachable``) and,
    for a message already sent (``relay_id``), whose notice of it was not closed unsent."""
    standing = await _standing(session, [(role, ref, authority) for role in CHOICE], reaches, now)
    for role in CHOICE:
        found = standing.holding(role, ref, authority, sender)
        if relay_id:
            unreached = await _unreached(session, [(relay_id, pid) for pid in found])
            found = tuple(pid for pid in found if (relay_id, pid) not in unreached)
        if found:
            return found, role
    return (), "none"


async def _unreached(session: AsyncSession, pairs: Collection[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those (relay, recipient) whose notice of the message was closed unsent for want of reaching
    them (its week ran out: no linked platform, a platform refusing it), not because the message
    was taken from them (``UNTOLD``): they were never reached with it, so cannot take it."""
    keys = {_notice_key(relay_id, pid): (relay_id, pid) for relay_id, pid in pairs}
    closed = await closed_unsent_keyed(session, NOTICE_KIND, keys, UNTOLD)
    return {keys[key] for key in closed}


@dataclass(frozen=True, slots=True)
class _Standing:
    """Who holds, now, each role some relays were sent as: the children's lead professionals, the
    authorities' duty managers, the admins (only those a notice can reach, ``reachable``), read in
    a few statements for a whole page of relays, not a read per relay."""

    leads: Mapping[int, tuple[str, ...]]
    duty_managers: Mapping[str, tuple[str, ...]]
    admins: tuple[str, ...]

    def holding(self, role: str, ref: int, authority: str, sender: str) -> tuple[str, ...]:
        """Who ``_recipients`` would choose as ``role`` now: the child's lead professionals, the
        duty managers of ``authority`` or the admins, never the sender; nobody for "none"."""
        if role == LEAD:
            found = self.leads.get(ref, ())
        elif role == Role.DUTY_MANAGER.value:
            found = self.duty_managers.get(authority, ())
        else:
            found = self.admins if role == Role.ADMIN.value else ()
        return tuple(pid for pid in found if pid != sender)


async def _standing(
    session: AsyncSession, wanted: Sequence[tuple[str, int, str]], reaches: Collection[Platform], now: datetime
) -> _Standing:
    """The ``_Standing`` of each (role, child, authority) ``wanted`` at ``now``: at most one statement
    a role, and one more for who of them can be reached on ``reaches``."""
    refs = {ref for role, ref, _ in wanted if role == LEAD}
    authorities = {authority for role, _, authority in wanted if role == Role.DUTY_MANAGER.value}
    admins = any(role == Role.ADMIN.value for role, _, _ in wanted)
    leads = await lead.leads_of(session, refs, now) if refs else {}
    managers = await holding_in(session, Role.DUTY_MANAGER, authorities) if authorities else {}
    admin_ids = (await holders(session, Role.ADMIN, fallback_to_admins=False)).ids if admins else ()
    everyone = {pid for ids in (*leads.values(), *managers.values(), admin_ids) for pid in ids}
    near = await reachable(session, sorted(everyone), reaches) if everyone else set()

    def kept(ids: Sequence[str]) -> tuple[str, ...]:
        return tuple(pid for pid in ids if pid in near)

    return _Standing(
        {ref: kept(ids) for ref, ids in leads.items()},
        {authority: kept(ids) for authority, ids in managers.items()},
        kept(admin_ids),
    )


@dataclass(frozen=True, slots=True)
class Taken:
    """A relay as it stands now: the child's authority as the register says it today (the relay's
    own once the child's record is gone), and those of its recipients who may still take it."""

    authority: str
    by: frozenset[str]


async def taken(
    session: AsyncSession, keys: KeyRing, page: Sequence[relay.Relay], reaches: Collection[Platform], now: datetime
) -> dict[int, Taken]:
    """``taking`` for a page of relays at once, by relay id: the children's authorities in one
    statement (in clear, nothing decrypted; a child ``destroyed_since`` as ``children.find`` says),
    then at most one statement a role, one for who can be reached on ``reaches`` and one for whose
    notices were closed unsent (``_unreached``), however many relays. The one test of "may take this
    message", for reading, answering, handing on, and the scheduled look over every unanswered one."""
    records = await children.find_many(session, keys, [found.child_ref for found in page])
    authority = {
        found.id: records[found.child_ref].local_authority if found.child_ref in records else found.local_authority
        for found in page
    }
    addressed = [found for found in page if found.recipients]
    wanted = [(f.recipient_role, f.child_ref, authority[f.id]) for f in addressed]
    standing = await _standing(session, wanted, reaches, now)
    unreached = await _unreached(session, [(f.id, pid) for f in addressed for pid in f.recipients])
    return {
        found.id: Taken(
            authority[found.id],
            frozenset(
                pid
                for pid in standing.holding(found.recipient_role, found.child_ref, authority[found.id], found.sender_id)
                if pid in found.recipients and (found.id, pid) not in unreached
            ),
        )
        for found in page
    }


async def taking(
    session: AsyncSession, keys: KeyRing, found: relay.Relay, reaches: Collection[Platform], now: datetime
) -> frozenset[str]:
    """Those of a relay's recipients who may still read and answer it: each still holds what it was
    sent to them as (``recipient_role``), for the child and the child's authority as they are now.
    A lead professional replaced or whose involvement ended, a duty manager who lost the role or
    moved authority, a recipient of a child who moved authority, one who left, or one Signpost
    cannot reach (no linked account, or their notice of it closed unsent) no longer may:
    they are answered as for a message that is not theirs, and with nobody left, ``hand_on``
    passes it on. ``taken`` for a page of one."""
    return (await taken(session, keys, [found], reaches, now))[found.id].by


def untaken(page: Sequence[relay.Relay], judged: Mapping[int, Taken]) -> list[str]:
    """The dedupe keys of the notices to recipients who can no longer take a message that another
    recipient still can (so nothing is handed on): such a notice, still waiting, is not to be sent."""
    return [
        _notice_key(found.id, pid)
        for found in page
        if judged[found.id].by
        for pid in found.recipients
        if pid not in judged[found.id].by
    ]


# Why a recipient's notice went unsent: the message was taken from them (handed on), they could
# no longer take it (the role lost, the involvement ended), or they were made inactive. Once they may
# take it again, with no notice of it waiting nor delivered, they are told (``renew``): the outbox
# would refuse their notice's key a second time.
UNTOLD = frozenset({HANDED_ON, NO_LONGER_THEIRS, NOT_ACTIVE})


def takers_notices(page: Sequence[relay.Relay], judged: Mapping[int, Taken]) -> list[Notice]:
    """The notice of each recipient who may take each message now (``taken``), as ``relay_notices``
    made or would make it: those of them ``UNTOLD`` are to be sent after all (``tell_again``)."""
    return [
        notice
        for found in page
        if judged[found.id].by
        for notice in relay_notices(found.id, found.child_ref, sorted(judged[found.id].by), found.recipient_role)
    ]


async def tell_again(session: AsyncSession, notices: Sequence[Notice], now: datetime) -> set[str]:
    """Send those of these relay notices that went unsent because their recipient could no longer
    take the message (``UNTOLD``), now that they can; the dedupe keys of those sent after all."""
    return await renew(session, notices, now, UNTOLD)


def _text_of(args: str) -> str:
    return " ".join(args.split())


# Why a recipient has the message, by how ``_recipients`` chose them.
WHY = {
    "lead": "a child you are lead professional for",
    "duty_manager": "a child of your authority with no lead professional Signpost can reach",
    "admin": "a child whose authority has no lead professional or duty manager Signpost can reach to take it",
}


def relay_notices(relay_id: int, ref: int, recipients: Sequence[str], role: str) -> list[Notice]:
    """Each recipient's notice that a message waits for them: the reference and the relay's id only."""
    if not recipients:
        return []
    text = (
        f"A practitioner sent you a message through Signpost about shielded record {format_ref(ref)}, {WHY[role]} "
        f"(message {relay_id}). Send 'relay {relay_id}' to read it and the sender's contact details; you can "
        "answer through Signpost, contact them directly, or leave it. They are not told who you are."
    )
    buttons = (read_button(relay_id), reply_button(relay_id))
    return [Notice(pid, NOTICE_KIND, text, buttons, _notice_key(relay_id, pid)) for pid in recipients]


NOTICE_KIND = "relay_message"


def _notice_key(relay_id: int, recipient: str) -> str:
    return f"relay:{relay_id}:{recipient}"


async def hand_on(
    session: AsyncSession, keys: KeyRing, relay_id: int, now: datetime, reaches: Collection[Platform]
) -> list[Notice]:
    """The notices for a relay none of whose recipients can take it any more (``taking``: the
    scheduled ``hand_on_relays`` looks at every unanswered one, and the outbox asks at once when
    it drops a recipient's notice unsent), unanswered: it goes to whoever ``_recipients`` chooses
    now, the child's lead professional or the duty managers of the child's authority as it is now
    (then the admins), who become its only recipients (they may read and answer it; nobody who
    never had it keeps it), the authority its own (``relays`` reads the child's now); with nobody, it is
    closed undelivered and the sender is told so. Nothing while a recipient can still take it (they
    have it), or once it is answered or gone with the child's record. Audited in the same
    transaction (``relay_handed_on``, the child its subject; ids and counts only): it changes who
    may read a message about a shielded child."""
    found = await relay.get(session, keys, relay_id)
    if found is None or found.replied_at is not None or not found.recipients:
        return []
    standing = (await taken(session, keys, [found], reaches, now))[relay_id]
    if standing.by:
        return []
    authority = standing.authority
    recipients, role = await _recipients(session, found.child_ref, authority, found.sender_id, reaches, now, relay_id)
    if not await relay.readdress(session, relay_id, found.recipients, recipients, role, authority):
        return []  # another worker handed it on first
    # Whoever it was taken from is not told, after it, that a message waits for them.
    gone = [_notice_key(relay_id, pid) for pid in found.recipients if pid not in recipients]
    await drop_keyed(session, NOTICE_KIND, gone, now, HANDED_ON)
    handed = origin_event(
        Origin.SCHEDULER,  # Signpost itself passes it on, at delivery
        Action.RELAY_HANDED_ON,
        now,
        outcome=Outcome.DONE if recipients else Outcome.FAILED,
        subjects=(found.child_ref,),
        result_count=len(recipients),
        detail=f"relay {relay_id} to {role if recipients else 'nobody: sender told'}",
    )
    await append(session, [handed])
    if recipients:
        told = relay_notices(relay_id, found.child_ref, recipients, role)
        # One handed the message back (it was taken from them before their notice went) is told
        # again; the caller's ``enqueue`` stores the others' notices (a renewed key is refused there).
        await tell_again(session, told, now)
        return told
    text = UNDELIVERED_NOTICE.format(id=relay_id, ref=found_by_name.named(found.child_ref, found.ref_withheld))
    return [Notice(found.sender_id, "relay_undelivered", text, dedupe_key=f"relay:{relay_id}:undelivered")]


def _message_args(args: str) -> tuple[int | str, str]:
    """The child's reference (or a search's handle, handlers/access/found.py) and the message:
    InvalidReference or UsageError when it could not be sent."""
    ref, text = split_target(args)
    text = _text_of(text)
    if len(text) < MIN_TEXT:
        raise UsageError(f"please write your purpose and how to reach you, in at least {MIN_TEXT} characters")
    return ref, screening.within_limit(text, "message")


async def message(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """Send a message about a shielded child to whoever is responsible, without learning who."""
    actor = req.actor
    assert actor is not None
    try:
        target, text = _message_args(req.args)
    except InvalidReference as exc:
        return bad_reference(exc)
    ref = await target_ref(session, target, actor, req.now)
    if ref is None:
        return handle_gone()
    withheld = not isinstance(target, int)
    name = found_by_name.named(ref, withheld)
    record = await children.find(session, ctx.keys, ref)
    if record is None or record.state != "active":
        return Result(Reply(Outcome.INVALID, NO_RECORD), detail="no record")
    subjects = (ref,)
    if not record.shielded:
        text_ = f"{found_by_name.capital(name)} is not shielded: search for it and contact the practitioners directly."
        return Result(Reply(Outcome.INFO, text_), subjects=subjects, detail="not shielded")
    if await ctx.grants.grant_expires_at(session, actor, ref, req.now) is not None:
        text_ = f"You have access to {name}: search for it and contact the practitioners directly."
        return Result(Reply(Outcome.INFO, text_), subjects=subjects, detail="grant in force")
    refusal = await screening.screen(
        ctx,
        req,
        session,
        ref,
        text,
        what="message",
        called="message",
        refused=IDENTITY_REFUSED,
        then="Please wait for an answer, or contact your duty manager.",
        spent_detail="relay rate limit",
        relayed=lambda: relay.sent_since(session, actor.practitioner_id, ref, req.now - screening.WINDOW),
        named=name,
    )
    if refusal is not None:
        return refusal
    recipients, role = await _recipients(
        session, ref, record.local_authority, actor.practitioner_id, ctx.reaches, req.now
    )
    if not recipients:
        return Result(Reply(Outcome.REFUSED, NOBODY.format(ref=name)), subjects=subjects, detail="nobody")
    sealed = await relay.seal_for_child(session, ctx.keys, ref, text, "message")
    if sealed is None:
        return Result(Reply(Outcome.INVALID, NO_RECORD), detail="no child key")
    relay_id = await relay.create(
        session,
        ref,
        record.local_authority,
        actor.practitioner_id,
        recipients,
        role,
        sealed,
        req.now,
        ref_withheld=withheld,
    )
    await ctx.notices.enqueue(session, relay_notices(relay_id, ref, recipients, role), req.now)
    reply = Reply(Outcome.DONE, DELIVERED.format(id=relay_id, ref=name))
    return Result(reply, subjects=subjects, result_count=len(recipients), detail=f"relay {relay_id} to {role}")


async def answer(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """A recipient answers through the relay: the sender is told it was answered, and reads it."""
    actor = req.actor
    assert actor is not None
    relay_id, text = _answer_args(req.args)
    found = await relay.get(session, ctx.keys, relay_id)
    if found is None or actor.practitioner_id not in await taking(session, ctx.keys, found, ctx.reaches, req.now):
        return _not_yours(relay_id)
    subjects = (found.child_ref,)
    if len(text) < MIN_ANSWER:
        raise UsageError(f"please write your answer, in at least {MIN_ANSWER} characters")
    screening.within_limit(text, "answer")
    if found.replied_at is not None:  # before the text is read: an answered message is no oracle
        return _already_answered(relay_id, subjects)
    refusal = await screening.screen(
        ctx,
        req,
        session,
        found.child_ref,
        text,
        what="reply",
        called="answer",
        refused=IDENTITY_REFUSED,
        then=f"You can still reach the sender directly: 'relay {relay_id}' shows how.",
    )
    if refusal is not None:
        return refusal
    sealed = await relay.seal_for_child(session, ctx.keys, found.child_ref, text, "reply")
    if sealed is None:
        return Result(Reply(Outcome.INVALID, NO_RECORD), subjects=subjects, detail="no child key")
    if not await relay.answer(session, relay_id, actor.practitioner_id, sealed, req.now, was=found.recipients):
        again = await relay.get(session, ctx.keys, relay_id)
        if again is None or again.recipients != found.recipients:  # handed on since: no longer theirs
            return _not_yours(relay_id)
        return _already_answered(relay_id, subjects)
    ref = found_by_name.named(found.child_ref, found.ref_withheld)  # the sender's name for it
    notice = Notice(
        found.sender_id,
        "relay_answered",
        f"Your message {relay_id} about {ref} was answered. Send 'relay {relay_id}' to read the answer.",
        (read_button(relay_id),),
        f"relay:{relay_id}:answered",
    )
    await ctx.notices.enqueue(session, [notice], req.now)
    text_ = f"Your answer to message {relay_id} was passed on. The sender is not told who you are, unless you said."
    return Result(Reply(Outcome.DONE, text_), subjects=subjects, detail=f"relay {relay_id} answered")


def _not_yours(relay_id: int) -> Result:
    """A message that is not (or no longer) the answerer's: as for one that never was (no child named)."""
    return Result(Reply(Outcome.INVALID, NOT_YOURS.format(id=relay_id)), detail="not a recipient")


def _already_answered(relay_id: int, subjects: tuple[int, ...]) -> Result:
    text = f"Message {relay_id} has already been answered through Signpost."
    return Result(Reply(Outcome.REFUSED, text), subjects=subjects, detail=f"relay {relay_id} already answered")


async def _open(ctx: Context, session: AsyncSession, found: relay.Relay, sealed: bytes | None, part: str) -> str:
    if sealed is None:
        return ""
    return await relay.open_for_child(session, ctx.keys, found.child_ref, sealed, part) or GONE


async def _status(
    session: AsyncSession, found: relay.Relay, takers: frozenset[str], reaches: Collection[Platform]
) -> str:
    """An unanswered message's status for its sender: "delivered" while someone Signpost can reach
    holds it (one who holds it no longer, still reachable, is not told apart: the sender learns
    nothing of who is responsible now); not yet while none of its recipients can be reached (no
    linked account, their notice closed unsent) until it is handed on; not delivered with nobody."""
    if takers:
        return "delivered"
    if not found.recipients:
        return UNDELIVERED
    near = await reachable(session, found.recipients, reaches)
    unreached = await _unreached(session, [(found.id, pid) for pid in near])
    return "delivered" if any((found.id, pid) not in unreached for pid in near) else PASSING_ON


async def read(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """The sender sees their message and its status (and answer); a recipient sees it with the sender's contact."""
    actor = req.actor
    assert actor is not None
    relay_id = _read_id(req.args)
    found = await relay.get(session, ctx.keys, relay_id)
    me = actor.practitioner_id
    takers = await taking(session, ctx.keys, found, ctx.reaches, req.now) if found is not None else frozenset()
    if found is None or (me != found.sender_id and me not in takers):
        return Result(Reply(Outcome.INVALID, NOT_YOURS.format(id=relay_id)), detail="not a party")
    subjects = (found.child_ref,)
    ref = format_ref(found.child_ref)
    text = await _open(ctx, session, found, found.text, "message")
    answer_text = await _open(ctx, session, found, found.reply, "reply")
    if me == found.sender_id:
        ref = found_by_name.named(found.child_ref, found.ref_withheld)  # the sender's name for it
        if found.replied_at is not None:
            status = f"answered {when(found.replied_at)}: {answer_text}"
        else:
            status = await _status(session, found, takers, ctx.reaches)
        mine = (f"You wrote: {text}", f"Status: {status}")
        reply = Reply(Outcome.INFO, f"Your message {relay_id} about {ref}, sent {when(found.created_at)}.", lines=mine)
        return Result(reply, subjects=subjects, detail=f"relay {relay_id} read by sender")
    sender = await lead.contact(session, found.sender_id)
    lines: tuple[str, ...] = (f"From: {sender or 'a practitioner no longer in the register'}", f"Message: {text}")
    if found.replied_at is not None:
        lines = (*lines, f"Answered through Signpost {when(found.replied_at)}: {answer_text}")
    head = f"Message {relay_id} about shielded record {ref}, sent {when(found.created_at)}."
    buttons = () if found.replied_at is not None else (reply_button(relay_id),)
    reply = Reply(Outcome.INFO, head, lines=lines, buttons=buttons)
    return Result(reply, subjects=subjects, detail=f"relay {relay_id} read by recipient")


async def traffic(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """Relay traffic about the duty manager's authority's children: counts, ages and senders, never
    contents nor who received a message (``party``: the relay is blind to duty managers too)."""
    actor = req.actor
    assert actor is not None
    scope = None if actor.has(Role.ADMIN) else actor.local_authority
    since = req.now - timedelta(days=TRAFFIC_DAYS)
    rows = await relay.traffic(session, scope, since)
    if not rows:
        return Result(Reply(Outcome.INFO, f"No relay messages in the last {TRAFFIC_DAYS} days."), detail="none")
    lines = tuple(_traffic_line(t, req.now) for t in rows)
    total = sum(t.messages for t in rows)
    messages = f"{total} relay message{'s' if total != 1 else ''}"
    head = f"{messages} in the last {TRAFFIC_DAYS} days (never their contents, nor who received them):"
    return Result(
        Reply(Outcome.INFO, head, lines=lines),
        subjects=tuple(sorted({t.child_ref for t in rows})),
        result_count=total,
        detail=f"{len(rows)} rows",
    )


# Whom a message went to, as anyone but its recipients is told: by the role they were chosen as,
# never who (PRODUCT.md: the relay does not reveal the shielded child's lead professional). The one
# home of that wording: ``relays``, and anything else that speaks of a relay's recipients.
PARTY = {
    LEAD: "the lead professional",
    Role.DUTY_MANAGER.value: "the duty managers",
    Role.ADMIN.value: "the admins",
    "none": "nobody (not delivered)",
}


def party(role: str) -> str:
    """A relay's recipients, blind: "the lead professional", never their id or name."""
    return PARTY.get(role, "the professional responsible")


def _traffic_line(t: relay.Traffic, now: datetime) -> str:
    counts = f"{t.messages} sent, {t.answered} answered, {t.waiting} waiting"
    if t.oldest_waiting is not None:
        counts += f" (oldest {waited(t.oldest_waiting, now)})"
    last = f"last sent {waited(t.last_sent, now)} ago"
    return f"• {format_ref(t.child_ref)}: {t.sender_id} → {party(t.recipient_role)}: {counts}; {last}"


SPECS = (
    Spec(
        name="message",
        action=Action.RELAY_MESSAGE,
        run=message,
        check=screening.details_first(
            lambda args: ("message", _message_args(args)[1]),
            called="message",
            names=reference_in(lambda args: split_target(args)[0]),
        ),
        summary="send a message about a shielded record to the professional responsible",
        usage=MESSAGE_USAGE,
        stepup=StepUp.FRESH,
        writes=True,
        audit_terms=False,  # the text is kept sealed under the child's key, not in the audit
        # Parked for a code, the message is sealed under that child's key too (handlers/dispatch/stopped.py).
        names_child=reference_in(lambda args: split_target(args)[0]),
    ),
    Spec(
        name="reply",
        action=Action.RELAY_MESSAGE,
        run=answer,
        # A reply's length is judged once the relay is found; any child's details at once, before a code.
        check=screening.details_first(lambda args: ("reply", _answer_args(args)[1]), called="answer"),
        summary="answer a message relayed to you",
        usage=REPLY_USAGE,
        role=None,  # whoever the relay chose (``taking``), an admin-only account too
        stepup=StepUp.FRESH,
        writes=True,
        audit_terms=False,
    ),
    Spec(
        name="relay",
        action=Action.RELAY_READ,
        run=read,
        check=parsed_by(_read_id),
        words=1,
        summary="read a relayed message, or the answer to yours",
        usage=READ_USAGE,
        role=None,  # its sender or whoever the relay chose (``taking``), an admin-only account too
        stepup=StepUp.FRESH,
        audit_terms=False,
        transient=True,  # the message, its answer and the sender's contact never stay in a chat
    ),
    Spec(
        name="relays",
        action=Action.RELAY_TRAFFIC,
        run=traffic,
        summary=TRAFFIC_SUMMARY,
        words=0,
        usage="relays",  # help shows "relays: <summary>"; the usage says no more than the name
        role=Role.DUTY_MANAGER,
        stepup=StepUp.FRESH,
        audit_terms=False,
    ),
)
