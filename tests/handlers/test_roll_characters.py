"""A roll for ``signpost match`` is refused for a character that does not show as itself exactly
where an import refuses the same row (``store.register.feeds``'s row checker): a NUL in a name was
matched (answered no_match) where an import named the row as a problem."""

from __future__ import annotations

import pytest

from handlers.roll import Roll, RosterRejected, read_roster
from store.register.feeds import NOT_SHOWN, RowProblem
from tests.factories import CHILDREN_HEADER


def roll(given: str, family: str = "Jones", dob: str = "2014-04-03", sex: str = "", postcode: str = "") -> Roll:
    return Roll(
        "roll.csv", text=f"{CHILDREN_HEADER}\n,Ben,Price,,2012-01-05,,,,\n,{given},{family},,{dob},{sex},{postcode},,\n"
    )


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (roll("Amy\x00"), "given_names"),
        (roll("Amy", "Jo\u200bnes"), "family_name"),
        (roll("Amy", "\u202eJones"), "family_name"),
        (roll("Amy", dob="2014-04-03\x00"), "date_of_birth"),
        (roll("Amy", sex="F\x07"), "sex"),
        (roll("Amy", postcode="M1\x001AA"), "postcode"),
    ],
)
def test_a_hidden_character_in_a_field_match_reads_refuses_the_roll_naming_its_line(row: Roll, field: str) -> None:
    """The row's line and field, with the import's words, and nothing of the value."""
    with pytest.raises(RosterRejected) as rejected:
        read_roster(row)
    assert rejected.value.problems == [RowProblem("roll.csv", 3, field, NOT_SHOWN)]
    said = str(rejected.value.problems[0])
    assert "Amy" not in said and "Jones" not in said and "2014" not in said


def test_a_roll_of_names_that_show_as_themselves_is_read() -> None:
    """Accents, apostrophes and a joiner between two Persian letters are names, as in a feed."""
    assert read_roster(roll("Zoë \u0646\u0633\u0631\u06cc\u0646\u200c\u0632\u0627\u062f\u0647", "O’Brien")).rows == 2
