"""How a child is indexed: blind-index terms per child, and the normalising they are built on."""

from __future__ import annotations

from datetime import date

import pytest

from store.register.terms import MAX_INDEX_TERMS, Identity, index_terms, normalise_name, outward_code

TYPICAL = (
    Identity("Amy Louise", "Jones", (), date(2014, 4, 3), "F", "M1 2AB"),
    Identity("Amy", "Jones", (), date(2011, 9, 21), "F", "LS6 3QT"),
    Identity("Grace", "Jones", (), date(2016, 1, 12), "F", "M1 2AB"),
    Identity("Robert", "Smith-Patel", (), date(2010, 12, 7), "M", "B15 2TT"),
    Identity("Catherine", "O'Neill", (), date(2012, 6, 30), "F", "CF10 1AA"),
    Identity("Jack", "Taylor", (), date(2013, 5, 9), "M", "SW9 8HP"),
    Identity("Jake", "Taylor", (), date(2013, 5, 9), "M", "SW9 8HP"),
    Identity("Oliver", "Wright", (), date(2009, 11, 25), "M", "EX4 4QJ"),
    Identity("Oliver", "Wright", (), date(2019, 3, 2), "M", "YO1 7HH"),
)
"""Children without aliases, as in the matching tests' register."""


def test_a_typical_child_has_at_most_sixteen_index_terms() -> None:
    """Each index term costs a row per child nationally; a child without aliases has few (eight
    before the terms that survive two mistakes at once: initials, family + year or month-day,
    names + month or day, name + sector)."""
    assert all(len(index_terms(child)) <= 16 for child in TYPICAL)


def test_index_terms_are_capped_for_children_with_many_aliases() -> None:
    """However many aliases a child has, the index holds at most MAX_INDEX_TERMS terms."""
    aliases = tuple(f"Given{n} Family{n}" for n in range(20))
    child = Identity("Amy", "Jones", aliases, date(2014, 4, 3), "F", "M1 2AB")
    assert len(index_terms(child)) <= MAX_INDEX_TERMS


def test_names_normalise_accents_apostrophes_and_hyphens() -> None:
    """Accents fold, apostrophes vanish and hyphens separate the parts of a surname."""
    assert normalise_name("  Zoë  O'Neill-Brown ") == "ZOE ONEILL BROWN"


@pytest.mark.parametrize(
    ("registered", "typed"),
    [
        ("Paweł Łęcki", "Pawel Lecki"),
        ("Søren Ørsted", "Soren Orsted"),
        ("Đorđe Jovanović", "Dorde Jovanovic"),
        ("Ægir Þórsson", "Aegir Thorsson"),
        ("Œdipe Straße", "Oedipe Strasse"),
        ("Ay\u015fe Y\u0131ld\u0131z", "Ayse Yildiz"),
        ("O\u2018Neill O\u02bcneill O`Neill O\u00b4Neill", "ONeill ONeill ONeill ONeill"),
    ],
)
def test_letters_with_no_accent_to_drop_fold_as_an_english_keyboard_types_them(registered: str, typed: str) -> None:
    """Ł, Ø, Đ, Æ, Þ and the like do not come apart into a letter and an accent (NFKD keeps them):
    a name holding one was findable only as registered, never as typed on an English keyboard. And
    every apostrophe a keyboard or a document writes goes, as the usual two do."""
    assert normalise_name(registered) == normalise_name(typed)


def test_outward_code_from_full_or_partial_postcode() -> None:
    """The outward code is taken from a full postcode and kept from a bare one."""
    assert (outward_code("m1 2ab"), outward_code("SW1A 1AA"), outward_code("LS6"), outward_code("")) == (
        "M1",
        "SW1A",
        "LS6",
        "",
    )
