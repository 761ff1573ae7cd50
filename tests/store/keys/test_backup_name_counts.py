"""Name counts in an old backup, compared with the store after, give back no destroyed child's names
once its birth year's key is gone (forensic review).

The attack: the counts that went down between a backup taken before a destruction and the store
afterwards are the destroyed children's names (blind terms); tried against a list of names under
every key the current key file yields, they gave back those names for as long as the index key
lived (until decommissioning). Counted under birth-year term keys they stop answering when the
year's last cohort is destroyed, as the year-keyed index terms do (README: up to a year).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.app import Signpost
from store.keys.backup import backup
from store.keys.crypto import KeyRing
from store.register.terms import family_count_key, given_count_key
from store.tables.register import NameCount
from tests.store.keys.test_backup import NOV_2, NOV_3, current_key_material, restored
from tests.store.keys.test_backup_terms import FAMILY, GIVEN, YEAR_GONE, every_key
from tests.store.lifecycle.lifecycle_data import MARKER, load, retention_on

NAMES = [given_count_key(name) for name in GIVEN] + [family_count_key(name) for name in [*FAMILY, MARKER.upper()]]


def recovered(ring: KeyRing, gone: set[int]) -> set[str]:
    """The listed names whose blind count term, under any key the key file yields, is among ``gone``."""
    return {name for name in NAMES for key in every_key(ring) if ring.term_keys.blind(key, name) in gone} | {
        name for name in NAMES if ring.blind(name) in gone
    }


async def counts(signpost: Signpost) -> dict[int, int]:
    async with signpost.ctx.db.read() as session:
        return dict((await session.execute(select(NameCount.term, NameCount.children))).all())


async def test_old_counts_against_new_give_back_no_destroyed_childs_names_after_its_year(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """Backup, destroy Tara (born 3 November 2002), compare: the counts that went down are hers.
    With the key file of backup time they give back TARA and her family name; with the key file
    after her cohort they still do (her year's key lives until 31 December 2026's cohort goes);
    once her year is destroyed, nothing."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    async with restored(db_url, backup_file) as old, old.read() as session:
        before = dict((await session.execute(select(NameCount.term, NameCount.children))).all())
    assert signpost.ctx.keys.path is not None
    then = current_key_material(signpost.ctx.keys, NOV_2)
    await retention_on(signpost, NOV_3)
    after = await counts(signpost)
    gone = {term for term, n in before.items() if after.get(term, 0) < n}
    tara = {given_count_key("TARA"), family_count_key(MARKER.upper())}
    assert recovered(then, gone) == tara  # control: the attack finds what it looks for
    assert recovered(current_key_material(signpost.ctx.keys, NOV_3), gone) == tara  # the year's window
    while (await retention_on(signpost, YEAR_GONE)).pending_days:
        pass
    assert recovered(current_key_material(signpost.ctx.keys, YEAR_GONE), gone) == set()
