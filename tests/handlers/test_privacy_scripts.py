"""The identity filter holds for children whose names are written in a script other than Latin.

The feeds accept "letters and marks of any script", and a relayed message, an access-request
purpose, a reply or a denial reason naming such a child must be refused like one naming a child
called Amy Jones (README "The lead professional is told, and the blind relay"; handlers/privacy.py).
"""

from __future__ import annotations

from datetime import date

import pytest

from handlers.privacy import mentions_identity
from store.register.terms import Identity


@pytest.mark.parametrize(
    ("given", "family", "text"),
    [
        ("Мария", "Иванова", "please call me about Мария Иванова"),
        ("Ζωή", "Παπαδοπούλου", "please call me about Ζωή Παπαδοπούλου"),
        ("محمد", "علي", "please call me about محمد علي"),
        ("小明", "李", "please call me about 李小明"),
    ],
)
def test_a_name_in_another_script_is_caught(given: str, family: str, text: str) -> None:
    """A text giving the child's name in the script the register holds it in names the child."""
    child = Identity(given_names=given, family_name=family, aliases=(), date_of_birth=date(2015, 4, 3))
    assert mentions_identity(text, child)


def test_a_full_name_typed_without_its_space_is_caught() -> None:
    """'AmyJones' (a space dropped) names Amy Jones as surely as 'Amy Jones' does."""
    child = Identity(given_names="Amy", family_name="Jones", aliases=(), date_of_birth=date(2015, 4, 3))
    assert mentions_identity("please call me about AmyJones", child)


@pytest.mark.parametrize(
    "text",
    [
        "about Maria Ivanova",  # the register's Cyrillic name typed in Latin letters
        "the Ivanova family",
        "МАРИЯ",  # any case
        "Мари\u200dя",  # a joiner inside the name is not seen
        "\u041c \u0430 \u0440 \u0438 \u044f",  # spelt out, letter by letter
    ],
)
def test_a_name_in_another_script_is_caught_in_latin_letters_and_any_case(text: str) -> None:
    child = Identity(given_names="Мария", family_name="Иванова", aliases=(), date_of_birth=date(2015, 4, 3))
    assert mentions_identity(text, child)


@pytest.mark.parametrize(
    "text",
    [
        "born the third of April 2015",
        "born April third, 2015",
        "3.iv.2015",
        "born 3 iv 15",
    ],
)
def test_a_birthday_in_ordinal_words_or_roman_numerals_is_caught(text: str) -> None:
    child = Identity(given_names="Amy", family_name="Jones", aliases=(), date_of_birth=date(2015, 4, 3))
    assert mentions_identity(text, child)


def test_a_day_in_two_ordinal_words_is_caught() -> None:
    child = Identity(given_names="Amy", family_name="Jones", aliases=(), date_of_birth=date(2017, 11, 24))
    assert mentions_identity("the twenty-fourth of November 2017", child)
    assert mentions_identity("twenty fourth Nov", child)
    assert not mentions_identity("the twenty-third of November 2017", child)


@pytest.mark.parametrize(
    "text",
    [
        "please call me about the referral",
        "пожалуйста, позвоните мне",  # Cyrillic that names nobody
        "会议在明天",  # Chinese that holds neither 小明 nor a date
        "a second opinion in April",
        "see page iv of the 2015 guidance",
    ],
)
def test_ordinary_text_in_any_script_passes(text: str) -> None:
    for child in (
        Identity(given_names="Мария", family_name="Иванова", aliases=(), date_of_birth=date(2015, 4, 3)),
        Identity(given_names="小明", family_name="李", aliases=(), date_of_birth=date(2015, 4, 3)),
    ):
        assert not mentions_identity(text, child), (text, child.given_names)
