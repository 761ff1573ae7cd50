"""A typed name that is another real name is not the lone registered child's (issue 16, twins).

An unregistered twin shares her registered sibling's family name, birthday and address; only the
given name tells them apart, and twins' names are often one letter apart: Jordan and Jordana, Carl
and Carla, Louis and Louisa, Francis and Frances, Mario and Maria, Jean and Joan, Andre and Andrea,
Joseph and Josepha, Adrian and Adrienne. Typed for the registered one, the other's name read as a slip of hers (or as a
short form, or, for Francis and Frances, as a listed form of the same name) and gave her signposts:
the wrong child, a privacy breach about a child. Such a name is now another child's whenever it is
a name in its own right: a listed name (``store.register.nicknames``) or, with the register's name
counts at hand, one borne by registered children at a share no misspelling reaches
(``score.REGISTERED_NAME_SHARE``).

What still is the child: a slip that is no name (Catherin for Catherine; Aurelio for an Aurelia when
the one registered Aurelio is under the share: a register holds misspellings too), a spelling of
the same name (Lilly for Lily), and a listed nickname. The price: a slip that lands on another
registered name of the share (Aiden typed for an Aidan) is answered "more than one record could
match", never the child.
"""

from __future__ import annotations

from datetime import date

import pytest

from handlers.matching.decide import DecisionKind, choose
from handlers.matching.score import MatchModel
from handlers.matching.terms import Query
from store.register.terms import Identity, family_count_key, given_count_key

BENCHMARK = MatchModel(population=100_000)
NATIONAL = MatchModel(population=11_000_000)

PAIRS = [
    # The reverse of the ending already held (Simone typed for Simon): the ending taken away.
    ("Jordana", "Jordan"),
    ("Carla", "Carl"),
    ("Louisa", "Louis"),
    ("Paula", "Paul"),
    # One letter changed.
    ("Francis", "Frances"),
    ("Frances", "Francis"),
    ("Mario", "Maria"),
    ("Maria", "Mario"),
    ("Jean", "Joan"),
    ("Joan", "Jean"),
    ("Adrian", "Adrienne"),
    ("Adrienne", "Adrian"),
    # An ending after a vowel or an H.
    ("Andre", "Andrea"),
    ("Andrea", "Andre"),
    ("Josepha", "Joseph"),
    ("Joseph", "Josepha"),
]
"""(registered, typed): a brother's and a sister's names, as often twins as not."""


def _child(given: str) -> Identity:
    return Identity(given, "Anderson", (), date(2015, 1, 19), None, "LS26 0FH")


def _counts(population: int, **shares: float) -> dict[str, int]:
    """Name counts of a register of ``population`` children: each given name at its share."""
    counts = {given_count_key(name.upper()): max(1, round(share * population)) for name, share in shares.items()}
    return counts | {family_count_key("ANDERSON"): round(0.002 * population)}


def _kind(child: Identity, typed: str, model: MatchModel, counts: dict[str, int] | None) -> DecisionKind:
    query = Query(typed, child.family_name, child.date_of_birth, child.postcode)
    decision = choose(query, [("child", child)], model, counts=counts)
    assert decision.best in (None, "child")
    return decision.kind


@pytest.mark.parametrize(("registered", "typed"), PAIRS)
def test_a_twins_name_one_letter_from_hers_is_not_her_without_name_counts(registered: str, typed: str) -> None:
    """The names listed: each of these is a name of its own (and Francis no form of Frances)."""
    assert _kind(_child(registered), typed, NATIONAL, None) is not DecisionKind.MATCH


@pytest.mark.parametrize("model", [BENCHMARK, NATIONAL], ids=["100k", "national"])
@pytest.mark.parametrize(("registered", "typed"), PAIRS)
def test_a_twins_name_one_letter_from_hers_is_not_her_with_name_counts(
    registered: str, typed: str, model: MatchModel
) -> None:
    counts = _counts(model.population, **{registered: 0.0002, typed: 0.0003})
    assert _kind(_child(registered), typed, model, counts) is not DecisionKind.MATCH


UNLISTED = [
    ("Aurelia", "Aurelio"),  # one letter changed
    ("Aurelio", "Aurelia"),  # an ending after a vowel
    ("Marcelina", "Marcelin"),  # the ending taken away
]
"""(registered, typed): names no list here holds, a brother's and a sister's."""


@pytest.mark.parametrize("model", [BENCHMARK, NATIONAL], ids=["100k", "national"])
@pytest.mark.parametrize(("registered", "typed"), UNLISTED)
def test_a_name_registered_children_bear_is_another_childs(registered: str, typed: str, model: MatchModel) -> None:
    """No list knows these names; the register does: a name one child in ten thousand bears is a
    name, not a slip."""
    counts = _counts(model.population, **{registered: 0.0001, typed: 0.0001})
    assert _kind(_child(registered), typed, model, counts) is not DecisionKind.MATCH


@pytest.mark.parametrize("model", [BENCHMARK, NATIONAL], ids=["100k", "national"])
@pytest.mark.parametrize(
    ("registered", "typed", "share"),
    [
        ("Catherine", "Catherin", 0.0),  # a letter dropped: no child bears it
        ("Catherine", "Catherin", 0.000001),  # one child in a million bears it: a misspelling registered
        ("Aurelia", "Aurelio", 0.0),
        ("Aurelia", "Aurelio", 0.000001),
        ("Marcelina", "Marcelin", 0.0),
        ("Lily", "Lilly", 0.0003),  # a spelling of the same name, however many bear it
        ("Freddie", "Freddy", 0.0003),
        ("Tobin", "Tobyn", 0.0003),
        ("Samuel", "Sam", 0.0003),  # a listed nickname
    ],
)
def test_a_slip_no_registered_name_is_still_her(registered: str, typed: str, share: float, model: MatchModel) -> None:
    shares = {registered: 0.0001} | ({typed: share} if share else {})
    counts = _counts(model.population, **shares)
    if share and share * model.population < 1:
        counts[given_count_key(typed.upper())] = 1  # one registered child bears it, under the share
    assert _kind(_child(registered), typed, model, counts) is DecisionKind.MATCH


@pytest.mark.parametrize(("registered", "typed"), [("Catherine", "Catherin"), ("Aurelia", "Aurelio")])
def test_a_slip_is_still_her_without_name_counts(registered: str, typed: str) -> None:
    assert _kind(_child(registered), typed, NATIONAL, None) is DecisionKind.MATCH


@pytest.mark.parametrize("model", [BENCHMARK, NATIONAL], ids=["100k", "national"])
@pytest.mark.parametrize(
    ("registered", "typed"), [("Aidan", "Aiden"), ("Kiera", "Keira"), ("Leila", "Layla"), ("Oscar", "Oskar")]
)
def test_the_price_another_spelling_that_registered_children_bear_is_held(
    registered: str, typed: str, model: MatchModel
) -> None:
    """A spelling no fold makes the same (``score._spelling``), borne by registered children: a
    brother's or sister's name as far as the register can tell. "More than one record could match"
    (the practitioner retypes or gives the reference), never the child."""
    counts = _counts(model.population, **{registered: 0.0003, typed: 0.0003})
    assert _kind(_child(registered), typed, model, counts) is DecisionKind.AMBIGUOUS


SAME_FOLD = [
    ("Noel", "Noelle"),
    ("Joel", "Joelle"),
    ("Michel", "Michelle"),
    ("Jean", "Jeanne"),
    ("Rene", "Renee"),
    ("Marcel", "Marcelle"),
    ("Emmanuel", "Emmanuelle"),
    ("Raphael", "Raphaelle"),
    ("Noah", "Noa"),
    ("Joan", "Johan"),
]
"""A brother's and a sister's names that ``score._spelling`` folds alike (a doubled letter, a final
E, an H after the first letter): two names, not two spellings of one."""

SAME_FOLD += [
    ("Yvon", "Yvonne"),
    ("Lucien", "Lucienne"),
    ("Julien", "Julienne"),
    ("Fabien", "Fabienne"),
    ("Adrien", "Adrienne"),
    ("Gael", "Gaelle"),
    ("Axel", "Axelle"),
    ("Pascal", "Pascale"),
    ("Dean", "Deanne"),
    ("Paul", "Paule"),
    ("Tony", "Toni"),
    ("Kai", "Kay"),
    ("Corey", "Cori"),
]
"""More of the same: the French feminine forms, and boys' and girls' names a "y", an "ey" or a
final "e" tells apart."""

SAME_FOLD_BOTH_WAYS = [*SAME_FOLD, *((typed, registered) for registered, typed in SAME_FOLD)]


@pytest.mark.parametrize(("registered", "typed"), SAME_FOLD_BOTH_WAYS)
def test_a_brothers_and_sisters_names_the_spelling_fold_makes_alike_are_two_without_name_counts(
    registered: str, typed: str
) -> None:
    assert _kind(_child(registered), typed, NATIONAL, None) is not DecisionKind.MATCH


@pytest.mark.parametrize("model", [BENCHMARK, NATIONAL], ids=["100k", "national"])
@pytest.mark.parametrize(("registered", "typed"), SAME_FOLD_BOTH_WAYS)
def test_a_brothers_and_sisters_names_the_spelling_fold_makes_alike_are_two_with_name_counts(
    registered: str, typed: str, model: MatchModel
) -> None:
    counts = _counts(model.population, **{registered: 0.0003, typed: 0.0003})
    assert _kind(_child(registered), typed, model, counts) is not DecisionKind.MATCH


SHORT_DROPPED = [
    ("Kaia", "Kai"),
    ("Alia", "Ali"),
    ("Jana", "Jan"),
    ("Dana", "Dan"),
    ("Jaya", "Jay"),
    ("Maya", "May"),
    ("Lena", "Len"),
    ("Amya", "Amy"),
]
"""(registered, typed): a name of three letters that is the child's without its last letter."""


@pytest.mark.parametrize("model", [BENCHMARK, NATIONAL], ids=["100k", "national"])
@pytest.mark.parametrize(("registered", "typed"), [*SHORT_DROPPED, *((t, r) for r, t in SHORT_DROPPED)])
def test_a_three_letter_name_registered_children_bear_is_another_childs(
    registered: str, typed: str, model: MatchModel
) -> None:
    """Kai typed for a registered Kaia: her twin brother's name, however short; the register's
    counts say it is a name, and that must not make it a short form of hers."""
    counts = _counts(model.population, **{registered: 0.0003, typed: 0.0003})
    assert _kind(_child(registered), typed, model, counts) is not DecisionKind.MATCH


@pytest.mark.parametrize("model", [BENCHMARK, NATIONAL], ids=["100k", "national"])
@pytest.mark.parametrize(
    ("registered", "typed", "share"),
    [
        ("Isabel", "Isabelle", 0.0003),  # spellings of one name, however many bear each
        ("Isabelle", "Isabel", 0.0003),
        ("Isabelle", "Isabell", 0.0003),
        ("Isabell", "Isabelle", 0.0003),
        ("Lilly", "Lily", 0.0003),
        ("Nyla", "Nyl", 0.0),  # a letter dropped that no child bears
        ("Nyla", "Nyl", 0.000001),  # or one child in a million: a misspelling registered
        ("Samuel", "Sam", 0.0003),
        ("Nicholas", "Nick", 0.0003),
    ],
)
def test_a_spelling_or_slip_of_her_own_name_is_still_her(
    registered: str, typed: str, share: float, model: MatchModel
) -> None:
    shares = {registered: 0.0003} | ({typed: share} if share else {})
    counts = _counts(model.population, **shares)
    if share and share * model.population < 1:
        counts[given_count_key(typed.upper())] = 1
    assert _kind(_child(registered), typed, model, counts) is DecisionKind.MATCH


@pytest.mark.parametrize(
    ("registered", "typed"),
    [("Isabel", "Isabelle"), ("Isabelle", "Isabel"), ("Isabelle", "Isabell"), ("Lily", "Lilly"), ("Lilly", "Lily")],
)
def test_a_spelling_of_her_own_name_is_still_her_without_name_counts(registered: str, typed: str) -> None:
    assert _kind(_child(registered), typed, NATIONAL, None) is DecisionKind.MATCH


SPELLINGS = [
    ("Lacy", "Lacey"),
    ("Darcy", "Darcey"),
    ("Evie", "Evey"),
    ("Haley", "Hayley"),
    ("Jaden", "Jayden"),
    ("Kaden", "Kayden"),
    ("Layla", "Laila"),
]
"""Spellings of one name, an "-ey" ending for "-y" or "-ie", or an "ay" or "ai" for an "a" before a
consonant (``score._spelling``): hers, however many registered children bear each."""


@pytest.mark.parametrize("model", [BENCHMARK, NATIONAL], ids=["100k", "national"])
@pytest.mark.parametrize(("registered", "typed"), [*SPELLINGS, *((t, r) for r, t in SPELLINGS)])
def test_a_common_spelling_of_her_name_that_registered_children_bear_is_hers(
    registered: str, typed: str, model: MatchModel
) -> None:
    counts = _counts(model.population, **{registered: 0.0003, typed: 0.0003})
    assert _kind(_child(registered), typed, model, counts) is DecisionKind.MATCH
