"""A message Signpost does not know as a command, whose first word is close to a command the asker
may use, is answered with that command suggested ("Did you mean 'enrol'?") before the usual list:
"enroll" (the US spelling), "/signpost help" typed in the bot's chat, "histroy". Only a command the
asker's role may use is suggested, and nothing the person typed is said back but that one word of
ours: a misspelt search ("seach Ava Price 05/01/2014") never has its name or date repeated."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.vocabulary import Outcome
from tests.factories import load_standard, say

SEARCH_HINT = "To search, send the name and date of birth on their own"


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    return signpost


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("enroll", "enrol"),
        ("/signpost help", "help"),
        ("signpost help", "help"),
        ("/signpost history", "history"),
        ("/histroy", "history"),
        ("histroy", "history"),
        ("Histroy", "history"),
        ("help()", "help"),
    ],
)
async def test_a_word_close_to_a_command_is_answered_with_it_suggested(app: Signpost, text: str, command: str) -> None:
    reply = await say(app, "P001", text)
    assert reply.outcome is Outcome.INVALID, reply.text
    assert reply.text == f"Sorry, I didn't understand that. Did you mean '{command}'? You can send:"
    # help lists the commands beside itself; each one suggested is among them
    assert command == "help" or any(line.startswith(f"• {command}") for line in reply.lines), reply.lines


@pytest.mark.parametrize("text", ["quit", "exit()", "xyzzy", "what now"])
async def test_a_word_close_to_no_command_gets_the_usual_help(app: Signpost, text: str) -> None:
    reply = await say(app, "P001", text)
    assert reply.text == "Sorry, I didn't understand that. You can send:", text
    assert reply.lines, text


async def test_help_in_capitals_is_help(app: Signpost) -> None:
    assert (await say(app, "P001", "Help")).outcome is Outcome.INFO


async def test_a_command_the_role_may_not_use_is_never_suggested(app: Signpost) -> None:
    """A practitioner may not approve (help does not list it), so "aprove" suggests nothing; a duty
    manager, who may, is told."""
    practitioner = await say(app, "P001", "aprove")
    assert "Did you mean" not in practitioner.text and "approve" not in practitioner.text, practitioner.text
    assert not any("approve" in line for line in practitioner.lines), practitioner.lines
    manager = await say(app, "DM01", "aprove")
    assert "Did you mean 'approve'?" in manager.text, manager.text
    someone = await say(app, "NOBODY", "enroll")  # enrol needs registering first
    assert "Did you mean" not in someone.text, someone.text
    assert "Did you mean 'register'?" in (await say(app, "NOBODY", "regster")).text


@pytest.mark.parametrize("text", ["seach Ava Price 05/01/2014", "serach Ava Price 05/01/2014 NS1 3LY", "seach"])
async def test_a_misspelt_search_is_told_how_to_search_and_nothing_it_held_is_said_back(
    app: Signpost, text: str
) -> None:
    reply = await say(app, "P001", text)
    assert reply.outcome is Outcome.INVALID, reply.text
    assert SEARCH_HINT in reply.text, reply.text
    for typed in ("seach", "serach", "05/01/2014", "NS1 3LY"):
        assert typed not in reply.text, typed
    # Only the help's own examples name anyone: the reply says back nothing else that was typed.
    assert "Price" not in reply.text and "Ava" not in reply.text, reply.text


async def test_a_misspelt_search_by_someone_who_may_not_search_suggests_no_search(app: Signpost) -> None:
    reply = await say(app, "AD01", "seach Ava Price 05/01/2014")
    assert SEARCH_HINT not in reply.text and "Ava" not in reply.text and "05/01/2014" not in reply.text, reply.text


@pytest.mark.parametrize("text", ["Sarah Price 05/01/2014", "Henry Price"])
async def test_a_name_close_to_a_command_word_is_still_read_as_a_name(app: Signpost, text: str) -> None:
    reply = await say(app, "P001", text)
    assert "Did you mean" not in reply.text and SEARCH_HINT not in reply.text, reply.text
