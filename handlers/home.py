"""A person's own summary for a home screen (Slack App Home): their recent lookups, references and
times only, and for duty managers how many requests wait for a decision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.clock import uk_time
from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec
from handlers.vocabulary import LOOKUP_ACTIONS, Action, Actor, Outcome, Reply, Role, format_ref
from store.tables.audit import AuditEvent

RECENT_LIMIT = 10
HOME_TEXT = "Your Signpost"
NONE_YET = "No lookups yet. Try /signpost followed by a reference number, or a name and date of birth."


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


async def pending_request_count(session: AsyncSession, actor: Actor) -> int:
    """SEAM: requests awaiting this duty manager's decision. Returns 0 until access requests exist
    (issue 5 replaces this body with a count from its requests table)."""
    return 0


def lookup_line(refs: str, at: datetime) -> str:
    shown = ", ".join(format_ref(ref) for ref in refs.split()) or "(no reference)"
    return f"• {shown} — {uk_time(at)}"


async def home(ctx: Context, req: Request, session: AsyncSession) -> Result:
    assert req.actor is not None
    lookups = await recent_lookups(session, req.actor.practitioner_id)
    lines = ["Your recent lookups (references and times only):"]
    lines.extend(lookup_line(refs, at) for refs, at in lookups)
    if not lookups:
        lines.append(NONE_YET)
    if req.actor.has(Role.DUTY_MANAGER):
        waiting = await pending_request_count(session, req.actor)
        lines.append(f"Requests waiting for your decision: {waiting}")
    return Result(Reply(Outcome.INFO, HOME_TEXT, lines=tuple(lines)), result_count=len(lookups))


SPECS = (
    # No summary: not listed in help (front ends open it, e.g. Slack's App Home); typing "home" works too.
    Spec(name="home", action=Action.HOME, run=home, usage="home", audit_terms=False),
)
