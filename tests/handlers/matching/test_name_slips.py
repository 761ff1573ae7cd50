"""A given name one letter from a child's that is a listed name of its own is another child, not a slip
(the adversarial review of the ninth pass): "Theo" for a lone Thea, "Daniel" for a lone Danielle or
Daniella. Her unregistered twin brother Theo shares her family name, her birthday and her address, so
none of them is enough to accept her: the answer is "more than one could match", never her signposts.
A slip that is no name (Thoe, Daneil, Kain) is still her, on the same other details, and so is a
spelling the list does not hold that another registered child bears ("Kyan" for Kian): a national
register holds a child of nearly every spelling, most of them the same name misspelt.

Each case is asked through the real chat search (SQLite and PostgreSQL: the store's blind index, name
counts and population) and through ``choose`` at the benchmark's and the national scale, with and
without name counts (a caller that has none must be as safe).
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
from store.register.terms import Identity, count_keys
from tests.factories import say
from tests.handlers.matching.lone_children import Child, identities, load, references, spaced

TODAY = date(2026, 12, 1)

# name: (given names, family name, date of birth, sex, postcode); each alone at her address.
CHILDREN: dict[str, Child] = {
    "thea": ("Thea", "Andersen", date(2015, 1, 19), "F", "LS26 0FH"),
    "danielle": ("Danielle", "Reid", date(2016, 4, 4), "F", "S4 1AA"),
    "kian": ("Kian", "Walsh", date(2013, 1, 5), "M", "M3 2AB"),
    # Bearers of the typed names elsewhere: "Kyan" is a registered child's name, not a slip.
    "kyan": ("Kyan", "Jones", date(2015, 6, 9), "M", "M9 4ZZ"),
    "theo": ("Theo", "Marsh", date(2014, 3, 2), "M", "YO1 7HH"),
    "daniel": ("Daniel", "Finch", date(2012, 11, 23), "M", "EX4 4QJ"),
    # Not a listed name: "Daniel", a listed one, is a prefix of hers but of no root of hers.
    "daniella": ("Daniella", "Kerr", date(2017, 2, 8), "F", "S6 2BB"),
}
REFS = references(CHILDREN, 999_400_000)
IDENTITIES = identities(CHILDREN)

ANOTHER_NAME = {
    "a listed name one letter from hers, her birthday and address": ("Theo Andersen 19/01/2015 LS26 0FH", "thea"),
    "a listed name one letter from hers, her birthday": ("Theo Andersen 19/01/2015", "thea"),
    "a listed name, her family name typed first": ("Andersen Theo 19/01/2015 LS26 0FH", "thea"),
    "the masculine of her name, her birthday and address": ("Daniel Reid 04/04/2016 S4 1AA", "danielle"),
    "a listed name her unlisted name begins with": ("Daniel Kerr 08/02/2017 S6 2BB", "daniella"),
    "a listed name one letter from hers, a year out": ("Theo Andersen 19/01/2016 LS26 0FH", "thea"),
}
"""Another child's name, with everything else the child's (or one slip of the date from it)."""

A_SLIP = {
    "a slip that is no name, her birthday and address": ("Thoe Marsh 02/03/2014 YO1 7HH", "theo"),
    "a slip that is no name, his birthday and address": ("Daneil Finch 23/11/2012 EX4 4QJ", "daniel"),
    "a slip that is no name, a year out": ("Kain Walsh 05/01/2014 M3 2AB", "kian"),
    "an unlisted spelling another child bears, his birthday and address": ("Kyan Walsh 05/01/2013 M3 2AB", "kian"),
    "the child's own name": ("Thea Andersen 19/01/2015 LS26 0FH", "thea"),
}
"""A slip of the child's name that is no name of its own, with the same other details."""


async def test_another_childs_name_one_letter_from_hers_asks_for_more(signpost: Signpost) -> None:
    """Through the chat search: "more than one could match", never her signposts."""
    await load(signpost, CHILDREN, REFS)
    for case, (text, child) in ANOTHER_NAME.items():
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.AMBIGUOUS, (case, reply.child_ref, spaced(REFS[child]), reply.text)
        assert reply.child_ref is None and reply.signposts == (), case


async def test_a_slip_that_is_no_name_still_finds_the_child(signpost: Signpost) -> None:
    await load(signpost, CHILDREN, REFS)
    for case, (text, child) in A_SLIP.items():
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.ANSWERED, (case, reply.text)
        assert reply.child_ref == spaced(REFS[child]), case


COUNTS = dict(Counter(key for identity in IDENTITIES.values() for key in count_keys(identity)))


@pytest.mark.parametrize("counts", [COUNTS, None], ids=["counts", "no-counts"])
@pytest.mark.parametrize("population", [100_000, 11_000_000])
@pytest.mark.parametrize("case", list(ANOTHER_NAME))
def test_choose_never_accepts_another_childs_name(case: str, population: int, counts: dict[str, int] | None) -> None:
    """``choose`` alone, the child the only candidate, with and without the register's name counts."""
    text, child = ANOTHER_NAME[case]
    query = parse_demographic(text, TODAY)
    decision = choose(query, [(child, IDENTITIES[child])], MatchModel(population=population), counts=counts)
    assert decision.kind is DecisionKind.AMBIGUOUS, (decision.best, decision.ranked)


@pytest.mark.parametrize("counts", [COUNTS, None], ids=["counts", "no-counts"])
@pytest.mark.parametrize("case", list(A_SLIP))
def test_choose_still_accepts_a_slip_that_is_no_name(case: str, counts: dict[str, int] | None) -> None:
    text, child = A_SLIP[case]
    query = parse_demographic(text, TODAY)
    decision = choose(query, [(child, IDENTITIES[child])], MatchModel(population=100_000), counts=counts)
    assert decision.kind is DecisionKind.MATCH and decision.best == child, decision.ranked


SPELT_OTHERWISE = [
    ("Freya", "Freyja"),
    ("Oliver", "Olliver"),
    ("Isabelle", "Isabell"),
    ("Mia", "Miah"),
    ("Harry", "Harri"),
]


@pytest.mark.parametrize(("typed", "registered"), SPELT_OTHERWISE)
def test_a_listed_spelling_of_the_childs_own_name_is_still_her(typed: str, registered: str) -> None:
    """The list holds one spelling of many names: the listed one typed for a child registered under
    another spelling (Freya for Freyja) is a slip of her name, not another child's, and she is
    answered on her birthday and address as before (a reviewer's finding: held as another name)."""
    child = Identity(
        given_names=registered, family_name="Okafor", aliases=(), date_of_birth=date(2015, 3, 9), postcode="LS26 0FH"
    )
    query = parse_demographic(f"{typed} Okafor 09/03/2015 LS26 0FH", TODAY)
    decision = choose(query, [(1, child)], MatchModel(population=11_000_000), counts=None)
    assert decision.kind is DecisionKind.MATCH and decision.best == 1, decision.ranked
