"""Resetting a practitioner's authenticator (lost phone, code entry paused, code checks switched off).

``reset_authenticator`` is the one way it is done, whoever does it: the credential goes (with its
enrolment links and waiting requests: ``store.people.credentials.reset``) and the practitioner is
told to send ``enrol`` for a new QR code. An admin does it on the host (`signpost totp reset`,
handlers/operator/people.py); a practitioner's own duty manager in chat (``reset``, below).

A chat account alone can never replace a working authenticator (``enrol`` is refused while one
works or is switched off), so a reset sits with a person who knows the practitioner: one of their
duty managers (those a lockout notice is for: ``handlers.recipients.duty_managers_of``), never
themselves, with a code as fresh as an approval's, reminded to confirm who asks before they reset.
Anyone else hears the same words whether or not the id is in the register.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context, NoticeSink
from handlers.dispatch.spec import Request, Result, Spec, StepUp, parsed_by
from handlers.grammar import UsageError, parse_practitioner_id
from handlers.recipients import duty_managers_of
from handlers.vocabulary import Action, Notice, Outcome, Reply, Role
from store.people import credentials, practitioners

NOTICE_KIND = "stepup_reset"
RESET_NOTICE = "Your Signpost authenticator was reset by {by}. To see results again, send: enrol"
RESET_BY = {Role.ADMIN: "an administrator", Role.DUTY_MANAGER: "your duty manager"}

SUMMARY = "reset a practitioner's authenticator, once you have confirmed it is them who asks"
RESET_USAGE = (
    "reset PRACTITIONER_ID, e.g. reset NS-P0002 (a practitioner of your local authority whose authenticator is "
    "lost, paused or switched off; they then send enrol for a new QR code)"
)
CONFIRM_FIRST = (
    "Reset only for someone you have confirmed by phone or in person is the practitioner: a chat account "
    "alone is no proof of who holds it."
)
DONE = (
    "Reset {id}'s authenticator: the old one no longer works, and they have been told to send enrol to set up "
    f"a new one. {CONFIRM_FIRST}"
)
# The same words whether the id is another authority's practitioner or in no register at all.
NOT_YOURS = (
    "Signpost resets the authenticator only of a practitioner whose duty manager you are, in your own local "
    "authority, and that id is not one of them, so nothing was reset. Check the id, or ask a Signpost admin."
)
OWN = (
    "You can't reset your own authenticator: ask another duty manager of your local authority or a Signpost "
    "admin, who will confirm it is you first."
)
NOTHING = "{id} has no authenticator set up, so there is nothing to reset: they can send enrol to set one up."


async def reset_authenticator(
    notices: NoticeSink, session: AsyncSession, practitioner_id: str, now: datetime, *, by: Role
) -> bool:
    """Remove a practitioner's authenticator and tell them, in this transaction, that ``by`` (an
    admin, their duty manager) reset it and to send ``enrol``; False (and nobody told) when they had none."""
    existed = await credentials.reset(session, practitioner_id)
    if existed:
        told = Notice(practitioner_id, NOTICE_KIND, RESET_NOTICE.format(by=RESET_BY[by]))
        await notices.enqueue(session, [told], now)
    return existed


def _target(args: str) -> str:
    """The practitioner id, the first word (a word after it is a word too many: ``Spec.words``)."""
    words = args.split(maxsplit=1)
    target = parse_practitioner_id(words[0]) if words else None
    if target is None:
        raise UsageError("please give the practitioner id")
    return target


async def reset(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """A duty manager resets the authenticator of one of their authority's practitioners."""
    actor = req.actor
    assert actor is not None  # the identity gate ran
    target = _target(req.args)
    if target == actor.practitioner_id:
        return Result(Reply(Outcome.REFUSED, OWN), detail="own authenticator")
    found = await practitioners.get_actor(session, target)
    managers = (
        () if found is None else (await duty_managers_of(session, found.local_authority, excluding=(target,))).ids
    )
    if actor.practitioner_id not in managers:
        return Result(Reply(Outcome.REFUSED, NOT_YOURS), detail="not their duty manager")
    if not await reset_authenticator(ctx.notices, session, target, req.now, by=Role.DUTY_MANAGER):
        return Result(Reply(Outcome.REFUSED, NOTHING.format(id=target)), detail=f"nothing to reset for {target}")
    return Result(Reply(Outcome.DONE, DONE.format(id=target)), detail=f"credential removed for {target}")


SPECS = (
    Spec(
        name="reset",
        action=Action.TOTP_RESET,
        run=reset,
        summary=SUMMARY,
        usage=RESET_USAGE,
        role=Role.DUTY_MANAGER,
        admins_stand_in=False,  # an admin resets on the host (`signpost totp reset`)
        stepup=StepUp.APPROVAL,  # a decision: a code no older than an approval's
        writes=True,
        words=1,
        check=parsed_by(_target),
    ),
)
