"""Her given names typed in full never say less than her first name alone (issue 16, thirteenth pass).

A first given name typed alone is weighed by how many registered children bear it (ZEBEDEE says more
than OLIVER). Her given names typed in full (``exact_all``: the first and the middle ones, as
registered) were weighed by the table's average alone, so for a rare first name typing her middle
name as well said less than leaving it out: at 11 million, "Zebedee Arlo Quince" weighed 1.4 bits
less than "Zebedee Quince", and with a day and month swapped the fuller name was "more than one
record could match" where the shorter found him. Agreeing on all her given names is agreeing on the
first, so it now weighs at least what the first alone does (and at least the table's average for
the full names); the two are not added, since rare first and middle names run in families.
"""

from __future__ import annotations

from datetime import date

import pytest

from handlers.matching.decide import DecisionKind, choose
from handlers.matching.score import MatchModel, assess
from handlers.matching.terms import Query
from store.register.terms import Identity

NATIONAL = MatchModel(population=11_000_000)
BORN = date(2016, 3, 4)
HOME = "YO8 9YA"


def _child(first: str) -> Identity:
    return Identity(f"{first} Arlo", "Quince", (), BORN, "M", HOME)


def _counts(first: str, bearers: int) -> dict[str, int]:
    return {f"g:{first.upper()}": bearers, "f:QUINCE": 4_400}


@pytest.mark.parametrize("population", [100_000, 11_000_000])
@pytest.mark.parametrize(("first", "share"), [("Zebedee", 0.00003), ("Oliver", 0.02)], ids=["rare", "common"])
@pytest.mark.parametrize(
    ("born", "postcode"),
    [(BORN, None), (date(2016, 3, 5), None), (date(2017, 3, 4), None), (BORN, "YO8"), (date(2016, 3, 5), HOME)],
)
def test_her_given_names_in_full_never_weigh_less_than_her_first_alone(
    population: int, first: str, share: float, born: date, postcode: str | None
) -> None:
    """Before, a rare first name typed with her middle name weighed less than typed alone."""
    model = MatchModel(population=population)
    child = _child(first)
    counts = _counts(first, max(1, round(share * population)))
    alone = assess(Query(first, "Quince", born, postcode), child, model, counts)
    in_full = assess(Query(f"{first} Arlo", "Quince", born, postcode), child, model, counts)
    assert in_full.bits >= alone.bits


def test_a_rare_first_name_with_her_middle_name_and_day_and_month_swapped_is_him() -> None:
    """11 million children, no postcode, day and month swapped: "Zebedee Quince" found him (11.0
    bits); "Zebedee Arlo Quince" was "more than one record could match" at 9.6 bits."""
    child = _child("Zebedee")
    counts = _counts("Zebedee", 330)
    swapped = date(2016, 4, 3)
    alone = choose(Query("Zebedee", "Quince", swapped, None), [("child", child)], NATIONAL, counts=counts)
    in_full = choose(Query("Zebedee Arlo", "Quince", swapped, None), [("child", child)], NATIONAL, counts=counts)
    assert alone.kind is DecisionKind.MATCH
    assert in_full.kind is DecisionKind.MATCH
    assert in_full.best == "child"


def test_twins_sharing_a_rare_middle_name_are_still_told_apart_only_by_their_first_names() -> None:
    """Registered twins Zebedee Arlo and Zachary Arlo Quince: each typed in full is that twin; the
    middle name alone is either; a registered name of another child's with it is neither."""
    counts = {**_counts("Zebedee", 330), "g:ZACHARY": 9_000, "g:EZRA": 3_000}
    zebedee, zachary = _child("Zebedee"), _child("Zachary")
    twins = [("zebedee", zebedee), ("zachary", zachary)]
    assert choose(Query("Zebedee Arlo", "Quince", BORN, HOME), twins, NATIONAL, counts=counts).best == "zebedee"
    assert choose(Query("Zachary Arlo", "Quince", BORN, HOME), twins, NATIONAL, counts=counts).best == "zachary"
    assert choose(Query("Arlo", "Quince", BORN, HOME), twins, NATIONAL, counts=counts).kind is not DecisionKind.MATCH
    lone = choose(Query("Ezra Arlo", "Quince", BORN, HOME), [("zebedee", zebedee)], NATIONAL, counts=counts)
    assert lone.kind is not DecisionKind.MATCH
