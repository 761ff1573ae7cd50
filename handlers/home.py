"""A person's own summary for a home screen (Slack App Home): how many recent lookups they have and,
for duty managers, how many requests wait for their decision, with registrations listed with
Approve / Deny.

It names no child, whatever the person's code: Slack shows the Home tab last published every time
it is opened, until another is published (none is when Signpost is too busy to answer), and a Teams
or console ``home`` stays in the chat, so a reference shown once stays. Lookups and access requests
are counted, with how to see them: ``history`` and ``pending``, which ask for a code (``pending``
carries each request's Approve / Deny, as its notice does). A registration names no child (an
account asking to act as a practitioner id): it is listed, how long it has waited, with its buttons.
``home`` never asks for a code itself; deciding still needs a fresh one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import history
from handlers.access import registration
from handlers.access.notices import decision_buttons
from handlers.clock import waited
from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec
from handlers.vocabulary import (
    Action,
    Actor,
    Button,
    Outcome,
    Reply,
    Role,
    platform_name,
)
from store.keys.crypto import KeyRing

RECENT_LIMIT = 10  # lookups counted: ``history`` lists as many by default
HOME_TEXT = "Your Signpost"
# Neutral, as every reply is: Slack's App Home adds its own "/signpost help" hint.
NONE_YET = "No lookups yet. Look a child up by reference number, or by name and date of birth."
WAITING_SHOWN = 10  # registrations listed with their buttons; ``pending`` lists the rest
# What would name a child is counted, and how to see it said.
CODE_FIRST = "Signpost asks for a code first"


async def recent_lookups(session: AsyncSession, practitioner_id: str, limit: int) -> int:
    """How many lookups ``history`` would list for this person, up to ``limit`` (its one rule of what
    a lookup is: any outcome, one parked for a code and run once it came counted once): a count only."""
    return len(await history.lookups(session, practitioner_id, limit))


def lookups_line(count: int) -> str:
    """Recent lookups counted, not listed (each names a child): ``history`` lists them, after a code."""
    many = f"{count} or more" if count >= RECENT_LIMIT else str(count)
    return f"Your recent lookups: {many}. Send 'history' to see them ({CODE_FIRST})."


async def waiting_for(
    session: AsyncSession, keys: KeyRing, actor: Actor, now: datetime
) -> tuple[list[str], list[Button], int]:
    """Access and registration requests this duty manager may decide (``registration.waiting_for``):
    their lines and buttons, and how many there are. Access requests are counted in one line (each
    names a child: ``hidden_requests``), with no button; registrations, which name none, are listed."""
    requests, registrations = await registration.waiting_for(session, keys, actor, now)
    lines: list[str] = []
    buttons: list[Button] = []
    if requests:  # first: the screen's cut (``WAITING_SHOWN``) never takes it
        lines.append(hidden_requests(len(requests)))
    unlinking = await registration.unlinking(session, registrations)
    for reg in registrations:
        lines.append(
            f"• Registration R{reg.id}: a {platform_name(reg.platform)} account asks to act as {reg.practitioner_id}; "
            f"waiting {waited(reg.created_at, now)}{registration.UNLINKS if reg.id in unlinking else ''}"
        )
        buttons.extend(_labelled(f"R{reg.id}"))
    return lines, buttons, len(requests) + len(registrations)


def hidden_requests(count: int) -> str:
    """Access requests counted, not listed: each names a child, shown by ``pending`` after a code."""
    if count == 1:
        return f"1 access request waits: send 'pending' to see it ({CODE_FIRST})."
    return f"{count} access requests wait: send 'pending' to see them ({CODE_FIRST})."


def _labelled(request_id: str) -> tuple[Button, ...]:
    """Approve / Deny that say which registration they decide (several share one screen)."""
    return tuple(
        Button(b.action_id, f"{b.label} {request_id}", b.command, b.style, b.input)
        for b in decision_buttons(request_id)
    )


async def home(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """The person's summary: counts, and the registrations waiting, never a child (module docstring).
    It never asks for a code: Slack publishes it whenever the Home tab is opened."""
    assert req.actor is not None
    lines: list[str] = []
    if req.actor.may(Role.PRACTITIONER):  # an admin alone looks nobody up: no lookups to count
        count = await recent_lookups(session, req.actor.practitioner_id, RECENT_LIMIT)
        lines.append(lookups_line(count) if count else NONE_YET)
    buttons: list[Button] = []
    if req.actor.may(Role.DUTY_MANAGER):
        waiting, buttons, count = await waiting_for(session, ctx.keys, req.actor, req.now)
        lines.append(f"Requests waiting for your decision: {count}")
        shown = waiting[:WAITING_SHOWN]
        lines.extend(shown)
        if len(waiting) > WAITING_SHOWN:
            lines.append(f"{len(waiting) - WAITING_SHOWN} more: send 'pending' to see them all.")
        # Two buttons for each registration listed ("• …"), none for a line that counts.
        buttons = buttons[: 2 * sum(line.startswith("• ") for line in shown)]
    reply = Reply(Outcome.INFO, HOME_TEXT, lines=tuple(lines), buttons=tuple(buttons))
    return Result(reply, detail="counts only")


SPECS = (
    # No summary: not listed in help (front ends open it, e.g. Slack's App Home); typing "home" works too.
    # Any role: a duty manager or an admin who is no practitioner decides from it too.
    Spec(name="home", action=Action.HOME, run=home, usage="home", audit_terms=False, role=None, words=0),
)
