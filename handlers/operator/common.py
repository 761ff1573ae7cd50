"""What every operator use case shares: the expected-failure type and the terminal audit event."""

from __future__ import annotations

from datetime import datetime

from handlers.context import Context
from handlers.vocabulary import Action, Origin, Outcome
from store.audit.log import AuditRecord, append, origin_event


class Refused(Exception):
    """The command cannot go on; its message is one line for the operator (no personal data)."""


def terminal_event(
    action: Action,
    at: datetime,
    who: str,
    *,
    outcome: Outcome = Outcome.DONE,
    subjects: tuple[int, ...] = (),
    result_count: int = 0,
    detail: str = "",
) -> AuditRecord:
    """The audit event of an operator command: origin terminal, ``who`` the local account."""
    return origin_event(
        Origin.TERMINAL,
        action,
        at,
        who=who,
        outcome=outcome,
        subjects=subjects,
        result_count=result_count,
        detail=detail,
    )


async def record(ctx: Context, event: AuditRecord) -> None:
    """Make one event durable on its own (for commands whose work is not a transaction of ours)."""
    async with ctx.db.write() as session:
        await append(session, [event])
