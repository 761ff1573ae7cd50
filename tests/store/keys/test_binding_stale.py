"""The key binding at start (store/keys/binding.py) proves the store is under a generation the key
file holds, whatever wrapped key it reads first: a key a stale replica sealed (store/keys/unheld.py)
never refuses a store holding one of the file's own."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.clock import FakeClock
from store.db import Database
from store.keys.binding import KeyFileRefused, bind
from store.keys.crypto import KeyRing
from store.keys.rotation import WRAPPED_KEY_TABLES, rotate
from store.people import credentials
from store.register.feeds import Feed, import_feeds
from tests.factories import PRACTITIONERS


async def test_the_key_file_binds_though_the_first_key_of_every_table_is_one_a_stale_replica_sealed(
    db: Database, keys: KeyRing, clock: FakeClock, tmp_path: Path
) -> None:
    """A store holding only authenticators, the first of them sealed by a replica that kept the old
    generation through a rotation, the next by the rotated key file: it binds (an indexed read finds
    the held one); once the held one is gone, none is the file's and it is refused, as a backup
    restored beside a key file rotated since is."""
    await import_feeds(db, keys, [Feed("practitioners.csv", PRACTITIONERS)], clock.now())
    assert keys.path is not None
    stale = tmp_path / "replica.key"
    shutil.copy(keys.path, stale)
    await rotate(db, keys, clock.now().date())
    async with db.write() as session:
        await credentials.enrol(session, KeyRing.load(stale), "P003", secrets.token_bytes(20), clock.now())
    async with db.write() as session:
        await credentials.enrol(session, KeyRing.load(keys.path), "P001", secrets.token_bytes(20), clock.now())
    async with db.read() as session:  # so the first key read of every table holding any is the stale one
        counts = {
            spec.table.name: await session.scalar(select(func.count()).select_from(spec.table))
            for spec in WRAPPED_KEY_TABLES
        }
    assert {name for name, n in counts.items() if n} == {"totp_credentials"}, counts
    await bind(db, KeyRing.load(keys.path), clock.now().date())
    async with db.write() as session:
        await credentials.reset(session, "P001")
    with pytest.raises(KeyFileRefused, match="needs key generation 1, which the key file no longer holds"):
        await bind(db, KeyRing.load(keys.path), clock.now().date())
