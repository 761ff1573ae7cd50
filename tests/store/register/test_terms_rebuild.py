"""A store indexed under an older version of its terms (kinds or keys) is re-indexed: at start-up
(``children.bring_terms_up_to_date``, which `signpost` runs when it migrates) and before a children import."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, insert, select

from bot.app import Signpost
from handlers.grammar import parse_demographic
from handlers.matching.terms import query_terms
from handlers.search import UPDATING
from handlers.vocabulary import Outcome
from store.db import Database
from store.keys.crypto import KeyRing
from store.register import children, name_counts
from store.register.children import retention_term
from store.register.feeds import Feed, import_feeds
from store.register.refs import make_reference
from store.register.terms import TERMS_VERSION, index_terms
from store.tables.lifecycle import Meta
from store.tables.register import Child, ChildTerm, NameCount
from tests.factories import NEWER_INDEX, ready, record_index_version, say
from tests.fuzzy_register import AMELIA, ARCHIVED, FUZZY_CHILDREN, load_fuzzy

TWO_MISTAKES = "Amrlia Tgornton 03/04/2014"  # both names mistyped past their sound-alike keys: initials + date
AMELIA_SHOWN = f"{AMELIA[:3]} {AMELIA[3:6]} {AMELIA[6:]}"


async def write_version_2_index(db: Database, keys: KeyRing) -> set[int]:
    """The blind index as version 2 wrote it (every term under the one index key), in place of the
    current one; returns the values written."""
    async with db.write() as session:
        refs = list((await session.execute(select(Child.ref).where(Child.state != "destroyed"))).scalars())
        identities = await children.load_identities(session, keys, refs)
        rows = {
            (keys.blind(term), ref)
            for ref, identity in identities.items()
            for term in {*index_terms(identity), retention_term(identity.date_of_birth)}
        }
        await session.execute(delete(ChildTerm))
        await session.execute(insert(ChildTerm), [{"term": term, "child_ref": ref} for term, ref in rows])
        await session.merge(Meta(key=children.TERMS_META, value="2"))
    return {term for term, _ in rows}


async def test_start_up_rebuilds_an_index_written_under_the_one_index_key(signpost: Signpost) -> None:
    """An index of version 2 (terms under the index key): a search cannot read it and says Signpost
    is being updated (never that no record matches); brought up to date as a process starting does
    it, every child that is not destroyed (archived ones too, for retention) is re-indexed under its
    term keys, no old value is left, the version is recorded; then she is found. A second start
    finds it current and does nothing."""
    await load_fuzzy(signpost)
    await ready(signpost, "P002")
    old = await write_version_2_index(signpost.ctx.db, signpost.ctx.keys)
    assert (await say(signpost, "P002", TWO_MISTAKES)).text == UPDATING
    today = signpost.ctx.clock.now().date()
    rebuilt = await children.bring_terms_up_to_date(signpost.ctx.db, signpost.ctx.keys, today)
    async with signpost.ctx.db.read() as session:
        assert rebuilt == await session.scalar(select(func.count()).where(Child.state != "destroyed"))
        held = set((await session.execute(select(ChildTerm.term))).scalars())
        assert held and not held & old
        assert await children.terms_version(session) == TERMS_VERSION
        archived = await children.load_identities(session, signpost.ctx.keys, [int(ARCHIVED)])
        dob_term = children.probes(signpost.ctx.keys, [retention_term(archived[int(ARCHIVED)].date_of_birth)])
        assert dob_term[0] in held
    reply = await say(signpost, "P002", TWO_MISTAKES)
    assert reply.outcome is Outcome.ANSWERED and reply.child_ref == AMELIA_SHOWN
    assert await children.bring_terms_up_to_date(signpost.ctx.db, signpost.ctx.keys, today) is None


async def test_an_import_rebuilds_terms_written_under_an_older_version(signpost: Signpost) -> None:
    """Terms missing and no version recorded (as on a store indexed before versions were): a search
    says Signpost is being updated; the next children import rebuilds every child's terms and
    records the version; then she is found."""
    await load_fuzzy(signpost)
    await ready(signpost, "P002")
    assert (await say(signpost, "P002", TWO_MISTAKES)).child_ref is not None
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(ChildTerm).where(ChildTerm.child_ref == int(AMELIA)))
        await session.execute(delete(Meta).where(Meta.key == children.TERMS_META))
    assert (await say(signpost, "P002", TWO_MISTAKES)).text == UPDATING
    await import_feeds(
        signpost.ctx.db, signpost.ctx.keys, [Feed("children.csv", FUZZY_CHILDREN)], signpost.ctx.clock.now()
    )
    async with signpost.ctx.db.read() as session:
        assert await children.terms_version(session) == TERMS_VERSION
    reply = await say(signpost, "P002", TWO_MISTAKES)
    assert reply.outcome is Outcome.ANSWERED and reply.child_ref == AMELIA_SHOWN


async def test_an_index_a_newer_version_wrote_is_never_rebuilt_back(signpost: Signpost) -> None:
    """The version a newer Signpost recorded: neither a start nor an import of this version rebuilds
    the index under its own (older) terms, which would leave the newer replicas finding nobody; nor
    does the import write its own terms into it (every child it wrote would be found by nobody, and
    nothing would ever move them): it is refused, nothing written."""
    await load_fuzzy(signpost)
    await ready(signpost, "P002")
    newer = str(int(TERMS_VERSION) + 1)
    async with signpost.ctx.db.write() as session:
        await session.merge(Meta(key=children.TERMS_META, value=newer))
        before = set((await session.execute(select(ChildTerm.term))).scalars())
    today = signpost.ctx.clock.now().date()
    assert await children.bring_terms_up_to_date(signpost.ctx.db, signpost.ctx.keys, today) is None
    more = FUZZY_CHILDREN + f"{make_reference(999_300_001)},Zara,Quill,,2015-02-03,F,M1 2AB,Northshire,false\n"
    async with signpost.ctx.db.read() as session:
        held = (await session.execute(select(func.count()).select_from(Child))).scalar_one()
    with pytest.raises(children.IndexNotCurrent):
        await import_feeds(signpost.ctx.db, signpost.ctx.keys, [Feed("children.csv", more)], signpost.ctx.clock.now())
    async with signpost.ctx.db.read() as session:
        assert await children.terms_version(session) == newer
        assert set((await session.execute(select(ChildTerm.term))).scalars()) == before
        assert (await session.execute(select(func.count()).select_from(Child))).scalar_one() == held


async def test_the_index_is_read_only_under_the_version_this_code_reads(signpost: Signpost) -> None:
    """The one rule every reader of the blind index goes through: the recorded version must be this
    code's. None recorded passes only while no term is stored (nothing can be missed); with terms,
    an older, a newer or no recorded version is refused, by the batch probe (``candidates``) too."""
    db, keys = signpost.ctx.db, signpost.ctx.keys
    async with db.read() as session:
        await children.require_current_index(session)  # a new store: nothing indexed, nothing recorded
    await load_fuzzy(signpost)
    async with db.write() as session:
        await session.execute(delete(Meta).where(Meta.key == children.TERMS_META))
    amelia = query_terms(parse_demographic(TWO_MISTAKES, signpost.ctx.clock.now().date()))
    for stored in (None, "2", NEWER_INDEX):
        if stored is not None:
            await record_index_version(db, stored)
        async with db.read() as session:
            with pytest.raises(children.IndexNotCurrent) as refused:
                await children.candidates(session, keys, amelia)
        assert refused.value.stored == stored
    await record_index_version(db, TERMS_VERSION)
    async with db.read() as session:
        assert int(AMELIA) in await children.candidates(session, keys, amelia)


async def test_a_rebuild_reads_every_held_child_chunk_by_chunk(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of two children: the terms and the name counts rebuilt from a store of many chunks
    are exactly those rebuilt in one (every held child read once, none skipped at a chunk's edge)."""
    await load_fuzzy(signpost)
    db, keys = signpost.ctx.db, signpost.ctx.keys

    async def rebuilt() -> tuple[int, int, set[tuple[int, int]], set[tuple[int, int]]]:
        async with db.write() as session:
            terms = await children.rebuild_terms(session, keys)
            counted = await name_counts.rebuild(session, keys)
        async with db.read() as session:
            held = {(row[0], row[1]) for row in await session.execute(select(ChildTerm.term, ChildTerm.child_ref))}
            counts = {(row[0], row[1]) for row in await session.execute(select(NameCount.term, NameCount.children))}
        return terms, counted, held, counts

    whole = await rebuilt()
    monkeypatch.setattr(children, "CHUNK", 2)
    chunked = await rebuilt()
    async with db.read() as session:
        held_children = await session.scalar(select(func.count()).where(Child.state != "destroyed"))
    assert held_children is not None and held_children > 2 * 2
    assert whole[:2] == chunked[:2] == (held_children, held_children)
    assert whole[2] and whole[3] and whole[2:] == chunked[2:]
