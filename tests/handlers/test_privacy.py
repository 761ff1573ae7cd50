"""The one "is this text about the child?" filter: every spelling of a name, birth date or postcode."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.privacy import mentions_identity
from store.register.terms import Identity

CHILD = Identity(
    given_names="Zoë Ann",
    family_name="O'Brien-Smith",
    aliases=("Zed",),
    date_of_birth=date(2017, 11, 24),
    postcode="NS1 3LY",
)


@pytest.mark.parametrize(
    "text",
    [
        "born 24 November 2017",
        "dob 24/11/17",
        "dob 24/11/2017",
        "24-11-2017",
        "24.11.17",
        "2017-11-24",
        "born 2017 11 24",
        "24112017",
        "20171124",
        "241117",
        "24th of November 2017",
        "the 24th Nov",
        "Nov 24, 2017",
        "11/24/2017",
        "birthday 24 nov",
        "birthday 24/11",
        "\uff12\uff14/\uff11\uff11/\uff12\uff10\uff11\uff17",
        "zoe is known",
        "ZOË",
        "obrien family",
        "the Smith family",
        "known as zed",
        "lives at ns13ly",
        "NS1 3LY",
        "ns1-3ly",
        "Z.o.e is known",  # spelt out
        "about O B R I E N",
        "the s-m-i-t-h family",
        "Obrienn family",  # one letter added to a long name
        "Z.o.e O.b.r.i.e.n please call",
    ],
)
def test_every_spelling_of_the_childs_identity_is_caught(text: str) -> None:
    """Dates with month names, ordinals, 2-digit years and any separator; names by any token, alias
    or accent; the postcode with or without its space."""
    assert mentions_identity(text, CHILD)


@pytest.mark.parametrize(
    "text",
    [
        "please ask the lead professional first",
        "not enough reason given",
        "try again after 25 November",
        "see the 2017 guidance, section 11",
        "an annual review",  # "ann" inside a word is not the name Ann
        "NS1 area team",
        "",
        "a b c of safeguarding",  # letters spelt out that make no name
        "the family is known to CAMHS",
        "brightons team",  # six letters one away from nothing here
    ],
)
def test_ordinary_reasons_pass(text: str) -> None:
    """A reason that does not point at the child goes out as written."""
    assert not mentions_identity(text, CHILD)
