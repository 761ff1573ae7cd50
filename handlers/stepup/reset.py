"""Resetting a practitioner's authenticator (lost phone, code entry paused, code checks switched off).

``reset_authenticator`` is the one way it is done, whoever does it: the credential goes (with its
enrolment links and waiting requests: ``store.people.credentials.reset``) and the practitioner is
told to send ``enrol`` for a new QR code. An admin does it on the host (`signpost totp reset`, or
`signpost totp enrol --replace` over one the practitioner had confirmed, when the admin hands over the
new one: ``replaced``; handlers/operator/people.py); a practitioner's own duty manager in chat (``reset``, below).

A chat account alone can never replace a working authenticator (``enrol`` is refused while one
works or is switched off), so a reset sits with a person who knows the practitioner: one of their
duty managers (those a lockout notice is for: ``handlers.recipients.duty_managers_of``), never
themselves, with a code as fresh as an approval's, reminded to confirm who asks before they reset.
Anyone else hears the same words whether or not the id is in the register. Nobody who holds the duty
manager or admin role is reset in chat: an admin does it on the host, so a taken admin's (or duty
manager's) chat account and one credulous duty manager are not enough to take their powers.

A reset is told to the practitioner on every linked chat account and at their recorded secure email
(the one that asked may be the taken one: ``handlers.every_contact``), and to their authority's duty
managers but the one who did it (ids only), whether it was done in chat or on the host, so a reset
nobody asked for is noticed; if one of them is made inactive before it is sent, whoever is told in
their place has it (handlers/stand_in.py, by its key: ``MANAGERS_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, StepUp, parsed_by
from handlers.every_contact import RESET, every_contact
from handlers.grammar import UsageError, parse_practitioner_id
from handlers.recipients import MOMENT, WarningKey, duty_managers_of, who_is_told
from handlers.vocabulary import Action, Actor, Notice, Outcome, Reply, Role, ThenEnrol
from store.people import credentials, practitioners

NOTICE_KIND = RESET  # one for every contact on record (handlers.every_contact)
RESET_NOTICE = ThenEnrol(
    "Your Signpost authenticator was reset by {by}. If you did not ask for this, tell a Signpost admin at once. "
    "To see results again,"
)
# An admin who replaces a working (or switched-off) authenticator on the host (`signpost totp enrol
# --replace`) hands the new one over themselves, so nobody is asked to send enrol.
REPLACED_NOTICE = (
    "Your Signpost authenticator was replaced by an administrator: the old one no longer works, and the admin "
    "gives you the new one privately. If you did not ask for this, tell a Signpost admin at once."
)
# For the authority's other duty managers (or the admins when it has none): ids only.
MANAGERS_KIND = "stepup_reset_by"
MANAGERS_NOTICE = (
    "Duty manager {by} reset practitioner {id}'s Signpost authenticator. If you did not expect this, check with "
    "{by}, and with {id} by phone or in person."
)
HOST_MANAGERS_NOTICE = (
    "A Signpost admin reset practitioner {id}'s Signpost authenticator on the host. If you did not expect this, "
    "check with {id} by phone or in person, and with a Signpost admin."
)
# Each copy keyed by the practitioner, the moment and the duty manager who did it (none on the host).
MANAGERS_KEY = WarningKey({MANAGERS_KIND}, MOMENT)
RESET_BY = {Role.ADMIN: "an administrator", Role.DUTY_MANAGER: "your duty manager"}

SUMMARY = "reset a practitioner's authenticator, once you have confirmed it is them who asks"
RESET_USAGE = (
    "reset PRACTITIONER_ID, e.g. reset NS-P0002 (a practitioner of your local authority, not a duty manager or "
    "admin, whose authenticator is lost, paused or switched off; they then send enrol for a new QR code)"
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
# The audit detail for a word in no register: it may be anything typed in error (a date of birth,
# a postcode, a name, a code), and the audit log is permanent, so none of it is kept.
NO_SUCH = "no such practitioner"
# Who resets a duty manager's or an admin's authenticator, and how: one wording for both answers that
# say so, a duty manager's own (OWN: only duty managers may send reset) and a fellow's or an admin's.
BY_AN_ADMIN = "reset only by a Signpost admin on the host (signpost totp reset {id}), never in chat"
OWN = (
    "You can't reset your own authenticator: a duty manager's is " + BY_AN_ADMIN + ". Please ask a Signpost "
    "admin, who will confirm it is you first."
)
# Those who hold these roles are reset by an admin on the host (only for an id of the duty manager's
# own authority: anyone else's is NOT_YOURS, so nothing says which ids exist elsewhere).
GUARDED = (Role.ADMIN, Role.DUTY_MANAGER)
ON_THE_HOST = (
    "{id} is a Signpost duty manager or admin, so their authenticator is " + BY_AN_ADMIN + ": nothing was reset. "
    "Please ask a Signpost admin."
)
HOW_TO_RESET = "First confirm by phone or in person that it is them asking; then {how}"
IN_CHAT = (
    "one of their duty managers sends reset {id} in chat, or a Signpost admin runs signpost totp reset {id} on the "
    "host."
)
HOST_ONLY = (
    "a Signpost admin runs signpost totp reset {id} on the host (a duty manager's or an admin's authenticator is "
    "never reset in chat)."
)
NOTHING = "{id} has no authenticator set up, so there is nothing to reset: they can send enrol to set one up."


@dataclass(frozen=True, slots=True)
class Told:
    """Who heard of a reset besides the practitioner, as a role and never by name: the duty managers
    of their authority, or the admins when none can be reached (``who_is_told``); None: nobody."""

    role: Role | None


async def reset_authenticator(
    ctx: Context,
    session: AsyncSession,
    practitioner: Actor,
    now: datetime,
    *,
    duty_manager: str | None = None,
    replaced: bool = False,
) -> Told | None:
    """Remove a practitioner's authenticator and tell, in this transaction, them (to send ``enrol``;
    ``replaced``: that an admin gives them a new one) and their authority's duty managers who reset
    it: ``duty_manager`` in chat, else an admin on the host. None (and nobody told) when they had none."""
    if not await credentials.reset(session, practitioner.practitioner_id):
        return None
    by = RESET_BY[Role.ADMIN if duty_manager is None else Role.DUTY_MANAGER]
    said: str | ThenEnrol = REPLACED_NOTICE if replaced else RESET_NOTICE.format(by=by)
    await ctx.notices.enqueue(session, every_contact(practitioner.practitioner_id, NOTICE_KIND, said), now)
    return Told(await _tell_managers(ctx, session, practitioner, now, duty_manager))


async def _tell_managers(
    ctx: Context, session: AsyncSession, target: Actor, now: datetime, duty_manager: str | None
) -> Role | None:
    """Tell the target's authority's duty managers but the one who did it (those who can be reached,
    else the admins: ``who_is_told``) who reset whose authenticator, so a reset nobody asked for is
    noticed. The role of those told (None: nobody)."""
    pid = target.practitioner_id
    did = () if duty_manager is None else (duty_manager,)
    told = await who_is_told(session, ctx.reaches, target.local_authority, kind=MANAGERS_KIND, excluding=(pid, *did))
    if duty_manager is None:
        text = HOST_MANAGERS_NOTICE.format(id=pid)
    else:
        text = MANAGERS_NOTICE.format(by=duty_manager, id=pid)
    key = MANAGERS_KEY.shared(MANAGERS_KIND, pid, str(now), by=duty_manager)
    await ctx.notices.enqueue(session, [Notice(m, MANAGERS_KIND, text, dedupe_key=f"{key}:{m}") for m in told], now)
    return told.role if told else None


def guarded_role(practitioner: Actor) -> Role | None:
    """The role (admin, duty manager) that keeps this practitioner's authenticator from being reset in
    chat, if they hold one: only an admin on the host resets theirs."""
    return next((role for role in GUARDED if practitioner.has(role)), None)


def how_to_reset(practitioner: Actor) -> str:
    """Who resets this practitioner's authenticator, and how, once it is confirmed to be them asking."""
    how = HOST_ONLY if guarded_role(practitioner) is not None else IN_CHAT
    return HOW_TO_RESET.format(how=how.format(id=practitioner.practitioner_id))


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
        return Result(Reply(Outcome.REFUSED, OWN.format(id=target)), detail="own authenticator")
    found = await practitioners.get_actor(session, target)
    # The same words either way; the audit names only an id the register holds (no child's data),
    # for whoever investigates, never the word typed.
    if found is None:
        return Result(Reply(Outcome.REFUSED, NOT_YOURS), detail=NO_SUCH)
    managers = (await duty_managers_of(session, found.local_authority, excluding=(target,))).ids
    if actor.practitioner_id not in managers:
        return Result(Reply(Outcome.REFUSED, NOT_YOURS), detail=f"not their duty manager: {found.practitioner_id}")
    guarded = guarded_role(found)
    if guarded is not None:
        detail = f"{found.practitioner_id} holds the {guarded.value.replace('_', ' ')} role"
        return Result(Reply(Outcome.REFUSED, ON_THE_HOST.format(id=target)), detail=detail)
    if not await reset_authenticator(ctx, session, found, req.now, duty_manager=actor.practitioner_id):
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
