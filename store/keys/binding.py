"""Which key file belongs to this store: checked once, when a process opens the store.

A key file that does not belong to the store (or none at all, so that a new one would be made)
cannot open anything sealed in it; left unchecked, the process starts and its first lookup fails
with a decryption error. So the store keeps a **fingerprint** of its key file's identity in
``meta``: an HMAC of a fixed label under the blind-index key. It is no key and reveals nothing
about the keys (a keyed hash of a constant), and it survives ``signpost keys rotate``, which
replaces every key-encryption key but keeps the index key (the blind indexes depend on it).

- A missing key file is created only for a store that holds nothing sealed yet (no wrapped key,
  no child, no fingerprint): a fresh store, as ``make run`` makes.
- The fingerprint is recorded by the first key file that opens the store (for a store written
  before it existed: once one of its wrapped keys is seen to be this file's), and compared on
  every open after that.
- A backup restored beside a key file rotated since needs a generation the file no longer holds:
  its wrapped keys tell which generation the store is under. One of each table is read; when none
  of those is under a generation the file holds, one that is is looked for by an indexed read, and
  only a store with wrapped keys of which none is refuses the file. A key a replica that served
  through a rotation sealed under the old generation (store/keys/unheld.py) is then never the one
  that refuses a store whose other keys are this file's: `db check` counts it, and its remedy
  (`signpost totp reset`) runs.
- The fingerprint is of the index key, which a key file whose birth-date, search-term or month chain
  is wrong (damaged, edited by hand) keeps: each chain is checked against the store's witness of it
  (store/keys/witness.py), which ``bind`` records beside the fingerprint.
- A key file emptied by decommissioning holds no key: it is accepted only by a store that holds no
  wrapped key any more and whose destruction has begun. Decommissioning commits their deletion
  before it empties the key file, so a destruction killed in between is still opened, and
  finished, by its own key file (full or empty). Any other store (a new empty one after `make
  clean`, say) refuses it: taken, it could seal nothing, and the first child stopped on NoTermKey.
  One that still holds wrapped keys is told so in words that fit both what it may be: another
  store, or a backup of the decommissioned store taken before its destruction (``EMPTIED_SEALED``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database, dialect_insert
from store.keys import keychain, witness
from store.keys.crypto import DecryptionError, KeyRing
from store.keys.rotation import WRAPPED_KEY_TABLES, WrappedKeys, kek_ids_of
from store.keys.unheld import held
from store.tables.lifecycle import Decommission, Meta
from store.tables.register import Child

FINGERPRINT = "key_file_fingerprint"
"""Meta key: the fingerprint of the key file this store belongs to (hex)."""
# A NUL never occurs in a normalised search term, so no blind-index value is this HMAC.
_LABEL = b"\x00signpost:key-file-identity:v1"


class KeyFileRefused(Exception):
    """This key file cannot open this store; the message is one line for the operator."""


MISSING = (
    "does not exist, but this store was sealed under another key file and a new one cannot open it: "
    "restore the key file that belongs to this store (nothing was created)"
)
EMPTIED = (
    "holds no key any more: they were destroyed at decommissioning (it keeps only the public key that "
    "verifies its own store's certificate), so it cannot serve this store: move it aside, keeping it, "
    "and start again (a new store gets a new key file)"
)
NOT_OURS = "does not belong to this store (it was sealed under another key file): use the key file kept with it"
# An emptied key file beside a store that still holds wrapped keys: nothing tells whose they are
# (the emptied file keeps no index key to compare the fingerprint with), and the likeliest store is
# the decommissioned one's own backup, which no key file can open any more: never sent to look for one.
EMPTIED_SEALED = (
    "holds no key any more (they were destroyed at decommissioning), and this store holds records sealed under "
    "keys it cannot open. If this store is another one, use its own key file. If it is a backup of the "
    "decommissioned store taken before its destruction, nothing can read its sealed records now: delete that "
    "backup wherever it is kept, as the decommissioning's completion message says"
)


def fingerprint(ring: KeyRing) -> str:
    """The key file's identity as the store records it: a keyed hash of a constant, never a key."""
    return hmac.new(ring.index_key, _LABEL, hashlib.sha256).hexdigest()


async def open_key_file(db: Database, path: Path, today: date) -> KeyRing:
    """The key file at ``path``, checked against the store (created only for a fresh store)."""
    if not path.exists():
        async with db.read() as session:
            if await _holds_sealed(session):
                raise KeyFileRefused(MISSING)
    ring = KeyRing.load_or_create(path)
    await bind(db, ring, today)
    return ring


async def bind(db: Database, ring: KeyRing, today: date, *, record: bool = True, accept: bool = False) -> None:
    """Refuse a key file that is not this store's, or that lacks the generation the store is under,
    or whose key chains are not the store's (``store.keys.witness``); record the fingerprint and the
    chains' witnesses when the store has none yet (``record`` False: a read-only check). ``accept``:
    the operator's word for chains nothing stored can check (``witness.UNCHECKABLE``)."""
    async with db.read() as session:
        recorded = await _recorded(session)
        if keychain.emptied(ring):
            if await _holds_wrapped(session):
                raise KeyFileRefused(EMPTIED_SEALED)
            if not await _destruction_begun(session):
                raise KeyFileRefused(EMPTIED)
            return
        if another_stores(recorded, ring):
            raise KeyFileRefused(NOT_OURS)
        probes = await _probes(session)
        readable = [(spec, row) for spec, row in probes if held(ring, str(row[spec.kek_id]))]
        if probes and not readable:
            readable = await _held_rows(session, ring)
    if probes and not readable:
        _check_generation(ring, probes)  # the store is under a generation the key file does not hold
    probes = readable or probes
    if recorded is None:
        if not record:
            return  # nothing is recorded: `db check` says so (no chain has a witness either)
        _prove(ring, probes, today)
        await _record(db, ring)
    try:
        await witness.check(db, ring, today, record=record, accept=accept)
    except witness.ChainsNotOurs as refused:
        raise KeyFileRefused(str(refused)) from None


def another_stores(recorded: str | None, ring: KeyRing) -> bool:
    """Whether ``ring`` is another store's key file, by the ``recorded`` fingerprint (None: none
    recorded yet, so nothing says it is). A rotated key file is still its store's own; one emptied
    by decommissioning has no index key left to tell by (``bind`` judges it by what the store holds)."""
    if keychain.emptied(ring):
        return False
    return recorded is not None and not hmac.compare_digest(recorded, fingerprint(ring))


async def _recorded(session: AsyncSession) -> str | None:
    return (await session.execute(select(Meta.value).where(Meta.key == FINGERPRINT))).scalar()


async def recorded_fingerprint(db: Database) -> str | None:
    """The fingerprint of the key file the store records as its own (None: none recorded yet)."""
    async with db.read() as session:
        return await _recorded(session)


async def _holds_wrapped(session: AsyncSession) -> bool:
    for spec in WRAPPED_KEY_TABLES:
        if (await session.execute(select(spec.table.c[spec.kek_id]).limit(1))).first() is not None:
            return True
    return False


async def _destruction_begun(session: AsyncSession) -> bool:
    """Whether this store's decommissioning has begun destroying (so its key file may be emptied)."""
    begun = select(Decommission.id).where(Decommission.state.in_(("destroying", "destroyed"))).limit(1)
    return (await session.execute(begun)).first() is not None


async def _holds_sealed(session: AsyncSession) -> bool:
    """Whether anything in the store was sealed under a key file (so only that one can open it)."""
    if await _recorded(session) is not None or await _holds_wrapped(session):
        return True
    return (await session.execute(select(Child.ref).limit(1))).first() is not None


async def _probes(session: AsyncSession) -> list[tuple[WrappedKeys, dict[str, Any]]]:
    """The first wrapped key of each table that holds any (a rotation moves them all, so one tells,
    unless it is one a stale replica sealed: ``_held_rows``)."""
    found = []
    for spec in WRAPPED_KEY_TABLES:
        kek = spec.table.c[spec.kek_id]
        row = (await session.execute(select(spec.table).where(kek.is_not(None)).limit(1))).mappings().first()
        if row is not None:
            found.append((spec, dict(row)))
    return found


async def _held_rows(session: AsyncSession, ring: KeyRing) -> list[tuple[WrappedKeys, dict[str, Any]]]:
    """One wrapped key under a generation the key file holds, of each table that has one: the first
    rows read (``_probes``) can all be ones a replica that served through a rotation sealed under
    the old generation (store/keys/unheld.py), in a store whose every other key is this file's."""
    found = []
    for spec in WRAPPED_KEY_TABLES:
        row = await _held_row(session, spec, ring)
        if row is not None:
            found.append((spec, row))
    return found


async def _held_row(session: AsyncSession, spec: WrappedKeys, ring: KeyRing) -> dict[str, Any] | None:
    """At most three reads a generation held (one or two), each served by the index on the KEK id
    (``kek_ids_of``: an equality or a range; the tables without one are small)."""
    for gen in sorted(keychain.generations(ring), reverse=True):
        for ids in kek_ids_of(spec, ring, gen):
            row = (await session.execute(select(spec.table).where(ids).limit(1))).mappings().first()
            if row is not None:
                return dict(row)
    return None


def _check_generation(ring: KeyRing, probes: list[tuple[WrappedKeys, dict[str, Any]]]) -> None:
    held = keychain.generations(ring)
    current = keychain.generation(ring)
    for spec, row in probes:
        needed = keychain.generation_of(str(row[spec.kek_id]), current)
        if needed is None or needed in held:
            continue
        if needed < current:
            raise KeyFileRefused(
                f"is at key generation {current}; this store needs key generation {needed}, which the key file "
                "no longer holds: restore the key file kept with this backup"
            )
        raise KeyFileRefused(
            f"is at key generation {current}; this store needs key generation {needed}, which the key file "
            "does not hold yet: use the key file as it was after that rotation"
        )


def _prove(ring: KeyRing, probes: list[tuple[WrappedKeys, dict[str, Any]]], today: date) -> None:
    """Before recording a fingerprint for a store that predates it: its wrapped keys must be this
    key file's. A key held here must open; a birth-date cohort's id carries a keyed hash of its
    day, which only this file's index key reproduces (even once that day's key is destroyed)."""
    keychain.install(ring, today)  # derive only: a key file that is not this store's is left as it was
    for spec, row in probes:
        kek = str(row[spec.kek_id])
        if kek in ring.keks:
            try:
                ring.unwrap(kek, row[spec.wrapped], spec.aad(row))
            except DecryptionError:
                raise KeyFileRefused(NOT_OURS) from None
        elif kek[:1] == "d" and not _cohort_of_this_file(ring, kek, today):
            raise KeyFileRefused(NOT_OURS)


def _cohort_of_this_file(ring: KeyRing, kek: str, today: date) -> bool:
    """An untagged id (``keychain.chained_ids``) of any day up to the horizon, or a tagged id of a
    day whose keys are held (a tagged id of a destroyed day names nothing this file can make)."""
    if kek[2:] in ring.day_tags.values():
        return True
    last = keychain.horizon(keychain.Chain.DAY, today)
    return any(keychain.kek_id(ring, keychain.Chain.DAY, 0, slot)[2:] == kek[2:] for slot in range(last + 1))


async def _record(db: Database, ring: KeyRing) -> None:
    """Record the fingerprint once; two processes opening a fresh store at once agree or one is refused."""
    async with db.write() as session:
        insert = dialect_insert(session)
        await session.execute(
            insert(Meta).values(key=FINGERPRINT, value=fingerprint(ring)).on_conflict_do_nothing(index_elements=["key"])
        )
        recorded = await _recorded(session)
    if recorded is None or not hmac.compare_digest(recorded, fingerprint(ring)):
        raise KeyFileRefused(NOT_OURS)
