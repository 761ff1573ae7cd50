"""A person's own summary for a home screen (Slack App Home): their recent lookups, references and
times only, and for duty managers the requests waiting for their decision, with Approve / Deny.

A waiting request shows what its notice already carried: the request id, the child's reference,
who asks (role and organisation) and how long it has waited. Lookups and requests name children,
so they are listed only while the person's code is fresh (as ``history``); else counted. Never the
purpose (``pending``, behind a fresh code, shows that) and never a child's name; deciding still needs a fresh code."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access import registration
from handlers.access.notices import decision_buttons
from handlers.clock import uk_time, waited
from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, StepUp
from handlers.stepup.flow import covers
from handlers.vocabulary import (
    LOOKUP_ACTIONS,
    Action,
    Actor,
    Button,
    Outcome,
    Reply,
    Role,
    format_ref,
    platform_name,
)
from store.keys.crypto import KeyRing
from store.people import practitioners
from store.tables.audit import AuditEvent

RECENT_LIMIT = 10
HOME_TEXT = "Your Signpost"
# Neutral, as every reply is: Slack's App Home adds its own "/signpost help" hint.
NONE_YET = "No lookups yet. Look a child up by reference number, or by name and date of birth."
WAITING_SHOWN = 10  # requests listed with their buttons; ``pending`` lists the rest
# Without a fresh code (``home``): what would name a child is counted, and how to see it said.
CODE_FIRST = "Signpost asks for a code first"
LOOKUPS_HIDDEN = f"Your recent lookups are not shown without a code: send 'history' to see them ({CODE_FIRST})."


async def recent_lookups(
    session: AsyncSession, practitioner_id: str, limit: int = RECENT_LIMIT
) -> list[tuple[str, datetime]]:
    """This person's latest answered lookups as (references, time): no names, no query terms."""
    result = await session.execute(
        select(AuditEvent.subject_refs, AuditEvent.at)
        .where(
            AuditEvent.actor_id == practitioner_id,
            AuditEvent.action.in_(LOOKUP_ACTIONS),
            AuditEvent.outcome == Outcome.ANSWERED.value,
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.seq.desc())
        .limit(limit)
    )
    return [(refs, at) for refs, at in result]


async def _who(session: AsyncSession, practitioner_id: str) -> str:
    found = await practitioners.get_actor(session, practitioner_id)
    return f"a {found.role}, {found.organisation}" if found else "a practitioner no longer in the register"


async def waiting_for(
    session: AsyncSession, keys: KeyRing, actor: Actor, now: datetime, *, shown: bool = True
) -> tuple[list[str], list[Button], int]:
    """Access and registration requests this duty manager may decide (``registration.waiting_for``):
    their lines and buttons, and how many there are. Access requests only when ``shown`` (each names
    a child: without a fresh code only counted, ``hidden_requests``); registrations name no child."""
    requests, registrations = await registration.waiting_for(session, keys, actor, now)
    lines: list[str] = []
    buttons: list[Button] = []
    for row in requests if shown else ():
        lines.append(
            f"• Request {row.id}: {format_ref(row.child_ref)}, from {await _who(session, row.requester_id)}; "
            f"waiting {waited(row.created_at, now)}"
        )
        buttons.extend(_labelled(str(row.id)))
    if not shown and requests:  # first: the screen's cut (``WAITING_SHOWN``) never takes it
        lines.append(hidden_requests(len(requests)))
    for reg in registrations:
        lines.append(
            f"• Registration R{reg.id}: a {platform_name(reg.platform)} account asks to act as {reg.practitioner_id}; "
            f"waiting {waited(reg.created_at, now)}"
        )
        buttons.extend(_labelled(f"R{reg.id}"))
    return lines, buttons, len(requests) + len(registrations)


def hidden_requests(count: int) -> str:
    """Access requests counted, not listed: each names a child, shown only after a fresh code."""
    if count == 1:
        return f"1 access request waits: send 'pending' to see it ({CODE_FIRST})."
    return f"{count} access requests wait: send 'pending' to see them ({CODE_FIRST})."


def _labelled(request_id: str) -> tuple[Button, ...]:
    """Approve / Deny that say which request they decide (several share one screen)."""
    return tuple(
        Button(b.action_id, f"{b.label} {request_id}", b.command, b.style, b.input)
        for b in decision_buttons(request_id)
    )


def lookup_line(refs: str, at: datetime) -> str:
    shown = ", ".join(format_ref(ref) for ref in refs.split()) or "(no reference)"
    return f"• {shown} — {uk_time(at)}"


async def home(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """The person's summary. Lookups and access requests name children: listed only while the
    person's code is fresh, by ``history``'s rule (``StepUp.FRESH``, the gate's own test,
    ``flow.covers``); else counted, with how to see them. It never asks for a code itself: Slack
    publishes it whenever the Home tab is opened, and a Teams ``home`` stays in the chat."""
    assert req.actor is not None
    fresh = await covers(session, req.standing.credential, StepUp.FRESH, req.now, ctx.policy.stepup)
    lines: list[str] = []
    lookups: list[tuple[str, datetime]] = []
    if req.actor.may(Role.PRACTITIONER):  # an admin alone looks nobody up: no lookups to list
        lookups = await recent_lookups(session, req.actor.practitioner_id)
        if not lookups:
            lines.extend(("Your recent lookups (references and times only):", NONE_YET))
        elif fresh:
            lines.append("Your recent lookups (references and times only):")
            lines.extend(lookup_line(refs, at) for refs, at in lookups)
        else:
            lines.append(LOOKUPS_HIDDEN)
    buttons: list[Button] = []
    if req.actor.may(Role.DUTY_MANAGER):
        waiting, buttons, count = await waiting_for(session, ctx.keys, req.actor, req.now, shown=fresh)
        lines.append(f"Requests waiting for your decision: {count}")
        shown = waiting[:WAITING_SHOWN]
        lines.extend(shown)
        if len(waiting) > WAITING_SHOWN:
            lines.append(f"{len(waiting) - WAITING_SHOWN} more: send 'pending' to see them all.")
        # Two buttons for each request or registration listed ("• …"), none for a line that counts.
        buttons = buttons[: 2 * sum(line.startswith("• ") for line in shown)]
    reply = Reply(Outcome.INFO, HOME_TEXT, lines=tuple(lines), buttons=tuple(buttons))
    return Result(reply, result_count=len(lookups) if fresh else 0, detail="" if fresh else "counts only")


SPECS = (
    # No summary: not listed in help (front ends open it, e.g. Slack's App Home); typing "home" works too.
    # Any role: a duty manager or an admin who is no practitioner decides from it too.
    Spec(name="home", action=Action.HOME, run=home, usage="home", audit_terms=False, role=None, words=0),
)
