"""A search's one-statement read of the register gives exactly what the three reads it replaces gave:
the ranked candidates (``candidates``), decrypted (``load_candidates``), and the name counts
(``name_counts.lookup``), including the cap, ties and children left out."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, update

from bot.app import Signpost
from handlers.grammar import parse_demographic
from handlers.matching.score import query_count_keys
from handlers.matching.terms import Query, query_terms
from store.register import children, name_counts
from store.register.children import Probe, find_candidates
from store.tables.register import Child, ChildKey, NameCount
from tests.fuzzy_register import AMELIA_SISTER, JACK, JAKE, load_fuzzy

TEXTS = (
    "Amelia Thornton 03/04/2014",
    "Amleia Thornton 03/04/2014 M1 2AB",
    "Thornton Amelia 03/04/2014",
    "Grace Thornton 12/01/2016 M1",
    "Jack Lockwood 09/05/2013",
    "Bob Smith Patel 12/07/2010 B15 2TT",
    "Kai Morton 14/02/2015",
    "Nobody Atall 01/01/2012",
)


async def three_reads(app: Signpost, query: Query, limit: int) -> Probe:
    """What a search read before: every holder of every term, ranked in Python; then the
    decryption; then the counts."""
    keys = app.ctx.keys
    async with app.ctx.db.read() as session:
        refs = await children.candidates(session, keys, query_terms(query), limit)
        found = await children.load_candidates(session, keys, refs)
        counts = await name_counts.lookup(session, keys, query_count_keys(query))
    return Probe(refs, found, counts)


async def one_read(app: Signpost, query: Query, limit: int) -> Probe:
    async with app.ctx.db.read() as session:
        return await find_candidates(session, app.ctx.keys, query_terms(query), query_count_keys(query), limit)


@pytest.mark.parametrize("limit", [200, 2, 1])
async def test_one_statement_reads_what_the_three_reads_did(signpost: Signpost, limit: int) -> None:
    await load_fuzzy(signpost)
    today = signpost.ctx.clock.now().date()
    for text in TEXTS:
        query = parse_demographic(text, today)
        assert await one_read(signpost, query, limit) == await three_reads(signpost, query, limit), text


async def test_ties_rank_by_reference_and_the_cap_keeps_the_first(signpost: Signpost) -> None:
    """Look-alike twins hold the same terms: the lower reference first, and alone under a cap of one."""
    await load_fuzzy(signpost)
    query = Query("Jack", "Lockwood", date(2013, 5, 9))
    both = await one_read(signpost, query, 200)
    assert both.refs[:2] == [int(JACK), int(JAKE)]
    assert (await one_read(signpost, query, 1)).refs == [int(JACK)]


async def test_archived_and_keyless_children_are_left_out_as_before(signpost: Signpost) -> None:
    """An archived child is never a candidate; an active child without a key keeps its place in the
    ranking but is not decrypted (as ``load_candidates`` skipped it); incomplete counts are empty."""
    await load_fuzzy(signpost)
    query = Query("Grace", "Thornton", date(2016, 1, 12), "M1 2AB")
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(ChildKey).where(ChildKey.child_ref == int(AMELIA_SISTER)))
    keyless = await one_read(signpost, query, 200)
    assert int(AMELIA_SISTER) in keyless.refs and int(AMELIA_SISTER) not in keyless.found
    assert keyless == await three_reads(signpost, query, 200)
    async with signpost.ctx.db.write() as session:
        await session.execute(update(Child).where(Child.ref == int(AMELIA_SISTER)).values(state="archived"))
        await session.execute(delete(NameCount).where(NameCount.term == name_counts.COMPLETE))
    archived = await one_read(signpost, query, 200)
    assert int(AMELIA_SISTER) not in archived.refs and archived.counts == {}
    assert archived == await three_reads(signpost, query, 200)


async def test_a_query_without_terms_reads_nothing(signpost: Signpost) -> None:
    await load_fuzzy(signpost)
    async with signpost.ctx.db.read() as session:
        assert await find_candidates(session, signpost.ctx.keys, (), ("g:AMELIA",)) == Probe([], {}, {})
