"""A store indexed under an older set of term kinds is re-indexed by the next children import."""

from __future__ import annotations

from sqlalchemy import delete

from bot.app import Signpost
from handlers.vocabulary import Outcome
from store.register import children
from store.register.feeds import Feed, import_feeds
from store.register.terms import TERMS_VERSION
from store.tables.lifecycle import Meta
from store.tables.register import ChildTerm
from tests.factories import ready, say
from tests.fuzzy_register import AMELIA, FUZZY_CHILDREN, load_fuzzy

TWO_MISTAKES = "Amrlia Tgornton 03/04/2014"  # both names mistyped past their sound-alike keys: initials + date


async def test_an_import_rebuilds_terms_written_under_an_older_version(signpost: Signpost) -> None:
    """Terms missing (as on a store indexed before the current term kinds): the child cannot be found;
    the next children import rebuilds every child's terms and records the version; then she is."""
    await load_fuzzy(signpost)
    await ready(signpost, "P002")
    assert (await say(signpost, "P002", TWO_MISTAKES)).child_ref is not None
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(ChildTerm).where(ChildTerm.child_ref == int(AMELIA)))
        await session.execute(delete(Meta).where(Meta.key == children.TERMS_META))
    assert (await say(signpost, "P002", TWO_MISTAKES)).outcome is Outcome.NO_MATCH
    await import_feeds(
        signpost.ctx.db, signpost.ctx.keys, [Feed("children.csv", FUZZY_CHILDREN)], signpost.ctx.clock.now()
    )
    async with signpost.ctx.db.read() as session:
        assert await children.terms_version(session) == TERMS_VERSION
    reply = await say(signpost, "P002", TWO_MISTAKES)
    assert reply.outcome is Outcome.ANSWERED and reply.child_ref == f"{AMELIA[:3]} {AMELIA[3:6]} {AMELIA[6:]}"
