"""Search terms die with the children they describe, on every path (issue 13, item 3).

A search that carries a date of birth has its audit terms sealed under that date's birth-date
key, so when the children born that day are destroyed at 24 the terms stop opening, whatever the
search found: an archived child ("no match"), several candidates, nobody, or one child born on
another day. Keyed lookups of one child keep the child's key; terms with no date keep the month key.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import Outcome
from store.audit.log import TermSealer
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.tables.audit import AuditEvent, AuditTermKey
from tests.factories import AMY, BEN
from tests.stepup_helpers import say_fresh
from tests.store.lifecycle.lifecycle_data import MARKER, at, load, retention_on

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)
TARA_DOB = date(2002, 11, 3)  # TURNS_24: archived on 2 November 2026, destroyed on the 3rd
SEARCH = f"Tara {MARKER} 03/11/2002"


def key_file_now(app: Signpost, today: date) -> KeyRing:
    """The key file as a process started after destruction would load it."""
    assert app.ctx.keys.path is not None
    ring = KeyRing.load_or_create(app.ctx.keys.path)
    keychain.ensure_chains(ring, today)
    return ring


async def opens(app: Signpost, keys: KeyRing, sealed: bytes, terms_key: str) -> str | None:
    async with app.ctx.db.read() as session:
        return await TermSealer(app.ctx.db, keys).open(session, sealed, terms_key)


async def test_a_search_hitting_an_archived_child_has_terms_that_die_with_it(signpost: Signpost) -> None:
    """The issue's path: a demographic search for an archived (18-24) child answers "no match";
    its terms open until the child is destroyed, and not after, with the key file as it is then."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    reply = await say_fresh(signpost, "P001", SEARCH)
    assert reply.outcome is Outcome.NO_MATCH
    async with signpost.ctx.db.read() as session:
        event = (
            (await session.execute(select(AuditEvent).where(AuditEvent.action == "search").order_by(AuditEvent.seq)))
            .scalars()
            .all()[-1]
        )
    assert event.terms is not None and event.terms_key is not None
    assert event.terms_key.startswith("cohort:") and MARKER not in event.terms_key
    assert await opens(signpost, signpost.ctx.keys, event.terms, event.terms_key) == SEARCH
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    assert await opens(signpost, key_file_now(signpost, NOV_3), event.terms, event.terms_key) is None
    assert await opens(signpost, signpost.ctx.keys, event.terms, event.terms_key) is None
    async with signpost.ctx.db.read() as session:  # the cohort's terms key row is gone too
        assert await session.get(AuditTermKey, event.terms_key.partition(":")[2]) is None


async def test_terms_with_a_date_die_on_every_path(signpost: Signpost) -> None:
    """Sealed with the date of birth searched for: nobody found, several candidates, one child
    born on another day: all stop opening when children born that date are destroyed; terms about
    a date still kept, terms about one child, and terms with no date still open."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    sealer, now = signpost.ctx.sealer, at(NOV_2)
    doomed, kept = [], []
    async with signpost.ctx.db.read() as session:
        for subjects in ((), (int(AMY), int(BEN)), (int(AMY),)):  # no match, several, ambiguous one
            sealed, key = await sealer.seal(session, SEARCH, subjects, now, born=TARA_DOB)
            assert sealed is not None and key is not None and key.startswith("cohort:")
            doomed.append((sealed, key))
        amy_born = date(2014, 4, 3)
        for subjects, born in (((int(AMY),), amy_born), ((), amy_born), ((int(AMY),), None), ((), None)):
            sealed, key = await sealer.seal(session, "Amy Jones 03/04/2014", subjects, now, born=born)
            assert sealed is not None and key is not None
            kept.append((sealed, key))
    assert [key.partition(":")[0] for _, key in kept] == ["child", "cohort", "child", "period"]
    await retention_on(signpost, NOV_3)
    ring = key_file_now(signpost, NOV_3)
    assert [await opens(signpost, ring, s, k) for s, k in doomed] == [None, None, None]
    assert [await opens(signpost, ring, s, k) for s, k in kept] == ["Amy Jones 03/04/2014"] * 4
