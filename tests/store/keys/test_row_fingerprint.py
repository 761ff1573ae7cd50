"""A child's import fingerprint (``children.row_mac``) dies with its cohort, as its full-date terms do.

The fingerprint is a keyed hash of the whole feed row, date of birth included. Under the index key
(which lives until decommissioning) someone holding a backup taken before a child's destruction and
the key file as it is afterwards could confirm a guess of that child's row for good (forensic review).
"""

from __future__ import annotations

import hmac
from pathlib import Path

from sqlalchemy import select, update

from bot.app import Signpost
from store.keys import keychain
from store.keys.backup import backup
from store.keys.crypto import KeyRing
from store.register import children
from store.register.children import ChildRow, feed_row_mac
from store.tables.register import Child
from tests.factories import AMY, load_standard
from tests.store.keys.test_backup import NOV_2, NOV_3, current_key_material, restored
from tests.store.keys.test_backup_terms import every_key
from tests.store.lifecycle.lifecycle_data import TURNS_24, load, retention_on


def confirms(ring: KeyRing, guess: ChildRow, held: bytes) -> bool:
    """Whether any key the key file yields (index key, every term key) turns ``guess`` into ``held``."""
    message = b"row:" + guess.canonical().encode()
    return any(hmac.digest(key, message, "sha256")[:16] == held for key in every_key(ring))


async def test_an_old_backups_fingerprint_cannot_confirm_a_destroyed_childs_row(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """Backup, then the child's cohort is destroyed: with the key file as it is then, the child's
    exact row (the best guess there is) no longer matches its fingerprint in the backup under any
    key; with the key file of backup time it did."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    assert signpost.ctx.keys.path is not None
    then = KeyRing.load_or_create(signpost.ctx.keys.path)
    keychain.install(then, NOV_2)
    async with restored(db_url, backup_file) as old, old.read() as session:
        child = await session.get(Child, int(TURNS_24))
        assert child is not None and child.row_mac is not None
        identity = (await children.load_identities(session, then, [int(TURNS_24)]))[int(TURNS_24)]
    guess = ChildRow(int(TURNS_24), identity, child.local_authority, child.shielded)
    assert confirms(then, guess, child.row_mac)  # control: the attack works while the cohort lives
    await retention_on(signpost, NOV_3)
    assert not confirms(current_key_material(signpost.ctx.keys, NOV_3), guess, child.row_mac)


async def test_a_row_fingerprinted_under_the_index_key_is_not_rewritten_by_the_next_import(
    signpost: Signpost,
) -> None:
    """A store written before (fingerprints under the index key): importing the same feed again
    changes no child, and moves its fingerprint under the birth day's key."""
    await load_standard(signpost)
    keys = signpost.ctx.keys
    async with signpost.ctx.db.write() as session:
        child = await session.get(Child, int(AMY))
        assert child is not None
        identity = (await children.load_identities(session, keys, [int(AMY)]))[int(AMY)]
        row = ChildRow(int(AMY), identity, child.local_authority, child.shielded)
        legacy = hmac.digest(keys.index_key, b"row:" + row.canonical().encode(), "sha256")[:16]
        await session.execute(update(Child).where(Child.ref == int(AMY)).values(row_mac=legacy))
        sealed, dated = child.identity, child.updated_at
    signpost.ctx.clock.advance(hours=1)  # type: ignore[attr-defined]
    report = await load_standard(signpost)
    assert report.changed["children"] == 0
    async with signpost.ctx.db.read() as session:
        after = (
            await session.execute(select(Child.identity, Child.updated_at, Child.row_mac).where(Child.ref == int(AMY)))
        ).one()
    assert (after.identity, after.updated_at) == (sealed, dated)
    assert after.row_mac == feed_row_mac(keys, row) != legacy
