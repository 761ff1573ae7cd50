"""Key rotation: a new generation of key-encryption keys, every wrapped key re-wrapped, the old removed.

``WRAPPED_KEY_TABLES`` is every table that declares ``wrapped_key`` in store/tables (data keys
wrapped with ``KeyRing.wrap``, and the TOTP seeds and parked command texts sealed with it directly),
each with the associated data its rows were wrapped with (``AAD``, by table name: a table declared
there without an entry here fails at import). Rotation, backups' guarantees and decommissioning then
cover it. Rows must be wrapped with ``KeyRing.wrap(data_key, aad)`` so that
``KeyRing.unwrap(kek_id, wrapped, aad)`` opens them.

Rotation replaces the master KEK *and* the birth-date and month key chains (store/keychain.py):
the new generation starts at the same cutoffs, so nothing destroyed comes back. The term chain
(blind-index keys, store/keys/term_keys.py) is carried into the new generation as it is, as the
index key is kept: the stored index stays valid without being rebuilt. Other Signpost
processes hold keys in memory: stop them for a rotation, or restart them right after (until they
do, they fail closed on rows they can no longer unwrap).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import structlog
from sqlalchemy import Table, bindparam, func, or_, select, tuple_, update
from sqlalchemy.sql.elements import ColumnElement

from handlers.vocabulary import Platform, Principal, plural
from store.db import Database
from store.keys import keychain
from store.keys.crypto import KeyRing, child_aad
from store.keys.keychain import generation
from store.people import credentials
from store.tables import wrapped_key_tables

log = structlog.get_logger("signpost.rotation")
BATCH = 1000


@dataclass(frozen=True, slots=True)
class WrappedKeys:
    """A table of wrapped data keys: where the KEK id and the wrapped bytes are, and their aad."""

    table: Table
    kek_id: str
    wrapped: str
    aad: Callable[[Mapping[Any, Any]], bytes]
    # A column naming the row by its KEK's day (``d<tag>``, an audit-terms key's ``period``): renamed
    # with the KEK id when a rotation moves the store to tagged ids, so that no row pairs an untagged
    # name (a hash of the day under the index key, never destroyed) with a tagged id.
    named_by_kek: str | None = None


def _child_key_aad(row: Mapping[Any, Any]) -> bytes:
    return child_aad(int(row["child_ref"]))


def _period_key_aad(row: Mapping[Any, Any]) -> bytes:
    return b"signpost:audit-terms:" + str(row["period"]).encode()


def _seed_aad(row: Mapping[Any, Any]) -> bytes:
    return credentials.seed_aad(str(row["practitioner_id"]))


def _parked_aad(row: Mapping[Any, Any]) -> bytes:
    principal = Principal(Platform(row["platform"]), str(row["tenant"]), str(row["user_id"]))
    return credentials._parked_aad(str(row["challenge_id"]), principal)  # the same bytes parking used


AAD: dict[str, Callable[[Mapping[Any, Any]], bytes]] = {
    "child_keys": _child_key_aad,
    "audit_term_keys": _period_key_aad,
    # TOTP seeds, sealed under the master KEK: left behind, every enrolled person would be locked
    # out by the rotation (and the old KEK could never be removed).
    "totp_credentials": _seed_aad,
    # Commands waiting for a code (their text may name a child). A NULL kek_id (nothing sealed)
    # matches neither filter, so such rows are left alone.
    "parked_commands": _parked_aad,
}

NAMED_BY_KEK = {"audit_term_keys": "period"}

WRAPPED_KEY_TABLES: tuple[WrappedKeys, ...] = tuple(
    WrappedKeys(table, kek_id, wrapped, AAD[table.name], NAMED_BY_KEK.get(table.name))
    for table, kek_id, wrapped in wrapped_key_tables()
)


class RotationFailed(Exception):
    """A wrapped key could not be opened with any known KEK; the old keys were kept."""


@dataclass
class RotationReport:
    old_generation: int
    new_generation: int
    rewrapped: dict[str, int] = field(default_factory=dict)
    finishing: bool = False  # the key file already held this generation: a rotation cut short is finished


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``rotate`` is about to do, told to its ``starting`` callback before the key file changes."""

    generation: int
    finishing: bool  # a rotation to ``generation`` was cut short (the key file holds it and older ones)


def plan(ring: KeyRing) -> Plan:
    """The generation a rotation moves to, from the key file as it is on disk now. A key file holding
    more than one generation is a rotation cut short (a crash, a failure): it is finished, not
    followed by yet another generation."""
    return _plan_of(KeyRing.load(ring.path) if ring.path is not None else ring)


def _plan_of(held: KeyRing) -> Plan:
    current = generation(held)
    if keychain.generations(held) - {current}:
        return Plan(current, finishing=True)
    return Plan(current + 1, finishing=False)


def _in_generation(spec: WrappedKeys, ring: KeyRing, gen: int) -> ColumnElement[bool]:
    col = spec.table.c[spec.kek_id]
    g = keychain.kek_id(ring, keychain.Chain.MONTH, gen, 0)[1]
    return or_(col == f"k{gen}", col.like(f"d{g}%"), col.like(f"m{g}%"))


def kek_ids_of(spec: WrappedKeys, ring: KeyRing, gen: int) -> tuple[ColumnElement[bool], ...]:
    """The KEK ids of generation ``gen`` (as ``_in_generation``), each as a condition an index on the
    KEK id column serves: the master KEK by equality, a derived chain's ids as a range. Signpost's ids
    are lower-case letters and digits only, so ``d<g>`` up to ``d<g>zz…z`` (the column's 16 characters)
    holds exactly those beginning ``d<g>``, in any collation (a LIKE uses no index in most)."""
    col = spec.table.c[spec.kek_id]
    g = keychain.kek_id(ring, keychain.Chain.MONTH, gen, 0)[1]
    last = KEK_ID_LENGTH - 2
    return (col == f"k{gen}", col.between(f"d{g}", f"d{g}{'z' * last}"), col.between(f"m{g}", f"m{g}{'z' * last}"))


KEK_ID_LENGTH = 16  # the KEK id columns' width (store/tables)


async def finished_at(db: Database, ring: KeyRing) -> int | None:
    """The generation the key file on disk is wholly at, when nothing is left to re-wrap into it:
    a rotation to it ran to its last step (``None`` while one is cut short, or keys lag)."""
    held = KeyRing.load(ring.path) if ring.path is not None else ring
    at = _plan_of(held)
    if at.finishing:
        return None
    current = at.generation - 1
    return current if await _left(db, held, WRAPPED_KEY_TABLES, current) == 0 else None


async def rotate(
    db: Database,
    ring: KeyRing,
    today: date,
    tables: tuple[WrappedKeys, ...] = WRAPPED_KEY_TABLES,
    *,
    starting: Callable[[Plan], Awaitable[None]] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> RotationReport:
    """Add the next key generation, re-wrap every registered table, then remove older generations;
    or, when a rotation was cut short, finish it (see ``plan``).

    ``starting`` is awaited with the plan before the key file or any row changes (the caller makes
    its audit event durable there). ``on_total`` is told how many wrapped keys are to be re-wrapped
    (one count, before any is), and ``on_progress`` how many more are done after each batch.
    """
    from store.keys import witness  # it reads this module's tables of wrapped keys

    # The key file's chains must be this store's before a new generation is made from them; the
    # new generation's are recorded right after the key file holds them, before a key is re-wrapped
    # under them (killed in between, the next run's check proves them by those keys: witness).
    await witness.check(db, KeyRing.load(ring.path) if ring.path is not None else ring, today)
    intended = plan(ring)
    if starting is not None:
        await starting(intended)
    new = intended.generation
    with keychain.editing(ring) as fresh:
        if _plan_of(fresh) != intended:
            raise RotationFailed("the key file changed meanwhile (another rotation?): nothing was changed")
        old = min(keychain.generations(fresh), default=new - 1)
        if not intended.finishing:
            fresh.keks[f"k{new}"] = secrets.token_bytes(32)
            fresh.current_kek_id = f"k{new}"
            if not fresh.cohort_ids_from:
                fresh.cohort_ids_from = new  # from here on, birth-date ids are tags (keychain.chained_ids)
            for state in keychain.states(fresh):
                if state.gen == old:
                    keychain.next_generation(fresh, state, new)
    keychain.install(ring, today)
    await witness.check(db, ring, today)
    report = RotationReport(old, new, finishing=intended.finishing)
    if on_total is not None:
        on_total(await _left(db, ring, tables, new))
    for spec in tables:
        report.rewrapped[spec.table.name] = await _rewrap_table(db, ring, spec, new, on_progress)
    await _verify(db, ring, tables, new)
    with keychain.editing(ring) as fresh:
        for entry in list(fresh.keks):
            stale_master = entry.startswith("k") and entry != fresh.current_kek_id
            stale_chain = entry.startswith("~") and _entry_gen(entry) != new
            if stale_master or stale_chain:
                del fresh.keks[entry]
    keychain.install(ring, today)
    await witness.forget_except(db, new)
    log.info("keys_rotated", generation=new, **report.rewrapped)
    return report


def _entry_gen(entry: str) -> int:
    return int(entry.split(":")[1])  # "~<chain>:<gen>:<cutoff>"


async def _left(db: Database, ring: KeyRing, tables: tuple[WrappedKeys, ...], gen: int) -> int:
    """Wrapped keys not yet under generation ``gen``, in every table."""
    async with db.read() as session:
        total = 0
        for spec in tables:
            total += (
                await session.execute(
                    select(func.count()).select_from(spec.table).where(~_in_generation(spec, ring, gen))
                )
            ).scalar_one()
    return total


async def _rewrap_table(
    db: Database, ring: KeyRing, spec: WrappedKeys, gen: int, on_progress: Callable[[int], None] | None = None
) -> int:
    table = spec.table
    pk = [c.name for c in table.primary_key.columns]
    kek_col = table.c[spec.kek_id]
    stmt = (
        update(table)
        .where(*(table.c[name] == bindparam(f"pk_{name}") for name in pk), kek_col == bindparam("old_kek"))
        .values(
            {
                spec.kek_id: bindparam("new_kek"),
                spec.wrapped: bindparam("new_wrapped"),
                **({spec.named_by_kek: bindparam("new_name")} if spec.named_by_kek else {}),
            }
        )
    )
    done = 0
    move = keychain.mover(ring, gen)
    # Each batch reads on from the last one's key (reading from the start each time walked past every
    # row already re-wrapped: quadratic); a batch finding nothing past it reads from the start once
    # more, for a row written under the old generation meanwhile, and only an empty one from the start ends.
    after: tuple[Any, ...] | None = None
    pk_cols = [table.c[name] for name in pk]
    while True:
        async with db.write() as session:
            query = select(table).where(~_in_generation(spec, ring, gen))
            if after is not None:
                past = pk_cols[0] > after[0] if len(pk_cols) == 1 else tuple_(*pk_cols) > tuple_(*after)
                query = query.where(past)
            rows = (await session.execute(query.order_by(*pk_cols).limit(BATCH))).mappings().all()
            if not rows:
                if after is None:
                    return done
                after = None
                continue
            after = tuple(rows[-1][name] for name in pk)
            params = [_rewrapped(ring, spec, row, pk, gen, move) for row in rows]
            await session.execute(stmt, params)
            done += len(params)
        if on_progress is not None:  # after the batch's commit
            on_progress(len(params))


def _rewrapped(
    ring: KeyRing, spec: WrappedKeys, row: Mapping[Any, Any], pk: list[str], gen: int, move: Callable[[str], str]
) -> dict[str, Any]:
    old_id: str = row[spec.kek_id]
    new_id = move(old_id) if keychain.is_derived(old_id) else f"k{gen}"
    if new_id not in ring.keks and keychain.is_derived(old_id):
        # Its cohort's key is destroyed: a child retention destroyed, in a store restored from a
        # backup taken before. Retention finishes that destruction (rotation does not destroy).
        raise RotationFailed(
            f"{spec.table.name}: a key under a birth-date key already destroyed ({new_id[:2]}…): this store "
            "still holds a child retention has destroyed (restored from a backup taken before?). Run "
            "`signpost retention run` first, which finishes that destruction, then `signpost keys rotate` again"
        )
    if new_id not in ring.keks:
        raise RotationFailed(f"{spec.table.name}: no key for {new_id[:2]}… in the new generation")
    try:
        data_key = ring.unwrap(old_id, row[spec.wrapped], spec.aad(row))
    except Exception:
        raise RotationFailed(f"{spec.table.name}: a wrapped key could not be opened; old keys kept") from None
    renamed: dict[str, Any] = {}
    if spec.named_by_kek:
        name = row[spec.named_by_kek]
        renamed = {spec.named_by_kek: "d" + new_id[2:] if name == "d" + old_id[2:] else name}
    wrapped = keychain.wrap_under(ring, new_id, data_key, spec.aad({**row, **renamed}))
    return {
        **{f"pk_{name}": row[name] for name in pk},
        "old_kek": old_id,
        "new_kek": new_id,
        "new_wrapped": wrapped,
        **({"new_name": renamed[spec.named_by_kek]} if spec.named_by_kek else {}),
    }


async def _verify(db: Database, ring: KeyRing, tables: tuple[WrappedKeys, ...], gen: int) -> None:
    async with db.read() as session:
        for spec in tables:
            left = (
                await session.execute(
                    select(func.count()).select_from(spec.table).where(~_in_generation(spec, ring, gen))
                )
            ).scalar_one()
            if left:
                raise RotationFailed(
                    f"{spec.table.name}: {plural(left, 'key')} still under the old generation; old keys kept"
                )
