"""Forms of another child's reference, date of birth or postcode that the screen let through
(handlers/privacy.py ``other_details``), and the look-alikes it must still let pass."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.privacy import DATE_OF_BIRTH, POSTCODE, REFERENCE, other_details

TODAY = date(2026, 11, 2)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("brother 943  476  5919", REFERENCE),
        ("brother 943 - 476 - 5919", REFERENCE),
        ("brother 943/476/5919", REFERENCE),
        ("brother 943,476,5919", REFERENCE),
        ("dob 03 04 2016", DATE_OF_BIRTH),
        ("born 3 Apr 16", DATE_OF_BIRTH),
        ("born 3-Apr-16", DATE_OF_BIRTH),
        ("born 20160403", DATE_OF_BIRTH),
        ("lives at NS1  3LY", POSTCODE),
        ("lives at NS1-3LY", POSTCODE),
    ],
)
def test_other_spellings_are_caught(text: str, kind: str) -> None:
    assert kind in other_details(text, TODAY), text


@pytest.mark.parametrize(
    "text",
    [
        "s47 2nd meeting",
        "m1 1st floor",  # read as an ordinal, as "s47 2nd" is: see the postcode rule
        "case 12345678, costs £1,250.50",
        "call 0161 496 0002 between 9 and 5",
        "room 12 3 floors up",
        "meeting on 3 May at 10:30",
        "order 20261231 arrives",  # a date ahead is no date of birth
        "B2-3pm in the hall",
    ],
)
def test_look_alikes_still_pass(text: str) -> None:
    assert other_details(text, TODAY) == (), text
