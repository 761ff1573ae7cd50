"""`help` lists what the asker may use: a practitioner's searches and commands, a duty manager's
decisions, an admin's settings; someone not registered only what needs no registration; once
Signpost is switched off, only what still answers. A command the asker may not use is answered
with who can (e.g. "Only a practitioner can search for a child."), not with an internal name."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.dispatch.spec import NOT_ACTIVE
from handlers.operator import people
from handlers.operator.common import audited
from handlers.vocabulary import WHAT_YOU_CAN_DO, Action, Outcome, Reply
from store.register.synthetic import SyntheticRegister
from tests.factories import AMY, load_standard, say
from tests.stepup_helpers import say_fresh

SEARCH_EXAMPLES = ("• REFERENCE", "• GIVEN FAMILY")  # the forms: the standard store is not the demo
ONLY_PRACTITIONERS = f"Only a practitioner can search for a child. {WHAT_YOU_CAN_DO}"


def commands(reply: Reply) -> list[str]:
    """The first word of each help line ("• pending: …" → "pending"; an example → its first word)."""
    return [line.split()[1].rstrip(":") for line in reply.lines]


def shows_search_examples(reply: Reply) -> bool:
    return any(line.startswith(SEARCH_EXAMPLES) for line in reply.lines)


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    return signpost


async def test_a_practitioner_and_a_duty_manager_who_practises_are_shown_how_to_search(app: Signpost) -> None:
    for who in ("P001", "DM01"):
        assert shows_search_examples(await say(app, who, "help")), who


async def test_an_admin_who_is_not_a_practitioner_is_shown_no_searches(app: Signpost) -> None:
    """AD01 (admin only) was shown how to search, then refused every search."""
    reply = await say(app, "AD01", "help")
    assert not shows_search_examples(reply), reply.lines
    assert {"lead-notices", "decommission", "pending", "enrol"} <= set(commands(reply))
    assert not {"request", "message", "history"} & set(commands(reply)), reply.lines


async def test_someone_not_registered_is_shown_only_what_needs_no_registration(app: Signpost) -> None:
    """Not searches, nor enrol (refused until registered): how to register."""
    reply = await say(app, "NOBODY", "help")
    assert reply.outcome is Outcome.INFO
    assert commands(reply) == ["register"], reply.lines
    assert "didn't understand" in (usage := await say(app, "NOBODY", "what now")).text
    assert commands(usage) == ["register"], usage.lines


async def test_someone_acting_as_a_practitioner_is_not_offered_register(app: Signpost) -> None:
    """Every role's help offered "register PRACTITIONER_ID", which only an account not yet linked
    can use: in the console (always acting as a practitioner) it was refused each time it was tried."""
    for who in ("P001", "DM01", "AD01"):
        assert "register" not in commands(await say(app, who, "help")), who
        assert "register" not in commands(await say(app, who, "what now")), who


@pytest.mark.parametrize("text", ["Amy Jones 03/04/2014", AMY, "Amy Jones"])
async def test_a_search_by_someone_who_may_not_search_says_who_may(app: Signpost, text: str) -> None:
    """ "Only a practitioner can use 'search'" named a command nobody types; a name without a date
    was told how to search by name."""
    reply = await say(app, "AD01", text)
    assert (reply.outcome, reply.text) == (Outcome.REFUSED, ONLY_PRACTITIONERS), text


async def test_a_keyword_command_refused_by_role_still_names_it(app: Signpost) -> None:
    reply = await say(app, "P001", "pending")
    said = f"Only a duty manager or an admin can use 'pending'. {WHAT_YOU_CAN_DO}"
    assert (reply.outcome, reply.text) == (Outcome.REFUSED, said)


async def test_after_switch_off_help_lists_only_what_still_answers(app: Signpost) -> None:
    """Searches, enrol, register, requests were listed after switch-off, and each was refused."""
    today = app.ctx.clock.now().strftime("%d/%m/%Y")
    done = await say_fresh(app, "AD01", f"decommission schedule {today} at once")
    assert done.outcome is Outcome.DONE, done.text
    for who in ("P001", "DM01", "NOBODY"):
        reply = await say(app, who, "help")
        assert reply.outcome is Outcome.INFO and reply.lines == (), (who, reply.lines)
        assert "switched off" in reply.text, reply.text
    admin = await say(app, "AD01", "help")
    assert admin.lines == (
        "• decommission status · decommission certificate: still answered now that Signpost is switched off",
    )
    for line in admin.lines:  # each still answers
        for command in line[2:].split(":", 1)[0].split(" · "):
            assert (await say(app, "AD01", command)).outcome is Outcome.INFO, command


@pytest.mark.parametrize("text", ["help", "what now", "histroy", "Amy Jones"])
async def test_a_leaver_is_told_their_access_is_not_active_not_shown_an_empty_help(app: Signpost, text: str) -> None:
    """A practitioner recorded as gone (`signpost practitioner leave P002`) sending `help` got the
    introduction and no command at all, and anything it did not understand "Sorry, I didn't
    understand that. You can send:" followed by nothing (a name without a date: how to search, which
    they may not). Everything else they send is answered that their access is not active; so are these."""
    async with audited(app.ctx, "operator", Action.PRACTITIONER_LEAVE) as audit:
        assert (await people.leave(app.ctx, audit, "P002")).changed
    reply = await say(app, "P002", text)
    assert (reply.outcome, reply.text, reply.lines) == (Outcome.REFUSED, NOT_ACTIVE, ()), text


async def test_on_a_store_that_is_not_the_demo_help_shows_forms_not_the_demos_children_or_people(
    app: Signpost,
) -> None:
    """On a register imported from feeds, help still offered the demo's `999 000 1006`, `Ava Price …`
    and `request 999 000 1146 …` (`999 000 1006` then answered "No record found"), and `register
    NS-P0001` / `unlink NS-P0001`: help shows the forms instead, and keeps examples that name nothing."""
    demo = SyntheticRegister(children=3000).examples()
    named = [demo.keyed, demo.demographic, demo.shielded, demo.practitioner_id, demo.duty_manager_id, demo.admin_id]
    shown: list[str] = []
    for who, text in (("P001", "help"), ("P001", "what now"), ("NOBODY", "help"), ("AD01", "help"), ("DM01", "help")):
        shown += (await say(app, who, text)).lines
    assert not [line for line in shown if any(word in line for word in named)], shown
    assert "• REFERENCE (a child's reference number)" in shown, shown
    assert "• GIVEN FAMILY DD/MM/YYYY [POSTCODE] (name, date of birth, optional postcode)" in shown, shown
    assert any(line.startswith("• request REFERENCE PURPOSE (the purpose is required") for line in shown), shown
    assert any("e.g. approve 12 3d / approve 12 36h" in line for line in shown), shown
    assert "Ava Price" not in (await say(app, "P001", "Amy")).text
