"""The shared grammar: what each kind of text becomes."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.grammar import (
    MAX_ID,
    Parsed,
    UsageError,
    hides_characters,
    parse,
    parse_demographic,
    parse_number,
    trim,
)
from handlers.refs import looks_like_reference, parse_reference
from store.register.refs import check_digit, is_valid

KEYWORDS = frozenset({"help", "history"})


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("help", "help"),
        ("HELP me", "help"),
        ("", "help"),
        ("943 476 5919", "lookup"),
        ("943-476-5919", "lookup"),
        ("9434765919", "lookup"),
        ("Amy Jones 03/04/2014 M1 2AB", "search"),
        ("Amy Jones 2014-04-03", "search"),
        ("Amy Jones 31/02/2014", "search"),  # a bad date is still a search, answered with help
        ("what is this", "usage"),
        ("12345", "usage"),
    ],
)
def test_text_is_routed_to_the_right_command(text: str, name: str) -> None:
    """Keywords first, then references, then name-and-date searches, then usage."""
    assert parse(text, KEYWORDS).name == name


def test_demographic_text_is_split_into_fields() -> None:
    """Last name token is the family name; digits after the date are the postcode."""
    query = parse_demographic("Amy Rose Jones 03/04/2014 M1 2AB", date(2026, 1, 1))
    assert (query.given_names, query.family_name, query.postcode) == ("Amy Rose", "Jones", "M1 2AB")
    assert query.date_of_birth == date(2014, 4, 3)


@pytest.mark.parametrize(
    ("text", "given", "family"),
    [
        ("Amy Rose Jones, 03/04/2014, M1 2AB", "Amy Rose", "Jones"),  # commas between the fields
        ("Jones, Amy Rose 03/04/2014 M1 2AB", "Amy Rose", "Jones"),  # the family name first
        ("Jones,Amy Rose,03/04/2014,M1 2AB", "Amy Rose", "Jones"),
        ("Smith Jones, Amy 03/04/2014 M1 2AB", "Amy", "Smith Jones"),
    ],
)
def test_commas_separate_fields_and_one_after_the_family_name_puts_it_first(text: str, given: str, family: str) -> None:
    query = parse_demographic(text, date(2026, 1, 1))
    assert (query.given_names, query.family_name, query.postcode) == (given, family, "M1 2AB")
    assert query.date_of_birth == date(2014, 4, 3)
    assert parse(text, KEYWORDS).name == "search"


def test_hyphens_and_apostrophes_are_name_characters() -> None:
    """Double-barrelled and Irish names parse as names."""
    query = parse_demographic("Siobhan O'Brien-Smith 01/02/2015", date(2026, 1, 1))
    assert query.family_name == "O'Brien-Smith"


def test_decomposed_letters_and_other_apostrophes_are_the_same_names() -> None:
    """ "Zoë" pasted as "Zoe" + a combining diaeresis (macOS, PDFs) was refused as not a name, and so
    were O\u2018Brien and O`Brien; they read as typed in composed form with the usual apostrophe."""
    composed = parse_demographic("Zoë O’Brien 06/05/2014", date(2026, 1, 1))
    for typed in ("Zoe\u0308 O’Brien 06/05/2014", "Zoë O\u2018Brien 06/05/2014", "Zoë O`Brien 06/05/2014"):
        query = parse_demographic(typed, date(2026, 1, 1))
        assert (query.given_names, query.family_name) == (composed.given_names, composed.family_name)
    assert parse_demographic("Văn An Nguye\u0302\u0303n 01/02/2015", date(2026, 1, 1)).family_name == "Nguyễn"


@pytest.mark.parametrize("text", ["Amy Jones", "03/04/2014", "Amy Jones 30/02/2014", "Amy <script> 03/04/2014"])
def test_incomplete_or_odd_demographic_text_is_a_usage_error(text: str) -> None:
    """Missing date, missing name, impossible date and odd characters raise a kind UsageError."""
    with pytest.raises(UsageError):
        parse_demographic(text, date(2026, 1, 1))


def test_reference_check_digit() -> None:
    """Modulus 11 as NHS numbers: 943 476 5919 is valid, a one-digit slip is not."""
    assert is_valid("9434765919") and not is_valid("9434765918")
    assert check_digit("943476591") == 9
    assert looks_like_reference("943 476 5919") and not looks_like_reference("943 476 591")
    with pytest.raises(ValueError):
        parse_reference("943 476 5918")


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("7", 7),
        (" 7 ", 7),
        ("007", 7),
        ("9223372036854775807", MAX_ID),
        ("000000000000000000000009223372036854775807", MAX_ID),
        ("9223372036854775808", None),
        ("9" * 5000, None),
        ("0", None),
        ("-1", None),
        ("+1", None),
        ("1_000", None),
        ("\u00b2", None),
        ("\uff17", None),
        ("7\n", 7),
        ("", None),
    ],
)
def test_parse_number_reads_ascii_digits_up_to_the_largest_id(typed: str, read: int | None) -> None:
    """ASCII digits only, 1..MAX_ID however many leading zeros; a caller's bound above MAX_ID is MAX_ID."""
    assert parse_number(typed, 1, 2**80) == read


@pytest.mark.parametrize(
    "text",
    [
        "help\x00",
        "help\x1b",
        "help\x0b",
        "help\x0c",
        "help\x1c",
        "help\x7f",
        "help\x85",
        "help\x9f",
        "help\u202e",
        "help\u2066",
        "help\u200e",
        "help\u061c",
        "help\u200b",
        "help\u2060",
        "help\ufeff",
        "help\u00ad",
        "help\ud800",
        "help\udcff",
        "help\U000e0001",
        "help\ue000",
        "help\u0378",
        "help\u200d",
        "Zoë\u200d",
        "Jo\u200dhn Smith 01/02/2015",
        "relay 1 \u200c",
    ],
)
def test_text_with_a_hidden_character_is_usage_whatever_its_first_word(text: str) -> None:
    """Controls (C0 but tab and line breaks, DEL, C1), format characters, lone surrogates, private
    use and unassigned characters, and a joiner that joins nothing (store.characters): usage, with
    the text as typed for the hint (never cleaned first: ``split`` drops \\x1c-\\x1f and \\x85)."""
    assert hides_characters(text)
    assert parse(text, KEYWORDS) == Parsed("usage", text)


@pytest.mark.parametrize(
    "text",
    [
        "help",
        "help\tme",
        "help\nme",
        "help\r\nme",
        "help\u2028me",
        "help\u2029me",
        "a\u00a0b",
        "thanks \U0001f469\u200d\U0001f4bb",
        "\u0645\u0647\u0631\u200c\u0646\u0627\u0632 Jones 01/02/2015",
    ],
)
def test_tabs_line_breaks_joiners_that_join_and_spaces_are_not_hidden(text: str) -> None:
    """Line breaks and tabs are spaces to the grammar; a joiner inside an emoji sequence or a
    Persian name joins (store.characters)."""
    assert not hides_characters(text)


@pytest.mark.parametrize("text", ["\x0chelp", "help\x0b", "\x1chistory", "relay 1\x85", "\x1f999 000 0018"])
def test_trimming_a_message_keeps_a_hidden_character_at_either_end(text: str) -> None:
    """The front ends trim what was sent with ``trim``, not ``str.strip``, which takes these
    controls for spaces: "\\x0chelp" trimmed that way was read as help, not answered with usage."""
    assert trim(f"  {text}\n") == text
    assert parse(trim(text), KEYWORDS) == Parsed("usage", text)
    assert trim(" \t help \r\n\u00a0") == "help"
