"""How many registered children bear each name, for term-frequency match weights.

Kept by blind index like ``child_terms`` (a keyed HMAC of the normalised name, never the name):
the store can say "this name is borne by 3 children" without knowing which name it is. Counts
grow when children are imported, move when a child's name changes, and shrink when a child is
destroyed (``forget``): a name no child bears any more has no row, so the live store cannot confirm
that a destroyed child's rare name was ever on the register.

Each child is counted under its **birth year's** term key (``store.keys.term_keys``), and a name's
count is the sum over every birth year held. Under the index key, which lives until
decommissioning, a backup taken before a destruction, compared with the store (or a backup) after,
gave back the names of the children destroyed in between (the counts that went down, tried against
a list of names) for good; a year's key goes once every cohort of that year is destroyed.
``ensure_current`` recounts a store counted under the index key (``KEYED_META``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import dialect_insert
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.register.terms import Identity, NameCounts, count_keys
from store.tables.lifecycle import Meta
from store.tables.register import NameCount

CHUNK = 500
COMPLETE = 0
"""The term that marks the counts as complete (a keyed HMAC is 0 with probability 2**-64)."""


def delta(keys: KeyRing, added: Iterable[Identity], removed: Iterable[Identity] = ()) -> Counter[int]:
    """How the counts move when ``added`` children are counted in and ``removed`` ones out."""
    moved: Counter[int] = Counter()
    for identity in added:
        moved.update(_terms(keys, identity))
    for identity in removed:
        moved.subtract(_terms(keys, identity))
    return moved


def _terms(keys: KeyRing, identity: Identity) -> list[int]:
    """The blind terms a child is counted under: its count keys under its birth year's term key."""
    held = keys.term_keys
    year = held.for_year(identity.date_of_birth.year)
    return [held.blind(year, key) for key in count_keys(identity)]


async def adjust(
    session: AsyncSession, keys: KeyRing, added: Iterable[Identity], removed: Iterable[Identity] = ()
) -> None:
    """Count ``added`` children's names in and ``removed`` ones out, in the caller's transaction."""
    await add(session, delta(keys, added, removed))


async def forget(session: AsyncSession, keys: KeyRing, destroyed: Iterable[Identity]) -> None:
    """Count destroyed children's names out, in the caller's transaction, and drop every count
    that reaches nothing."""
    moved = delta(keys, (), destroyed)
    if not moved:
        return
    await add(session, moved)
    terms = sorted(moved)
    for start in range(0, len(terms), CHUNK):
        chunk = terms[start : start + CHUNK]
        await session.execute(delete(NameCount).where(NameCount.term.in_(chunk), NameCount.children <= 0))


async def add(session: AsyncSession, moved: Mapping[int, int]) -> None:
    """Apply a ``delta`` (blind count key -> change) in the caller's transaction."""
    rows = [{"term": term, "children": n} for term, n in sorted(moved.items()) if n]
    insert = dialect_insert(session)
    for start in range(0, len(rows), CHUNK):
        statement = insert(NameCount).values(rows[start : start + CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=[NameCount.term], set_={"children": NameCount.children + statement.excluded.children}
        )
        await session.execute(statement)


async def lookup(session: AsyncSession, keys: KeyRing, names: Iterable[str]) -> NameCounts:
    """Counts for these count keys (``handlers.matching.score.query_count_keys``); unknown names are left out.

    Empty when the counts are not complete (a store that held children before counting began):
    scoring then uses the average name weights.
    """
    named = blinded(keys, names)
    terms = [COMPLETE, *sorted(named)]
    rows: list[tuple[int, int]] = []
    for start in range(0, len(terms), CHUNK):
        result = await session.execute(
            select(NameCount.term, NameCount.children).where(NameCount.term.in_(terms[start : start + CHUNK]))
        )
        rows.extend((term, count) for term, count in result)
    return counted(named, rows)


def blinded(keys: KeyRing, names: Iterable[str]) -> dict[int, str]:
    """Count keys by their blind terms (what ``name_counts.term`` holds): each under every birth
    year's term key held, since a name's children may be born in any of them."""
    held = keys.term_keys
    return {held.blind(year, name): name for name in set(names) for year in held.years.values()}


def counted(named: Mapping[int, str], rows: Iterable[tuple[int, int]]) -> NameCounts:
    """The counts read for ``named`` (blind term -> count key) from ``(term, children)`` rows,
    ``COMPLETE`` among them: empty unless the counts are complete, unknown names left out."""
    found: dict[str, int] = {}
    complete = False
    for term, count in rows:
        if term == COMPLETE:
            complete = True
        elif count > 0 and term in named:
            found[named[term]] = found.get(named[term], 0) + count  # one row per birth year
    return found if complete else {}


KEYED_META = "name_counts_keyed_by"
"""Meta key: what the stored name counts are keyed under (``KEYED_BY``; absent: the index key)."""
KEYED_BY = "birth year"


async def ensure_current(session: AsyncSession, keys: KeyRing, today: date) -> int | None:
    """Recount the names, in the caller's transaction, when the counts are not keyed as this code
    keys them (a store counted under the index key); the children counted, or None when current."""
    if await _keyed(session):
        return None
    if (await session.connection()).dialect.name == "postgresql":
        # Two processes recounting at once (an import and a start-up) would add their counts up:
        # the second waits here for the first to commit, then finds the counts current.
        await session.execute(text(f"LOCK TABLE {NameCount.__tablename__} IN SHARE ROW EXCLUSIVE MODE"))
        if await _keyed(session):
            return None
    keychain.hold_term_keys(keys, today)
    recounted = await rebuild(session, keys)
    await session.merge(Meta(key=KEYED_META, value=KEYED_BY))
    return recounted


async def _keyed(session: AsyncSession) -> bool:
    return (await session.execute(select(Meta.value).where(Meta.key == KEYED_META))).scalar() == KEYED_BY


async def rebuild(session: AsyncSession, keys: KeyRing) -> int:
    """Recount the names of every child held (active or archived, as an import counts them;
    decrypting in chunks) and mark the counts complete.

    For a store that held children before this table existed; returns the children counted.
    """
    from store.register import children

    await clear(session)
    counted = 0
    async for found in children.held_identities(session, keys):
        await adjust(session, keys, list(found.values()))
        counted += len(found)
    await mark_complete(session)
    return counted


async def clear(session: AsyncSession) -> None:
    """Every count gone, in the caller's transaction: a recount starts here (``mark_complete`` ends it)."""
    await session.execute(delete(NameCount))


async def mark_complete(session: AsyncSession) -> None:
    """The counts hold every child held: scoring may weigh names by them."""
    await session.execute(insert_row(session, COMPLETE, 1))


def insert_row(session: AsyncSession, term: int, count: int) -> Any:
    return dialect_insert(session)(NameCount).values(term=term, children=count).on_conflict_do_nothing()
