"""The right child or none (issue 16): a brother's or sister's name, a relative's birthday, initials
or one name alone (without the exact date and full postcode) never bring back a child's signposts.

Each case is a small synthetic household, asked through the real chat search (SQLite, the store's
blind index, name counts and population) and through ``choose`` at the benchmark's and the national
scale without name counts (a caller that has none must be as safe).
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from bot.app import Signpost
from handlers.grammar import parse_demographic
from handlers.matching.decide import DecisionKind, choose
from handlers.matching.score import MatchModel
from handlers.matching.terms import Query
from handlers.vocabulary import Outcome
from store.register.terms import Identity, count_keys
from tests.factories import say
from tests.handlers.matching.lone_children import Child, identities, load, references, spaced

TODAY = date(2026, 12, 1)

# name: (given names, family name, date of birth, sex, postcode)
CHILDREN: dict[str, Child] = {
    "joshua": ("Joshua Jayden", "Johnson", date(2012, 5, 17), "M", "YO9 5SS"),
    "mohammed": ("Mohammed Jayden", "Johnson", date(2018, 10, 21), "M", "YO9 5SS"),
    "mohammed-theo": ("Mohammed Theo", "Gordon", date(2018, 12, 30), "M", "NW15 1EB"),
    "bradley": ("Bradley Mohammed", "Gordon", date(2020, 4, 23), "M", "NW15 1EB"),
    "mia": ("Mia", "Haywood", date(2022, 8, 24), "F", "EX30 7TQ"),
    "zara": ("Zara Mia", "Haywood", date(2020, 4, 15), "F", "EX30 7TQ"),
    "mia-p": ("Mia", "Pennock", date(2022, 8, 24), "F", "EX31 1AA"),
    "mia-rose": ("Mia Rose", "Pennock", date(2020, 4, 15), "F", "EX31 1AA"),
    "thea": ("Thea", "Anderson", date(2015, 1, 19), "F", "LS26 0FH"),
    "theo": ("Theo", "Anderson", date(2015, 8, 26), "M", "LS26 0FH"),
    "sophia": ("Sophia Zelan", "Shaw", date(2013, 10, 3), "F", "WV17 7TP"),
    "eleanor": ("Eleanor", "Cook", date(2014, 4, 17), "F", "LS11 4LN"),
    "zoe": ("Zoe", "Ali", date(2020, 1, 31), "F", "NR21 7UE"),
    "aria": ("Aria", "Ali", date(2012, 1, 31), "F", "NR21 7UE"),
    "ellis": ("Ellis", "Salridge", date(2010, 3, 26), "M", "PE1 1AA"),
    # Twins, a short form of both names (the matching review, HIGH 1).
    "daniel": ("Daniel", "Reed", date(2016, 4, 4), "M", "S1 1AA"),
    "danielle": ("Danielle", "Reed", date(2016, 4, 4), "F", "S1 1AA"),
    # A namesake of the other twin elsewhere, born the same day, her family name a sound-alike.
    "danielle-reid": ("Danielle", "Reid", date(2016, 4, 4), "F", "S4 1AA"),
    "charles": ("Charles", "Moss", date(2017, 9, 12), "M", "S2 2AA"),
    "charlotte": ("Charlotte", "Moss", date(2017, 9, 12), "F", "S2 2AA"),
    # A brother and a sister, his name's prefix her nickname (HIGH 2).
    "alexander": ("Alexander", "Price", date(2012, 2, 3), "M", "B1 1AA"),
    "alexandra": ("Alexandra", "Price", date(2015, 7, 8), "F", "B1 1AA"),
    # Step-brothers, a double-barrelled family name and one of its parts (HIGH 3, LOW 8).
    "kian": ("Kian", "Smith-Jones", date(2013, 1, 5), "M", "M3 2AB"),
    "kyan": ("Kyan", "Jones", date(2015, 6, 9), "M", "M3 2AB"),
    "leo": ("Leo", "Smith-Jones", date(2013, 1, 5), "M", "M1 2AB"),
    "max": ("Max", "Jones", date(2013, 5, 1), "M", "M1 2AB"),
}
REFS = references(CHILDREN, 999_300_000)
IDENTITIES = identities(CHILDREN)

NEVER_THIS_CHILD = {
    # F1: a brother's full name (he is registered at the same address) with this child's birthday.
    "brother's name, sharing a middle name": ("Mohammed Jayden Johnson 17/05/2012 YO9 5SS", "joshua"),
    "sister's given names holding the child's": ("Zara Mia Haywood 24/08/2022 EX30 7TQ", "mia"),
    # F2: a brother's name one letter from his sister's, with her birthday and address.
    "brother's name one letter away": ("Theo Anderson 19/01/2015 LS26 0FH", "thea"),
    "brother's name one letter away, no postcode": ("Theo Anderson 19/01/2015", "thea"),
    "brother's name, the family name typed first": ("Anderson Theo 19/01/2015 LS26 0FH", "thea"),
    "brother's names, the family name typed first": ("Johnson Mohammed Jayden 17/05/2012 YO9 5SS", "joshua"),
    # The diff review: a sister's registered given names exactly, with this child's birthday.
    "a sister's own names, this child's birthday": ("Mia Pennock 15/04/2020 EX31 1AA", "mia-rose"),
    # The diff review: a slip nearer a brother's name than hers.
    "a slip one letter from the brother's name": ("Teo Anderson 19/01/2015 LS26 0FH", "thea"),
    "a slip nearer the brother's name": ("Thoe Anderson 19/01/2015 LS26 0FH", "thea"),
    # F3: initials are not names.
    "initials only": ("S S 03/10/2013 WV17 7TP", "sophia"),
    "initials only, another child": ("E C 17/04/2014 LS11 4LN", "eleanor"),
    "family name an initial": ("Sophia S 03/10/2013 WV17 7TP", "sophia"),
    "given name an initial": ("S Shaw 03/10/2013 WV17 7TP", "sophia"),
    # F5: the date typed is her sister's, born that day at that address.
    "a sister's exact birthday, the year wholly wrong": ("Zoe Ali 31/01/2012 NR21 7UE", "zoe"),
    # F6: no given name, and not the exact date and full postcode: a guess at any child of that name.
    "family name and date": ("Salridge 26/03/2010", "ellis"),
    "family name, date and outward code": ("Salridge 26/03/2010 PE1", "ellis"),
    "family name, a date one slip out and postcode": ("Salridge 26/03/2011 PE1 1AA", "ellis"),
    # The diff review of F6: a given name alone is one name too, read either way round.
    "given name, date and outward code": ("Thea 19/01/2015 LS26", "thea"),
    "given name and date": ("Thea 19/01/2015", "thea"),
    "given name, a date one slip out and postcode": ("Thea 19/01/2016 LS26 0FH", "thea"),
    # The matching review: a short form of both twins' names (their birthday tells them not apart).
    "a short form of both twins' names": ("Dani Reed 04/04/2016 S1 1AA", "daniel"),
    "a short form of both twins' names, no postcode": ("Dani Reed 04/04/2016", "daniel"),
    "a nickname of both twins' names": ("Charlie Moss 12/09/2017 S2 2AA", "charles"),
    # His name's prefix, his sister's nickname: the name agrees better with her.
    "his prefix, his sister's nickname, his birthday": ("Alexa Price 03/02/2012 B1 1AA", "alexander"),
    "his prefix, his sister's nickname, no postcode": ("Alexa Price 03/02/2012", "alexander"),
    # A step-brother's given name (his family name one part of this child's), this child's birthday.
    "a step-brother's given name, this child's family name": ("Kyan Smith-Jones 05/01/2013 M3 2AB", "kian"),
    "a step-brother's own names, this child's birthday": ("Kyan Jones 05/01/2013 M3 2AB", "kian"),
    "a step-brother's exact birthday": ("Leo Jones 01/05/2013 M1 2AB", "leo"),
}

NEVER_AMONG_ITS_HOUSEHOLD = {
    # With no postcode typed and another birthday, the chat search's probe does not bring the
    # step-brother back as a candidate (no index term holds a family name part with a postcode
    # alone), so nothing tells Kian he is there: ``choose`` holds Kian when he is a candidate.
    "a step-brother's given name, no postcode": ("Kyan Smith-Jones 05/01/2013", "kian"),
}
"""Like ``NEVER_THIS_CHILD``, for ``choose`` given the household as candidates only."""

STILL_FOUND = {
    "as registered": ("Joshua Jayden Johnson 17/05/2012 YO9 5SS", "joshua"),
    "the brother as registered": ("Mohammed Jayden Johnson 21/10/2018 YO9 5SS", "mohammed"),
    "the sister as registered": ("Zara Mia Haywood 15/04/2020 EX30 7TQ", "zara"),
    "her middle name typed first": ("Zelan Shaw 03/10/2013 WV17 7TP", "sophia"),
    "his middle name, his brother's too, on his birthday": ("Jayden Johnson 17/05/2012 YO9 5SS", "joshua"),
    "her names, the family name typed first": ("Anderson Thea 19/01/2015 LS26 0FH", "thea"),
    "her own name": ("Thea Anderson 19/01/2015 LS26 0FH", "thea"),
    "a slip that is no sibling's name": ("Thae Anderson 19/01/2015 LS26 0FH", "thea"),
    "her name in full": ("Sophia Shaw 03/10/2013 WV17 7TP", "sophia"),
    "her given names in full, beside a sister of her first name": ("Mia Rose Pennock 15/04/2020 EX31 1AA", "mia-rose"),
    "the sister of that first name": ("Mia Pennock 24/08/2022 EX31 1AA", "mia-p"),
    "her birthday": ("Zoe Ali 31/01/2020 NR21 7UE", "zoe"),
    "the sister's own birthday": ("Aria Ali 31/01/2012 NR21 7UE", "aria"),
    "a wrong year that is no relative's birthday": ("Zoe Ali 31/01/2013 NR21 7UE", "zoe"),
    "given name with the family name": ("Ellis Salridge 26/03/2010", "ellis"),
    # No given name, but the family name, the exact date and the full postcode: he alone at home
    # (a registered twin would hold him back, tests/handlers/matching/test_matching.py).
    "family name, date and postcode": ("Salridge 26/03/2010 PE1 1AA", "ellis"),
    "given name, date and postcode": ("Thea 19/01/2015 LS26 0FH", "thea"),
    "a twin by his own name": ("Daniel Reed 04/04/2016 S1 1AA", "daniel"),
    "a twin by her own name": ("Danielle Reed 04/04/2016 S1 1AA", "danielle"),
    "the other twin by her own name": ("Charlotte Moss 12/09/2017 S2 2AA", "charlotte"),
    "his own name beside a sister's like name": ("Alexander Price 03/02/2012 B1 1AA", "alexander"),
    "her nickname on her birthday": ("Alexa Price 08/07/2015 B1 1AA", "alexandra"),
    "a short form of both names, his birthday alone": ("Alex Price 03/02/2012 B1 1AA", "alexander"),
    "a double-barrelled name beside a step-brother": ("Kian Smith-Jones 05/01/2013 M3 2AB", "kian"),
    "the step-brother by his own name": ("Kyan Jones 09/06/2015 M3 2AB", "kyan"),
    "one part of his family name, his birthday": ("Leo Jones 05/01/2013 M1 2AB", "leo"),
    "the other step-brother on his birthday": ("Max Jones 01/05/2013 M1 2AB", "max"),
}


async def test_a_relatives_name_or_birthday_initials_or_a_family_name_alone_never_return_the_child(
    signpost: Signpost,
) -> None:
    """Through the chat search: none of these is answered with a child's signposts; a query without
    a given name (and without the exact date and full postcode), or with only an initial for one, is
    asked for the names in full."""
    await load(signpost, CHILDREN, REFS)
    for case, (text, child) in NEVER_THIS_CHILD.items():
        reply = await say(signpost, "P002", text)
        assert reply.outcome is not Outcome.ANSWERED, (case, reply.child_ref, spaced(REFS[child]))
        assert reply.child_ref is None and reply.signposts == (), case
    for text in ("Salridge 26/03/2010", "Salridge 26/03/2010 PE1", "Thea 19/01/2015 LS26"):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.AMBIGUOUS, text
        assert "given" in reply.text, reply.text  # asks for the given name
    reply = await say(signpost, "P002", "Sophia S 03/10/2013 WV17 7TP")
    assert reply.outcome is Outcome.AMBIGUOUS and "full family name" in reply.text, reply.text


async def test_the_child_is_still_found_by_her_own_names_and_birthday(signpost: Signpost) -> None:
    """The same households, asked rightly (or with a slip that is no relative's name or birthday)."""
    await load(signpost, CHILDREN, REFS)
    for case, (text, child) in STILL_FOUND.items():
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.ANSWERED, (case, reply.text)
        assert reply.child_ref == spaced(REFS[child]), case


def household(child: str) -> list[tuple[str, Identity]]:
    """The candidates a probe would return for a query about ``child``'s household: its members (the
    same postcode, family names sharing a part: Smith-Jones and Jones step-brothers are one)."""
    parts, code = set(CHILDREN[child][1].split("-")), CHILDREN[child][4]
    return [
        (name, IDENTITIES[name])
        for name, row in CHILDREN.items()
        if row[4] == code and not parts.isdisjoint(row[1].split("-"))
    ]


@pytest.mark.parametrize("population", [100_000, 11_000_000])
@pytest.mark.parametrize("case", [*NEVER_THIS_CHILD, *NEVER_AMONG_ITS_HOUSEHOLD])
def test_no_scale_accepts_them_even_without_name_counts(case: str, population: int) -> None:
    """``choose`` alone, the household as the candidates, no name counts: still never accepted."""
    text, child = {**NEVER_THIS_CHILD, **NEVER_AMONG_ITS_HOUSEHOLD}[case]
    decision = choose(parse_demographic(text, TODAY), household(child), MatchModel(population=population))
    assert decision.kind is not DecisionKind.MATCH, (decision.best, decision.ranked)


@pytest.mark.parametrize("case", list(STILL_FOUND))
def test_choose_still_accepts_the_child_asked_rightly(case: str) -> None:
    text, child = STILL_FOUND[case]
    decision = choose(parse_demographic(text, TODAY), household(child), MatchModel(population=100_000))
    assert decision.kind is DecisionKind.MATCH and decision.best == child, decision.ranked


def test_a_name_first_for_one_brother_and_middle_for_the_other_is_the_first_ones() -> None:
    """Mohammed Theo and Bradley Mohammed Gordon at one address, asked "Mohammed Gordon" with no date
    (a roll's row, say): the name is Mohammed Theo's first and only his brother's middle name, so
    Bradley is held below accept and Mohammed Theo is found (the benchmark's seed 8 holds this pair)."""
    query = Query("Mohammed", "Gordon", None, "NW15 1EB")
    counts = Counter(key for identity in IDENTITIES.values() for key in count_keys(identity))
    decision = choose(query, household("bradley"), MatchModel(population=100_000), counts=dict(counts))
    assert decision.kind is DecisionKind.MATCH and decision.best == "mohammed-theo", decision.ranked
