"""A backup taken before a destruction, restored with the key file as it is afterwards (README,
"Backups": "or a later copy of it"), must not keep the destroyed child's rows alive: retention on the
restored store finishes the destruction (the child's cohort key is already gone, so the blind index
cannot find it, but its rows are still there: involvements in clear by reference)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import Signpost
from store.db import Database
from store.keys.backup import backup
from store.keys.crypto import DecryptionError, KeyRing, child_aad
from store.keys.rotation import rotate
from store.keys.unheld import under_destroyed
from store.lifecycle import retention
from store.register import children
from store.tables.register import Child, ChildKey, ChildTerm, Involvement
from tests.access_helpers import search_as
from tests.store.keys.test_backup import current_key_material, restored
from tests.store.lifecycle.lifecycle_data import MARKER, TURNS_18, TURNS_24, at, load, retention_on, scalar

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)


async def test_retention_on_a_restored_old_backup_destroys_the_child_destroyed_since(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    await retention_on(signpost, NOV_3)  # TURNS_24 destroyed in the live store, its cohort key punctured
    keys = current_key_material(signpost.ctx.keys, NOV_3)
    async with restored(db_url, backup_file) as old:
        for day in (NOV_3, NOV_3 + timedelta(days=1)):
            await retention.run(old, keys, at(day))
        async with old.read() as session:
            state = (await session.execute(select(Child.state).where(Child.ref == int(TURNS_24)))).scalar_one()
            involvements = (
                await session.execute(
                    select(func.count()).select_from(Involvement).where(Involvement.child_ref == int(TURNS_24))
                )
            ).scalar_one()
            wrapped = await session.get(ChildKey, int(TURNS_24))
        assert (state, involvements, wrapped is None) == ("destroyed", 0, True)


async def held_keys(db: Database) -> dict[int, str]:
    """Every wrapped data key's KEK id, by child."""
    async with db.read() as session:
        return {ref: kek for ref, kek in (await session.execute(select(ChildKey.child_ref, ChildKey.kek_id))).all()}


async def test_the_dry_run_counts_the_child_a_restored_backup_brought_back_as_the_run_destroys_it(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """`retention run --dry-run` on the restored store counts the destroyed-since child among those
    to destroy (its birth-date key is gone, so the blind index cannot count it), and the run then
    destroys exactly what the dry run said; a dry run afterwards has nothing left to count."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    await retention_on(signpost, NOV_3)
    keys = current_key_material(signpost.ctx.keys, NOV_3)
    async with restored(db_url, backup_file) as old:
        said = await retention.preview(old, keys, NOV_3, NOV_3)
        done = await retention.run(old, keys, at(NOV_3))
        after = await retention.preview(old, keys, NOV_3, NOV_3)
        state = await scalar(old, "SELECT state FROM children WHERE ref = :r", r=int(TURNS_24))
    assert (said.archived, said.destroyed) == (done.archived, done.destroyed) == (1, 1)
    assert "1 would be destroyed at 24" in said.summary() and "1 was destroyed at 24" in done.summary()
    assert (after.destroyed, state) == (0, "destroyed")


async def test_a_backup_from_before_a_rotation_loses_only_the_punctured_cohort(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """A backup taken before `keys rotate`, restored beside the rotated and punctured key file: none
    of its data keys is under a key the file holds. Retention destroys the child whose cohort is
    punctured (an id of the old generation names it as well) and no other: a child of a cohort still
    kept keeps its wrapped key, though no key in the file opens it now. (Signpost refuses to start on
    such a store; this holds retention's own rule: only a punctured cohort is proof of 24.)"""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    await rotate(signpost.ctx.db, signpost.ctx.keys, NOV_2)
    await retention_on(signpost, NOV_3)
    keys = current_key_material(signpost.ctx.keys, NOV_3)
    async with restored(db_url, backup_file) as old:
        before = await held_keys(old)
        assert not set(before.values()) & set(keys.keks)  # nothing in the backup opens with this key file
        report = await retention.run(old, keys, at(NOV_3))
        after = await held_keys(old)
        states = await child_states(old)
    assert report.destroyed == 1 and states[int(TURNS_24)] == "destroyed"
    assert after == {ref: kek for ref, kek in before.items() if ref != int(TURNS_24)}
    assert states[int(TURNS_18)] == "archived"  # its 18th birthday, found through the blind index as ever


async def child_states(db: Database) -> dict[int, str]:
    async with db.read() as session:
        return {ref: state for ref, state in (await session.execute(select(Child.ref, Child.state))).all()}


async def index_rows_of(db: Database, child: str) -> int:
    async with db.read() as session:
        counted = select(func.count()).select_from(ChildTerm).where(ChildTerm.child_ref == int(child))
        return int((await session.execute(counted)).scalar_one())


async def test_a_child_a_restored_backup_brought_back_leaves_no_index_row_in_the_store(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """The orphan's blind-index rows cannot be recomputed (its birth-date key is gone), yet those
    keyed by its birth year stay testable with the current key file until that year's last cohort
    is destroyed: the run that destroys it deletes every index row naming it, and no other child's."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    await retention_on(signpost, NOV_3)
    keys = current_key_material(signpost.ctx.keys, NOV_3)
    async with restored(db_url, backup_file) as old:
        assert await index_rows_of(old, TURNS_24) > 0
        others = await index_rows_of(old, TURNS_18)
        await retention.run(old, keys, at(NOV_3))
        assert (await index_rows_of(old, TURNS_24), await index_rows_of(old, TURNS_18)) == (0, others)


class Killed(BaseException):
    """The process dying at this point: nothing of ours catches it (as nothing runs after a kill -9)."""


async def test_a_run_killed_after_deleting_an_orphans_index_rows_is_finished_by_the_next(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """Killed as it destroys the child (its index rows already gone, its destruction not committed),
    the run leaves the child with its wrapped key, so the next run still finds and destroys it."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    await retention_on(signpost, NOV_3)
    keys = current_key_material(signpost.ctx.keys, NOV_3)

    async def dies(session: object, detail: str, archived: int, destroyed: int) -> None:
        raise Killed

    async with restored(db_url, backup_file) as old:
        with pytest.raises(Killed):
            await retention.run(old, keys, at(NOV_3), audit_step=dies)
        assert await index_rows_of(old, TURNS_24) == 0
        assert (await child_states(old))[int(TURNS_24)] == "archived" and int(TURNS_24) in await held_keys(old)
        report = await retention.run(old, keys, at(NOV_3))
        assert report.destroyed == 1 and (await child_states(old))[int(TURNS_24)] == "destroyed"
        assert int(TURNS_24) not in await held_keys(old)


async def test_a_backup_restored_with_the_key_file_of_its_day_is_destroyed_again_by_the_next_run(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """A host put back from its own backup brings the store and the key file of that day together
    (README: the key file is to be kept out of backups, but a host backup takes both). The pair
    opens the child destroyed since, as it did that day; the next run on it (days due since the
    backup) destroys it again and punctures the restored key file, which from then on opens that
    child in no copy: the store's rows nor the backup's wrapped key and identity."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file, key_then = tmp_path / "host.backup", tmp_path / "host.key"
    await backup(signpost.ctx.db, backup_file)
    assert signpost.ctx.keys.path is not None
    shutil.copyfile(signpost.ctx.keys.path, key_then)
    await retention_on(signpost, NOV_3)  # TURNS_24 destroyed in the live store, its cohort key punctured
    async with restored(db_url, backup_file) as old:
        async with old.read() as session:
            sealed = (
                await session.execute(
                    select(Child.identity, ChildKey.kek_id, ChildKey.wrapped)
                    .join(ChildKey, ChildKey.child_ref == Child.ref)
                    .where(Child.ref == int(TURNS_24))
                )
            ).one()
            paired = current_key_material(KeyRing.load(key_then), NOV_3)
            assert (await children.load_identities(session, paired, [int(TURNS_24)]))[
                int(TURNS_24)
            ].family_name == MARKER
        report = await retention.run(old, paired, at(NOV_3))
        assert report.destroyed == 1 and (await child_states(old))[int(TURNS_24)] == "destroyed"
        assert int(TURNS_24) not in await held_keys(old)
    afterwards = current_key_material(KeyRing.load(key_then), NOV_3)
    with pytest.raises(DecryptionError):
        afterwards.unwrap(sealed.kek_id, sealed.wrapped, child_aad(int(TURNS_24)))


async def test_a_searchs_cohort_terms_key_a_restored_backup_brought_back_goes_with_the_child(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """A search naming a date of birth seals its terms under that day's cohort terms key (a row of
    audit_term_keys wrapped under the birth-date key). Restored from a backup taken before the cohort
    was destroyed, retention destroyed the child but left that row: `signpost db check` kept saying
    "audit_term_keys: 1 wrapped key under a birth-date key retention has destroyed … `signpost
    retention run` finishes the destruction" after every run, and the store was never to be trusted.
    The run that destroys what the backup brought back takes every row under such a key."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    searched = await search_as(signpost, "P001", f"Tara {MARKER} 03/11/2002")  # TURNS_24's date of birth
    assert searched.outcome.value == "no_match"  # archived: not shown, but its terms are sealed by that date
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    await retention_on(signpost, NOV_3)  # TURNS_24 destroyed in the live store, its cohort key punctured
    keys = current_key_material(signpost.ctx.keys, NOV_3)
    async with restored(db_url, backup_file) as old:
        assert {d.table for d in await under_destroyed(old, keys, NOV_3)} == {"child_keys", "audit_term_keys"}
        report = await retention.run(old, keys, at(NOV_3))
        assert report.destroyed == 1 and (await child_states(old))[int(TURNS_24)] == "destroyed"
        assert await under_destroyed(old, keys, NOV_3) == []
