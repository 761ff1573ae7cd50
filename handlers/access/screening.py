"""Free text about a child that Signpost passes on or keeps (a relayed message or its answer, an
access request's purpose, a denial reason) is screened for the child's name, date of birth,
postcode and reference (``handlers.privacy``), for any child's reference, date of birth or
postcode (``refuse_details``), and for the code its writer's authenticator app shows now
(``refuse_code``), here, once for every command that takes such text.

A refusal tells the writer that their text named the child, so each one also answers a guess about
a child they may not be allowed to identify. Refusals are therefore bounded: each is audited
(detail ``identity refused: …``, see ``store.audit.refusals``) and counted, and once a
practitioner has had ``PER_DAY`` refusals about one child in 24 hours, every further text of theirs
about that child is turned away with the same answer, without being checked against that child's
details. The count is taken before the text is compared with the child, so the answer to a text
never depends on the child once the day's checks are used up. Every refusal says how many tries
are left before that hold, and the hold says what was counted (texts refused, messages relayed),
never more.

Any child's full date of birth, postcode or reference is looked for first, uncounted, from the text
alone and before any code is asked for (``details_first``, the command's own check), so also before
the hold: a held text that gives one is refused for it, with an answer that does not depend on whose
it is. The child's own details are looked for only in text that holds none of those (a name, a day
and month, a partial form), so a full detail answers no guess.

The writer's own current code is looked for after those and before the child's own details, also
uncounted (it reads nothing of any child): with the code prompt's own check
(``handlers.stepup.flow.spend_shown``), so the window screened is the window accepted; a code found
is spent, so free text is no way to try codes past the prompt's lockout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Check, Request, Result, bad_reference
from handlers.grammar import UsageError
from handlers.privacy import code_shaped, details_text, mentions_identity, mentions_reference, other_details
from handlers.refs import InvalidReference
from handlers.stepup.flow import spend_shown
from handlers.vocabulary import Outcome, Reply, format_ref, plural
from store.audit import refusals
from store.audit.refusals import DETAILS_REFUSED, hold_practitioner, identity_refusals, refused_detail
from store.keys.crypto import KeyRing
from store.register import children

PER_DAY = 3  # refusals one practitioner may have about one child in any 24 hours
WINDOW = timedelta(hours=24)
LEAVE_OUT = "leave out the child's name, date of birth, postcode and reference"
# How the answer to a text holding the writer's own current code begins (``refuse_code``).
CODE_REFUSED = "Please don't put a code from your authenticator app in a message"
# The most free text Signpost keeps or passes on in one piece (a purpose, a reason, a message, an
# answer), typed in chat or into a form (the forms' inputs carry the same limit).
MAX_TEXT = 1000


def within_limit(text: str, what: str) -> str:
    """``text`` when it is short enough to keep; usage help naming ``what`` (fixed text) otherwise."""
    if len(text) > MAX_TEXT:
        raise UsageError(f"please keep the {what} to at most {MAX_TEXT:,} characters")
    return text


def refuse_details(
    text: str, now: datetime, *, called: str, what: str, subjects: tuple[int, ...] = (), usage: str = ""
) -> Result | None:
    """None when ``text`` gives no child's reference, date of birth or postcode (any child's:
    ``handlers.privacy.other_details``); otherwise the refusal, which says what to leave out and
    repeats nothing of the text. ``called`` names the text to its writer, ``what`` in the audit
    detail (both fixed text, never input). Read from the text alone, so it is not counted toward
    the day's hold (it tells nobody anything about a child)."""
    found = other_details(text, now.date())
    if not found:
        return None
    answer = (
        f"Your {called} holds what looks like {details_text(found)}, perhaps another child's. Signpost passes it on "
        "and keeps it, so please leave out any child's reference, date of birth and postcode, and send it again "
        "(a date that is not a birthday can go without its year, e.g. 1 Nov). Nothing was passed on or kept."
    )
    return _uncounted(answer, usage, subjects, f"{DETAILS_REFUSED}: {what}")


async def refuse_code(
    ctx: Context,
    req: Request,
    session: AsyncSession,
    text: str,
    *,
    called: str,
    what: str,
    subjects: tuple[int, ...] = (),
    usage: str = "",
) -> Result | None:
    """None unless ``text`` holds a code the writer's own authenticator app shows now, as the code
    prompt would take it (``handlers.stepup.flow.spend_shown``: the same window, used or not; the
    code is then spent): six digits however grouped, also inside a longer number
    (``handlers.privacy.code_shaped``); a text with none reads no secret, nor does a writer with no
    authenticator. The refusal repeats nothing of the text; ``called`` names the text to its writer,
    ``what`` in the audit detail (both fixed text, never input, so no detail holds the code). It reads
    nothing of any child, so, like ``refuse_details``, it is not counted toward the day's hold."""
    if not await spend_shown(ctx, req, session, code_shaped(text)):
        return None
    answer = (
        f"{CODE_REFUSED}: codes go only into the private code prompt Signpost shows you. Your {called} holds the "
        "code your app shows now, so please leave it out and send it again; that code will not be accepted any "
        "more, so when Signpost asks for one, wait for the next. Nothing was passed on or kept."
    )
    return _uncounted(answer, usage, subjects, f"{refusals.CODE_REFUSED}: {what}")


async def refuse_uncounted(
    ctx: Context,
    req: Request,
    session: AsyncSession,
    text: str,
    *,
    called: str,
    what: str,
    subjects: tuple[int, ...] = (),
    usage: str = "",
) -> Result | None:
    """The refusals read from the text alone, never counted toward the day's hold, in their order:
    any child's details (``refuse_details``), then the writer's own current code (``refuse_code``).
    None when the text holds neither."""
    details = refuse_details(text, req.now, called=called, what=what, subjects=subjects, usage=usage)
    if details is not None:
        return details
    return await refuse_code(ctx, req, session, text, called=called, what=what, subjects=subjects, usage=usage)


def _uncounted(answer: str, usage: str, subjects: tuple[int, ...], detail: str) -> Result:
    """An uncounted refusal of free text: its answer, then the command's usage when it has one."""
    said = f"{answer}\n\n{usage}" if usage else answer
    return Result(Reply(Outcome.INVALID, said), subjects=subjects, detail=detail)


def details_first(
    text_of: Callable[[str], tuple[str, str]],
    *,
    called: str,
    usage: str = "",
    names: Callable[[str], int | str | None] | None = None,
) -> Check:
    """A ``Spec.check``: the command's own parse (``text_of``, answering ``what`` the text is called
    in the audit detail and the text itself; ``UsageError`` or ``InvalidReference`` as the handler
    would have them), then ``refuse_details`` on the text. From the text alone, so the dispatch chain
    answers it before anyone is asked for a code (``chain.check_gate``): a text that gives any
    child's reference, date of birth or postcode is never parked for the code, nor sealed in the
    audit event of the code asked for, so "Nothing was passed on or kept" holds however fresh the
    writer's last code is. The refusal reads nothing of any child; its event names as its subject the
    reference typed (``names``, a ``Spec.names_child``), whether or not a child is registered there,
    so the family's subject access report and the audit export show which record the text was
    about, as they did when the handler refused it (the answer does not depend on the record, so
    naming it tells nobody anything); a search's handle, which only the database resolves, names
    none. The handler screens the text again, for the child's own name, once it runs."""

    def check(args: str, now: datetime) -> Result | None:
        try:
            what, text = text_of(args)
        except InvalidReference as exc:
            return bad_reference(exc)
        typed = None if names is None else names(args)
        subjects = (typed,) if isinstance(typed, int) else ()
        return refuse_details(text, now, called=called, what=what, subjects=subjects, usage=usage)

    return check


@dataclass(frozen=True)
class Tally:
    """What counts against one person's daily limit about one child, in the last 24 hours: their
    texts refused for naming the child (every command's), and what else the command counts (the
    messages relayed, for ``message``)."""

    refused: int
    relayed: int = 0

    @property
    def used(self) -> int:
        return self.refused + self.relayed


# When the hold lifts, said with every refusal and with the hold itself. The count is over a rolling
# 24 hours: a refusal stops counting 24 hours after it was made.
HOLD = "Signpost reads none of your texts about it until the first of them is 24 hours old"


def tries_text(after: Tally, relay: bool) -> str:
    """The end of a refusal: how many tries are left before the hold, counting this refusal.

    ``relay``: the command also counts the messages relayed (``message``), so its own limit is named
    where it is what comes first."""
    left = PER_DAY - after.used
    if relay and after.relayed:
        why = (
            f"Signpost takes {PER_DAY} messages from you about one record in 24 hours, counting those it "
            "refused (and any refused request about it)"
        )
        if left <= 0:
            return f"That was the last try today: {why}."
        return f"{plural(left, 'more try', 'more tries')} today: {why}."
    if left <= 0:
        return (
            f"That was the last try today: {PER_DAY} of your texts about this record have been refused "
            f"within 24 hours, so {HOLD}."
        )
    return (
        f"{plural(left, 'more try', 'more tries')} today: once {PER_DAY} of your texts about one record "
        f"(requests, messages, reasons or answers) have been refused within 24 hours, {HOLD}."
    )


def held_text(ref: int, tally: Tally, then: str, named: str | None = None) -> str:
    """The answer once the day's limit is reached: the same whatever the text (any child's full
    date of birth, postcode or reference was refused before, by ``details_first``; the text is not
    compared with the child), and only what happened (how many texts were refused, how many messages
    relayed). ``named``: the record as the writer may be told of it (handlers/access/found.py), by
    default its reference."""
    record = format_ref(ref) if named is None else named
    if tally.refused >= PER_DAY or not tally.relayed:
        return (
            f"{tally.refused} of your texts about {record} "
            f"{'was' if tally.refused == 1 else 'were'} refused in the last 24 hours because they named the "
            f"child or gave their date of birth, postcode or reference, so {HOLD}: this one was not read or "
            f"passed on. {then}"
        )
    relayed = f"Signpost has relayed {plural(tally.relayed, 'message')} from you about {record}"
    if not tally.refused:
        return (
            f"{relayed} in the last 24 hours, the most it relays about one record in a day. This one was not "
            "read or passed on. Please wait for an answer, or request access."
        )
    return (
        f"{relayed} in the last 24 hours and refused {tally.refused} of your texts "
        f"about it for naming the child or giving their date of birth, postcode or reference: {tally.used} in all, the "
        "most it takes about one record in a day. This one was not read or passed on. Please wait for an "
        "answer, or request access."
    )


async def names_child(session: AsyncSession, keys: KeyRing, ref: int, text: str) -> bool:
    """Whether free text names the child, or gives their date of birth, postcode or reference (in any
    spelling). The reference is looked for even when the record's identity cannot be read."""
    if not text:
        return False
    if mentions_reference(text, ref):
        return True
    identity = (await children.load_identities(session, keys, [ref])).get(ref)
    return identity is not None and mentions_identity(text, identity)


async def screen(
    ctx: Context,
    req: Request,
    session: AsyncSession,
    ref: int,
    text: str,
    *,
    what: str,
    called: str,
    refused: str,
    then: str,
    usage: str = "",
    spent_detail: str = "",
    relayed: Callable[[], Awaitable[int]] | None = None,
    named: str | None = None,
) -> Result | None:
    """None when ``text`` may go on; otherwise the answer to give.

    Refused (``held_text``, ending with ``then``: what the person can still do) when this person's
    refusals about the child in 24 hours, plus ``relayed()`` (the messages relayed, for a command
    that counts them against the same limit), reach ``PER_DAY``, whatever the text (a text giving any
    child's reference, full date of birth or full postcode was refused before, by the command's own
    check, ``details_first``); else invalid, uncounted, when it gives one (``refuse_details``, a
    backstop), the same answer whether or not it is this child's, so the answer answers no guess;
    else invalid, uncounted, when it holds the code the writer's app shows now (``refuse_code``);
    else invalid when the text names the child (a name, a day and month, a partial form):
    ``refused``, how many tries are left, then ``usage``. ``what`` names the text in the audit
    detail, ``called`` to its writer (fixed text, never input). No answer repeats the text;
    ``named`` is what the hold calls the record (``held_text``).
    """
    actor = req.actor
    assert actor is not None
    await hold_practitioner(session, actor.practitioner_id)  # the count stands until this event is written
    count = await identity_refusals(session, actor.practitioner_id, ref, req.now - WINDOW)
    tally = Tally(count, await relayed() if relayed is not None else 0)
    if tally.used >= PER_DAY:
        detail = spent_detail or f"identity checks used up: {what}"
        return Result(Reply(Outcome.REFUSED, held_text(ref, tally, then, named)), subjects=(ref,), detail=detail)
    # Any child's full date, postcode or reference first, uncounted: were the child's own refused
    # (and counted) before it, the answer would say which of many guessed birthdays is theirs. A
    # backstop: every command that screens here refused such text in its own check already
    # (``details_first``, before any code), so none reaches this.
    # Any child's details, then the writer's own code: uncounted, and before the child is read.
    uncounted = await refuse_uncounted(ctx, req, session, text, called=called, what=what, subjects=(ref,), usage=usage)
    if uncounted is not None:
        return uncounted
    if await names_child(session, ctx.keys, ref, text):
        after = Tally(tally.refused + 1, tally.relayed)
        answer = f"{refused} {tries_text(after, relay=relayed is not None)}"
        if usage:
            answer = f"{answer}\n\n{usage}"
        return Result(Reply(Outcome.INVALID, answer), subjects=(ref,), detail=refused_detail(what))
    return None
