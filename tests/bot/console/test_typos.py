"""Typos as a newcomer makes them at the console, on the demo store `make run` seeds.

An admin (who may not search) who mistypes a command they may use and adds a word after it
("decommision status", "pendng requests") is told the command they meant, as one who typed the
word alone is; two name-shaped words are not taken for a search an admin was refused.
"""

from __future__ import annotations

import pytest

from bot.app import Signpost
from tests.bot.console.console_session import session
from tests.factories import seed_demo
from tests.spread import spread

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


@spread(
    "typed, meant",
    [
        ("decommision status", "decommission"),
        ("pendng requests", "pending"),
        ("lead-notice Northshire", "lead-notices"),
    ],
)
async def test_an_admins_misspelt_command_with_a_word_after_it_is_suggested_not_refused_as_a_search(
    signpost: Signpost, typed: str, meant: str
) -> None:
    await seed_demo(signpost, children=50)
    out = await session(signpost, [typed], as_id="ADMIN-01")
    answer = out.split("(an admin: unlink, decommission)\n", 1)[1]
    assert answer.startswith(f"Sorry, I didn't understand that. Did you mean '{meant}'? You can send:"), answer
    assert "Only a practitioner can search" not in answer, answer


async def test_an_admins_name_without_a_date_is_still_told_only_practitioners_search(signpost: Signpost) -> None:
    await seed_demo(signpost, children=50)
    out = await session(signpost, ["Ava Price"], as_id="ADMIN-01")
    assert "Only a practitioner can search for a child." in out, out
    assert "Did you mean" not in out, out


@spread(
    "typed",
    [
        "Ava Price 05 01 2014",  # spaces between day, month and year
        "Ava Price 05012014",  # run together
        "Ava Price 05/01/2014.",  # a full stop after the year, as at the end of a sentence
        "Ava Price 05/01/2014; NS1 3LY",
    ],
)
async def test_a_date_of_birth_nearly_written_as_one_is_told_how_to_write_it(signpost: Signpost, typed: str) -> None:
    """A practitioner's everyday ways of writing a date that Signpost does not read get a hint that
    says how to write it, as "5 Jan 2014" and "5/1/14" do, not the bare list of commands; nothing
    typed is said back."""
    await seed_demo(signpost, children=50)
    out = await session(signpost, [typed])
    answer = out.split("(an admin: unlink, decommission)\n", 1)[1]
    first = answer.splitlines()[0]
    assert first.startswith("Sorry, I didn't understand that. Please write the date of birth as DD/MM/YYYY"), first
    assert "05 01" not in answer and "05012014" not in answer and "2014." not in answer, answer


@pytest.mark.parametrize("typed", ["help me", "help request", "HELP please"])
async def test_help_with_words_after_it_lists_the_consoles_own_commands_too(signpost: Signpost, typed: str) -> None:
    """Signpost answers "help me" as help; the console adds its own commands (how to leave, `:as`)
    as it does after a bare `help`, so a newcomer asking so learns how to quit too."""
    await seed_demo(signpost, children=50)
    out = await session(signpost, [typed])
    answer = out.split("(an admin: unlink, decommission)\n", 1)[1]
    assert answer.startswith("Signpost tells you who else is working"), answer
    assert "In this console also:" in answer and "quit or exit" in answer, answer


@spread(
    "typed",
    [
        "Ava Price, 05/01/2014, NS1 3LY",  # fields listed as on a form
        "Ava Price,05/01/2014,NS1 3LY",
        "Price, Ava 05/01/2014 NS1 3LY",  # the family name first, as records write it
        "PRICE, Ava, 05/01/2014, NS1 3LY",
    ],
)
async def test_commas_between_fields_or_after_the_family_name_are_read_as_written(
    signpost: Signpost, typed: str
) -> None:
    """A search written with commas was refused ("names may contain letters, hyphens and
    apostrophes only") or told to write its date again. Commas separate the fields, and one after
    the first names puts the family name first: each answers as the plain search does."""
    await seed_demo(signpost, children=50)
    plain = await session(signpost, ["Ava Price 05/01/2014 NS1 3LY"])
    out = await session(signpost, [typed])
    answer = out.split("(an admin: unlink, decommission)\n", 1)[1]
    assert answer == plain.split("(an admin: unlink, decommission)\n", 1)[1], answer
    assert "Sorry" not in answer and "Names may contain" not in answer, answer
