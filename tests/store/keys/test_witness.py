"""The store's witnesses of its key chains (store/keys/witness.py) follow the legitimate changes of
a key file: a rotation's new generation is recorded and the old one's dropped, a chain punctured
far ahead is recorded further on, and a key file punctured since still matches an older record."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from bot.app import Signpost
from store.db import Database
from store.keys import keychain, witness
from store.keys.keychain import Chain
from store.keys.rotation import rotate
from store.tables.lifecycle import Meta
from tests.factories import load_standard

NOV_2 = date(2026, 11, 2)


async def _recorded(db: Database) -> dict[tuple[Chain, int], witness.Witness]:
    async with db.read() as session:
        return await witness.recorded(session)


async def test_a_rotation_records_the_new_generation_and_drops_the_old(signpost: Signpost) -> None:
    """After `keys rotate` the store holds witnesses of the new generation only, and they match."""
    db, ring = signpost.ctx.db, signpost.ctx.keys
    await load_standard(signpost)
    await witness.check(db, ring, NOV_2)
    old = keychain.generation(ring)
    assert {gen for _, gen in await _recorded(db)} == {old}
    await rotate(db, ring, NOV_2)
    new = keychain.generation(ring)
    assert {gen for _, gen in await _recorded(db)} == {new} and new == old + 1
    await witness.check(db, ring, NOV_2)  # the rotated key file is still this store's


async def test_a_chain_punctured_ahead_still_matches_and_is_recorded_further_on(signpost: Signpost) -> None:
    """Puncturing is what witnesses allow for: a key file punctured past where the store recorded
    its chains still matches, and one more than half the span ahead is recorded further on."""
    db, ring = signpost.ctx.db, signpost.ctx.keys
    await load_standard(signpost)
    await witness.check(db, ring, NOV_2)
    before = (await _recorded(db))[(Chain.TERM, keychain.generation(ring))]
    cutoff = keychain.cutoff_of(ring, Chain.DAY)
    assert cutoff is not None
    keychain.puncture(ring, Chain.DAY, cutoff + witness.SPAN[Chain.DAY] // 2 + 1, NOV_2)
    await witness.check(db, ring, NOV_2, record=False)  # matches; a read-only check writes nothing
    async with db.read() as session:
        value = (await session.execute(select(Meta.value).where(Meta.key == before.key))).scalar_one()
    assert value == before.value
    await witness.check(db, ring, NOV_2)
    after = (await _recorded(db))[(Chain.TERM, keychain.generation(ring))]
    assert after.first > before.first and after.last > before.last
    assert set(before.tags) & set(after.tags)  # the same chain: the slots both cover agree
