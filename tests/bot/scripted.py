"""A scripted stand-in for a read-only button command, run behind the real dispatcher, grammar,
gates and audit (the ``scripted_app`` fixture).

The step-up code, enrolment, access requests and decisions are real commands now, and the Slack
tests use them. What is left here isolates one piece of front-end plumbing no real command
exercises: a button whose command does not write, so a repeated click is claimed through the
group-committed claim log rather than inside the command's own transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec
from handlers.vocabulary import Action, Outcome, Reply


async def deny(ctx: Context, req: Request, session: AsyncSession) -> Result:
    return Result(Reply(Outcome.DONE, f"Denied request {req.args}."))


SCRIPTED = (
    Spec(name="deny", action=Action.DENY, run=deny),  # read-only: claimed in its audit event's batch
)
