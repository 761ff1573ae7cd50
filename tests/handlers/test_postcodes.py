"""A postcode typed as people type it: without its space ("NS13LY"), in lower case, or both, is
read as the canonical "NS1 3LY" wherever Signpost reads one (a search in chat, a roll's rows); a
text that is not a postcode gets a usage answer that says so."""

from __future__ import annotations

from datetime import date

import pytest

from bot.app import Signpost
from handlers.grammar import UsageError, looks_like_a_name, parse_demographic, parse_postcode
from handlers.roll import Roll, chunks, read_roster
from handlers.vocabulary import Outcome
from tests.factories import CHILDREN_HEADER, load_standard, ready, say

TODAY = date(2026, 1, 1)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("NS1 3LY", "NS1 3LY"),
        ("NS13LY", "NS1 3LY"),
        ("ns13ly", "NS1 3LY"),
        ("ns1 3ly", "NS1 3LY"),
        ("m12ab", "M1 2AB"),
        ("SW1A1AA", "SW1A 1AA"),
        ("ec1a 1bb", "EC1A 1BB"),
        ("M1", "M1"),  # an outward code alone narrows a search too
        ("sw1a", "SW1A"),
    ],
)
def test_a_postcode_with_or_without_its_space_reads_as_the_canonical_form(typed: str, canonical: str) -> None:
    """Any case, with or without the space between outward and inward code: one canonical form."""
    assert parse_postcode(typed) == canonical


@pytest.mark.parametrize(
    "typed", ["12345", "1234", "NS1 3L", "NS13LYX", "N", "ABC 123", "M1 2AB 3CD", "", "M\uff11 2AB"]
)
def test_what_is_not_a_postcode_reads_as_none(typed: str) -> None:
    """Digits only, a half inward code, three parts, other scripts' digits: not a postcode."""
    assert parse_postcode(typed) is None


@pytest.mark.parametrize(
    "typed", ["Ava Price 05/01/2014 NS13LY", "ava price 05/01/2014 ns13ly", "Ava Price 05/01/2014 ns1 3LY"]
)
def test_a_search_by_name_reads_the_postcode_without_its_space(typed: str) -> None:
    """ "NS13LY" was refused as "that doesn't look like a postcode" (each part had to be at most 4 characters)."""
    assert parse_demographic(typed, TODAY).postcode == "NS1 3LY"


@pytest.mark.parametrize(
    "typed", ["Ava Price 05/01/2014 12345", "Ava Price 05/01/2014 NS1 3L", "Ava Price 05/01/2014 M1 2AB 3CD"]
)
def test_a_search_with_something_that_is_not_a_postcode_is_told_so(typed: str) -> None:
    with pytest.raises(UsageError, match="postcode"):
        parse_demographic(typed, TODAY)


def test_a_name_with_a_spaceless_postcode_and_no_date_is_still_a_name() -> None:
    """So that it is asked kindly for the date of birth, not told it was not understood."""
    assert looks_like_a_name("Ava Price NS13LY") and looks_like_a_name("ava price ns1 3ly")


async def test_a_search_typed_with_a_spaceless_lower_case_postcode_finds_the_child(signpost: Signpost) -> None:
    """In chat, end to end: "amy jones 03/04/2014 m12ab" finds Amy (postcode M1 2AB) as "M1 2AB" does;
    a postcode that is not one is answered with what to fix, never with a result."""
    await load_standard(signpost)
    await ready(signpost, "P002")
    for text in ("amy jones 03/04/2014 m12ab", "Amy Jones 03/04/2014 M12AB"):
        reply = await say(signpost, "P002", text)
        assert (reply.outcome, reply.child_ref) == (Outcome.ANSWERED, "999 000 0018"), (text, reply.text)
    bad = await say(signpost, "P002", "Amy Jones 03/04/2014 M1234")
    assert bad.outcome is Outcome.INVALID and "postcode" in bad.text and not bad.signposts


def test_a_rolls_postcode_without_its_space_is_read_in_the_canonical_form() -> None:
    """`signpost match` reads a roll's postcode as chat does: "ns13ly" is "NS1 3LY"."""
    rows = ",Ava,Price,,2014-01-05,F,ns13ly,,\n,Ava,Price,,2014-01-05,F,sw1a1aa,,\n"
    roster = read_roster(Roll("roll.csv", f"{CHILDREN_HEADER}\n{rows}"))
    [queries] = list(chunks(roster))
    assert [row.query.postcode for row in queries] == ["NS1 3LY", "SW1A 1AA"]
