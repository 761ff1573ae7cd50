"""Scripted stand-ins for commands other features build (step-up codes, access requests and
decisions). They run behind the real dispatcher, grammar, gates and audit, so the Slack plumbing
those features will use (code modal, input modal, buttons, message updates) is tested end to end."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch import Request, Result, Spec, StepUp
from handlers.model import Challenge, Outcome, Reply, Signpost

GOOD_CODE = "123456"
PROMPT = "Enter the 6-digit code from your authenticator app."
WRONG = "That code did not match. Please use the newest code in your app."
POST = Signpost(
    practitioner_name="Sam Carter",
    role="Social worker",
    organisation="Northshire Children's Services",
    service="Children's social care",
    phone="0161 496 0001",
    email="sam.carter@northshire.example",
    lead_professional=True,
    started=date(2025, 1, 10),
)
# What each parked command answers once its challenge is met with the good code.
AFTER_CODE = {
    "ch-secret": Reply(
        Outcome.ANSWERED,
        "Signposts for 999 000 0018: 1 involvement.",
        child_ref="999 000 0018",
        signposts=(POST,),
    ),
    "ch-confirm": Reply(Outcome.DONE, "Approved request 7. The requester has been told."),
    "ch-remind": Reply(Outcome.DONE, "Reminder set."),
}


def challenged(challenge_id: str, error: str | None = None) -> Result:
    return Result(
        Reply(
            Outcome.CHALLENGED, "A step-up code is needed.", challenge=Challenge(challenge_id, PROMPT, error)
        )
    )


async def secret(ctx: Context, req: Request, session: AsyncSession) -> Result:
    return challenged("ch-secret")


async def confirm(ctx: Context, req: Request, session: AsyncSession) -> Result:
    return challenged("ch-confirm")


async def remind(ctx: Context, req: Request, session: AsyncSession) -> Result:
    return challenged("ch-remind")


async def code(ctx: Context, req: Request, session: AsyncSession) -> Result:
    challenge_id = req.command.challenge_id or ""
    if challenge_id not in AFTER_CODE:
        return Result(
            Reply(Outcome.INVALID, "That code request has expired. Please start again."), detail="stale"
        )
    if req.command.code != GOOD_CODE:
        return challenged(challenge_id, WRONG)
    return Result(AFTER_CODE[challenge_id])


async def request(ctx: Context, req: Request, session: AsyncSession) -> Result:
    ref, _, reason = req.args.partition(" ")
    return Result(
        Reply(Outcome.DONE, f"Request sent for {ref}. Purpose recorded ({len(reason)} characters).")
    )


async def approve(ctx: Context, req: Request, session: AsyncSession) -> Result:
    return Result(Reply(Outcome.DONE, f"Approved request {req.args}."))


async def deny(ctx: Context, req: Request, session: AsyncSession) -> Result:
    return Result(Reply(Outcome.DONE, f"Denied request {req.args}."))


SCRIPTED = (
    Spec(name="secret", action="secret", run=secret, stepup=StepUp.FRESH),
    Spec(name="confirm", action="confirm", run=confirm, stepup=StepUp.APPROVAL),
    Spec(name="remind", action="remind", run=remind),
    Spec(name="code", action="code", run=code, audit_terms=False),
    Spec(name="request", action="request", run=request, writes=True),
    Spec(name="approve", action="approve", run=approve, writes=True),  # writes: claim in its transaction
    Spec(name="deny", action="deny", run=deny),  # read-only: claim through the group-committed ClaimLog
)
