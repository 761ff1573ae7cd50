"""Free text about a child that Signpost passes on or keeps (a relayed message or its answer, an
access request's purpose, a denial reason) is screened for the child's name, date of birth and
postcode (``handlers.privacy``), here, once for every command that takes such text.

A refusal tells the writer that their text named the child, so each one also answers a guess about
a child they may not be allowed to identify. Refusals are therefore bounded: each is audited
(detail ``identity refused: …``, see ``store.audit.refusals``) and counted, and once a
practitioner has had ``PER_DAY`` refusals about one child in 24 hours, every further text of theirs
about that child is turned away with the same answer, without being read. The count is taken
before the text is looked at, so the answer to a text never depends on it once the day's checks
are used up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Request, Result
from handlers.grammar import UsageError
from handlers.privacy import mentions_identity
from handlers.vocabulary import Outcome, Reply, format_ref
from store.audit.refusals import hold_practitioner, identity_refusals, refused_detail
from store.keys.crypto import KeyRing
from store.register import children

PER_DAY = 3  # refusals one practitioner may have about one child in any 24 hours
WINDOW = timedelta(hours=24)
LEAVE_OUT = "leave out the child's name, date of birth and postcode"
# The most free text Signpost keeps or passes on in one piece (a purpose, a reason, a message, an
# answer), typed in chat or into a form (the forms' inputs carry the same limit).
MAX_TEXT = 1000


def within_limit(text: str, what: str) -> str:
    """``text`` when it is short enough to keep; usage help naming ``what`` (fixed text) otherwise."""
    if len(text) > MAX_TEXT:
        raise UsageError(f"please keep the {what} under {MAX_TEXT:,} characters")
    return text


def spent_text(ref: int, then: str) -> str:
    """The answer once the day's refusals are used up: the same whatever the text."""
    return (
        f"Signpost has refused {PER_DAY} texts from you about {format_ref(ref)} in the last 24 hours because they "
        "named the child or gave their date of birth or postcode, the most it checks in a day, so this one was "
        f"not read or passed on. {then}"
    )


async def names_child(session: AsyncSession, keys: KeyRing, ref: int, text: str) -> bool:
    """Whether free text names the child, or gives their date of birth or postcode (in any spelling)."""
    identity = (await children.load_identities(session, keys, [ref])).get(ref)
    return identity is not None and bool(text) and mentions_identity(text, identity)


async def _nothing_else() -> int:
    return 0


async def screen(
    ctx: Context,
    req: Request,
    session: AsyncSession,
    ref: int,
    text: str,
    *,
    what: str,
    refused: str,
    spent: str,
    spent_detail: str = "",
    counted: Callable[[], Awaitable[int]] = _nothing_else,
) -> Result | None:
    """None when ``text`` may go on; otherwise the answer to give.

    ``spent`` (refused) when ``counted()`` (what else the command counts against the same daily
    limit, e.g. messages already relayed) plus this person's refusals about the child in 24 hours
    reach ``PER_DAY``, whatever the text; else ``refused`` (invalid) when the text names the child.
    ``what`` names the text in the audit detail (fixed text, never input).
    """
    actor = req.actor
    assert actor is not None
    await hold_practitioner(session, actor.practitioner_id)  # the count stands until this event is written
    used = await counted() + await identity_refusals(session, actor.practitioner_id, ref, req.now - WINDOW)
    if used >= PER_DAY:
        detail = spent_detail or f"identity checks used up: {what}"
        return Result(Reply(Outcome.REFUSED, spent), subjects=(ref,), detail=detail)
    if await names_child(session, ctx.keys, ref, text):
        return Result(Reply(Outcome.INVALID, refused), subjects=(ref,), detail=refused_detail(what))
    return None
