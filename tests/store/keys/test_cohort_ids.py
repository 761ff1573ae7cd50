"""A birth-date key's id names no day once that day's cohort is destroyed.

The forensic review's attack: a child's data key is wrapped under its birth day's key, and the row
names that key (``child_keys.kek_id``, and an audit event's ``terms_key`` for a search naming the
date). The id was a hash of the day under the index key, which is never destroyed: hashing every
day gave back each destroyed child's date of birth, from any old backup and from the live audit,
with the current key file. Now the id is a tag of the day's term-chain state, which the puncture
destroys with the day's keys.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.app import Signpost, build
from handlers.vocabulary import Outcome
from store.keys import keychain
from store.keys.backup import backup
from store.keys.crypto import KeyRing, child_aad
from store.keys.keychain import Chain
from store.keys.rotation import rotate
from store.tables.audit import AuditEvent, AuditTermKey
from store.tables.register import ChildKey
from tests.factories import ready, say
from tests.fuzzy_register import AMELIA, load_fuzzy
from tests.store.keys.test_backup import NOV_2, NOV_3, current_key_material, restored
from tests.store.lifecycle.lifecycle_data import TURNS_24, load, retention_on

BORN = date(2002, 11, 3)  # TURNS_24's date of birth
AMELIA_TYPED = "Amelia Thornton 03/04/2014 M1"
NOBODY_TYPED = "Quentin Zzyzx 05/06/2015"


def day_named(ring: KeyRing, kek: str) -> date | None:
    """Every birth-date id the key file can make, for every day from 1900 to 10 years past the
    horizon, in every way it names days (untagged: generation 0; tagged: its own generations):
    the day whose id is ``kek``, if any."""
    last = keychain.horizon(Chain.DAY, date(2026, 12, 31)) + keychain.TAGS_PAST_HORIZON
    gens = {0, *keychain.generations(ring)}
    for slot in range(last + 1):
        for gen in gens:
            try:
                made = keychain.kek_id(ring, Chain.DAY, gen, slot)
            except KeyError:
                continue  # no tag for that day: nothing to compare
            if made[2:] == kek[2:]:
                return keychain.slot_day(slot)
    return None


async def backed_up_kek(db_url: str, backup_file: Path, child_ref: str) -> str:
    async with restored(db_url, backup_file) as old, old.read() as session:
        found = await session.execute(select(ChildKey.kek_id).where(ChildKey.child_ref == int(child_ref)))
        return str(found.scalar_one())


async def test_an_old_backups_key_id_of_a_child_destroyed_since_names_no_day(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """Backup, then retention destroys the child's cohort: with the key file as it was, the id in the
    backup names her birthday (the attack works); with the key file as it is now, no day's id is
    hers, so the backup does not say when she was born. A tagged id the key file holds no key for
    is still known for a destroyed cohort's (the next retention run destroys such a restored row)."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    kek = await backed_up_kek(db_url, backup_file, TURNS_24)
    assert keychain.chained_ids(signpost.ctx.keys, keychain.generation(signpost.ctx.keys))
    assert day_named(current_key_material(signpost.ctx.keys, NOV_2), kek) == BORN  # control

    await retention_on(signpost, NOV_3)  # her cohort is destroyed

    now = current_key_material(signpost.ctx.keys, NOV_3)
    assert day_named(now, kek) is None
    assert keychain.punctured_day_ids(now, [kek]) == [kek]
    assert keychain.punctured_day_ids(now, [keychain.kek_id(now, Chain.DAY, 1, keychain.day_slot(NOV_3))]) == []


async def test_rotating_a_key_file_from_before_tags_moves_every_child_to_tagged_ids(
    signpost: Signpost, db_url: str
) -> None:
    """A key file made before tags (``cohort_ids_from`` 0) names days under the index key; ``keys
    rotate`` moves the store to tags: every child's key re-wrapped under a tagged id that opens, a
    freshly started process finds a child by name and date, and the key file says so."""
    keys = signpost.ctx.keys
    assert keys.path is not None
    today = signpost.ctx.clock.now().date()
    with keychain.editing(keys) as fresh:
        fresh.cohort_ids_from = 0
    keychain.install(keys, today)
    await load_fuzzy(signpost)
    await ready(signpost, "P002")
    await say(signpost, "P002", NOBODY_TYPED)  # a dated search finding nobody: sealed under its cohort's key
    [searched] = await _cohort_events(signpost)
    assert searched.terms is not None and searched.terms_key is not None
    before = await _child_keys(signpost)
    slot = keychain.day_slot(date(2014, 4, 3))
    assert keychain.kek_id(keys, Chain.DAY, 1, slot) in before.values()  # untagged: the index key's hash
    assert keychain._cohort_tag(keys.index_key, slot) in {kek[2:] for kek in before.values()}

    await rotate(signpost.ctx.db, keys, today)

    fresh_ring = KeyRing.load(keys.path)
    assert fresh_ring.cohort_ids_from == 2
    keychain.install(fresh_ring, today)
    after = await _child_keys(signpost)
    assert after.keys() == before.keys()
    untagged = {keychain._cohort_tag(keys.index_key, s) for s in range(slot - 20 * 366, slot + 20 * 366)}
    for ref, kek in after.items():
        assert kek.startswith("d2") and kek[2:] not in untagged, kek
        assert keychain.chained_ids(fresh_ring, 2) and kek in fresh_ring.keks
        async with signpost.ctx.db.read() as session:
            wrapped = (await session.execute(select(ChildKey.wrapped).where(ChildKey.child_ref == ref))).scalar_one()
        fresh_ring.unwrap(kek, wrapped, child_aad(ref))
    async with signpost.ctx.db.read() as session:
        term_keys = list(await session.execute(select(AuditTermKey.period, AuditTermKey.kek_id)))
        # No row pairs an untagged name (the index key's hash of the day) with a tagged id.
        assert [(period, kek) for period, kek in term_keys if period.startswith("d") and period[1:] != kek[2:]] == []
    restarted = build(signpost.ctx.db, fresh_ring, signpost.ctx.clock)
    try:
        async with restarted.ctx.db.read() as session:  # the event from before still opens, by its old name
            assert await restarted.ctx.sealer.open(session, searched.terms, searched.terms_key) == NOBODY_TYPED
        reply = await say(restarted, "P002", AMELIA_TYPED)  # P002 made ready before the rotation
    finally:
        await restarted.ctx.audit.close()
    assert reply.outcome is Outcome.ANSWERED and reply.child_ref == f"{AMELIA[:3]} {AMELIA[3:6]} {AMELIA[6:]}"


async def _cohort_events(app: Signpost) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        found = await session.execute(select(AuditEvent).where(AuditEvent.terms_key.like("cohort:%")))
        return list(found.scalars())


def test_a_ring_holding_no_tags_calls_no_tagged_id_destroyed(tmp_path: Path) -> None:
    """A key file read but not yet installed holds no tags: it cannot tell a destroyed day's id from
    a live one's, so it calls none destroyed (retention would destroy what it calls so)."""
    ring = KeyRing.generate(tmp_path / "k.key")
    ring.save()
    keychain.ensure_chains(ring, NOV_2)
    live = keychain.kek_id(ring, Chain.DAY, 1, keychain.day_slot(date(2020, 5, 1)))
    loaded = KeyRing.load(tmp_path / "k.key")
    assert keychain.punctured_day_ids(loaded, [live]) == []
    keychain.install(loaded, NOV_2)
    assert keychain.punctured_day_ids(loaded, [live]) == []


async def _child_keys(app: Signpost) -> dict[int, str]:
    async with app.ctx.db.read() as session:
        return {ref: kek for ref, kek in await session.execute(select(ChildKey.child_ref, ChildKey.kek_id))}


def test_a_puncture_forgets_the_tags_of_the_days_it_destroys(tmp_path: Path) -> None:
    """The ring's tags start at the cutoff after a puncture, as a fresh load's do."""
    ring = KeyRing.generate(tmp_path / "k.key")
    ring.save()
    today = NOV_2
    keychain.ensure_chains(ring, today)
    cutoff = keychain.cutoff_of(ring, Chain.DAY)
    assert cutoff is not None and cutoff in ring.day_tags
    keychain.puncture(ring, Chain.DAY, cutoff + 3, today + timedelta(days=3))
    assert min(ring.day_tags) == cutoff + 3
    fresh = KeyRing.load(tmp_path / "k.key")
    keychain.install(fresh, today + timedelta(days=3))
    assert fresh.day_tags == ring.day_tags
