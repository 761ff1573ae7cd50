"""The policy chain reads only each command's Spec: switch-off by ``after_switch_off``, step-up by
``stepup``, who may ask by ``audience`` and ``role``; and the dispatcher answers the front ends'
question "may this text need a code?" so no front end reads a Spec itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.context import Context
from handlers.dispatch.chain import NOT_REGISTERED, policy_chain
from handlers.dispatch.dispatcher import Dispatcher
from handlers.dispatch.spec import Request, Result, Spec, StepUp
from handlers.lifecycle.flows import SWITCHED_OFF
from handlers.vocabulary import WHAT_YOU_CAN_DO, Action, Outcome, Platform, Principal, Reply
from store.lifecycle import decommission
from store.tables.audit import AuditEvent
from tests.factories import AMY, load_standard, say
from tests.stepup_helpers import ensure_enrolled


async def ran(ctx: Context, req: Request, session: AsyncSession) -> Result:
    return Result(Reply(Outcome.INFO, f"ran for {req.actor.practitioner_id if req.actor else 'nobody'}"))


# Stand-ins that differ only in what they declare: both want a fresh code, like a search.
STILL_ON = Spec(name="still", action=Action.HOME, run=ran, stepup=StepUp.FRESH, after_switch_off=True)
NOT_AFTER = Spec(name="gone", action=Action.HOME, run=ran, stepup=StepUp.FRESH)


@pytest.fixture
async def chained(signpost: Signpost) -> AsyncIterator[Signpost]:
    """The running app's commands and its whole policy chain, plus the two stand-ins."""
    await load_standard(signpost)
    specs = [*signpost.dispatcher.specs.values(), STILL_ON, NOT_AFTER]
    yield Signpost(signpost.ctx, Dispatcher.build(signpost.ctx, specs, policy_chain()))


async def switch_off_today(app: Signpost) -> None:
    now = app.ctx.clock.now()
    async with app.ctx.db.write() as session:
        await decommission.schedule(session, now.date(), None, "AD01", now, at_once=True)


async def test_after_switch_off_only_commands_declaring_it_run_and_without_a_code(
    chained: Signpost, clock: FakeClock
) -> None:
    """Before switch-off both stand-ins ask for a code; from switch-off the one declaring
    ``after_switch_off`` runs at once (no code can be given any more) and the other is refused."""
    await ensure_enrolled(chained, "P001")
    clock.advance(minutes=31)  # the code is no longer fresh
    for text in ("still", "gone"):
        assert (await say(chained, "P001", text)).outcome is Outcome.CHALLENGED
    await switch_off_today(chained)
    admitted = await say(chained, "P001", "still")
    assert admitted.outcome is Outcome.INFO and admitted.text == "ran for P001" and admitted.challenge is None
    refused = await say(chained, "P001", "gone")
    assert (
        refused.outcome is Outcome.SWITCHED_OFF and refused.text.startswith(SWITCHED_OFF) and refused.challenge is None
    )
    async with chained.ctx.db.read() as session:
        audited = (await session.execute(select(AuditEvent.outcome).order_by(AuditEvent.seq))).scalars().all()
    assert audited[-2:] == ["info", "switched_off"]


async def test_switch_off_still_runs_the_identity_and_role_gates_first(chained: Signpost) -> None:
    """A command allowed after switch-off is still refused to someone not registered."""
    await switch_off_today(chained)
    stranger = Principal(Platform.SLACK, "T1", "U-NOBODY")
    reply = await say(chained, stranger, "still")
    assert reply.outcome is Outcome.REFUSED and reply.text == NOT_REGISTERED


async def test_enrol_and_code_take_any_registered_person_and_nobody_else(signpost: Signpost) -> None:
    """``enrol`` and ``code`` declare a registered audience with no role: an admin-only account may
    enrol; an unknown chat account gets the identity gate's own answer."""
    await load_standard(signpost)
    assert (await say(signpost, "AD01", "enrol")).challenge is not None
    stranger = Principal(Platform.SLACK, "T1", "U-NOBODY")
    for text, extra in (("enrol", {}), ("code", {"code": "123456"})):
        reply = await say(signpost, stranger, text, **extra)
        assert reply.outcome is Outcome.REFUSED and reply.text == NOT_REGISTERED, text


async def test_may_need_code_is_true_for_a_lookup_and_false_for_help(signpost: Signpost, clock: FakeClock) -> None:
    """What a front end asks before it opens a "Checking…" placeholder: a lookup by someone whose
    code is not fresh is indeed answered with a code prompt; help never is."""
    await load_standard(signpost)
    await ensure_enrolled(signpost, "P001")
    clock.advance(minutes=31)  # the code is no longer fresh
    dispatcher = signpost.dispatcher
    assert dispatcher.may_need_code(AMY) is True
    assert (await say(signpost, "P001", AMY)).challenge is not None
    assert dispatcher.may_need_code("Amy Jones 03/04/2014") is True
    assert dispatcher.may_need_code("help") is False
    assert dispatcher.may_need_code("") is False  # empty text is help
    assert (await say(signpost, "P001", "help")).challenge is None
    assert dispatcher.may_need_code("approve 3") is True  # decisions need a fresh code
    assert dispatcher.may_need_code("what is this") is False  # not understood: usage, no code


MALFORMED = (
    "Amy Jones 31/02/2014",  # no such date
    "Amy Jones 03/04/2099",  # born in the future
    "Amy",  # one name
    "1234567890",  # a reference whose check digit fails
    "request 1234567890 to check",  # a bad reference, and a purpose too short
    "approve",  # no request id
    "deny x",
    "message 1234567890 hello",
    "reply",
    "relay",
)


@pytest.mark.parametrize("text", MALFORMED)
async def test_a_malformed_command_is_not_said_to_need_a_code_and_never_asks_one(
    signpost: Signpost, clock: FakeClock, text: str
) -> None:
    """A front end opens a "Checking…" placeholder only when a code may be asked: text its command's
    own check refuses is answered at once with how to write it, so none is opened for it."""
    await load_standard(signpost)
    await ensure_enrolled(signpost, "DM01")
    clock.advance(minutes=31)  # the code is no longer fresh: a well-formed command would ask for one
    assert signpost.dispatcher.may_need_code(text) is False
    reply = await say(signpost, "DM01", text)
    assert reply.challenge is None and reply.outcome is Outcome.INVALID, (text, reply)


async def test_the_role_refusal_names_everyone_who_may_with_the_right_article(signpost: Signpost) -> None:
    """A practitioner is told "Only an admin can use 'lead-notices'" and, since admins stand in for
    duty managers, "Only a duty manager or an admin can use 'relays'"."""
    await load_standard(signpost)
    admin_only = await say(signpost, "P001", "lead-notices Northshire")
    assert admin_only.outcome is Outcome.REFUSED
    assert admin_only.text == f"Only an admin can use 'lead-notices'. {WHAT_YOU_CAN_DO}"
    managers = await say(signpost, "P001", "relays")
    assert managers.outcome is Outcome.REFUSED
    assert managers.text == f"Only a duty manager or an admin can use 'relays'. {WHAT_YOU_CAN_DO}"


async def test_help_lists_for_an_admin_the_duty_managers_commands_the_role_gate_lets_them_use(
    signpost: Signpost,
) -> None:
    """An admin's help lists relays, pending, approve and deny (the role gate admits them); a
    practitioner's lists none of them."""
    await load_standard(signpost)
    listed = {line.split()[1].rstrip(":") for line in (await say(signpost, "AD01", "help")).lines}
    assert {"relays", "pending", "approve", "deny", "lead-notices"} <= listed
    ordinary = {line.split()[1].rstrip(":") for line in (await say(signpost, "P001", "help")).lines}
    assert not {"relays", "pending", "approve", "deny", "lead-notices"} & ordinary


def test_every_command_for_a_duty_manager_or_an_admin_asks_for_a_code() -> None:
    """A hijacked chat account of a manager or an admin changes nothing without the authenticator:
    `lead-notices` (who is told of every lookup in an authority) asked for no code."""
    from handlers.commands import all_specs
    from handlers.vocabulary import Role

    unguarded = [s.name for s in all_specs() if s.role in (Role.DUTY_MANAGER, Role.ADMIN) and s.stepup is StepUp.NONE]
    assert unguarded == []


async def test_an_admin_without_a_fresh_code_is_asked_for_one_before_changing_lead_notices(
    signpost: Signpost, clock: FakeClock
) -> None:
    await load_standard(signpost)
    await ensure_enrolled(signpost, "AD01")
    clock.advance(hours=13)  # past the longest a code stays fresh
    asked = await say(signpost, "AD01", "lead-notices Northshire off")
    assert asked.outcome is Outcome.CHALLENGED
    shown = await say(signpost, "AD01", "lead-notices Northshire")
    assert shown.outcome is Outcome.CHALLENGED  # nothing of the setting either, until the code


async def test_a_malformed_search_is_refused_to_a_stranger_and_the_wrong_role_before_it_is_judged(
    chained: Signpost,
) -> None:
    """The argument check comes after identity and role: a stranger is still told to register and an
    admin-only account that it may not search, whatever the text."""
    stranger = Principal(Platform.SLACK, "T1", "U-NOBODY")
    reply = await say(chained, stranger, "Amy Jones 31/02/2014")
    assert reply.outcome is Outcome.REFUSED and reply.text == NOT_REGISTERED
    admin = await say(chained, "AD01", "Amy Jones 31/02/2014")
    assert admin.outcome is Outcome.REFUSED and "not a real date" not in admin.text


async def test_after_switch_off_a_malformed_search_is_told_signpost_is_switched_off(chained: Signpost) -> None:
    """Switch-off comes before the argument check: a search that can no longer run is told so, not
    how to type it (which would suggest that typing it right would answer it)."""
    await switch_off_today(chained)
    reply = await say(chained, "P001", "Amy Jones 01/01/2099")
    assert reply.outcome is Outcome.SWITCHED_OFF and reply.text.startswith(SWITCHED_OFF)
