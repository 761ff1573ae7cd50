"""A word too many, or a command the console does not run, as a newcomer types them on the demo store.

Each answer says what was wrong with what was typed: a valid platform, duration or count followed by
one word more is not called a wrong platform, duration or count; a chat `decommission destroy` says
where destruction is run; a bare `register` in the console says at once what to do instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import Signpost
from handlers.commands import all_specs
from handlers.dispatch.spec import Spec
from handlers.stepup.flow import make_specs
from handlers.vocabulary import Command, Reply, Role
from tests.bot.console.console_session import session
from tests.factories import ready, seed_demo
from tests.spread import spread

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

GREETED = "(an admin: unlink, decommission)\n"
SEE_HELP = "Send help to see what you can do."


async def answer(app: Signpost, as_id: str, typed: str) -> str:
    """The console's first line of answer to ``typed``, for someone already stepped up."""
    await ready(app, as_id)
    out = await session(app, [typed], as_id=as_id)
    return out.split(GREETED, 1)[1].splitlines()[0]


@spread(
    "as_id, typed, wrong, said",
    [
        ("ADMIN-01", "unlink NS-P0001 teams now", "The platform is Slack or Teams", "nothing after"),
        ("NS-DM01", "approve 1 2h thanks", "The duration should look like", "nothing after"),
        ("NS-DM01", "approve 1 3 days thanks", "The duration should look like", "nothing after"),
        ("NS-P0001", "history 3 4", "Give a number of lookups", "one number"),
        ("ADMIN-01", "lead-notices Northshire off now", "There is no local authority by that name", "nothing after"),
    ],
)
async def test_a_word_after_a_valid_last_argument_is_told_as_a_word_too_many(
    signpost: Signpost, as_id: str, typed: str, wrong: str, said: str
) -> None:
    await seed_demo(signpost, children=50)
    first = await answer(signpost, as_id, typed)
    assert not first.startswith(wrong), first
    assert said in first, first


async def test_a_duration_written_in_two_words_is_still_one_duration(signpost: Signpost) -> None:
    """`approve 1 3 days` is a duration Signpost reads, not a word too many."""
    await seed_demo(signpost, children=50)
    assert await answer(signpost, "NS-DM01", "approve 1 3 days") == "There is no access request 1 for you to decide."


async def test_decommission_destroy_in_chat_says_it_is_run_at_the_terminal(signpost: Signpost) -> None:
    """`destroy` is the command line's (README): the chat names it, not "please say what to do"."""
    await seed_demo(signpost, children=50)
    first = await answer(signpost, "ADMIN-01", "decommission destroy")
    assert first.startswith("Destruction is not started in chat"), first
    assert "signpost decommission destroy" in first, first


async def test_a_bare_register_in_the_console_says_to_use_as_not_asks_for_an_id(signpost: Signpost) -> None:
    """Asked for an id, a newcomer typing one was then told the console has no use for it."""
    await seed_demo(signpost, children=50)
    first = await answer(signpost, "NS-P0001", "register")
    assert first.startswith("The console acts directly as a practitioner id"), first
    # With an id, as README says: registration is a chat flow; the console acts as an id directly.
    given = await answer(signpost, "NS-P0001", "register NS-P0003")
    assert given.startswith("The console acts directly as a practitioner id"), given
    assert "':as PRACTITIONER_ID'" in given, given


async def test_as_with_a_word_after_the_id_says_one_id_not_that_nobody_has_it(signpost: Signpost) -> None:
    """`:as NS-DM01 now` was answered "There is no practitioner NS-DM01 NOW in the register"."""
    await seed_demo(signpost, children=50)
    out = await session(signpost, [":as NS-DM01 now"])
    first = out.split(GREETED, 1)[1].splitlines()[0]
    assert first == "Give one practitioner id after :as, with nothing after it, so still acting as NS-P0001.", first


async def test_relay_with_text_after_the_number_says_to_answer_with_reply(signpost: Signpost) -> None:
    """`relay 7 thanks, I'll call` (reply mistyped as its neighbour) showed message 7 and dropped the
    answer without a word: the person believed they had answered. Now nothing is read or sent, and
    the answer says how to reply."""
    await seed_demo(signpost, children=50)
    first = await answer(signpost, "NS-DM01", "relay 7 thanks, I will call you this afternoon")
    assert first == "To answer message 7, send: reply 7 TEXT (relay only reads a message).", first


# A word for each placeholder a fixed-form usage line names (``Spec.usage``'s first form).
SAMPLE = {"ID": "1", "PRACTITIONER_ID": "NS-P0001"}
# Keyword commands whose words are free text, though their usage line shows none: help reads a topic.
FREE = {"help"}
AS_ROLE = {Role.ADMIN: "ADMIN-01", Role.DUTY_MANAGER: "NS-DM01"}


def fixed_form(spec: Spec) -> list[str] | None:
    """The words of a usage line that takes no or fixed arguments (None: optional or free words)."""
    form = spec.usage.split(",", 1)[0].split()
    if not spec.keyword or spec.name in FREE or not form or "·" in spec.usage:
        return None
    return form if all(word == spec.name or word in SAMPLE for word in form) else None


async def never_resumed(command: Command) -> Reply:
    raise AssertionError("no command is resumed here")


# Every command as the dispatcher is built with them (``bot.app.build``), enrol and code included.
FIXED = [spec for spec in all_specs(*make_specs(never_resumed, "https://signpost.example")) if fixed_form(spec)]


def test_the_fixed_form_commands_are_found() -> None:
    """The list below is read from the specs, not typed: the commands the newcomer met are in it."""
    assert {"pending", "relays", "relay", "home", "enrol"} <= {spec.name for spec in FIXED}


@pytest.mark.parametrize("spec", FIXED, ids=lambda spec: spec.name)
async def test_a_word_after_a_fixed_form_command_is_a_word_too_many(signpost: Signpost, spec: Spec) -> None:
    """`relays 3`, `pending x`, `relay 1 2` ran as if the last word were not there; every command that
    takes no or fixed words now says a word is too many, with its usage, and does nothing."""
    await seed_demo(signpost, children=50)
    form = fixed_form(spec)
    assert form is not None
    typed = " ".join(SAMPLE.get(word, word) for word in form) + " 2"
    as_id = AS_ROLE.get(spec.role, "NS-P0001") if spec.role else "NS-P0001"
    first = await answer(signpost, as_id, typed)
    assert first.startswith("A word too many"), first


@spread(
    "as_id, typed, first",
    [
        ("NS-DM01", "relays 3", "A word too many: nothing goes after relays."),
        ("NS-DM01", "pending x", "A word too many: nothing goes after pending."),
        ("NS-P0001", "relay 1 2", "A word too many: nothing goes after relay ID."),
        ("NS-P0001", "relays 3", f"Only a duty manager or an admin can use 'relays'. {SEE_HELP}"),
        ("NS-P0001", "pending x", f"Only a duty manager or an admin can use 'pending'. {SEE_HELP}"),
    ],
)
async def test_readme_s_word_too_many_examples_answer_as_it_says_for_each_role(
    signpost: Signpost, as_id: str, typed: str, first: str
) -> None:
    """README's `relays 3`, `pending x`, `relay 1 2`: "a word too many" to whoever may use the command;
    a practitioner sending a duty manager's command is told whose it is first (the reviewer found
    README promising "a word too many" to everyone)."""
    await seed_demo(signpost, children=50)
    assert await answer(signpost, as_id, typed) == first
    readme = " ".join((Path(__file__).resolve().parents[3] / "README.md").read_text("utf-8").split())
    assert f"`{typed}`" in readme
    assert "is told only that a duty manager or an admin may use it" in readme
