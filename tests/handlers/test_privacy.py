"""The one "is this text about the child?" filter: every spelling of a name, birth date or postcode."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.privacy import code_shaped, mentions_identity, mentions_reference
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
        "the Sm1th family",  # look-alike digits and signs for letters
        "the 5m!th family",
        "0'Br1en family",
        "Obr13nn family",
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
        "s47 strategy meeting on the 1st, cp1 plan, room 4b, year 6",  # digits in words that are no names
        "call 0161 496 0002 or email duty@example.org",
        "B2-3pm in the hall, 2nd floor",
    ],
)
def test_ordinary_reasons_pass(text: str) -> None:
    """A reason that does not point at the child goes out as written."""
    assert not mentions_identity(text, CHILD)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Ali", "the family moved from the AL1 area of St Albans"),
        ("Lee", "seen at the LE3 clinic"),
        ("Kai", "KA1 team"),
        ("Cal", "a CA1 address"),
        ("Ely", "the new address ends 3LY"),
        ("Sal", "SA1 3QJ area"),
    ],
)
def test_a_postcode_half_is_no_disguised_name(name: str, text: str) -> None:
    """Letters and digits together are what a postcode's halves are ("AL1", "3LY"): read as a
    disguised name ("Ali") they refused ordinary text about a child of that name."""
    child = Identity(
        given_names=name, family_name="Khan", aliases=(), date_of_birth=date(2016, 5, 1), postcode="ZZ9 9ZZ"
    )
    assert not mentions_identity(text, child)
    assert mentions_identity(f"{name} is known", child)


REF = 7771000029  # the child's reference (a valid one: its check digit is right)


@pytest.mark.parametrize(
    "text",
    [
        "record 7771000029 is held elsewhere",
        "record 777 100 0029 is held by the Zedshire refuge team",
        "I know 777 100 0029 well",
        "777-100-0029",
        "777.100.0029",
        "ref:7771000029",
        "(777) 100-0029",
        "7 7 7 1 0 0 0 0 2 9",
        "7 7 7 - 1 0 0 - 0 0 2 9",
        "777\u00a0100\u00a00029",  # no-break spaces
        "\uff17\uff17\uff17 \uff11\uff10\uff10 \uff10\uff10\uff12\uff19",  # full-width digits
        "\u0667\u0667\u0667 \u0661\u0660\u0660 \u0660\u0660\u0662\u0669",  # Arabic-Indic digits
        "\u096d\u096d\u096d\u0967\u0966\u0966\u0966\u0966\u0968\u096f",  # Devanagari digits
        "ref 777 100 002",  # the first nine digits make the tenth (its check digit)
        "see 1 777 100 0029 2",  # inside a longer run of digits: failing closed
    ],
)
def test_the_childs_reference_in_any_spelling_is_caught(text: str) -> None:
    """Grouped or not, with spaces, dashes or dots, one digit at a time, in any script's digits."""
    assert mentions_reference(text, REF)


@pytest.mark.parametrize(
    "text",
    [
        "please call me on 01632 960 001",
        "call 0161 496 0002 after 3pm",
        "ask about record 999 000 0050 instead",  # another child's reference
        "section 47 enquiry, request 12",
        "777 100",  # a part of it points at no child
        "born 2015, seen 2023",
        "",
    ],
)
def test_other_numbers_pass(text: str) -> None:
    """A phone number, another reference, a request id: none of them is this child's reference."""
    assert not mentions_reference(text, REF)


def test_a_reference_with_leading_zeros_is_caught_as_written() -> None:
    """A reference is always written with its ten digits (handlers.vocabulary.format_ref)."""
    assert mentions_reference("record 012 345 6789", 123456789)
    assert not mentions_reference("record 0123", 123456789)


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("verification 871234", {"871234"}),
        ("verification 871 234", {"871234"}),  # typed as an app shows it
        ("code 871-234, thanks", {"871234"}),
        ("8 7 1 2 3 4", {"871234"}),
        ("call 01632 871234", {"871234"}),  # a code at the end of a phone number: still the code
        ("ring 0163287123", {"016328", "163287", "632871", "328712", "287123"}),  # any six in a longer run
        ("ring 0161 496 0002, code 871 234", {"871234"}),
        ("please call me on 01632 960 001", {"960001"}),  # compared, and passes unless it is the code
        ("\uff18\uff17\uff11\uff12\uff13\uff14", {"871234"}),  # full-width digits
    ],
)
def test_every_six_digits_that_could_be_a_code_are_found(text: str, codes: set[str]) -> None:
    """What screening compares with the writer's current code (handlers/access/screening.py): six
    digits in a row, or groups of digits side by side that make six ("871 234")."""
    assert code_shaped(text) == codes


@pytest.mark.parametrize(
    "text",
    ["call 0161 496 0002 after 3pm", "07700 900 12", "section 47, request 12", "12345", ""],
)
def test_text_with_no_six_digits_together_has_nothing_code_shaped(text: str) -> None:
    """No six digits in a row nor groups making six: nothing to compare, so no secret is read for it."""
    assert code_shaped(text) == frozenset()
