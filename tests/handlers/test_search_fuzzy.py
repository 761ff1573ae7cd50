"""Finding the right child through the real chat search: each kind of mistake a practitioner makes
still finds the child; look-alikes ask for more detail; the thresholds in the policy decide."""

from __future__ import annotations

from datetime import date

from sqlalchemy import update

from bot.app import Signpost
from handlers.matching.decide import DecisionKind, MatchPolicy
from handlers.matching.terms import MAX_QUERY_TERMS, Query
from handlers.search import find_child
from handlers.vocabulary import Outcome
from store.register import children
from store.tables.register import Child
from tests.factories import ready, say
from tests.fuzzy_register import (
    AMELIA,
    ARCHIVED,
    CATHERINE,
    JACK,
    KYLE,
    OLIVER,
    ROBERT,
    load_fuzzy,
)
from tests.spread import spread
from tests.statements import Sent, statements_sent


def spaced(ref: str) -> str:
    return f"{ref[:3]} {ref[3:6]} {ref[6:]}"


async def setup(app: Signpost) -> None:
    await load_fuzzy(app)
    await ready(app, "P002")


MISTAKES = {
    "exact": ("Amelia Thornton 03/04/2014", AMELIA),
    "typo in the given name": ("Amleia Thornton 03/04/2014", AMELIA),
    "typo in the family name": ("Catherine O'Nell 30/06/2012", CATHERINE),
    "phonetic misspelling": ("Katharine O'Neill 30/06/2012", CATHERINE),
    "phonetic family name": ("Robert Smyth-Patel 07/12/2010", ROBERT),
    "nickname": ("Bob Smith-Patel 07/12/2010", ROBERT),
    "short form": ("Kate O'Neill 30/06/2012", CATHERINE),
    "swapped given and family names": ("Thornton Amelia 03/04/2014", AMELIA),
    "one part of a double-barrelled surname": ("Robert Patel 07/12/2010", ROBERT),
    "double-barrelled surname without the hyphen": ("Robert Smith Patel 07/12/2010", ROBERT),
    "middle name typed too": ("Amelia Grace Thornton 03/04/2014", AMELIA),
    "alias": ("Kai Morton 14/02/2015", KYLE),
    "former surname (alias)": ("Amelia Hargreaves 03/04/2014", AMELIA),
    "day and month swapped": ("Robert Smith-Patel 12/07/2010", ROBERT),
    "year off by one": ("Catherine O'Neill 30/06/2013", CATHERINE),
    "one digit of the date wrong": ("Oliver Wright 26/11/2009", OLIVER),
    "moved house (old postcode)": ("Kyle Brennan 14/02/2015 LS1 4AP", KYLE),
    "typo and a wrong year at once": ("Olivr Wright 25/11/2010", OLIVER),
}


# Matrices of typed searches through the one search path: each input on one store, half on each
# (tests/spread.py); the single tests below (the index probed, the candidate cap, an archived child) on both.
@spread("mistake", list(MISTAKES))
async def test_each_kind_of_mistake_still_finds_the_right_child(signpost: Signpost, mistake: str) -> None:
    """The practitioner's mistake is forgiven: the one right child's signposts come back."""
    await setup(signpost)
    text, ref = MISTAKES[mistake]
    reply = await say(signpost, "P002", text)
    assert reply.outcome is Outcome.ANSWERED, (mistake, reply.text)
    assert reply.child_ref == spaced(ref)


async def test_look_alike_twins_ask_for_more_detail_and_name_no_child(signpost: Signpost) -> None:
    """Jack and Jake, same family and birthday: a name between the two lists no child."""
    await setup(signpost)
    for text in ("Jak Lockwood 09/05/2013", "Lockwood 09/05/2013"):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.AMBIGUOUS, text
        assert reply.child_ref is None and reply.signposts == () and reply.buttons == ()
        assert "999" not in reply.text and "Jack" not in reply.text


@spread(
    "text",
    [
        "Zebedee Quartermain 01/01/2012",  # a stranger
        "Harriet Thornton 05/08/2018 M1 2AB",  # an unregistered sister at the same address
        "Amelia Thornton 14/10/2019",  # a namesake born on quite another day
        "Harriet Thornton 03/04/2014 M1 2AB",  # an unregistered twin: another name, same day and address
        "Amalya Thornton 03/05/2014 M1 2AB",  # a garbled given name AND another date at her address
        "Thornton 03/04/2014 M1",  # no given name, and not her full postcode: a guess at any Thornton
    ],
)
async def test_a_child_who_is_not_registered_is_no_match(signpost: Signpost, text: str) -> None:
    """Children absent from the register match nobody, even the ones who resemble a registered child."""
    await setup(signpost)
    reply = await say(signpost, "P002", text)
    assert reply.outcome in (Outcome.NO_MATCH, Outcome.AMBIGUOUS), text
    assert reply.child_ref is None and reply.signposts == ()


@spread(
    "text",
    [
        "X 03/04/2014 M1 2AB",
        "Zzyzx 03/04/2014 M1 2AB",
        "A 03/04/2014 M1 2AB",  # her initial alone: 26 guesses would find any child
        "Zed Qwerty 03/04/2014 M1 2AB",
        "Qwerty Zed 03/04/2014 M1 2AB",
        "X 30/06/2012 CF10 1AA",
        "Zzyzx 09/05/2013 SW9 8HP",  # the twins' birthday and address
    ],
)
async def test_a_name_that_disagrees_is_never_accepted(signpost: Signpost, text: str) -> None:
    """A birthday and a postcode do not find a child: when neither name agrees (as typed, swapped
    or as an alias) the search is a plain no match, not even ambiguous (the audit's outcome)."""
    await setup(signpost)
    reply = await say(signpost, "P002", text)
    assert reply.outcome is Outcome.NO_MATCH, (text, reply.text)
    assert reply.child_ref is None and reply.signposts == () and reply.buttons == ()


@spread(
    "text, answered",
    [
        ("Amelia Wright 03/04/2014 M1 2AB", True),  # a surname registered children bear: a step-parent's, say
        ("Amelia O'Neill 03/04/2014 M1 2AB", True),
        ("Amelia Qwerty 03/04/2014 M1 2AB", False),  # a word no registered child bears, unlike hers
        ("Amelia Okonkwo 03/04/2014 M1 2AB", False),
    ],
)
async def test_a_new_surname_is_one_that_children_bear_not_any_word(
    signpost: Signpost, text: str, answered: bool
) -> None:
    """Her given name, birthday and full postcode with another family name: a new surname (a
    step-parent's or an adopter's) is a surname, one registered children bear, and finds her; a word
    nobody on the register bears, unlike hers, is a name that does not agree: never accepted."""
    await setup(signpost)
    reply = await say(signpost, "P002", text)
    if answered:
        assert reply.outcome is Outcome.ANSWERED and reply.child_ref == spaced(AMELIA), (text, reply.text)
    else:
        assert reply.outcome is not Outcome.ANSWERED and reply.child_ref is None and reply.signposts == (), text


@spread("text", ["Amalya Thornton 03/04/2014 M1 2AB", "Amaliya Thornton 03/04/2014 M1 2AB"])
async def test_a_badly_garbled_given_name_with_her_surname_birthday_and_address_finds_her(
    signpost: Signpost, text: str
) -> None:
    """Family name, date of birth and full postcode agree and the given name is a garbled form of
    hers (not another name): the sibling rule no longer turns her away."""
    await setup(signpost)
    reply = await say(signpost, "P002", text)
    assert reply.outcome is Outcome.ANSWERED, (text, reply.text)
    assert reply.child_ref == spaced(AMELIA)


async def test_an_ambiguous_answer_asks_for_the_detail_the_query_lacks(signpost: Signpost) -> None:
    """Twins Jack and Jake: the answer asks for what the practitioner left out (the postcode, all the
    given names), never for what they already gave, and says nothing about either twin."""
    await setup(signpost)
    without = await say(signpost, "P002", "Jak Lockwood 09/05/2013")
    assert without.outcome is Outcome.AMBIGUOUS
    assert "the postcode" in without.text and "given names" in without.text
    with_postcode = await say(signpost, "P002", "Jak Lockwood 09/05/2013 SW9 8HP")
    assert with_postcode.outcome is Outcome.AMBIGUOUS
    assert "postcode" not in with_postcode.text and "given names" in with_postcode.text
    for reply in (without, with_postcode):
        assert not any(word in reply.text for word in ("Jack", "Jake", "SW9", "999", "2013"))


async def test_a_stranger_is_no_match(signpost: Signpost) -> None:
    """Someone unlike anyone on the register is told there is no match (not asked for more)."""
    await setup(signpost)
    reply = await say(signpost, "P002", "Zebedee Quartermain 01/01/2012")
    assert reply.outcome is Outcome.NO_MATCH


async def test_an_archived_child_is_never_a_candidate(signpost: Signpost) -> None:
    """Once archived, a child is not found by an exact demographic search."""
    await setup(signpost)
    async with signpost.ctx.db.write() as session:
        await session.execute(update(Child).where(Child.ref == int(ARCHIVED)).values(state="archived"))
    reply = await say(signpost, "P002", "Zachary Fairweather 17/03/2008 YO1 7HH")
    assert reply.outcome is Outcome.NO_MATCH


async def test_a_stricter_accept_threshold_turns_a_match_into_ambiguous(signpost: Signpost) -> None:
    """The decision follows ctx.policy.match (in bits): the same query matches, then asks for more,
    then finds nobody, as the thresholds pass its weight."""
    await setup(signpost)
    text = "Amelia Thornton 03/04/2019"  # right names, a date far from hers: a plausible but weak match
    async with signpost.ctx.db.read() as session:
        query = Query("Amelia", "Thornton", date(2019, 4, 3))
        weight = (await find_child(signpost.ctx, session, query, signpost.ctx.clock.now())).ranked[0][1]
    signpost.ctx.policy.match = MatchPolicy(accept=weight - 1, margin=0.0, consider=weight - 2)
    assert (await say(signpost, "P002", text)).child_ref == spaced(AMELIA)
    signpost.ctx.policy.match = MatchPolicy(accept=weight + 1, margin=0.0, consider=weight - 2)
    assert (await say(signpost, "P002", text)).outcome is Outcome.AMBIGUOUS
    signpost.ctx.policy.match = MatchPolicy(accept=weight + 1, margin=0.0, consider=weight + 1)
    assert (await say(signpost, "P002", text)).outcome is Outcome.NO_MATCH


@spread("word", ["search", "Search", "SEARCH"])
async def test_the_word_search_before_a_search_is_not_read_as_a_name(signpost: Signpost, word: str) -> None:
    """People type the command's name before what they search for: "search Amelia Thornton
    03/04/2014" finds Amelia as the same search without the word does, and the audit's sealed
    terms are the search's own (the word is no given name of hers)."""
    await setup(signpost)
    plain = await say(signpost, "P002", "Amelia Thornton 03/04/2014")
    worded = await say(signpost, "P002", f"{word} Amelia Thornton 03/04/2014")
    assert plain.outcome is worded.outcome is Outcome.ANSWERED
    assert worded.child_ref == plain.child_ref == spaced(AMELIA)
    assert worded.text == plain.text


async def test_a_keyed_enquiry_is_unaffected_by_look_alikes(signpost: Signpost) -> None:
    """A reference finds exactly its child, twin or not, with no matching involved."""
    await setup(signpost)
    for ref in (JACK, AMELIA, ROBERT):
        reply = await say(signpost, "P002", ref)
        assert reply.outcome is Outcome.ANSWERED and reply.child_ref == spaced(ref)


def on_child_terms(sent: list[Sent]) -> list[str]:
    """Of the statements sent, those that read the blind index."""
    return [statement.sql for statement in sent if "child_terms" in statement.sql]


async def test_a_search_probes_the_blind_index_once(signpost: Signpost) -> None:
    """However many terms a query expands to (≤ MAX_QUERY_TERMS), it is one IN query."""
    await setup(signpost)
    assert MAX_QUERY_TERMS <= children.CHUNK
    with statements_sent(signpost.ctx.db) as sent:
        reply = await say(signpost, "P002", "Robert Smith Patel 12/07/2010 B15 2TT")
    assert reply.child_ref == spaced(ROBERT)
    assert len(on_child_terms(sent)) == 1


async def test_a_query_with_nothing_selective_is_not_probed(signpost: Signpost) -> None:
    """A name alone (possible in a batch row, not in chat) is no match without touching the index."""
    await setup(signpost)
    async with signpost.ctx.db.read() as session:
        with statements_sent(signpost.ctx.db) as sent:
            decision = await find_child(signpost.ctx, session, Query("Amelia", "Thornton"), signpost.ctx.clock.now())
    assert decision.kind is DecisionKind.NO_MATCH and decision.ranked == ()
    assert on_child_terms(sent) == []


async def test_candidates_are_capped_by_the_policy(signpost: Signpost) -> None:
    """No more than candidate_limit children are decrypted; the cap keeps those holding most terms."""
    await setup(signpost)
    signpost.ctx.policy.candidate_limit = 1
    async with signpost.ctx.db.read() as session:
        query = Query("Jack", "Lockwood", date(2013, 5, 9))
        decision = await find_child(signpost.ctx, session, query, signpost.ctx.clock.now())
    assert [ref for ref, _ in decision.ranked] == [int(JACK)]
