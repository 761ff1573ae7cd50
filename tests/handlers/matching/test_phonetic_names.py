"""A given name that sounds like the child's (the ``phonetic`` level: more than one letter apart) and
is a listed name of its own is another child, as a slip one letter away is (the tenth pass): "Leo"
for a lone Leah, "Cole" for a lone Chloe. Her unregistered twin brother Leo shares her family name,
her birthday and her address, so none of them is enough to accept her: the answer is "more than one
could match", never her signposts. A misspelling that is no listed name (Leia, Kloe, Sofi) is still
her, and so is a listed spelling of her own name (Abigail for an Abbygayle).

Each case is asked through the real chat search (SQLite and PostgreSQL) and through ``choose`` at the
benchmark's and the national scale, with and without name counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from bot.app import Signpost
from handlers.grammar import parse_demographic
from handlers.matching.decide import DecisionKind, choose
from handlers.matching.score import MatchModel
from handlers.vocabulary import Outcome
from store.register.terms import count_keys
from tests.factories import say
from tests.handlers.matching.lone_children import Child, identities, load, references, spaced

TODAY = date(2026, 12, 1)

# name: (given names, family name, date of birth, sex, postcode); each alone at her address.
CHILDREN: dict[str, Child] = {
    "leah": ("Leah", "Andersen", date(2015, 1, 19), "F", "LS26 0FH"),
    "chloe": ("Chloe", "Reid", date(2016, 4, 4), "F", "S4 1AA"),
    "reuben": ("Reuben", "Walsh", date(2013, 1, 5), "M", "M3 2AB"),
    "sophie": ("Sophie", "Marsh", date(2014, 3, 2), "F", "YO1 7HH"),
    "abbygayle": ("Abbygayle", "Okafor", date(2015, 3, 9), "F", "EX4 4QJ"),
}
REFS = references(CHILDREN, 999_500_000)
IDENTITIES = identities(CHILDREN)

ANOTHER_NAME = {
    "a listed name that sounds like hers, her birthday and address": ("Leo Andersen 19/01/2015 LS26 0FH", "leah"),
    "a listed name that sounds like hers, her birthday": ("Leo Andersen 19/01/2015", "leah"),
    "a listed name, her family name typed first": ("Andersen Leo 19/01/2015 LS26 0FH", "leah"),
    "a listed name that sounds like hers, a year out": ("Leo Andersen 19/01/2016 LS26 0FH", "leah"),
    "a boy's listed name that sounds like hers": ("Cole Reid 04/04/2016 S4 1AA", "chloe"),
    "a listed name that sounds like his, his birthday and address": ("Robin Walsh 05/01/2013 M3 2AB", "reuben"),
}
"""Another child's name, with everything else the child's (or one slip of the date from it)."""

A_MISSPELLING = {
    "a misspelling that is no name, her birthday and address": ("Leia Andersen 19/01/2015 LS26 0FH", "leah"),
    "a misspelling with another first letter that is no name": ("Kloe Reid 04/04/2016 S4 1AA", "chloe"),
    "a misspelling that is no name, a year out": ("Sofi Marsh 02/03/2015 YO1 7HH", "sophie"),
    "a listed spelling of her own name": ("Abigail Okafor 09/03/2015 EX4 4QJ", "abbygayle"),
}
"""A misspelling of the child's name that sounds like it and is no other name."""


async def test_another_childs_name_that_sounds_like_hers_asks_for_more(signpost: Signpost) -> None:
    """Through the chat search: "more than one could match", never her signposts."""
    await load(signpost, CHILDREN, REFS)
    for case, (text, child) in ANOTHER_NAME.items():
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.AMBIGUOUS, (case, reply.child_ref, spaced(REFS[child]), reply.text)
        assert reply.child_ref is None and reply.signposts == (), case


async def test_a_misspelling_that_is_no_name_still_finds_the_child(signpost: Signpost) -> None:
    await load(signpost, CHILDREN, REFS)
    for case, (text, child) in A_MISSPELLING.items():
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.ANSWERED, (case, reply.text)
        assert reply.child_ref == spaced(REFS[child]), case


COUNTS = dict(Counter(key for identity in IDENTITIES.values() for key in count_keys(identity)))


@pytest.mark.parametrize("counts", [COUNTS, None], ids=["counts", "no-counts"])
@pytest.mark.parametrize("population", [100_000, 11_000_000])
@pytest.mark.parametrize("case", list(ANOTHER_NAME))
def test_choose_never_accepts_another_name_that_sounds_like_hers(
    case: str, population: int, counts: dict[str, int] | None
) -> None:
    """``choose`` alone, the child the only candidate, with and without the register's name counts."""
    text, child = ANOTHER_NAME[case]
    query = parse_demographic(text, TODAY)
    decision = choose(query, [(child, IDENTITIES[child])], MatchModel(population=population), counts=counts)
    assert decision.kind is DecisionKind.AMBIGUOUS, (decision.best, decision.ranked)


@pytest.mark.parametrize("counts", [COUNTS, None], ids=["counts", "no-counts"])
@pytest.mark.parametrize("population", [100_000, 11_000_000])
@pytest.mark.parametrize("case", list(A_MISSPELLING))
def test_choose_still_accepts_a_misspelling_that_is_no_name(
    case: str, population: int, counts: dict[str, int] | None
) -> None:
    text, child = A_MISSPELLING[case]
    query = parse_demographic(text, TODAY)
    decision = choose(query, [(child, IDENTITIES[child])], MatchModel(population=population), counts=counts)
    assert decision.kind is DecisionKind.MATCH and decision.best == child, decision.ranked
