"""Fuzzy matching: candidates from blind-index terms, calibrated scores, decisions.

Pure unit tests over a small synthetic register held in an in-memory index that works
like the store's child_terms table (term → child refs, one probe for all query terms).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest

from handlers.matching.decide import (
    Decision,
    DecisionKind,
    MatchPolicy,
    choose,
    decide,
    details_to_add,
    shared_posterior,
)
from handlers.matching.score import MatchModel, assess, explain, match_weight, score
from handlers.matching.terms import MAX_QUERY_TERMS, Query, query_terms
from store.register.terms import Identity, index_terms

AMY = Identity("Amy Louise", "Jones", (), date(2014, 4, 3), "F", "M1 2AB")
REGISTER: dict[str, Identity] = {
    "amy": AMY,
    "other-amy": Identity("Amy", "Jones", (), date(2011, 9, 21), "F", "LS6 3QT"),
    "amy-sister": Identity("Grace", "Jones", (), date(2016, 1, 12), "F", "M1 2AB"),
    "robert": Identity("Robert", "Smith-Patel", (), date(2010, 12, 7), "M", "B15 2TT"),
    "catherine": Identity("Catherine", "O'Neill", (), date(2012, 6, 30), "F", "CF10 1AA"),
    "alias-kid": Identity("Kyle", "Brennan", ("Kyle Morton", "Kai Morton"), date(2015, 2, 14), "M", "NE4 7YH"),
    "jack-twin": Identity("Jack", "Taylor", (), date(2013, 5, 9), "M", "SW9 8HP"),
    "jake-twin": Identity("Jake", "Taylor", (), date(2013, 5, 9), "M", "SW9 8HP"),
    "oliver": Identity("Oliver", "Wright", (), date(2009, 11, 25), "M", "EX4 4QJ"),
    "oliver-namesake": Identity("Oliver", "Wright", (), date(2019, 3, 2), "M", "YO1 7HH"),
}


NATIONAL = MatchModel(population=11_000_000)
REGIONAL = MatchModel(population=1_000_000)
DEFAULT_POLICY = MatchPolicy()


def search(query: Query, policy: MatchPolicy = DEFAULT_POLICY, model: MatchModel = NATIONAL) -> Decision[str]:
    """One probe of an in-memory blind index, then score and decide, as the store does."""
    index: dict[str, set[str]] = defaultdict(set)
    for ref, identity in REGISTER.items():
        for term in index_terms(identity):
            index[term].add(ref)
    candidates = set().union(*(index.get(term, set()) for term in query_terms(query)))
    return choose(query, [(ref, REGISTER[ref]) for ref in sorted(candidates)], model, policy)


CORRUPTIONS = {
    "exact": (Query("Amy", "Jones", date(2014, 4, 3), "M1 2AB"), "amy"),
    "typo in given name": (Query("Amt", "Jones", date(2014, 4, 3), "M1"), "amy"),
    "typo in family name": (Query("Amy", "Jnoes", date(2014, 4, 3), "M1"), "amy"),
    "phonetic misspelling": (Query("Kathryn", "O'Neil", date(2012, 6, 30), "CF10"), "catherine"),
    "nickname": (Query("Bob", "Smith-Patel", date(2010, 12, 7), "B15"), "robert"),
    "short form": (Query("Kate", "O'Neill", date(2012, 6, 30), "CF10"), "catherine"),
    "swapped names (chat: last word taken as family)": (Query("Jones", "Amy", date(2014, 4, 3), "M1"), "amy"),
    "middle name used": (Query("Louise", "Jones", date(2014, 4, 3), "M1 2AB"), "amy"),
    "replaced surname": (Query("Amy", "Baker", date(2014, 4, 3), "M1 2AB"), "amy"),
    "alias": (Query("Kai", "Morton", date(2015, 2, 14), "NE4"), "alias-kid"),
    "one part of a double-barrelled surname": (Query("Robert", "Patel", date(2010, 12, 7), "B15"), "robert"),
    "double-barrelled surname split by the chat parser": (
        Query("Robert Smith", "Patel", date(2010, 12, 7), "B15"),
        "robert",
    ),
    "day and month swapped": (Query("Amy", "Jones", date(2014, 3, 4), "M1"), "amy"),
    "one digit of the date wrong": (Query("Amy", "Jones", date(2014, 4, 8), "M1 2AB"), "amy"),
    "year off by one": (Query("Oliver", "Wright", date(2010, 11, 25), "EX4 4QJ"), "oliver"),
    "no date of birth": (Query("Amy", "Jones", None, "M1 2AB"), "amy"),
    "moved house": (Query("Amy Louise", "Jones", date(2014, 4, 3), "HX1 1AA"), "amy"),
}


@pytest.mark.parametrize("query, expected", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_each_corruption_finds_the_right_child(query: Query, expected: str) -> None:
    """A query with one realistic mistake is answered with the one right child (in a
    register of a million, the benchmark's scale, with the default policy)."""
    decision = search(query, model=REGIONAL)
    assert decision.kind is DecisionKind.MATCH, decision.ranked
    assert decision.best == expected


def test_no_given_name_is_accepted_only_with_the_exact_date_and_full_postcode() -> None:
    """A family name with the exact date and the full postcode, no given name: the one Amy Jones born
    that day at that address (a registered twin would hold her back: the next test). Without the full
    postcode, or with the date one slip out, a family name and a birthday are a guess at any child
    of that name: never accepted, and the answer asks for the given name (issue 16)."""
    assert search(Query("", "Jones", date(2014, 4, 3), "M1 2AB"), model=REGIONAL).best == "amy"
    for query in (
        Query("", "Jones", date(2014, 4, 3), None),
        Query("", "Jones", date(2014, 4, 3), "M1"),
        Query("", "Jones", date(2014, 4, 4), "M1 2AB"),
    ):
        decision = search(query, model=REGIONAL)
        assert decision.kind is not DecisionKind.MATCH and decision.best is None, (query, decision.ranked)
        assert "both of the child's names, given and family" in details_to_add(query)


def test_twins_with_similar_names_are_ambiguous_without_a_given_name() -> None:
    """Twins (same date, surname and address) cannot be told apart by surname and date alone."""
    decision = search(Query("", "Taylor", date(2013, 5, 9), "SW9 8HP"))
    assert decision.kind is DecisionKind.AMBIGUOUS
    assert decision.best is None


def test_twins_with_a_name_between_theirs_are_ambiguous() -> None:
    """A misspelt given name as close to one twin as to the other never picks one."""
    decision = search(Query("Jacke", "Taylor", date(2013, 5, 9), "SW9"))
    assert decision.kind is DecisionKind.AMBIGUOUS


def test_twin_named_exactly_is_matched() -> None:
    """A twin's own exact given name tells the twins apart."""
    assert search(Query("Jake", "Taylor", date(2013, 5, 9), "SW9 8HP")).best == "jake-twin"


def test_absent_child_gives_no_match() -> None:
    """A child who is not on the register is not matched to anyone."""
    assert search(Query("Zebedee", "Fairweather", date(2015, 8, 1), "TR1 1AA")).kind is DecisionKind.NO_MATCH


def test_unregistered_sibling_at_the_same_address_is_not_matched() -> None:
    """Same surname and postcode but a different given name and date: a sibling, not the child."""
    decision = search(Query("Sophie", "Jones", date(2018, 7, 7), "M1 2AB"))
    assert decision.kind is not DecisionKind.MATCH


def test_unregistered_twin_is_not_matched_to_the_registered_one() -> None:
    """Same surname, date and address but another given name: likelier a twin than a typo."""
    decision = search(Query("Harriet", "Jones", date(2014, 4, 3), "M1 2AB"))
    assert decision.kind is not DecisionKind.MATCH


def test_namesake_born_on_another_day_is_not_matched() -> None:
    """Name alone, with a date far from both Oliver Wrights, does not pick one."""
    decision = search(Query("Oliver", "Wright", date(2014, 6, 15)))
    assert decision.kind is not DecisionKind.MATCH


def test_common_name_is_told_apart_by_date_of_birth() -> None:
    """Two Amy Joneses: the date of birth decides, and the answer is the right one."""
    assert search(Query("Amy", "Jones", date(2011, 9, 21), "LS6")).best == "other-amy"


def test_common_name_without_postcode_asks_for_more_at_national_scale() -> None:
    """Amy Jones and a date alone could be another child among 11 million: ask, do not guess."""
    assert search(Query("Amy", "Jones", date(2011, 9, 21))).kind is DecisionKind.AMBIGUOUS


def test_score_is_a_probability_that_falls_with_each_disagreement() -> None:
    """Scores lie in [0, 1] and a mistake lowers them."""
    exact = score(Query("Amy", "Jones", date(2014, 4, 3), "M1 2AB"), AMY)
    typo = score(Query("Amy", "Jnoes", date(2014, 4, 3), "M1 2AB"), AMY)
    wrong_date = score(Query("Amy", "Jnoes", date(2014, 9, 30), "M1 2AB"), AMY)
    assert 0.0 <= wrong_date < typo < exact <= 1.0


def test_score_depends_on_register_size() -> None:
    """The same evidence is weaker in a larger register (more look-alikes)."""
    query = Query("Amy", "Jones", date(2014, 4, 3))
    assert score(query, AMY, MatchModel(population=100_000)) > score(query, AMY, MatchModel(population=11_000_000))


def test_accept_threshold_is_respected() -> None:
    """Below ``accept`` bits is never a match (ambiguous down to ``consider``, then no match)."""
    assert decide([("a", 9.0)], MatchPolicy(accept=10.0)).kind is DecisionKind.AMBIGUOUS
    assert decide([("a", 10.5)], MatchPolicy(accept=10.0)).kind is DecisionKind.MATCH
    assert decide([("a", 12.0), ("b", 6.0)], MatchPolicy(accept=10.0, margin=8.0)).kind is DecisionKind.AMBIGUOUS
    assert decide([("a", -1.0)], MatchPolicy(accept=10.0, consider=0.0)).kind is DecisionKind.NO_MATCH


def test_margin_is_a_difference_in_weight() -> None:
    """Two candidates closer than ``margin`` bits are ambiguous even when both are likely."""
    close = [("a", 20.0), ("b", 15.0)]
    assert decide(close, MatchPolicy(accept=10.0, margin=8.0)).kind is DecisionKind.AMBIGUOUS
    assert decide(close, MatchPolicy(accept=10.0, margin=4.0)).kind is DecisionKind.MATCH


def test_a_saturated_lead_is_not_called_ambiguous() -> None:
    """Probabilities 1.0000 against 0.9999 leave no room for a margin; weights of 40 and 13 bits do."""
    ranked = [("a", 40.0), ("b", 13.0)]
    assert decide(ranked).kind is DecisionKind.MATCH and decide(ranked).best == "a"


def test_competing_candidates_are_never_both_chosen() -> None:
    """Two equally heavy candidates cannot both be the child: neither is accepted, and their
    shares of the posterior are equal."""
    ranked = [("a", 30.0), ("b", 30.0)]
    assert decide(ranked).kind is DecisionKind.AMBIGUOUS
    left, right = shared_posterior(ranked)
    assert left == right and 0.49 < left < 0.5


def test_no_candidates_is_no_match() -> None:
    """An empty candidate list is a plain no match."""
    decision: Decision[str] = decide([])
    assert decision.kind is DecisionKind.NO_MATCH and decision.ranked == ()


def test_query_terms_are_capped() -> None:
    """A query with many words, ambiguous nicknames, a date and a postcode stays within the bound."""
    query = Query("Alex Chris Sam Charlie", "Smith-Jones-Taylor", date(2012, 10, 11), "M1 2AB")
    terms = query_terms(query)
    assert 0 < len(terms) <= MAX_QUERY_TERMS


def test_query_with_neither_date_nor_postcode_has_no_terms() -> None:
    """A bare name is not selective at national scale: no probe, so the caller asks for more."""
    assert query_terms(Query("Amy", "Jones")) == frozenset()


def test_sibling_with_a_like_name_at_the_same_address_is_not_matched() -> None:
    """Grace's unregistered sister Gracie (like name, same address, another date) is not Grace."""
    decision = search(Query("Gracie", "Jones", date(2012, 3, 30), "M1 2AB"), model=REGIONAL)
    assert decision.kind is not DecisionKind.MATCH


def test_a_rare_name_agreeing_is_stronger_evidence_than_a_common_one() -> None:
    """With the register's name counts, agreeing on a rare surname outweighs agreeing on a common one."""
    rare = Identity("Amy", "Quartermain", (), date(2014, 4, 3), "F", None)
    common = Identity("Amy", "Smith", (), date(2014, 4, 3), "F", None)
    counts = {"g:AMY": 5_000, "f:QUARTERMAIN": 3, "f:SMITH": 13_000}
    rare_score = score(Query("Amy", "Quartermain", date(2014, 4, 8)), rare, REGIONAL, counts)
    common_score = score(Query("Amy", "Smith", date(2014, 4, 8)), common, REGIONAL, counts)
    assert rare_score > 0.99 and common_score < 0.5
    average = score(Query("Amy", "Smith", date(2014, 4, 8)), common, REGIONAL)  # without counts
    assert average > common_score


MATILDA = Identity("Matilda", "Brook", (), date(2016, 8, 19), "F", "BS3 4DE")
FLORENCE = Identity("Florence", "Brook", (), date(2016, 8, 19), "F", "BS3 4DE")
GARBLED = Query("Mtaildx", "Brook", date(2016, 8, 19), "BS3 4DE")


def test_a_garbled_given_name_on_her_birthday_at_her_address_is_her() -> None:
    """Family name, date of birth and full postcode agree; the given name is a garbled Matilda."""
    decision = choose(GARBLED, [("matilda", MATILDA)], REGIONAL)
    assert decision.kind is DecisionKind.MATCH and decision.best == "matilda"


def test_a_garbled_given_name_with_a_registered_twin_asks_for_more() -> None:
    """The same query when her twin Florence is registered: neither twin is chosen."""
    decision = choose(GARBLED, [("matilda", MATILDA), ("florence", FLORENCE)], REGIONAL)
    assert decision.kind is DecisionKind.AMBIGUOUS and decision.best is None


def test_another_name_on_her_birthday_at_her_address_is_never_her() -> None:
    """Not plausibly her name (an unregistered twin, say): never accepted, even alone."""
    decision = choose(Query("Florence", "Brook", date(2016, 8, 19), "BS3 4DE"), [("matilda", MATILDA)], REGIONAL)
    assert decision.kind is not DecisionKind.MATCH


def test_a_garbled_given_name_with_another_date_is_never_her() -> None:
    """Same family and address, a garbled given name and another birthday: a sibling, never accepted."""
    decision = choose(Query("Mtaildx", "Brook", date(2016, 9, 18), "BS3 4DE"), [("matilda", MATILDA)], REGIONAL)
    assert decision.kind is not DecisionKind.MATCH


@pytest.mark.parametrize("given, family", [("", "X"), ("", "Zzyzx"), ("M", ""), ("Zed", "Qwerty"), ("", "")])
def test_names_that_disagree_are_never_considered(given: str, family: str) -> None:
    """Exact date of birth and full postcode, but neither name agrees: no match, not "ambiguous"."""
    decision = choose(Query(given, family, MATILDA.date_of_birth, MATILDA.postcode), [("matilda", MATILDA)], REGIONAL)
    assert decision.kind is DecisionKind.NO_MATCH


TWO_MISTAKES = {
    "no date, family name misspelt past its key": Query("Amy", "Yones", None, "M1 2AB"),
    "both names misspelt past their keys": Query("Amt", "Jomes", date(2014, 4, 3), None),
    "given key wrong, day and month both wrong": Query("Amt", "Jones", date(2014, 7, 9), "M1"),
    "swapped names, given key wrong, no date": Query("Jones", "Amt", None, "M1 2AB"),
}


@pytest.mark.parametrize("query", TWO_MISTAKES.values(), ids=TWO_MISTAKES.keys())
def test_two_mistakes_at_once_still_find_the_child_first(query: Query) -> None:
    """Blocking survives two mistakes: the child is a candidate, and the heaviest one."""
    assert search(query, model=REGIONAL).ranked[0][0] == "amy"


def test_details_to_add_are_what_the_query_lacks() -> None:
    """Date of birth, (full) postcode, all the given names: asked for only when missing from the query."""
    assert details_to_add(Query("Amy", "Jones")) == (
        "the date of birth",
        "the postcode",
        "all of the child's given names",
    )
    assert details_to_add(Query("Amy", "Jones", date(2014, 4, 3), "M1")) == (
        "the full postcode",
        "all of the child's given names",
    )
    assert details_to_add(Query("Amy Louise", "Jones", date(2014, 4, 3), "M1 2AB")) == ()
    # "Ava P 05/01/2014" was asked for the postcode or all the given names; the family name was an initial.
    assert details_to_add(Query("Ava", "P", date(2014, 1, 5))) == (
        "the child's full family name",
        "the postcode",
        "all of the child's given names",
    )
    assert details_to_add(Query("A", "Price", date(2014, 1, 5), "NS1 3LY")) == ("the child's given name in full",)


def test_a_query_of_one_name_is_asked_for_both_names_whichever_it_was() -> None:
    """ "Jones 03/04/2014" (one name typed, read as the family name): the detail that would separate
    a family's children is the other name, not "all of" the given names they never gave. But the one
    name is as often a given name ("Ava 05/01/2014", a newcomer's first try), which was asked for "the
    child's given name" it had just given: the answer asks for both names, true either way."""
    both = "both of the child's names, given and family"
    assert details_to_add(Query("", "Jones", date(2014, 4, 3), "M1 2AB")) == (both,)
    assert details_to_add(Query("", "Ava", date(2014, 1, 5))) == ("the postcode", both)


RARE = {"g:AMY": 20, "f:JONES": 3}  # rare names: agreeing on them weighs the most


@pytest.mark.parametrize(
    "query",
    [
        Query("Jones", "Amy", date(2019, 10, 27), "M1 2AB"),  # swapped
        Query("Amy", "Jones", date(2016, 11, 25), "M1"),  # only the outward code
        Query("Amy", "Jones", date(2016, 11, 25), None),  # no postcode
        Query("Amt", "Jones", date(2016, 11, 25), "M1 2AB"),  # a typo in the given name
        Query("Louise", "Jones", date(2016, 11, 25), "M1 2AB"),  # her middle name
    ],
    ids=["swapped", "outward code", "no postcode", "given typo", "middle name"],
)
def test_names_and_a_postcode_do_not_outweigh_a_birthday_that_disagrees(query: Query) -> None:
    """A completely different birthday with names that are not exactly hers as typed, or without her
    full postcode: a namesake or relative as often as her, so never accepted (the issue's
    absent-child false match had the names swapped)."""
    assert choose(query, [("amy", AMY)], REGIONAL, counts=RARE).kind is not DecisionKind.MATCH


@pytest.mark.parametrize("family", ["Jones", "Jnoes"], ids=["exact", "one slip in the family name"])
def test_her_names_at_her_full_postcode_outweigh_a_mistyped_birthday(family: str) -> None:
    """Her given name exactly and her family name as registered (or one slip from it, which points
    to no relative: a brother's or sister's family name is the same), as typed, at her full
    postcode, the date wholly wrong (the corruption a record-linkage generator makes most after
    typos): another child of that name at the same full postcode is far rarer than a mis-written
    date, so she is chosen (in a register of 100,000, where the slip still leaves 14 bits)."""
    local = MatchModel(population=100_000)
    decision = choose(Query("Amy", family, date(2016, 11, 25), "M1 2AB"), [("amy", AMY)], local, counts=RARE)
    assert decision.kind is DecisionKind.MATCH and decision.best == "amy"


def test_a_date_that_disagrees_needs_more_than_the_usual_weight() -> None:
    """The same slip in a register of a million leaves 11 bits: enough for a date that agrees
    (accept is 10), not for one that disagrees (``far_date_extra``: 12), so she is only offered."""
    query = Query("Amy", "Jnoes", date(2016, 11, 25), "M1 2AB")
    assert 10.0 < assess(query, AMY, REGIONAL, RARE).bits < 12.0
    assert choose(query, [("amy", AMY)], REGIONAL, counts=RARE).kind is DecisionKind.AMBIGUOUS


def test_a_registered_outward_code_alone_agrees_only_as_an_outward_code() -> None:
    """A child registered with only the outward code of her postcode: a query giving the same
    outward code agrees on that much, not on a full postcode (which would weigh ~5 bits more and
    let her names outweigh a date that disagrees)."""
    partial = Identity("Amy", "Jones", (), date(2014, 4, 3), "F", "M1")
    asked = Query("Amy", "Jones", date(2014, 4, 3), "M1")
    assert match_weight(asked, partial) == match_weight(asked, AMY)
    far = Query("Amy", "Jones", date(2016, 11, 25), "M1")
    assert choose(far, [("amy", partial)], REGIONAL, counts=RARE).kind is not DecisionKind.MATCH


def test_her_exact_names_in_a_household_with_a_registered_brother_are_never_her() -> None:
    """The same query, but a registered brother lives at her address: a household where an
    unregistered child may bear her name (a step-sister, a cousin staying), and the date is all
    that tells them apart, so never accepted."""
    brother = Identity("Tom", "Jones", (), date(2012, 2, 2), "M", "M1 2AB")
    candidates = [("amy", AMY), ("brother", brother)]
    decision = choose(Query("Amy", "Jones", date(2016, 11, 25), "M1 2AB"), candidates, REGIONAL, counts=RARE)
    assert decision.kind is not DecisionKind.MATCH


def test_her_exact_names_on_the_day_a_sibling_was_born_are_never_her() -> None:
    """The same query, but her registered sister was born on the date given: it may name an
    unregistered twin of the sister's, so never accepted (as for a date two digits out)."""
    sister = Identity("Grace", "Jones", (), date(2016, 11, 25), "F", "LS6 3QT")  # placed apart
    candidates = [("amy", AMY), ("sister", sister)]
    decision = choose(Query("Amy", "Jones", date(2016, 11, 25), "M1 2AB"), candidates, REGIONAL, counts=RARE)
    assert decision.kind is not DecisionKind.MATCH


OLIVIA = Identity("Olivia", "Brook", (), date(2015, 3, 14), "F", "BS3 4DE")
OLIVIA_SISTER = Identity("Freya", "Brook", (), date(2015, 8, 19), "F", "BS3 4DE")
COUNTS = {"g:OLIVIA": 40, "g:FREYA": 30, "g:MATILDA": 12, "g:MARILDE": 2, "f:BROOK": 25}


def test_both_names_with_a_date_two_digits_out_is_her() -> None:
    """Olivia Brook at her full postcode, her birthday 2015-03-14 typed with two digits wrong
    (2015-08-19): both names agree in full, so the date's two slips do not forbid her."""
    query = Query("Olivia", "Brook", date(2015, 8, 19), "BS3 4DE")
    decision = choose(query, [("olivia", OLIVIA)], REGIONAL, counts=COUNTS)
    assert decision.kind is DecisionKind.MATCH and decision.best == "olivia"


def test_her_name_on_the_day_a_sibling_was_born_is_never_her() -> None:
    """The same two-digit slip, but her registered sister at that address was born on the date
    given: the query may name an unregistered twin of the sister called Olivia, so never accepted."""
    query = Query("Olivia", "Brook", date(2015, 8, 19), "BS3 4DE")
    decision = choose(query, [("olivia", OLIVIA), ("freya", OLIVIA_SISTER)], REGIONAL, counts=COUNTS)
    assert decision.kind is not DecisionKind.MATCH


IVY = Identity("Ivy", "Brook", (), date(2016, 8, 19), "F", "BS3 4DE")


def test_a_garbled_name_nobody_bears_is_her_misspelt() -> None:
    """ "Iwx" is no registered child's name and no known name, two slips from Ivy with the same
    first letter: her name garbled, on her birthday at her address."""
    query = Query("Iwx", "Brook", IVY.date_of_birth, "BS3 4DE")
    decision = choose(query, [("ivy", IVY)], REGIONAL, counts={**COUNTS, "g:IVY": 20})
    assert decision.kind is DecisionKind.MATCH and decision.best == "ivy"
    without_counts = choose(query, [("ivy", IVY)], REGIONAL)  # who bears it unknown: never accepted
    assert without_counts.kind is not DecisionKind.MATCH
    bears = choose(query, [("ivy", IVY)], REGIONAL, counts={**COUNTS, "g:IVY": 20, "g:IWX": 1})
    assert bears.kind is not DecisionKind.MATCH  # a registered child is called Iwx: another name


def test_a_registered_name_two_slips_away_is_another_child() -> None:
    """ "Marilde" is borne by registered children: a sister's or twin's name, not two slips for
    Matilda, so never accepted on her birthday at her address."""
    decision = choose(
        Query("Marilde", "Brook", MATILDA.date_of_birth, "BS3 4DE"), [("matilda", MATILDA)], REGIONAL, counts=COUNTS
    )
    assert decision.kind is not DecisionKind.MATCH


EVA = Identity("Eva", "Wells", (), date(2012, 10, 31), "F", "GL19 4ZT")


def test_a_registered_name_with_another_first_letter_is_another_child() -> None:
    """Ava for Eva, same family, birthday and address: when registered children are called Ava it is
    another child's name (an unregistered twin), never accepted; when nobody is, a slip for Eva."""
    query = Query("Ava", "Wells", EVA.date_of_birth, "GL19 4ZT")
    twin = choose(query, [("eva", EVA)], REGIONAL, counts={"g:EVA": 30, "g:AVA": 40, "f:WELLS": 20})
    assert twin.kind is not DecisionKind.MATCH
    slip = choose(query, [("eva", EVA)], REGIONAL, counts={"g:EVA": 30, "f:WELLS": 20})
    assert slip.kind is DecisionKind.MATCH and slip.best == "eva"


# Brothers, sisters and twins placed apart (in care, in split households) live at different
# postcodes: the twin and sibling guards are the family name and the date of birth, never the address.
MATILDA_APART = Identity("Matilda", "Brook", (), date(2016, 8, 19), "F", "BS3 4DE")
FLORENCE_APART = Identity("Florence", "Brook", (), date(2016, 8, 19), "F", "LS6 3QT")
OLIVIA_APART = Identity("Olivia", "Brook", (), date(2015, 3, 14), "F", "BS3 4DE")
FREYA_APART = Identity("Freya", "Brook", (), date(2015, 8, 19), "F", "NE4 7YH")
APART = {"matilda": MATILDA_APART, "florence": FLORENCE_APART, "olivia": OLIVIA_APART, "freya": FREYA_APART}
APART_COUNTS = {**COUNTS, "g:FLORENCE": 15}


def search_apart(query: Query, counts: dict[str, int] | None) -> Decision[str]:
    """Probe an in-memory blind index of the children placed apart, as :func:`search` does: the
    twin or sibling at the other postcode has to be among the candidates for the guard to see it."""
    index: dict[str, set[str]] = defaultdict(set)
    for ref, identity in APART.items():
        for term in index_terms(identity):
            index[term].add(ref)
    candidates = set().union(*(index.get(term, set()) for term in query_terms(query)))
    return choose(query, [(ref, APART[ref]) for ref in sorted(candidates)], REGIONAL, counts=counts)


def _never_a_child(decision: Decision[str]) -> None:
    assert decision.kind in (DecisionKind.AMBIGUOUS, DecisionKind.NO_MATCH), decision.ranked
    assert decision.best is None


@pytest.mark.parametrize("counts", [None, APART_COUNTS], ids=["without name counts", "with name counts"])
@pytest.mark.parametrize("postcode", ["BS3 4DE", "LS6 3QT", "BS3", "LS6", None])
@pytest.mark.parametrize("garbled", ["Mtaildx", "Flroencx"])
def test_a_garbled_given_name_with_a_twin_placed_apart_is_never_accepted(
    garbled: str, postcode: str | None, counts: dict[str, int] | None
) -> None:
    """Twins Matilda (BS3 4DE) and Florence (LS6 3QT) Brook, placed apart. A garbled given name
    with their family name and birthday could be either, whichever address is given: neither twin
    is chosen, not even the one whose name it resembles and whose postcode it gives."""
    _never_a_child(search_apart(Query(garbled, "Brook", date(2016, 8, 19), postcode), counts))


@pytest.mark.parametrize("postcode", ["BS3 4DE", "LS6 3QT", "NE4 7YH", "BS3", None])
def test_her_name_on_the_day_a_sibling_placed_apart_was_born_is_never_her(postcode: str | None) -> None:
    """Olivia Brook (BS3 4DE, 2015-03-14) and her sister Freya (NE4 7YH, 2015-08-19), placed apart.
    "Olivia Brook 2015-08-19" is Olivia's birthday two digits out, but the day Freya was born: it may
    name an unregistered twin of Freya's called Olivia, so never accepted, whatever the postcode."""
    _never_a_child(search_apart(Query("Olivia", "Brook", date(2015, 8, 19), postcode), APART_COUNTS))


def test_children_placed_apart_are_still_found_on_their_own_details() -> None:
    """The guards ask for more only when the evidence could be either child: each twin's own given
    name, and Olivia's own birthday, still find the one right child."""
    for query, expected in (
        (Query("Matilda", "Brook", date(2016, 8, 19), "BS3 4DE"), "matilda"),
        (Query("Florence", "Brook", date(2016, 8, 19), "LS6 3QT"), "florence"),
        (Query("Olivia", "Brook", date(2015, 3, 14), "BS3 4DE"), "olivia"),
        (Query("Freya", "Brook", date(2015, 8, 19), "NE4 7YH"), "freya"),
    ):
        decision = search_apart(query, APART_COUNTS)
        assert decision.kind is DecisionKind.MATCH and decision.best == expected, decision.ranked


@pytest.mark.parametrize("postcode", ["BS3 4DE", "BS3"], ids=["full postcode", "outward code"])
def test_both_names_with_a_slip_in_the_family_name_and_a_date_two_digits_out_is_her(postcode: str) -> None:
    """ "Olivia Brok" at her postcode, her birthday two digits out: her given name exactly and her
    family name with one slip (a brother's or sister's family name would be the same, so the slip
    points to no relative) are her names as registered, and the date's two slips do not forbid her
    (before: any slip in the family name made the date forbid acceptance, whatever the weight)."""
    query = Query("Olivia", "Brok", date(2015, 8, 19), postcode)
    decision = choose(query, [("olivia", OLIVIA)], REGIONAL, counts=COUNTS)
    assert decision.kind is DecisionKind.MATCH and decision.best == "olivia", decision.ranked


@pytest.mark.parametrize("postcode", ["BS3 4DE", "NE4 7YH", "BS3", None])
def test_a_slip_in_the_family_name_on_the_day_a_sibling_was_born_is_never_her(postcode: str | None) -> None:
    """The same slips, but her sister Freya, placed apart, was born on the date given: it may name an
    unregistered twin of Freya's, so never accepted, whatever the postcode."""
    _never_a_child(search_apart(Query("Olivia", "Brok", date(2015, 8, 19), postcode), APART_COUNTS))


@pytest.mark.parametrize(
    "query",
    [
        Query("Olivai", "Brook", date(2015, 8, 19), "BS3 4DE"),  # a slip in the given name: maybe a sibling's name
        Query("Brok", "Olivia", date(2015, 8, 19), "BS3 4DE"),  # swapped
        Query("Olivia", "Bruke", date(2015, 8, 19), "BS3 4DE"),  # the family name only sounds alike
        Query("Olivia", "Brok", date(2019, 8, 11), "BS3 4DE"),  # the date further out than two digits
    ],
    ids=["given slip", "swapped", "family sounds alike", "date further out"],
)
def test_other_slips_with_a_date_two_digits_out_still_forbid_her(query: Query) -> None:
    """Only her names as registered (the family name with at most one slip) let a date two digits out
    through: a given-name slip, swapped names, a family name that only sounds alike, or a date
    further out still never choose her at her outward code (the full postcode aside, where a wholly
    wrong date has its own rule)."""
    asked = Query(query.given_names, query.family_name, query.date_of_birth, "BS3")
    assert choose(asked, [("olivia", OLIVIA)], REGIONAL, counts=COUNTS).kind is not DecisionKind.MATCH


@pytest.mark.parametrize(
    "query",
    [Query("Amy", "Jones", date(2014, 4, 8), "M1", "F"), Query("Jones", "Amy", date(2014, 4, 3), None, "M")],
    ids=["as typed", "swapped, the wrong sex"],
)
def test_an_explanation_adds_up_to_the_weight_it_explains(query: Query) -> None:
    """What a misses report prints for a candidate (the levels of the reading taken and each part's
    bits) adds up to the weight the decision used, so a reader can trust it."""
    why = explain(query, AMY, REGIONAL)
    parts = why.names_and_place_bits + why.dob_bits + why.sex_bits + why.prior_bits
    assert parts == pytest.approx(why.assessment.bits) and why.assessment == assess(query, AMY, REGIONAL)
    assert why.as_typed is (query.given_names == "Amy")
    assert (why.given, why.family) == ("exact", "exact")


ONE_NAME = Identity("", "Brook", (), date(2016, 8, 19), "F", "BS3 4DE")  # known by one name, as the NHS records it
GIVEN_ONLY = Identity("Matilda", "", (), date(2016, 8, 19), "F", "BS3 4DE")


@pytest.mark.parametrize(
    "query, child",
    [
        (Query("Zzyzx", "Brook", ONE_NAME.date_of_birth, ONE_NAME.postcode), ONE_NAME),
        (Query("Amy", "Brook", ONE_NAME.date_of_birth, ONE_NAME.postcode), ONE_NAME),
        (Query("Matilda", "Zzyzx", GIVEN_ONLY.date_of_birth, GIVEN_ONLY.postcode), GIVEN_ONLY),
    ],
)
def test_a_name_the_record_does_not_hold_is_never_taken_for_it(query: Query, child: Identity) -> None:
    """A child known by one name: a second name typed cannot be checked against the record, and an
    unregistered twin or sibling bears the same family name, birthday and address."""
    assert choose(query, [("one", child)], REGIONAL).kind is not DecisionKind.MATCH


def test_a_child_known_by_a_family_name_alone_is_accepted_by_it_only_at_her_address() -> None:
    """A record holding only a family name, asked by it with her exact birthday and full postcode:
    found (nothing else could be typed for her). Without the postcode, never (issue 16)."""
    query = Query("", "Brook", ONE_NAME.date_of_birth, ONE_NAME.postcode)
    assert choose(query, [("one", ONE_NAME)], REGIONAL).best == "one"
    alone = Query("", "Brook", ONE_NAME.date_of_birth, None)
    assert choose(alone, [("one", ONE_NAME)], REGIONAL).kind is not DecisionKind.MATCH


CATHERINE = REGISTER["catherine"]
EVAN = Identity("Evan", "Wells", (), date(2012, 10, 31), "M", "GL19 4ZT")
KAIA = Identity("Kaia", "Wells", (), date(2012, 10, 31), "F", "GL19 4ZT")


@pytest.mark.parametrize(
    ("asked", "child", "counts", "accepted"),
    [
        ("Catherin", CATHERINE, None, True),  # her name, its last letter dropped
        ("Catherin", CATHERINE, {"g:CATHERINE": 30, "g:CATHERIN": 2}, True),  # a misspelling a register holds
        ("Catherin", CATHERINE, {"g:CATHERINE": 3300, "g:CATHERIN": 3300}, True),  # a spelling of hers
        ("Eva", EVAN, None, False),  # a name of its own, one letter short of his: a short form at most
        ("Kai", KAIA, {"g:KAIA": 3300, "g:KAI": 3300}, False),  # a name registered children bear: another's
    ],
)
def test_a_given_name_one_letter_short_is_a_slip_unless_it_is_a_name(
    asked: str, child: Identity, counts: dict[str, int] | None, accepted: bool
) -> None:
    """Her given name with its last letter missing, a date one digit out, at her full postcode, among
    11 million: one slip in the name, weighed as one, so she is found; before, a name one letter
    short weighed as a short form ("Dec" for Declan, 2.8 bits less) and the answer was "more than one
    record could match". A shorter name that is a name of its own (Eva for Evan, listed; Kai for
    Kaia, borne by registered children at ``score.REGISTERED_NAME_SHARE``) is not taken for her: it
    may be a brother's or sister's, and the answer asks for more. A few bearers in 11 million are a
    misspelling a register holds, and a spelling of hers (``score._spelling``) is hers."""
    born = child.date_of_birth
    query = Query(asked, child.family_name, born.replace(day=born.day - 10), child.postcode)
    decision = choose(query, [("child", child)], NATIONAL, counts=counts)
    assert (decision.kind is DecisionKind.MATCH) is accepted, decision.ranked
    if not accepted:
        assert decision.kind is DecisionKind.AMBIGUOUS and decision.best is None


@pytest.mark.parametrize(
    "asked",
    ["Cathe Rine", "Amylouise"],
    ids=["a space struck inside her given name", "her two given names run together"],
)
def test_her_given_name_with_a_space_more_or_less_is_one_slip(asked: str) -> None:
    """Her given name with a stray space ("Cathe Rine", a slip record-linkage corruption generators
    make) or her two given names run together ("Amylouise"), her family name and birthday, no
    postcode, among 100,000: one slip, weighed as one, so she is found. Before, "Cathe" read as a
    short form of Catherine (2.8 bits less: "more than one record could match") and "Amylouise" as
    another name with her family name, birthday and address (a probable sister: no match)."""
    child = CATHERINE if asked.startswith("Cath") else AMY
    decision = search(Query(asked, child.family_name, child.date_of_birth, None), model=MatchModel(population=100_000))
    assert decision.kind is DecisionKind.MATCH and REGISTER[str(decision.best)] == child, decision.ranked


@pytest.mark.parametrize(
    ("given", "family"),
    [("C Atherine", "O'Neill"), ("O'Neill", "C Atherine")],
    ids=["as typed", "the names swapped"],
)
def test_a_space_struck_after_the_first_letter_of_her_given_name_is_one_slip(given: str, family: str) -> None:
    """ "C Atherine O'Neill" with her birthday and full postcode, among 11 million: her letters with a
    space struck after the first (FEBRL's "e mma", "j oel", "n oah"), one slip. Before, "C" read as an
    initial (``names_incomplete``: never accepted, at 21 bits). An initial alone, or initials, are
    still no name (tests/handlers/matching/test_households.py)."""
    child = CATHERINE
    decision = search(Query(given, family, child.date_of_birth, child.postcode))
    assert decision.kind is DecisionKind.MATCH and REGISTER[str(decision.best)] == child, decision.ranked
    for initial in ("C", "C A"):
        held = search(Query(initial, "O'Neill", child.date_of_birth, child.postcode))
        assert held.kind is not DecisionKind.MATCH, held.ranked


def test_a_sisters_name_with_a_space_struck_in_it_is_not_her() -> None:
    """ "Gr Ace Jones" on Amy's birthday at her address: the letters are her registered sister Grace's,
    not Amy's, and Grace was born on another day, so neither is taken for the child asked about."""
    decision = search(Query("Gr Ace", "Jones", AMY.date_of_birth, AMY.postcode))
    assert decision.kind is not DecisionKind.MATCH


def test_a_child_known_by_her_given_name_alone_is_found_by_it_alone() -> None:
    """Matilda, registered by her given name alone (no family name), asked for as "Matilda" and her
    birthday, no postcode, among a million (twelve children are called Matilda): a query without a
    family name agrees with a record that has none, as asking about a child known by one name by
    that name does (before, the missing family name counted for nothing and the answer was "more
    than one record could match"). Matilda Brook born the same day is as likely: both are offered."""
    query = Query("Matilda", "", GIVEN_ONLY.date_of_birth, None)
    counts = {"g:MATILDA": 12}
    decision = choose(query, [("one", GIVEN_ONLY)], REGIONAL, counts=counts)
    assert decision.kind is DecisionKind.MATCH and decision.best == "one", decision.ranked
    namesake = Identity("Matilda", "Brook", (), GIVEN_ONLY.date_of_birth, "F", "LS6 3QT")
    both = choose(query, [("one", GIVEN_ONLY), ("brook", namesake)], REGIONAL, counts={**counts, "f:BROOK": 25})
    assert both.kind is DecisionKind.AMBIGUOUS and both.best is None
    for other in ("Freya", "Zzyzx"):  # another name on her birthday: never her
        asked = Query(other, "", GIVEN_ONLY.date_of_birth, GIVEN_ONLY.postcode)
        assert choose(asked, [("one", GIVEN_ONLY)], REGIONAL, counts=counts).kind is DecisionKind.NO_MATCH
