"""Which key chains are this store's: a witness of each, checked before anything is destroyed.

Why: retention calls a stored birth-date KEK id "destroyed" when the key file cannot make it
(``keychain.punctured_day_ids``), and deletes the wrapped keys under it. A key file of the right
store (its index key, so its fingerprint, store/keys/binding.py) whose chain is wrong — a state of
the right length but other bytes, an entry renamed (chain, generation or cutoff), an entry removed
and so made again at random — cannot make the id of any live child: every one looked destroyed.

The chains only go forward (``state[s + 1] = H(state[s])``), so every genuine state of a chain, at
whatever cutoff it has been punctured to, reaches the same state at every later slot. The store
keeps in ``meta``, per chain and generation, a **witness**: a one-way tag of the chain's state at
every ``STEP``-th slot from its cutoff to ``SPAN`` slots ahead (a tag of a state, never a state or
a key: it opens nothing). A key file's chain is the store's when its state, walked from its cutoff
to the next such slot (at most ``STEP`` hashes, once a process per state), gives the tag there.
Checked when a process opens the store (``binding.bind``: `db check` says it), and again by
retention and rotation after they take the key file as it is on disk, before they change anything.

Recorded only when nothing can be lost by it: for a chain under whose ids the store holds no wrapped
key yet (a new store, a generation ``keys rotate`` has just made), or when the chain demonstrably
opens the store's wrapped keys (a store written before witnesses, a rotation cut short between the
key file's write and the witness's): a child's key under the birth-date id the day and term chains
make at a slot opens with the day key made there, and that child was born on the slot's day (a
chain renamed to another cutoff, or both shifted together, still makes the store's ids, at other
slots: refused); a month key opens a key under its month's id. A chain of a generation the store
holds keys under that neither has a witness nor proves itself is refused, so a generation without a
witness is no way round the check; when nothing stored is under any id it makes, that is said
(``UNCHECKABLE``) and the operator may accept it (`retention run --accept-key-file`). A chain entry
of a generation the key file has no master key for, and term chains that are not one chain, are
refused outright (``_stray``). An untagged generation's ids do not depend on its term chain, so
nothing stored proves it: it is not recorded (nor its copy in the next generation until that
generation's ids prove it), and nothing is called destroyed by it meanwhile.
A walk that finds a witness less than half its span ahead of the cutoff records one further on.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database, dialect_insert
from store.keys import keychain, keydict
from store.keys.crypto import DecryptionError, KeyRing, child_aad, open_sealed
from store.keys.keychain import Chain, ChainState
from store.keys.rotation import WRAPPED_KEY_TABLES, WrappedKeys, kek_ids_of
from store.tables.lifecycle import Meta
from store.tables.register import Child, ChildKey

PREFIX = "chain_witness:"
"""Meta keys ``chain_witness:<chain>:<gen>``; value ``<step>:<first slot>:<tag>,<tag>,…``."""
STEP = {Chain.DAY: 256, Chain.TERM: 256, Chain.MONTH: 12}
SPAN = {Chain.DAY: 36_525, Chain.TERM: 36_525, Chain.MONTH: 1_200}  # a hundred years
_LABEL = b"signpost-chain-witness:"
_CHUNK = 500
_TRIES = 8  # keys under a chain's ids tried before it is called another's
_PROBES = 4  # children whose keys a chain making none of the store's ids is tried against (``_proven``)

NOT_OURS = (
    "does not match this store: a birth-date, search-term or month key chain in it is not the one this "
    "store's keys were made from (the key file damaged, or edited by hand?), so nothing was changed: "
    "restore the key file kept with this store"
)
MISSING = (
    "does not match this store: it lacks a birth-date, search-term or month key chain this store's keys "
    "were made from (the key file damaged, or edited by hand?), so nothing was changed: restore the key "
    "file kept with this store"
)
STRAY = (
    "does not match this store: it holds a birth-date, search-term or month key chain of a key generation "
    "it has no master key for, or search-term chains that disagree (the key file damaged, or edited by hand?), "
    "so nothing was changed: restore the key file kept with this store"
)
UNCHECKABLE = (
    "cannot be checked against this store: it makes the id of none of the keys the store holds (every child "
    "destroyed since this backup was taken, or the key file's search-term chain damaged?), so nothing was changed; "
    "do not restore an older key file for this: if this is the key file kept with the store, "
    "`signpost retention run --accept-key-file` records its chains as the store's and goes on (audited)"
)
PAST = (
    "cannot be checked against this store: its key chains are past the last point the store recorded "
    "of them (a backup far older than the key file?), so nothing was changed"
)


class ChainsNotOurs(Exception):
    """The key file's chains are not this store's; the message is one line, after the key file's name."""


@dataclass(frozen=True, slots=True)
class Witness:
    chain: Chain
    gen: int
    step: int
    first: int
    tags: tuple[str, ...]

    @property
    def last(self) -> int:
        return self.first + self.step * (len(self.tags) - 1)

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.chain}:{self.gen}"

    @property
    def value(self) -> str:
        return f"{self.step}:{self.first}:{','.join(self.tags)}"


def _tag(state: bytes) -> str:
    return hashlib.sha256(_LABEL + state).hexdigest()[:16]


def _grid(slot: int, step: int) -> int:
    return -(-slot // step) * step


@functools.lru_cache(maxsize=64)
def _tag_at(state: bytes, cutoff: int, slot: int) -> str:
    return _tag(keychain.advance(ChainState(Chain.DAY, 0, cutoff, state), slot).state)


@functools.lru_cache(maxsize=16)
def _tags(state: bytes, cutoff: int, first: int, count: int, step: int) -> tuple[str, ...]:
    value = keychain.advance(ChainState(Chain.DAY, 0, cutoff, state), first).state
    tags = []
    for n in range(count):
        if n:
            value = keychain.advance(ChainState(Chain.DAY, 0, 0, value), step).state
        tags.append(_tag(value))
    return tuple(tags)


def witness_of(held: ChainState) -> Witness:
    """The witness of a chain the key file holds, from its cutoff to ``SPAN`` slots ahead."""
    step = STEP[held.chain]
    first = _grid(held.cutoff, step)
    tags = _tags(held.state, held.cutoff, first, SPAN[held.chain] // step + 1, step)
    return Witness(held.chain, held.gen, step, first, tags)


def matches(held: ChainState, witness: Witness) -> bool | None:
    """Whether the chain reaches the witness (None: its cutoff is past the last slot recorded)."""
    slot = max(witness.first, _grid(held.cutoff, witness.step))
    if slot > witness.last:
        return None
    expected = witness.tags[(slot - witness.first) // witness.step]
    return hmac.compare_digest(_tag_at(held.state, held.cutoff, slot), expected)


def _parsed(key: str, value: str) -> Witness | None:
    chain, _, gen = key.removeprefix(PREFIX).partition(":")
    step, first, tags = [*value.split(":", 2), "", ""][:3]
    if chain not in Chain._value2member_map_ or not all(n.isdigit() for n in (gen, step, first)) or not tags:
        return None  # not one Signpost writes: no witness (so a chain under it must prove itself)
    return Witness(Chain(chain), int(gen), int(step), int(first), tuple(tags.split(",")))


async def recorded(session: AsyncSession) -> dict[tuple[Chain, int], Witness]:
    rows = (await session.execute(select(Meta.key, Meta.value).where(Meta.key.like(f"{PREFIX}%")))).all()
    found = [_parsed(str(key), str(value)) for key, value in rows]
    return {(w.chain, w.gen): w for w in found if w is not None}


async def check(db: Database, ring: KeyRing, today: date, *, record: bool = True, accept: bool = False) -> None:
    """``ChainsNotOurs`` unless every chain of the key file is this store's; records the witnesses
    that may be recorded (``record`` False: a read-only check, which records nothing). ``accept``:
    the operator's word for a chain nothing stored can prove or disprove (``UNCHECKABLE``): it is
    recorded as the store's (a chain a stored key disproves is refused all the same)."""
    if keychain.decommissioned(ring):
        return  # no chain left to judge (binding judges an emptied key file by what the store holds)
    async with db.read() as session:
        to_record = await _judged(session, ring, today, accept=accept)
    if record and to_record:
        await _record(db, to_record)


def _stray(ring: KeyRing, held: list[ChainState]) -> bool:
    """Whether a chain entry is of a generation the key file has no master key for (or one past its
    current generation), or its term chains are not one chain: rotation gives every generation the
    same term chain, and which one tags birth-date ids is picked by cutoff alone, so a term chain of
    no generation would otherwise decide which stored ids are called destroyed, unproven."""
    masters = {int(k[1:]) for k in keydict.others(ring.keks) if k[:1] == "k" and k[1:].isdigit()}
    current = keychain.generation(ring)
    if any(s.gen not in masters or s.gen > current for s in held):
        return True
    terms = [s for s in held if s.chain is Chain.TERM]
    if not terms:
        return False
    newest = max(s.cutoff for s in terms)
    return len({keychain.advance(s, newest).state for s in terms}) > 1


async def _judged(session: AsyncSession, ring: KeyRing, today: date, *, accept: bool = False) -> list[Witness]:
    have = await recorded(session)
    held = keychain.states(ring)
    if _stray(ring, held):
        raise ChainsNotOurs(STRAY)
    to_record: list[Witness] = []
    unrecorded: list[ChainState] = []
    for state in held:
        witness = have.get((state.chain, state.gen))
        if witness is None:
            unrecorded.append(state)
            continue
        verdict = matches(state, witness)
        if verdict is None:
            raise ChainsNotOurs(PAST)
        if not verdict:
            raise ChainsNotOurs(NOT_OURS)
        if witness.last - state.cutoff < SPAN[state.chain] // 2:
            to_record.append(witness_of(state))  # proven: carried further ahead
    named = {(s.chain, s.gen) for s in held}
    generations = keychain.generations(ring)
    for chain, gen in have:
        if (chain, gen) not in named and gen in generations and await _holds(session, ring, chain, gen):
            raise ChainsNotOurs(MISSING)  # about to be made again at random: refused before that
    uncheckable = unproven_term = False
    for state in sorted(unrecorded, key=lambda s: s.gen):
        if state.chain is Chain.TERM and (
            unproven_term
            or (not keychain.chained_ids(ring, state.gen) and await _holds(session, ring, Chain.DAY, state.gen))
        ):
            # An untagged generation's ids do not depend on its term chain, so the keys it holds
            # neither prove nor disprove it (nothing is called destroyed by it either): left
            # unrecorded, not taken on trust (the genuine key file would be refused after), and so
            # is the same chain a rotation carries into the next generation, until that
            # generation's ids prove it.
            unproven_term = True
            continue
        if await _holds(session, ring, state.chain, state.gen):
            verdict = await _proven(session, ring, state, today)
            if verdict is False:
                raise ChainsNotOurs(NOT_OURS)
            if verdict is None and not accept:
                uncheckable = True  # nothing stored is under an id it makes: said after any disproof
                continue
        to_record.append(witness_of(state))
    if uncheckable:
        raise ChainsNotOurs(UNCHECKABLE)
    return to_record


def _range(chain: Chain) -> int:
    """Which of ``rotation.kek_ids_of``'s conditions names a chain's ids (the term chain names
    birth-date ids by their tags)."""
    return 2 if chain is Chain.MONTH else 1


async def _holds(session: AsyncSession, ring: KeyRing, chain: Chain, gen: int) -> bool:
    """Whether the store holds a wrapped key under an id of ``chain`` in generation ``gen`` (an
    untagged generation's birth-date ids do not depend on its term chain: none)."""
    if chain is Chain.TERM and not keychain.chained_ids(ring, gen):
        return False
    for spec in WRAPPED_KEY_TABLES:
        ids = kek_ids_of(spec, ring, gen)[_range(chain)]
        if (await session.execute(select(spec.table.c[spec.kek_id]).where(ids).limit(1))).first() is not None:
            return True
    return False


async def _proven(session: AsyncSession, ring: KeyRing, state: ChainState, today: date) -> bool | None:
    """Whether this chain demonstrably is the store's, at the slots its cutoff says. A month chain:
    a key under a month id it makes opens with the key it derives there. A birth-date or term chain:
    with its partner (the same generation's day chain, the term chain; rotation carries the term
    chain unchanged, so every generation's agree: ``_stray``), a child's key under the id made at a
    slot opens with the day key made at that slot, *and* the child it opens was born that day. A
    chain at another cutoff (the right state, renamed) still makes the store's ids, but at other
    slots: the child born on another day than the slot, or no key opening, it is refused. Judged
    from the chains' own states, not from the keys the ring derived (another entry's, perhaps).
    A chain none of whose first ``_TRIES`` keys opens is not the store's; None: no key is stored
    under any id it makes (nothing proves or disproves it)."""
    if state.chain is Chain.MONTH:
        return await _month_proven(session, ring, state, today)
    held = keychain.states(ring)
    day = (
        state
        if state.chain is Chain.DAY
        else next((s for s in held if s.chain is Chain.DAY and s.gen == state.gen), None)
    )
    term = (
        state
        if state.chain is Chain.TERM
        else max((s for s in held if s.chain is Chain.TERM), key=lambda s: s.cutoff, default=None)
    )
    tagged = keychain.chained_ids(ring, state.gen)
    if day is None or (tagged and term is None):
        return False
    start = max(day.cutoff, term.cutoff if tagged and term is not None else 0)
    last = keychain.horizon(Chain.DAY, today)
    made: dict[str, tuple[int, bytes]] = {}
    g = keychain.kek_id(ring, Chain.MONTH, state.gen, 0)[1]
    day_value = keychain.advance(day, start).state
    term_value = keychain.advance(term, start).state if tagged and term is not None else b""
    for slot in range(start, last + 1):
        tag = keychain.day_tag(term_value) if tagged else keychain.cohort_tag(ring.index_key, slot)
        made[f"d{g}{tag}"] = (slot, keychain.kek_at(day_value))
        day_value = keychain.step(day_value)
        if tagged:
            term_value = keychain.step(term_value)
    verdict = await _born_on(session, made)
    if verdict is None and tagged and await _day_keys_open_a_child(session, g, made):
        # The ids it makes name no stored key, yet the day chain's keys from its cutoff open a
        # child's: that child's id is not made, so the term chain is not the store's (every child
        # of a backup destroyed since is under a day key punctured away, which opens nothing).
        return False
    if verdict is None and state.chain is Chain.TERM and state.cutoff < day.cutoff:
        # A term chain behind the day chain (punctured together, they never are): the store's keys
        # under ids it makes only there, below where the day chain starts, would all be called
        # destroyed. Such a chain, renamed to a lower cutoff, makes every stored child's id there.
        below = [f"d{g}{keychain.day_tag(value)}" for _, value in keychain.walk(state, day.cutoff - 1)]
        for first in range(0, len(below), _CHUNK):
            query = select(ChildKey.kek_id).where(ChildKey.kek_id.in_(below[first : first + _CHUNK])).limit(1)
            if (await session.execute(query)).first() is not None:
                return False
    return verdict


async def _day_keys_open_a_child(session: AsyncSession, g: str, made: Mapping[str, tuple[int, bytes]]) -> bool:
    """Whether a child's key under a birth-date id of generation ``g`` opens with one of the day keys
    in ``made`` (whatever id they were made under): up to ``_PROBES`` children, each tried against
    every day key from the chain's cutoff to its horizon (~9,000 AES-GCM opens a child)."""
    query = select(ChildKey.child_ref, ChildKey.wrapped).where(ChildKey.kek_id.like(f"d{g}%")).limit(_PROBES)
    day_keys = {kek for _, kek in made.values()}
    for ref, wrapped in (await session.execute(query)).all():
        aad = b"wrap:" + child_aad(int(ref))
        for kek in day_keys:
            try:
                open_sealed(kek, wrapped, aad)
            except DecryptionError:
                continue
            return True
    return False


async def _born_on(session: AsyncSession, made: Mapping[str, tuple[int, bytes]]) -> bool | None:
    """Whether a child's key under one of ``made``'s ids opens with the key made with it, and that
    child's sealed identity says it was born on that id's slot (its date of birth is compared here
    and goes nowhere). A key that opens for a child born on another day: the chains at other slots."""
    ids, tried = list(made), 0
    for start in range(0, len(ids), _CHUNK):
        query = (
            select(ChildKey.child_ref, ChildKey.kek_id, ChildKey.wrapped, Child.identity)
            .join(Child, Child.ref == ChildKey.child_ref)
            .where(ChildKey.kek_id.in_(ids[start : start + _CHUNK]), Child.identity.is_not(None))
            .limit(_TRIES)
        )
        for ref, kid, wrapped, sealed in (await session.execute(query)).all():
            slot, kek = made[str(kid)]
            aad = child_aad(int(ref))
            try:
                data_key = open_sealed(kek, wrapped, b"wrap:" + aad)
            except DecryptionError:
                tried += 1
                if tried >= _TRIES:
                    return False  # a wrong chain: no key under its ids opens
                continue
            try:
                born = json.loads(open_sealed(data_key, sealed or b"", aad))["d"]
            except (DecryptionError, ValueError, KeyError, TypeError):
                tried += 1  # one damaged row is not the chain's fault
                if tried >= _TRIES:
                    return False
                continue
            return isinstance(born, str) and born == keychain.slot_day(slot).isoformat()
    return False if tried else None


async def _month_proven(session: AsyncSession, ring: KeyRing, state: ChainState, today: date) -> bool | None:
    last = keychain.horizon(Chain.MONTH, today)
    made = {
        keychain.kek_id(ring, Chain.MONTH, state.gen, slot): keychain.kek_at(value)
        for slot, value in keychain.walk(state, last)
    }
    ids, tried = list(made), 0
    for spec in WRAPPED_KEY_TABLES:
        column = spec.table.c[spec.kek_id]
        for start in range(0, len(ids), _CHUNK):
            query = select(spec.table).where(column.in_(ids[start : start + _CHUNK])).limit(_TRIES)
            for row in (await session.execute(query)).mappings():
                if _opens(made[str(row[spec.kek_id])], spec, row):
                    return True
                tried += 1
                if tried >= _TRIES:
                    return False  # a wrong chain: no key under its ids opens
    return False if tried else None


def _opens(kek: bytes, spec: WrappedKeys, row: Mapping[Any, Any]) -> bool:
    """Whether a wrapped key opens (one damaged row is not the chain's fault: another is tried)."""
    try:
        open_sealed(kek, row[spec.wrapped], b"wrap:" + spec.aad(row))
    except DecryptionError:
        return False
    return True


async def _record(db: Database, witnesses: list[Witness]) -> None:
    async with db.write() as session:
        insert = dialect_insert(session)
        for witness in witnesses:
            statement = insert(Meta).values(key=witness.key, value=witness.value)
            await session.execute(
                statement.on_conflict_do_update(index_elements=["key"], set_={"value": statement.excluded.value})
            )


async def forget_except(db: Database, gen: int) -> None:
    """Drop the witnesses of every generation but ``gen`` (a rotation's last step: the key file no
    longer holds them). A rotation killed before this leaves them, which judge nothing: the store
    holds no key under them any more."""
    async with db.write() as session:
        for witness in (await recorded(session)).values():
            if witness.gen != gen:
                await session.execute(delete(Meta).where(Meta.key == witness.key))
