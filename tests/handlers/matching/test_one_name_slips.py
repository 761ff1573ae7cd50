"""One name alone with one slip in it, at the child's address on her birthday (issue 16, twelfth pass).

A family name alone, or a given name alone, is accepted only with the exact date of birth and the
full postcode (``score._at_home``). A record-linkage corruption generator leaves a slip in that one
name as often as in any other ("Cambpell", "Madelnie": 53 of FEBRL's present children, 0.7 % of
them, answered "more than one record could match" at 24 bits), and a slip points to no one else
at that address born that day. Still never: the slip without the full postcode or with a date one
slip out, a registered twin (the family name tells no twin apart), a given name that is another
listed name (Theo for Thea: an unregistered twin's), or another name altogether.
"""

from __future__ import annotations

from datetime import date

import pytest

from handlers.matching.decide import DecisionKind, choose
from handlers.matching.score import MatchModel
from handlers.matching.terms import Query
from store.register.terms import Identity

NATIONAL = MatchModel(population=11_000_000)
MADELINE = Identity("Madeline", "Mason", (), date(2023, 12, 31), "F", "HU35 6GR")
CAMPBELL = Identity("Abbey", "Campbell", (), date(2022, 11, 8), "F", "TN25 5HT")
ONE_NAME = Identity("", "Swiggs", (), date(2017, 11, 23), "F", "CF22 8HR")  # known by a family name alone
THEA = Identity("Thea", "Anderson", (), date(2015, 1, 19), "F", "LS26 0FH")
TWINS = (
    Identity("Jack", "Taylor", (), date(2013, 5, 9), "M", "SW9 8HP"),
    Identity("Amber", "Taylor", (), date(2013, 5, 9), "F", "SW9 8HP"),
)
COUNTS = {"g:MADELINE": 40, "f:MASON": 900, "f:CAMPBELL": 3000, "f:SWIGGS": 2, "g:THEA": 300, "f:ANDERSON": 2500}


def _one(query: Query, child: Identity, counts: dict[str, int] | None) -> DecisionKind:
    decision = choose(query, [("child", child)], NATIONAL, counts=counts)
    assert decision.best in (None, "child")
    return decision.kind


@pytest.mark.parametrize("counts", [None, COUNTS], ids=["no name counts", "name counts"])
@pytest.mark.parametrize(
    ("typed", "child"),
    [
        (("", "Cambpell"), CAMPBELL),  # her family name alone, two letters turned
        (("", "Campbel"), CAMPBELL),  # a letter left out
        (("", "Siwggs"), ONE_NAME),  # a child known by her family name alone
        (("Madelnie", ""), MADELINE),  # her given name alone, two letters turned
        (("", "Madelnie"), MADELINE),  # the same typed in the family name's place (one word in chat)
        (("Madel Ine", ""), MADELINE),  # a space struck inside it
    ],
)
def test_one_name_alone_with_a_slip_at_her_address_on_her_birthday_is_her(
    typed: tuple[str, str], child: Identity, counts: dict[str, int] | None
) -> None:
    """Before, "more than one record could match" (``names_incomplete``) at 24 bits."""
    query = Query(typed[0], typed[1], child.date_of_birth, child.postcode)
    assert _one(query, child, counts) is DecisionKind.MATCH


HOME = "home"
"""The child's own full postcode."""


@pytest.mark.parametrize("counts", [None, COUNTS], ids=["no name counts", "name counts"])
@pytest.mark.parametrize(
    ("typed", "child", "born", "postcode"),
    [
        (("", "Cambpell"), CAMPBELL, None, None),  # no postcode
        (("", "Cambpell"), CAMPBELL, None, "TN25"),  # the outward code only
        (("", "Cambpell"), CAMPBELL, date(2022, 11, 9), HOME),  # a date one slip out
        (("Madelnie", ""), MADELINE, None, "HU35"),
        (("Madelnie", ""), MADELINE, date(2023, 12, 30), HOME),
        (("Theo", ""), THEA, None, HOME),  # one letter from hers, and another listed name: her twin brother's
        (("", "Theo"), THEA, None, HOME),
        (("Zzyzx", ""), THEA, None, HOME),  # no name of hers
        (("", "Zzyzx"), THEA, None, HOME),
    ],
)
def test_one_name_alone_with_a_slip_is_still_not_her_without_the_rest(
    typed: tuple[str, str], child: Identity, born: date | None, postcode: str | None, counts: dict[str, int] | None
) -> None:
    query = Query(typed[0], typed[1], born or child.date_of_birth, child.postcode if postcode == HOME else postcode)
    assert _one(query, child, counts) is not DecisionKind.MATCH


@pytest.mark.parametrize("counts", [None, {"g:JACK": 900, "g:AMBER": 700, "f:TAYLOR": 5000}])
@pytest.mark.parametrize("family", ["Taylr", "Tailor", "Taylor"])
def test_a_slip_in_the_family_name_alone_tells_no_twin_apart(family: str, counts: dict[str, int] | None) -> None:
    """Twins Jack and Amber Taylor, registered at one address: their family name alone, with or
    without a slip, and their birthday could be either. Never one of them."""
    born, postcode = TWINS[0].date_of_birth, TWINS[0].postcode
    decision = choose(
        Query("", family, born, postcode), [("jack", TWINS[0]), ("amber", TWINS[1])], NATIONAL, counts=counts
    )
    assert decision.kind is DecisionKind.AMBIGUOUS and decision.best is None, decision.ranked


SHORT = (
    Identity("Amy", "Li", (), date(2015, 3, 4), "F", "LS26 0FH"),
    Identity("Evie", "Shaw", (), date(2016, 7, 1), "F", "M14 5RT"),
)


@pytest.mark.parametrize(
    ("typed", "child"),
    [
        (("", "Xi"), SHORT[0]),  # one letter of two: any word of two letters is one slip from Li
        (("", "Lx"), SHORT[0]),
        (("", "Shay"), SHORT[1]),  # another family name altogether, one letter from Shaw
        (("Amx", ""), SHORT[0]),
        (("Evia", ""), SHORT[1]),
    ],
)
def test_a_slip_in_a_short_name_typed_alone_is_no_name_of_hers(typed: tuple[str, str], child: Identity) -> None:
    """A slip in a name of four letters or fewer leaves too little of it to say it is hers: one who
    knows a child's birthday and address could find her by trying a few words ("Xi" for Li). Her
    short name as registered still finds her (the eighth pass's rule)."""
    query = Query(typed[0], typed[1], child.date_of_birth, child.postcode)
    assert _one(query, child, COUNTS) is not DecisionKind.MATCH
    exact = Query("", child.family_name, child.date_of_birth, child.postcode)
    assert _one(exact, child, COUNTS) is DecisionKind.MATCH


RICHARDS = Identity("Abbey", "Richards", (), date(2014, 6, 2), "F", "NE4 9QT")
EVIE_ALIAS = Identity("Madeline", "Mason", ("Evie Shaw",), date(2023, 12, 31), "F", "HU35 6GR")


@pytest.mark.parametrize(
    ("typed", "child"),
    [
        (("", "Richardson"), RICHARDS),  # another family's name, alike but no slip of hers
        (("", "Masonry"), MADELINE),  # letters added to her name
        (("", "Campbellxyz"), CAMPBELL),
        (("Madelinexyz", ""), MADELINE),
        (("Madelnie Richardson", ""), MADELINE),  # a second word nothing was compared with
        (("Madeline Richardson", ""), MADELINE),  # her given name and another word, in the given box
        (("", "Madeline Zzyzx"), MADELINE),  # the same in the family box (a roll file's columns)
        (("Evies", ""), EVIE_ALIAS),  # a slip in a short alias is no more hers than in a short name
    ],
)
def test_only_one_slip_in_the_one_name_typed_is_hers(typed: tuple[str, str], child: Identity) -> None:
    """One slip is one letter wrong, missing, extra or turned in the one name typed, whole: a name
    merely alike (Richardson for Richards: Jaro-Winkler 0.9) is another family's, and a word beside
    her name is a name nothing agreed with."""
    query = Query(typed[0], typed[1], child.date_of_birth, child.postcode)
    assert _one(query, child, COUNTS) is not DecisionKind.MATCH
