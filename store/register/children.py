"""Children: encrypted identity, blind-index terms, and the signposts of their involvements."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, cast

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    LargeBinary,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Signpost
from store.audit import candidates as possible_matches
from store.db import Database, send_begin
from store.keys import keychain
from store.keys.crypto import (
    KeyRing,
    WrappedKey,
    child_aad,
    child_terms_aad,
    legacy_row_mac,
    new_data_key,
    open_sealed,
    relay_aad,
    row_mac,
    seal,
)
from store.keys.term_keys import TermKeys
from store.people import lead
from store.prepared import Prepared
from store.register import name_counts
from store.register.current import as_of
from store.register.current import current as involvement_current
from store.register.terms import FULL_DATE_KINDS, TERMS_VERSION, Identity, NameCounts, index_terms, keyed_by, term_kind
from store.tables.lifecycle import Meta
from store.tables.people import AccessRequest, Practitioner, RelayMessage
from store.tables.register import Child, ChildKey, ChildTerm, Involvement

log = structlog.get_logger("signpost.register")

TERMS_TABLE = cast(Table, ChildTerm.__table__)  # Core table: executemany, not the ORM's per-row path

# New children's blind terms on their way in during an import on SQLite: a temporary table of the
# importing connection, without an index, so it is appended to in feed order. The terms are random
# 64-bit keys: written straight into child_terms (a B-tree on (term, child_ref)) each insert lands
# on a random page, and once the index outgrows the page cache (past about a million children)
# every chunk rewrites pages all over it. ``merge_staged_terms`` inserts them once, in index order,
# at the end of the import's transaction. A TEMP table lives in SQLite's temporary database (a file
# unlinked as it is opened, or memory), never in the store file: its creation rolls back with the
# import, ``merge_staged_terms`` drops it before the commit, and a crash leaves nothing behind.
# On its own MetaData like the involvements stage, so that retention, decommissioning and key
# rotation (which derive their tables from store/tables) never see it.
TERMS_STAGE = Table(
    "import_terms",
    MetaData(),
    Column("term", BigInteger),
    Column("child_ref", BigInteger),
    prefixes=["TEMPORARY"],
)

# Bound the IN lists we send, for SQLite's variable limit and PostgreSQL's plan cache alike.
CHUNK = 500
# Children written per executemany round by the bulk path.
BULK_CHUNK = 5000
# A batch probe's IN list: well under SQLite's (32,766) and asyncpg's (32,767) bound parameters.
BATCH_TERMS = 12000


@dataclass(frozen=True, slots=True)
class ChildRow:
    """A validated row of the children feed."""

    ref: int
    identity: Identity
    local_authority: str
    shielded: bool

    def canonical(self) -> str:
        return json.dumps([self.ref, encode_identity(self.identity), self.local_authority, self.shielded])


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """What the store says about a child without decrypting anything."""

    ref: int
    local_authority: str
    shielded: bool
    state: str


@dataclass(frozen=True, slots=True)
class Enquiry:
    """One keyed enquiry's read: the child, its wrapped data key (for sealing the audit terms),
    and its signposts: read only for an active child that is not shielded."""

    record: ChildRecord
    key: WrappedKey | None
    signposts: list[Signpost]
    told: lead.Told | None = None  # who hears of the lookup (``store.people.lead``): read with the signposts


def encode_identity(identity: Identity) -> str:
    return json.dumps(
        {
            "g": identity.given_names,
            "f": identity.family_name,
            "a": list(identity.aliases),
            "d": identity.date_of_birth.isoformat(),
            "s": identity.sex,
            "p": identity.postcode,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def decode_identity(raw: bytes) -> Identity:
    doc = json.loads(raw)
    # By position, in Identity's field order: a search decodes every candidate (up to 200), and
    # keywords took a frozen dataclass 7.7-8.6 µs a child against 4.5-5.7 µs (1 M store's blobs).
    return Identity(doc["g"], doc["f"], tuple(doc["a"]), date.fromisoformat(doc["d"]), doc["s"], doc["p"])


def feed_row_mac(keys: KeyRing, row: ChildRow) -> bytes:
    """The fingerprint of a feed row (``crypto.row_mac``), under its birth day's term key: it holds
    the full date of birth with the names, so it dies with the cohort as the full-date terms do.
    ``NoTermKey`` when the cohort is destroyed (such a row is never stored)."""
    return row_mac(keys.term_keys.for_day(row.identity.date_of_birth), row.canonical())


def retention_term(dob: date) -> str:
    """The term retention uses to find children by exact date of birth."""
    return f"dob:{dob.isoformat()}"


def terms_for(keys: KeyRing, identity: Identity) -> set[int]:
    """The child's blind index terms: full-date terms under its birth day's term key, the others
    under its birth year's (store/keys/term_keys.py). ``NoTermKey`` when its cohort is destroyed."""
    held, dob = keys.term_keys, identity.date_of_birth
    day, year = held.for_day(dob), held.for_year(dob.year)
    terms = set(index_terms(identity))
    terms.add(retention_term(dob))
    return {held.blind(day if term_kind(term) in FULL_DATE_KINDS else year, term) for term in terms}


def probes(keys: KeyRing, terms: Iterable[str]) -> list[int]:
    """A query's terms as the blind values to look up: each under the key a child holding it has
    it under (``terms.keyed_by``): its date's day key, its year's key, or, for a term without a
    year, every key of a birth year an ordinary search can find. A key not held (a destroyed
    cohort) is not probed: no child holds a term under it."""
    held = keys.term_keys
    years = [held.years[year] for year in held.search_years(keychain.ARCHIVE_AT_AGE)]
    out: set[int] = set()
    for term in terms:
        scope = keyed_by(term)
        if scope is None:
            out.update(held.blind(key, term) for key in years)
            continue
        key = held.days.get(scope) if isinstance(scope, date) else held.years.get(scope)
        if key is not None:
            out.add(held.blind(key, term))
    return sorted(out)


TERMS_META = "index_terms_version"
"""Meta key: the ``store.register.terms.TERMS_VERSION`` the stored child_terms were written under."""


async def terms_version(session: AsyncSession) -> str | None:
    return (await session.execute(select(Meta.value).where(Meta.key == TERMS_META))).scalar()


class IndexNotCurrent(Exception):
    """The blind index was written under another ``TERMS_VERSION`` than this code probes: a search
    would find nobody (or not the child it should), so nothing is answered from it. In a rolling
    upgrade, a process still on older code meets the index a newer one has just rebuilt; it
    refuses until it is replaced. The message holds versions only."""

    def __init__(self, stored: str | None) -> None:
        self.stored = stored
        super().__init__(
            f"the search index is version {stored or 'unrecorded'} and this Signpost reads version {TERMS_VERSION}"
        )


async def require_current_index(session: AsyncSession) -> None:
    """IndexNotCurrent unless the stored blind index is the version this code reads (one primary-key read)."""
    await _judge_index(session, await terms_version(session))


async def _judge_index(session: AsyncSession, stored: str | None) -> None:
    """The one rule every reader of the blind index goes through (``require_current_index``,
    ``reading_index``, ``find_candidates``): the version recorded must be this code's. None is
    taken as current only while the index is empty (a store no process has indexed yet): nothing
    can be missed there; with terms, it is an index written before versions were recorded."""
    if stored == TERMS_VERSION:
        return
    if stored is None and (await session.execute(select(ChildTerm.term).limit(1))).first() is None:
        return
    _warn_not_current(session, stored)
    raise IndexNotCurrent(stored)


NOT_CURRENT_EVERY = 60.0
"""Seconds between two ``index_not_current`` log lines of one process and store: a rolling upgrade
refuses every search until the old replicas are replaced (minutes at 50 searches a second), and a
line each would bury the log; each later line says how many were refused since the last."""

_not_current: weakref.WeakKeyDictionary[Any, tuple[float, int]] = weakref.WeakKeyDictionary()
"""By engine: when its last ``index_not_current`` line was written, and refusals since then."""


def _warn_not_current(session: AsyncSession, stored: str | None) -> None:
    """One warning line a minute (``NOT_CURRENT_EVERY``) for a store whose index this code cannot
    read, with the versions only; the first refusal is always logged."""
    engine = session.sync_session.get_bind()
    now = time.monotonic()
    last = _not_current.get(engine)
    if last is not None and now - last[0] < NOT_CURRENT_EVERY:
        _not_current[engine] = (last[0], last[1] + 1)
        return
    _not_current[engine] = (now, 0)
    since = {} if last is None else {"refused_since_last": last[1] + 1}
    log.warning("index_not_current", stored=stored, reads=TERMS_VERSION, **since)


@asynccontextmanager
async def reading_index(session: AsyncSession, *, checked: bool = False) -> AsyncIterator[None]:
    """Read the blind index inside this, in one transaction: IndexNotCurrent unless it is this
    code's version both before and after. A rebuild rewrites the terms and records its version in
    one commit, but PostgreSQL reads each statement at its own snapshot: one committed between the
    first check and the read would otherwise go unseen.

    ``checked``: the caller's own ``require_current_index``, earlier in this transaction, is the check
    before (retention's day loop makes it first, to stop before a day writes anything)."""
    if not checked:
        await require_current_index(session)
    yield
    await require_current_index(session)


async def rebuild_terms(session: AsyncSession, keys: KeyRing) -> int:
    """Rewrite the whole blind index from the decrypted identities, in the caller's transaction,
    and record the terms version: every row goes first (terms of another version, under keys no
    longer used, and any a destroyed child left), then every child that is not destroyed (archived
    ones too: retention finds them by their ``dob:`` term) is indexed again, chunk by chunk. For a
    store indexed under another set of term kinds or keys (a child found only by terms it does not
    hold yet is not found at all). The names are counted again in the same pass: their count keys
    are normalised as the terms are (``store.register.terms.normalise_name``), so counts kept under
    another version's would weigh, or take for unknown, names the index now reads otherwise.
    Returns the children re-indexed."""
    await session.execute(delete(ChildTerm))
    await name_counts.clear(session)
    rebuilt = 0
    async for found in held_identities(session, keys):
        rows = [(term, ref) for ref, identity in found.items() for term in terms_for(keys, identity)]
        await copy_rows(session, ChildTerm.__table__, ("term", "child_ref"), rows)
        await name_counts.adjust(session, keys, list(found.values()))
        rebuilt += len(found)
    await name_counts.mark_complete(session)
    await session.merge(Meta(key=TERMS_META, value=TERMS_VERSION))
    return rebuilt


async def ensure_terms_current(session: AsyncSession, keys: KeyRing, today: date) -> int | None:
    """Rebuild the stored terms if they were written under another ``TERMS_VERSION``: at start-up
    (``bring_terms_up_to_date``) and before children are written (so an update moves the terms the
    child really holds). Returns the children re-indexed, or None when the terms were current."""
    await name_counts.ensure_current(session, keys, today)  # counts keyed as this code reads them
    stored = await terms_version(session)
    if stored == TERMS_VERSION or _newer(stored):
        return None  # never back down: an older Signpost's import on a newer index leaves it be
    await _lock_terms(session)  # a start-up and an import rebuilding at once would count each name twice
    stored = await terms_version(session)
    if stored == TERMS_VERSION or _newer(stored):
        return None  # the other rebuilt it while this one waited
    keychain.hold_term_keys(keys, today)
    return await rebuild_terms(session, keys)


async def ready_for_terms(session: AsyncSession, keys: KeyRing, today: date) -> None:
    """Before children's blind terms are written (an import, a first load), in its transaction: the
    index brought to this version when an older one wrote it (``ensure_terms_current``), and
    ``IndexNotCurrent`` when a newer one did. This code's terms in a newer index would be found by
    nobody (the newer code probes its own kinds under its own keys) and never moved, since the
    version recorded stays the newer one: every child written would be unfindable by name."""
    await ensure_terms_current(session, keys, today)
    await require_current_index(session)


def _newer(stored: str | None) -> bool:
    """Whether ``stored`` names a later terms version than this code's (versions are counted up)."""
    return stored is not None and stored.isdigit() and int(stored) > int(TERMS_VERSION)


async def bring_terms_up_to_date(db: Database, keys: KeyRing, today: date) -> int | None:
    """For a process starting on a store (the one that migrates it): its blind index rebuilt, in one
    write transaction, if it was written under another ``TERMS_VERSION`` (searches would find no
    child until then). Two processes starting at once rebuild it once: the second, holding the
    write lock after the first commits, finds the version current."""
    async with db.read() as session:
        stored = await terms_version(session)
        counted = await session.execute(select(Meta.value).where(Meta.key == name_counts.KEYED_META))
        if (stored == TERMS_VERSION or _newer(stored)) and counted.scalar() == name_counts.KEYED_BY:
            return None
    async with db.write() as session:
        await _lock_terms(session)
        return await ensure_terms_current(session, keys, today)


async def _lock_terms(session: AsyncSession) -> None:
    """PostgreSQL: hold the blind index against another rebuild until this transaction ends (SQLite's
    write transactions are serial already). Readers are not held up."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(text(f"LOCK TABLE {TERMS_TABLE.name} IN SHARE ROW EXCLUSIVE MODE"))


def _chunks(items: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class Upserted:
    """What ``upsert`` did: rows inserted, rows updated, and rows not stored because the child is
    past retention on the import date (``past_retention``, their references: 24 or over, or of a
    birth date a retention run ahead of the import's clock has destroyed: ``keychain.past_retention``)."""

    inserted: int
    updated: int
    past_retention: tuple[int, ...]
    destroyed: int  # rows naming a child whose record was destroyed: a feed never brings one back
    rekeyed: int = 0  # children moved to a fresh data key by a corrected date of birth (``rekey``)


def initial_state(dob: date, today: date) -> str:
    """A child imported already 18 or over is stored archived (no ordinary search finds it)."""
    return "archived" if keychain.birthday(dob, keychain.ARCHIVE_AT_AGE) <= today else "active"


async def upsert(
    session: AsyncSession,
    keys: KeyRing,
    rows: Sequence[ChildRow],
    now: datetime,
    *,
    terms_to: Table = TERMS_TABLE,
    counts_into: Counter[int] | None = None,
) -> Upserted:
    """Insert new children and update changed ones; unchanged rows are left alone.

    A child already past retention (24 or over on ``now``'s date, or of a birth date whose cohort is
    destroyed: ``keychain.past_retention``) is never stored: the row is left out and its reference
    returned in ``past_retention`` (the caller destroys any existing record of it). One query per
    chunk to find existing rows, never one per row. New children's blind terms go to ``terms_to``
    (``TERMS_STAGE`` during an import on SQLite), and their name counts are added to
    ``counts_into`` when given (the caller writes them) instead of the table.
    """
    today = now.date()
    keychain.hold_term_keys(keys, today)
    past = tuple(row.ref for row in rows if keychain.past_retention(keys, row.identity.date_of_birth, today))
    if past:
        gone = set(past)
        rows = [row for row in rows if row.ref not in gone]
    macs = {row.ref: feed_row_mac(keys, row) for row in rows}
    existing: dict[int, bytes | None] = {}
    destroyed: set[int] = set()
    for chunk in _chunks([row.ref for row in rows]):
        result = await session.execute(select(Child.ref, Child.row_mac, Child.state).where(Child.ref.in_(chunk)))
        for ref, mac, state in result:
            if state == "destroyed":
                destroyed.add(ref)
            else:
                existing[ref] = mac
    new_rows = [row for row in rows if row.ref not in existing and row.ref not in destroyed]
    changed = [row for row in rows if row.ref in existing and existing[row.ref] != macs[row.ref]]
    # A row fingerprinted under the index key by an older version, unchanged: re-fingerprinted only.
    same = {row.ref for row in changed if existing[row.ref] == legacy_row_mac(keys, row.canonical())}
    if same:
        table = cast(Table, Child.__table__)
        await (await session.connection()).execute(
            update(table).where(table.c.ref == bindparam("r")).values(row_mac=bindparam("m")),
            [{"r": ref, "m": macs[ref]} for ref in sorted(same)],
        )
        changed = [row for row in changed if row.ref not in same]
    if new_rows:
        await _insert_new(session, keys, new_rows, now, terms_to, counts_into)
    rekeyed = 0
    for row in changed:
        rekeyed += await _update_one(session, keys, row, macs[row.ref], now)
    return Upserted(len(new_rows), len(changed), past, len(destroyed), rekeyed)


def _cohort_key(keys: KeyRing, row: ChildRow, today: date) -> str:
    kek_id = keychain.cohort_key(keys, row.identity.date_of_birth, today)
    if kek_id is None:  # callers leave such rows out; never fall back to the master key
        raise ValueError("a child due for destruction cannot be stored")
    return kek_id


@dataclass(frozen=True, slots=True)
class SealedChild:
    """A new child's CPU-heavy part: its fresh data key, sealed identity, row MAC and blind terms.

    Needs only the index key and the term keys, so it can be made in another process
    (``seal_children``); the data key is wrapped under its cohort key by the caller, and no
    key-encryption key leaves it.
    """

    ref: int
    data_key: bytes
    identity: bytes
    row_mac: bytes
    terms: tuple[int, ...]


def seal_children(keys: KeyRing, rows: Sequence[ChildRow]) -> tuple[list[SealedChild], dict[int, int]]:
    """Seal and index new children; also their names' blind count keys (term -> children)."""
    sealed: list[SealedChild] = []
    for row in rows:
        data_key = new_data_key()
        aad = child_aad(row.ref)
        sealed.append(
            SealedChild(
                row.ref,
                data_key,
                seal(data_key, encode_identity(row.identity).encode(), aad),
                feed_row_mac(keys, row),
                tuple(terms_for(keys, row.identity)),
            )
        )
    return sealed, dict(name_counts.delta(keys, [row.identity for row in rows]))


async def _insert_new(
    session: AsyncSession,
    keys: KeyRing,
    rows: Sequence[ChildRow],
    now: datetime,
    terms_to: Table = TERMS_TABLE,
    counts_into: Counter[int] | None = None,
) -> None:
    sealed, counts = seal_children(keys, rows)
    await insert_sealed(session, keys, rows, sealed, counts, now, terms_to=terms_to, counts_into=counts_into)


_SEALER: list[KeyRing] = []
"""In a sealing worker process only: a ring holding just the index and term keys (``start_sealer``)."""


def sealer_keys(keys: KeyRing) -> tuple[bytes, dict[date, bytes], dict[int, bytes]]:
    """What a sealing worker is given (``start_sealer``'s arguments): the index key and the derived
    term keys, never a key-encryption key nor a chain state."""
    return keys.index_key, dict(keys.term_keys.days), dict(keys.term_keys.years)


def start_sealer(index_key: bytes, days: dict[date, bytes], years: dict[int, bytes]) -> None:
    """ProcessPoolExecutor initializer: the worker gets the index key and the term keys, and no
    other key; and it ends when the importer does, however the importer ends (``_end_with_parent``)."""
    ring = KeyRing(keks={}, current_kek_id="", index_key=index_key, signing_seed=b"")
    ring.term_keys = TermKeys(days, years, None)
    _SEALER[:] = [ring]
    _end_with_parent()


def _end_with_parent() -> None:
    """Exit as soon as the process that started this one is gone.

    A pool's workers wait on a queue whose writing end they hold themselves, so an importer killed
    outright (SIGKILL, the OOM killer) would leave them waiting for ever, holding the index key.
    The parent's sentinel (a pipe only the parent holds open) reads as ready when it dies."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing: nothing to watch
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)  # nothing of the import is here to save: the importer's transaction is gone

    threading.Thread(target=watch, name="end-with-importer", daemon=True).start()


FlatChild = tuple[int, str, str, tuple[str, ...], date, str | None, str | None, str, bool]
FlatSealed = tuple[int, bytes, bytes, bytes, tuple[int, ...]]


def flatten(rows: Sequence[ChildRow]) -> list[FlatChild]:
    """Rows as plain tuples for a worker: pickling slotted dataclasses costs the sender more than the work."""
    return [
        (
            r.ref,
            r.identity.given_names,
            r.identity.family_name,
            r.identity.aliases,
            r.identity.date_of_birth,
            r.identity.sex,
            r.identity.postcode,
            r.local_authority,
            r.shielded,
        )
        for r in rows
    ]


def seal_in_sealer(flat: Sequence[FlatChild]) -> tuple[list[FlatSealed], dict[int, int]]:
    """``seal_children`` in a worker started by ``start_sealer``, plain tuples in and out."""
    rows = [ChildRow(f[0], Identity(f[1], f[2], f[3], f[4], f[5], f[6]), f[7], f[8]) for f in flat]
    sealed, counts = seal_children(_SEALER[0], rows)
    return [(one.ref, one.data_key, one.identity, one.row_mac, one.terms) for one in sealed], counts


def unflatten(sealed: Sequence[FlatSealed]) -> list[SealedChild]:
    return [SealedChild(*one) for one in sealed]


async def insert_sealed(
    session: AsyncSession,
    keys: KeyRing,
    rows: Sequence[ChildRow],
    sealed: Sequence[SealedChild],
    counts: Mapping[int, int],
    now: datetime,
    *,
    terms_to: Table = TERMS_TABLE,
    counts_into: Counter[int] | None = None,
) -> None:
    """Write new children sealed by ``seal_children`` (the same rows, in the same order); their
    blind terms to ``terms_to`` (``TERMS_STAGE`` during an import on SQLite). Their name counts
    are added to ``counts_into`` when given, for the caller to write once (an import: a few
    hundred upserts a chunk, compiled each time, cost more than the children's own rows), else
    written here."""
    children: list[tuple[object, ...]] = []
    child_keys: list[tuple[object, ...]] = []
    child_terms: list[tuple[object, ...]] = []
    today = now.date()
    for row, one in zip(rows, sealed, strict=True):
        # Under the birth-date cohort key from the start: destroying that key (at 24) shreds the
        # child in every backup, including one taken before retention ever ran.
        kek_id = _cohort_key(keys, row, today)
        wrapped = keychain.wrap_under(keys, kek_id, one.data_key, child_aad(row.ref))
        state = initial_state(row.identity.date_of_birth, today)
        children.append((row.ref, row.local_authority, row.shielded, state, one.identity, one.row_mac, now))
        child_keys.append((row.ref, kek_id, wrapped))
        child_terms.extend((term, row.ref) for term in one.terms)
    columns = ("ref", "local_authority", "shielded", "state", "identity", "row_mac", "updated_at")
    await copy_rows(session, Child.__table__, columns, children)
    await copy_rows(session, ChildKey.__table__, ("child_ref", "kek_id", "wrapped"), child_keys)
    await copy_rows(session, terms_to, ("term", "child_ref"), child_terms)
    if counts_into is None:
        await name_counts.add(session, counts)
    else:
        counts_into.update(counts)


async def stage_terms(session: AsyncSession) -> None:
    """Create ``TERMS_STAGE`` empty in the session's transaction (its creation rolls back with it)."""
    await session.execute(text(f"DROP TABLE IF EXISTS {TERMS_STAGE.name}"))
    await session.run_sync(lambda sync: TERMS_STAGE.create(sync.connection()))


async def merge_staged_terms(session: AsyncSession) -> int:
    """Insert the staged terms into child_terms in index order, and drop the stage; the terms merged.

    Sorted, the inserts walk the B-tree once from one end to the other (appending to it when it was
    empty) instead of landing on random pages; SQLite's sorter spills to temporary files past its
    memory budget, so memory stays bounded however many terms there are. Correct whatever
    child_terms already holds: it is the same set of rows, only written in another order."""
    result = await session.execute(
        text(
            f"INSERT INTO {TERMS_TABLE.name} (term, child_ref) "
            f"SELECT term, child_ref FROM {TERMS_STAGE.name} ORDER BY term, child_ref"
        )
    )
    await session.execute(text(f"DROP TABLE {TERMS_STAGE.name}"))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def copy_rows(
    session: AsyncSession, table: Any, columns: tuple[str, ...], rows: Sequence[tuple[object, ...]]
) -> None:
    """Rows straight to the driver, in the session's transaction: PostgreSQL's COPY, or SQLite's
    executemany. The ORM's per-row parameter handling costs more than the write itself for the
    ten rows a child has; the columns' own bind processors still convert each value."""
    connection = await session.connection()
    dialect = connection.dialect
    # Bytes go to both drivers as they are: LargeBinary's processor would only copy each value.
    processors = [
        None if isinstance(table.c[name].type, LargeBinary) else table.c[name].type.bind_processor(dialect)
        for name in columns
    ]
    if any(processors):
        rows = [
            tuple(value if convert is None else convert(value) for value, convert in zip(row, processors, strict=True))
            for row in rows
        ]
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if dialect.name == "postgresql":
        await driver.copy_records_to_table(table.name, records=rows, columns=list(columns))
    else:
        marks = ", ".join("?" for _ in columns)
        await send_begin(driver)  # past the one-hop cursor: the transaction's deferred BEGIN first
        await driver.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)


async def insert_new(session: AsyncSession, keys: KeyRing, rows: Sequence[ChildRow], now: datetime) -> int:
    """Bulk path for children known to be new (a first load of the register): no existence check.

    Each child is still sealed under its own data key and indexed by its blind terms, exactly as
    ``upsert`` does; a reference that already exists fails the caller's transaction. Children 24 or
    over are left out (never stored); the count returned is of children written. Like an import,
    it first brings the index to this version (``ready_for_terms``; ``IndexNotCurrent`` on a newer
    one): on a first load, that records the version its terms are written under, which every
    reader checks.
    """
    keychain.hold_term_keys(keys, now.date())
    rows = [row for row in rows if not keychain.past_retention(keys, row.identity.date_of_birth, now.date())]
    await ready_for_terms(session, keys, now.date())
    for start in range(0, len(rows), BULK_CHUNK):
        await _insert_new(session, keys, rows[start : start + BULK_CHUNK], now)
    return len(rows)


async def _update_one(session: AsyncSession, keys: KeyRing, row: ChildRow, mac: bytes, now: datetime) -> bool:
    """Re-seal a changed child and move its index terms; whether it was given a fresh data key.

    A corrected date of birth moves the child to another cohort, and so to a fresh data key
    (``rekey``): the old key stays wrapped under the old cohort's key in every backup taken
    before, and that cohort is punctured only when the wrongly recorded date turns 24, so nothing
    written from now on may open with it."""
    loaded = await load_identities(session, keys, [row.ref])
    data_key = await data_key_for(session, keys, row.ref)
    old_terms = terms_for(keys, loaded[row.ref]) if row.ref in loaded else set()
    new_terms = terms_for(keys, row.identity)
    if data_key is None:  # destroyed children are not brought back by a feed
        return False
    for term in old_terms - new_terms:
        await session.execute(delete(ChildTerm).where(ChildTerm.term == term, ChildTerm.child_ref == row.ref))
    if new_terms - old_terms:
        await session.execute(insert(TERMS_TABLE), [{"term": t, "child_ref": row.ref} for t in new_terms - old_terms])
    await name_counts.adjust(session, keys, [row.identity], [loaded[row.ref]] if row.ref in loaded else [])
    kek_id = _cohort_key(keys, row, now.date())
    redated = row.ref not in loaded or loaded[row.ref].date_of_birth != row.identity.date_of_birth
    if redated:
        data_key = await rekey(session, keys, row.ref, data_key, kek_id)
    else:  # the same cohort: re-wrapped only (a key still under the master KEK moves under it)
        await session.execute(
            update(ChildKey)
            .where(ChildKey.child_ref == row.ref)
            .values(kek_id=kek_id, wrapped=keychain.wrap_under(keys, kek_id, data_key, child_aad(row.ref)))
        )
    values: dict[str, object] = {
        "local_authority": row.local_authority,
        "shielded": row.shielded,
        "identity": seal(data_key, encode_identity(row.identity).encode(), child_aad(row.ref)),
        "row_mac": mac,
        "updated_at": now,
    }
    if initial_state(row.identity.date_of_birth, now.date()) == "archived":
        values["state"] = "archived"  # a corrected date of birth can make the child an adult
    await session.execute(update(Child).where(Child.ref == row.ref).values(**values))
    return redated


async def rekey(session: AsyncSession, keys: KeyRing, ref: int, old_key: bytes, kek_id: str) -> bytes:
    """Give a child a fresh data key wrapped under ``kek_id``; returns it (the caller seals the
    identity under it). Everything the old key sealed that can be re-sealed is, in the caller's
    transaction: the purposes of access requests and blind relay messages and replies. The old
    row versions stay in the database files until compaction (the import compacts after it).

    Audit events' sealed terms cannot be: they are hashed into the tamper-evident audit chain, so
    rewriting them would break every later checkpoint. Those sealed before the correction stay
    under the old key, which from now on is held only by backups taken before: in the store they
    no longer open (a subject-access report says their purpose is no longer readable), and with
    such a backup they open until the old cohort is punctured, as they did before the correction.
    Terms sealed from now on are under the new key (``TermSealer`` reads the child's key as it is).

    The searches that had the child as a possible match keep its old tag in their details (chained
    too), and are filed under its new tag as well (``store.audit.candidates.refile``): its subject
    access report and export still find them.
    """
    aad = child_aad(ref)
    new_key = new_data_key()
    tags = (possible_matches.candidate_tag(old_key, ref), possible_matches.candidate_tag(new_key, ref))
    await possible_matches.refile(session, *tags)
    await session.execute(
        update(ChildKey)
        .where(ChildKey.child_ref == ref)
        .values(kek_id=kek_id, wrapped=keychain.wrap_under(keys, kek_id, new_key, aad))
    )
    reasons = await session.execute(
        select(AccessRequest.id, AccessRequest.reason).where(
            AccessRequest.child_ref == ref,
            AccessRequest.reason_key == f"child:{ref}",
            AccessRequest.reason.is_not(None),
        )
    )
    for request_id, reason in reasons.all():
        assert reason is not None  # selected so
        moved = _reseal(old_key, new_key, reason, child_terms_aad(ref))
        await session.execute(update(AccessRequest).where(AccessRequest.id == request_id).values(reason=moved))
    relays = await session.execute(
        select(RelayMessage.id, RelayMessage.text, RelayMessage.reply).where(RelayMessage.child_ref == ref)
    )
    for relay_id, message, reply in relays.all():
        values = {"text": _reseal(old_key, new_key, message, relay_aad(ref, "message"))}
        if reply is not None:
            values["reply"] = _reseal(old_key, new_key, reply, relay_aad(ref, "reply"))
        await session.execute(update(RelayMessage).where(RelayMessage.id == relay_id).values(**values))
    return new_key


def _reseal(old_key: bytes, new_key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """``sealed`` sealed again under ``new_key``. Fails (the import rolls back) when it does not
    open with ``old_key``: kept as it is, it would be left under a key the store no longer holds."""
    return seal(new_key, open_sealed(old_key, sealed, aad), aad)


async def data_key_for(session: AsyncSession, keys: KeyRing, ref: int) -> bytes | None:
    result = await session.execute(select(ChildKey.kek_id, ChildKey.wrapped).where(ChildKey.child_ref == ref))
    row = result.first()
    return None if row is None else keys.unwrap(row.kek_id, row.wrapped, child_aad(ref))


# A child's record as ``find`` and ``find_many`` read it: in clear, with the id of the key its data
# key is wrapped under (``destroyed_since``), nothing decrypted.
_RECORD = select(Child.ref, Child.local_authority, Child.shielded, Child.state, ChildKey.kek_id).outerjoin(
    ChildKey, ChildKey.child_ref == Child.ref
)


def _record(keys: KeyRing, row: Any) -> ChildRecord:
    if row.state != "destroyed" and destroyed_since(keys, row.kek_id):
        return ChildRecord(row.ref, row.local_authority, False, "destroyed")
    return ChildRecord(row.ref, row.local_authority, row.shielded, row.state)


async def find(session: AsyncSession, keys: KeyRing, ref: int) -> ChildRecord | None:
    """One child's record; destroyed, whatever its row says, once the key file has destroyed its
    birth-date key (``destroyed_since``)."""
    row = (await session.execute(_RECORD.where(Child.ref == ref))).first()
    return None if row is None else _record(keys, row)


@dataclass(frozen=True, slots=True)
class Named:
    """A child a command names by reference, as sealing its audit terms needs it (``named``)."""

    key: WrappedKey | None  # its wrapped data key (None once destroyed)
    destroyed: bool


_NAMED = Prepared(
    select(Child.state, ChildKey.kek_id, ChildKey.wrapped)
    .select_from(Child)
    .outerjoin(ChildKey, ChildKey.child_ref == Child.ref)
    .where(Child.ref == bindparam("ref"))
)


async def named(session: AsyncSession, keys: KeyRing, ref: int) -> Named | None:
    """The child ``ref`` names, in one read by primary key: its wrapped data key, and whether it is
    destroyed (its row says so, or ``destroyed_since``); None when no child was ever registered there."""
    row = await _NAMED.first(session, {"ref": ref})
    if row is None:
        return None
    if row.state == "destroyed" or destroyed_since(keys, row.kek_id):
        return Named(None, True)
    return Named(None if row.kek_id is None else WrappedKey(ref, row.kek_id, row.wrapped), False)


async def find_many(session: AsyncSession, keys: KeyRing, refs: Iterable[int]) -> dict[int, ChildRecord]:
    """The records of these children that are held, by reference, each as ``find`` reads it: one
    statement a ``CHUNK`` of references (a page of relays looked over, not a read per relay)."""
    found: dict[int, ChildRecord] = {}
    for chunk in _chunks(sorted(set(refs))):
        result = await session.execute(_RECORD.where(Child.ref.in_(chunk)))
        found.update({row.ref: _record(keys, row) for row in result})
    return found


async def count_active(session: AsyncSession) -> int:
    """How many children ordinary searches can find (the matcher's population)."""
    result = await session.execute(select(func.count()).select_from(Child).where(Child.state == "active"))
    return int(result.scalar_one())


async def candidates(session: AsyncSession, keys: KeyRing, terms: Iterable[str], limit: int = 200) -> list[int]:
    """Active children holding any of the terms, those holding most first, at most ``limit``.

    A query has at most ``handlers.matching.terms.MAX_QUERY_TERMS`` terms, but each term without a
    year is probed under every searchable birth year's key (``probes``: about 20 each), so a search
    makes up to a few hundred probes, one ``IN`` query per ``CHUNK`` of them (usually one).
    The order and the cap are :func:`rank_holders`', exactly as batch reconciliation ranks.
    """
    blinded = probes(keys, terms)
    if not blinded:
        return []
    holders = await term_holders(session, blinded)
    return rank_holders(blinded, holders, limit)


async def term_holders(session: AsyncSession, blinded: Sequence[int], chunk_size: int = CHUNK) -> dict[int, list[int]]:
    """For each blind term, the active children holding it: one ``IN`` query per ``chunk_size`` terms.

    Archived and destroyed children are never candidates, so they are filtered here.
    IndexNotCurrent when the index is not of this code's version (``reading_index``).
    """
    holders: dict[int, list[int]] = {}
    async with reading_index(session):
        for chunk in _chunks(sorted(set(blinded)), chunk_size):
            result = await session.execute(
                select(ChildTerm.term, ChildTerm.child_ref)
                .join(Child, Child.ref == ChildTerm.child_ref)
                .where(ChildTerm.term.in_(chunk), Child.state == "active")
            )
            for term, ref in result:
                holders.setdefault(term, []).append(ref)
    return holders


def rank_holders(blinded: Iterable[int], holders: Mapping[int, Sequence[int]], limit: int) -> list[int]:
    """The candidates of one query: children holding most of its terms first, then by reference.

    Deterministic, so a chat search and a batch row with the same fields see the same candidates
    even when the cap cuts the list.
    """
    hits: Counter[int] = Counter()
    for term in set(blinded):
        hits.update(set(holders.get(term, ())))
    ranked = sorted(hits.items(), key=lambda item: (-item[1], item[0]))
    return [ref for ref, _ in ranked[:limit]]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A decrypted candidate: what scoring needs, and whether its record is shielded."""

    identity: Identity
    shielded: bool


@dataclass(frozen=True, slots=True)
class Probe:
    """One search's read of the register: its candidates in rank order (``rank_holders``' order
    and cap), those decrypted (a destroyed key is skipped), and the name counts for scoring."""

    refs: list[int]
    found: dict[int, Candidate]
    counts: NameCounts


def _padded(values: Sequence[int], floor: int = 16) -> list[int]:
    """``values`` repeated up to a power of two (≥ ``floor``): an IN list of a few fixed lengths, so
    the statement text and its prepared plan are reused. A repeated value matches nothing more."""
    size = max(floor, 1 << (len(values) - 1).bit_length())
    return [*values, *([values[0]] * (size - len(values)))]


# The rows of the search's one statement, by their first column.
_RANKED, _COUNTED, _VERSION = 0, 1, 2


@lru_cache(maxsize=32)
def _probe_sql(dialect: str, terms: int, names: int) -> str:
    """The search's one statement: the top ``limit`` active children by blind terms held (ties by
    reference), each with its sealed identity and wrapped data key, then the name counts asked
    for, then the index's recorded version (``TERMS_META``, a primary-key read: the terms read
    and the version they were written under come from one snapshot). The key is an outer join,
    so a child without one still takes its place in the ranking, exactly as ``candidates`` then
    ``load_candidates`` would leave it out after ranking."""
    if dialect == "postgresql":
        term_in, limit, name_in = "= ANY($1::bigint[])", "$2", "= ANY($3::bigint[])"
    else:
        term_in = f"IN ({', '.join('?' for _ in range(terms))})"
        limit = "?"
        name_in = f"IN ({', '.join('?' for _ in range(names))})"
    return (
        f"SELECT {_RANKED} AS kind, ranked.* FROM ("
        "SELECT c.ref, r.hits, c.identity, c.shielded, k.kek_id, k.wrapped"
        f" FROM (SELECT child_ref, count(*) AS hits FROM child_terms WHERE term {term_in} GROUP BY child_ref) AS r"
        " JOIN children AS c ON c.ref = r.child_ref"
        " LEFT OUTER JOIN child_keys AS k ON k.child_ref = c.ref"
        f" WHERE c.state = 'active' ORDER BY r.hits DESC, c.ref LIMIT {limit}"
        ") AS ranked"
        f" UNION ALL SELECT {_COUNTED}, term, children, NULL, NULL, NULL, NULL FROM name_counts WHERE term {name_in}"
        f" UNION ALL SELECT {_VERSION}, 0, 0, NULL, NULL, value, NULL FROM meta WHERE key = '{TERMS_META}'"
    )


async def find_candidates(
    session: AsyncSession, keys: KeyRing, terms: Iterable[str], names: Iterable[str], limit: int = 200
) -> Probe:
    """A search's candidates, decrypted, and its name counts, in one statement (one round trip).

    The same children in the same order as ``candidates`` then ``load_candidates``, and the same
    counts as ``name_counts.lookup``: the ranking (terms held, then reference; at most ``limit``)
    is done by the database instead of loading every holder of every probed term, and the
    statement is sent as plain SQL with an IN list of a fixed length (PostgreSQL: one array), so
    nothing is compiled per search. Returns no candidates for no terms.
    IndexNotCurrent when the terms were written under another version than this code probes
    (read in the same statement: no second round trip).
    """
    blinded = probes(keys, terms)
    if not blinded:
        return Probe([], {}, {})
    named = name_counts.blinded(keys, names)
    connection = await session.connection()
    dialect = connection.dialect.name
    counted = [name_counts.COMPLETE, *sorted(named)]
    params: tuple[object, ...]
    if dialect == "postgresql":
        params = (blinded, limit, counted)
        sql = _probe_sql(dialect, 0, 0)
    else:
        probed, asked = _padded(blinded), _padded(counted)
        params = (*probed, limit, *asked)
        sql = _probe_sql(dialect, len(probed), len(asked))
    ranked: list[tuple[int, int, bytes | None, bool, str | None, bytes | None]] = []
    counts: list[tuple[int, int]] = []
    stored: str | None = None
    rows: Sequence[tuple[Any, ...]] = (await connection.exec_driver_sql(sql, params)).all()
    for kind, ref, hits, sealed, shielded, kek_id, wrapped in rows:
        if kind == _RANKED:
            ranked.append((ref, hits, sealed, shielded, kek_id, wrapped))
        elif kind == _COUNTED:
            counts.append((ref, hits))
        else:
            stored = kek_id
    await _judge_index(session, stored)  # before anything is decrypted or answered from these rows
    ranked.sort(key=lambda row: (-row[1], row[0]))  # the order rank_holders gives, whatever the database's
    found: dict[int, Candidate] = {}
    ranked = [row for row in ranked if not destroyed_since(keys, row[4])]
    for ref, _, sealed, shielded, kek_id, wrapped in ranked:
        if sealed is not None and kek_id is not None and wrapped is not None:
            aad = child_aad(ref)
            identity = decode_identity(open_sealed(keys.unwrap(kek_id, wrapped, aad), sealed, aad))
            found[ref] = Candidate(identity, bool(shielded))
    return Probe([row[0] for row in ranked], found, name_counts.counted(named, counts))


def destroyed_since(keys: KeyRing, kek_id: str | None) -> bool:
    """Whether a child's data key is wrapped under a birth-date key the key file has destroyed: the
    child is destroyed then, whatever its row says. Only a store restored from a backup taken before
    holds one (its row "active" when the backup is older than its 18th birthday, its index rows
    still there, its birth year's term key alive), until the next retention run finishes the
    destruction (README, "Backups"). Until then no search, batch match or keyed lookup answers with
    it or fails on it: a failure told whoever typed its name and birth year, or its reference, that
    a child destroyed since had been held. Cheap for a key at hand (``punctured_day_ids``)."""
    return kek_id is not None and bool(keychain.punctured_day_ids(keys, (kek_id,)))


async def still_held(session: AsyncSession, keys: KeyRing, stmt: Select[Any], child_ref: Any) -> list[Any]:
    """The rows of ``stmt`` (one entity a row, its ``child_ref`` column named) whose child is not
    ``destroyed_since``: the one way a row about a child (a request, a grant, a relay, a notice) is
    read as deleted once the key file has destroyed that child's key, whatever the store says.
    A read of the first few rows takes them through ``first_held``, not ``stmt.limit``."""
    return [row for row, kek_id in await _with_kek_ids(session, stmt, child_ref) if not destroyed_since(keys, kek_id)]


async def first_held(
    session: AsyncSession, keys: KeyRing, stmt: Select[Any], child_ref: Any, key: Any, limit: int
) -> list[Any]:
    """The first ``limit`` rows of ``stmt`` by ``key`` (a unique column, ascending) that are
    ``still_held``: the one way a queue of due work about children (requests to escalate or
    expire, grants to end, notices to send) is read a batch at a time.

    The rows about a child destroyed since are left out before the batch is counted: read a page
    of ``limit`` rows at a time, after the last row of the page before, until ``limit`` are held
    or none is left. A store restored from a backup older than a destruction may hold more such
    rows than a batch ahead of live ones, until the next retention run deletes them; a batch
    taken first and filtered after read the same dead rows at every run and did no live work."""
    found: list[Any] = []
    page = stmt.order_by(key).limit(limit)
    while len(found) < limit:
        rows = await _with_kek_ids(session, page, child_ref)
        found.extend(row for row, kek_id in rows if not destroyed_since(keys, kek_id))
        if len(rows) < limit:
            break
        page = stmt.where(key > getattr(rows[-1][0], key.key)).order_by(key).limit(limit)
    return found[:limit]


async def _with_kek_ids(session: AsyncSession, stmt: Select[Any], child_ref: Any) -> Sequence[Any]:
    """Each row of ``stmt`` with the id of the key its child's data key is wrapped under (None: a
    row about no child, or about one whose key is gone)."""
    result = await session.execute(
        stmt.add_columns(ChildKey.kek_id).outerjoin(ChildKey, ChildKey.child_ref == child_ref)
    )
    return result.all()


async def load_candidates(session: AsyncSession, keys: KeyRing, refs: Sequence[int]) -> dict[int, Candidate]:
    """Decrypt active children, one query per ``CHUNK`` of references (destroyed keys skipped)."""
    out: dict[int, Candidate] = {}
    for chunk in _chunks(sorted(set(refs))):
        result = await session.execute(
            select(Child.ref, Child.identity, Child.shielded, ChildKey.kek_id, ChildKey.wrapped)
            .join(ChildKey, ChildKey.child_ref == Child.ref)
            .where(Child.ref.in_(chunk), Child.state == "active")
        )
        for ref, sealed, shielded, kek_id, wrapped in result:
            if sealed is not None and not destroyed_since(keys, kek_id):
                aad = child_aad(ref)
                identity = decode_identity(open_sealed(keys.unwrap(kek_id, wrapped, aad), sealed, aad))
                out[ref] = Candidate(identity, bool(shielded))
    return out


async def redated(session: AsyncSession, keys: KeyRing, rows: Sequence[ChildRow]) -> set[int]:
    """The children among ``rows`` held now (not destroyed) under another date of birth than the row's."""
    if not rows:
        return set()
    held = await load_identities(session, keys, [row.ref for row in rows])
    return {row.ref for row in rows if row.ref in held and held[row.ref].date_of_birth != row.identity.date_of_birth}


async def held_identities(session: AsyncSession, keys: KeyRing) -> AsyncIterator[dict[int, Identity]]:
    """Every child held (active or archived, not destroyed), decrypted a chunk at a time in
    reference order: what a rebuild of the terms or the name counts reads."""
    last = -1
    while True:
        query = select(Child.ref).where(Child.ref > last, Child.state != "destroyed").order_by(Child.ref).limit(CHUNK)
        refs = list((await session.execute(query)).scalars())
        if not refs:
            return
        yield await load_identities(session, keys, refs)
        last = refs[-1]


async def load_identities(session: AsyncSession, keys: KeyRing, refs: Sequence[int]) -> dict[int, Identity]:
    """Decrypt the identities of these children (skipping any whose key is destroyed)."""
    out: dict[int, Identity] = {}
    for chunk in _chunks(list(refs)):
        result = await session.execute(
            select(Child.ref, Child.identity, ChildKey.kek_id, ChildKey.wrapped)
            .join(ChildKey, ChildKey.child_ref == Child.ref)
            .where(Child.ref.in_(chunk))
        )
        for ref, sealed, kek_id, wrapped in result:
            if sealed is None:
                continue
            aad = child_aad(ref)
            out[ref] = decode_identity(open_sealed(keys.unwrap(kek_id, wrapped, aad), sealed, aad))
    return out


SIGNPOST_COLUMNS = (
    Practitioner.given_name,
    Practitioner.family_name,
    Practitioner.role,
    Practitioner.organisation,
    Practitioner.phone,
    Practitioner.email,
    Involvement.service,
    Involvement.started,
    Involvement.ended,
    Involvement.lead_professional,
    Practitioner.status.label("practitioner_status"),
    involvement_current(Involvement.ended).label("current"),  # as of the bound day: ``current.as_of``
)


def _signpost(r: Any) -> Signpost:
    in_post = r.practitioner_status == "active"  # a leaver's own phone and email reach nobody now
    return Signpost(
        practitioner_name=f"{r.given_name} {r.family_name}",
        role=r.role,
        organisation=r.organisation,
        service=r.service,
        phone=r.phone if in_post else "",
        email=r.email if in_post else "",
        lead_professional=r.lead_professional,
        started=r.started,
        ended=r.ended,
        in_post=in_post,
        current=bool(r.current),
    )


def _ordered(posts: list[Signpost]) -> list[Signpost]:
    posts.sort(key=lambda s: (not s.lead_professional, not s.current, -s.started.toordinal()))
    return posts


async def signposts(session: AsyncSession, ref: int, now: datetime) -> list[Signpost]:
    """The child's involvements as signposts, current or ended as of ``now``: lead professional
    first, then current, then newest."""
    result = await session.execute(
        select(*SIGNPOST_COLUMNS)
        .join(Practitioner, Practitioner.id == Involvement.practitioner_id)
        .where(Involvement.child_ref == ref),
        as_of(now),
    )
    return _ordered([_signpost(r) for r in result])


# Built once, in Core terms: the statement behind every keyed enquiry. Building it per call (three
# outer joins, sixteen columns) cost more CPU than running it: 0.6-1.2 ms against ~0.15 ms.
_READABLE = and_(Involvement.child_ref == Child.ref, Child.state == "active", Child.shielded.is_(False))
_ENQUIRE = Prepared(
    select(
        Child.ref,
        Child.local_authority,
        Child.shielded,
        Child.state,
        ChildKey.kek_id,
        ChildKey.wrapped,
        Involvement.child_ref.label("involved"),
        *SIGNPOST_COLUMNS,
        # Who is told of the lookup (``lead.told_of``, in this read rather than one of its own):
        # each involvement's practitioner (their status is a signpost column) and the authority's setting.
        Practitioner.id.label("practitioner_id"),
        lead.setting_of(Child.local_authority).label("told_setting"),
    )
    .select_from(Child)
    .outerjoin(ChildKey, ChildKey.child_ref == Child.ref)
    .outerjoin(Involvement, _READABLE)
    .outerjoin(Practitioner, Practitioner.id == Involvement.practitioner_id)
    .where(Child.ref == bindparam("ref"))
)


def enquiry_read(ref: int, now: datetime) -> tuple[Prepared, dict[str, Any]]:
    """``enquire``'s one statement and its parameters, for a command to read ahead with its asker's
    standing (``store.people.standing.read``): ``enquire`` then takes its rows without a read."""
    return _ENQUIRE, {"ref": ref, **as_of(now)}


async def enquire(session: AsyncSession, keys: KeyRing, ref: int, now: datetime, looker: str = "") -> Enquiry | None:
    """A keyed enquiry's read in one statement (one round trip): the child, its wrapped data key,
    and, for an active child that is not shielded, its signposts (ordered as ``signposts``, current
    or ended as of ``now``) and who is told that ``looker`` (a practitioner id) looked it up
    (``Enquiry.told``).

    A shielded child's signposts are not read here: only a grant lets them be read (``signposts``);
    nor, then, who is told (``lead.told_of`` reads it once the grant is found). A child whose
    birth-date key the key file has destroyed is destroyed, whatever its row says
    (``destroyed_since``): it comes back as such, with no signposts.
    """
    statement, params = enquiry_read(ref, now)  # its rows already read, when a command read them ahead
    rows = await statement.all(session, params)
    if not rows:
        return None
    first = rows[0]
    if first.state != "destroyed" and destroyed_since(keys, first.kek_id):
        return Enquiry(ChildRecord(first.ref, first.local_authority, False, "destroyed"), None, [])
    record = ChildRecord(first.ref, first.local_authority, first.shielded, first.state)
    key = None if first.kek_id is None else WrappedKey(first.ref, first.kek_id, first.wrapped)
    involved = [r for r in rows if r.involved is not None]
    posts = _ordered([_signpost(r) for r in involved])
    told = None
    if record.state == "active" and not record.shielded:  # the rows hold every involvement
        # ``lead._current``'s rule, on the rows read: the ``current`` column, an active practitioner.
        current = [
            (r.practitioner_id, r.lead_professional)
            for r in involved
            if r.current and r.practitioner_status == "active"
        ]
        told = lead.told_from(first.told_setting, current, looker)
    return Enquiry(record, key, posts, told)


async def any_stored(session: AsyncSession) -> bool:
    """Whether the register holds any child at all (in any state)."""
    return (await session.execute(select(Child.ref).limit(1))).first() is not None
