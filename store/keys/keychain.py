"""Birth-date and month keys: key material outside the store that retention destroys a day at a time.

Why: a backup holds every child's *wrapped* data key. If every data key were wrapped by one
long-lived key-encryption key (KEK), an old backup restored beside the current key file would
still decrypt a child destroyed since. So each child's data key is re-wrapped (by the retention
run, "seal-in") under the key of its **date-of-birth cohort**, and each month's audit-term key
under its **month** key. Those keys come from forward-only hash chains held in the key file:

    state[s + 1] = SHA-256("next" | state[s])      kek[s] = SHA-256("kek" | state[s])

The key file stores one chain state per chain at its *cutoff* slot (the first day/month not yet
destroyed). Any process derives every later key from it deterministically (replicas agree without
talking), and nobody can go backwards: advancing the stored state past a day (``puncture``)
destroys that day's key in every copy of the key file made from then on, and so the data of
every child born that day in every backup of the store.

Since issue 13 a child's data key is wrapped under its cohort key **when it is written** (import),
and a month's audit-term key under its month key when it is made, so no backup ever holds a
master-wrapped child key; seal-in remains for stores written before that.

Blind-index term keys come from a third chain, ``term``, kept in step with the day chain (see
``store.keys.term_keys``): a child's index terms are keyed under its birth day's or birth year's
term key, so puncturing the day chain makes an old backup's terms of the destroyed cohorts
untestable too. Its keys are never KEKs: ``install`` derives them into ``KeyRing.term_keys``.

KEK ids as stored in ``*.kek_id`` columns (String(16)):
    ``k<gen>``               the master KEK (TOTP seeds; keys written before issue 13 not yet sealed in)
    ``d<g><14 hex>``         a birth-date cohort key; the hex is a tag of the day's term-chain
                             state (``day_tag``), so the store never shows a date of birth in
                             clear, and once the cohort is destroyed nobody can tell which day it
                             named (generations before ``KeyRing.cohort_ids_from``: a hash of the
                             day under the index key, see ``chained_ids``)
    ``m<g><slot:06d>``       a month key for audit query terms (a month is not personal)
where ``<g>`` is the key generation (``signpost keys rotate`` moves every row to the next one).
Chain states live in the key file's KEK map as ``~<chain>:<gen>:<cutoff>`` entries, so that
``KeyRing.save`` keeps them; derived keys are only ever held in memory.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

from store.keys import keydict, term_keys
from store.keys.crypto import KeyFileError, KeyRing, key_file_lock, seal

DAY_EPOCH = date(1900, 1, 1)
HORIZON_DAYS = 400  # keys derived ahead of today, so a long-running replica can read new children
HORIZON_MONTHS = 13
DESTROY_AT_AGE = 24
ARCHIVE_AT_AGE = 18
AUDIT_TERM_MONTHS = 24  # sealed query terms that touched no single child are kept this many months
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class Chain(StrEnum):
    DAY = "day"
    MONTH = "month"
    TERM = "term"  # blind-index term keys: day slots, punctured with DAY, carried unchanged by rotation


PUNCTURED_WITH = {Chain.DAY: (Chain.DAY, Chain.TERM), Chain.MONTH: (Chain.MONTH,), Chain.TERM: (Chain.DAY, Chain.TERM)}
"""The chains one puncture advances together, in one write of the key file: a birth day's term key
never outlives its cohort key."""


@dataclass(frozen=True, slots=True)
class ChainState:
    chain: Chain
    gen: int
    cutoff: int  # first slot whose key still exists
    state: bytes

    @property
    def entry_id(self) -> str:
        return f"~{self.chain}:{self.gen}:{self.cutoff}"


# -- dates and slots ---------------------------------------------------------------------------


def day_slot(day: date) -> int:
    return (day - DAY_EPOCH).days


def slot_day(slot: int) -> date:
    return DAY_EPOCH + timedelta(days=slot)


def month_slot(period: str) -> int:
    """'2026-11' → months since January 1900."""
    year, month = int(period[:4]), int(period[5:7])
    return (year - DAY_EPOCH.year) * 12 + month - 1


def slot_period(slot: int) -> str:
    return f"{DAY_EPOCH.year + slot // 12:04d}-{slot % 12 + 1:02d}"


def birthday(dob: date, years: int) -> date:
    """The day someone born on ``dob`` turns ``years``.

    Rule for 29 February: in a year without one, the birthday is 1 March (as UK law counts
    coming of age), so a leap-day child is archived and destroyed no earlier than anyone else.
    """
    try:
        return dob.replace(year=dob.year + years)
    except ValueError:
        return date(dob.year + years, 3, 1)


def dobs_turning(day: date, years: int) -> list[date]:
    """Every date of birth whose ``years``-th birthday falls on ``day``."""
    candidates = [_years_before(day, years)]
    if (day.month, day.day) == (3, 1):
        candidates.append(_leap_day(day.year - years))
    return sorted({c for c in candidates if c is not None and birthday(c, years) == day})


def _leap_day(year: int) -> date | None:
    try:
        return date(year, 2, 29)
    except ValueError:
        return None


def _years_before(day: date, years: int) -> date | None:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return None


def first_retained_dob(day: date) -> date:
    """The earliest date of birth whose 24th birthday is after ``day`` (the day chain's cutoff)."""
    guess = (_years_before(day, DESTROY_AT_AGE) or date(day.year - DESTROY_AT_AGE, 2, 28)) - timedelta(days=3)
    while birthday(guess, DESTROY_AT_AGE) <= day:
        guess += timedelta(days=1)
    return guess


def month_cutoff(day: date) -> int:
    """The first month whose audit-term key is still kept on ``day``."""
    return month_slot(day.strftime("%Y-%m")) - AUDIT_TERM_MONTHS


# -- ids and derivation ------------------------------------------------------------------------


def generation(ring: KeyRing) -> int:
    return int(ring.current_kek_id[1:]) if ring.current_kek_id[1:].isdigit() else 1


def _g(gen: int) -> str:
    return _B36[gen % 36]


def generation_of(kek: str, near: int) -> int | None:
    """The key generation a stored KEK id belongs to (None: not an id Signpost writes). A derived id
    keeps the generation modulo 36 only: the generation nearest ``near`` with that remainder."""
    if kek[:1] == "k" and kek[1:].isdigit():
        return int(kek[1:])
    if is_derived(kek) and len(kek) > 1 and kek[1] in _B36:
        remainder = _B36.index(kek[1])
        below = near - (near - remainder) % 36
        return min((g for g in (below, below + 36) if g >= 1), key=lambda g: abs(g - near), default=None)
    return None


def generations(ring: KeyRing) -> set[int]:
    """The key generations the key file holds (master KEKs and chains)."""
    held = {int(k[1:]) for k in keydict.others(ring.keks) if k[:1] == "k" and k[1:].isdigit()}
    return held | {s.gen for s in states(ring)}


def chained_ids(ring: KeyRing, gen: int) -> bool:
    """Whether generation ``gen`` names its birth-date keys by a tag of the day's term-chain state
    (``day_tag``): once the cohort is destroyed, nobody can tell which day such an id named. Before
    (``KeyRing.cohort_ids_from`` 0, key files made before 2026-12-05), an id carried a hash of the
    day under ``index_key``, which is never destroyed: hashing every day gave any destroyed child's
    date of birth back, from a backup or from the audit's ``terms_key``. ``keys rotate`` moves such
    a key file's next generation to tags."""
    return 0 < ring.cohort_ids_from <= gen


def kek_id(ring: KeyRing, chain: Chain, gen: int, slot: int) -> str:
    """A slot's KEK id in generation ``gen``. A birth-date id of a tagged generation exists only for
    the slots whose tags the ring holds (``install``: the cutoff to the horizon): KeyError else."""
    if chain is Chain.DAY:
        if chained_ids(ring, gen):
            return f"d{_g(gen)}{ring.day_tags[slot]}"
        return f"d{_g(gen)}{_cohort_tag(ring.index_key, slot)}"
    return f"m{_g(gen)}{slot:06d}"


_ID_BLOCK = 1024  # slots whose ids are made and kept together (``kek_ids``)


def kek_ids(ring: KeyRing, chain: Chain, gen: int, first: int, last: int) -> list[str]:
    """``kek_id`` of every slot from ``first`` to ``last`` inclusive. A retention run catching up
    punctures once a day, and each puncture names ~9,000 derived keys: made a block of slots at a
    time and kept (ids only, never keys), so a puncture slices them instead of hashing each again."""
    if chain is Chain.DAY and chained_ids(ring, gen):
        g, tags = _g(gen), ring.day_tags
        return [f"d{g}{tags[slot]}" for slot in range(first, last + 1)]
    ids: list[str] = []
    for block in range(first // _ID_BLOCK, last // _ID_BLOCK + 1):
        start = block * _ID_BLOCK
        made = _id_block(ring.index_key, chain, _g(gen), block)
        ids.extend(made[max(first, start) - start : min(last, start + _ID_BLOCK - 1) - start + 1])
    return ids


@functools.lru_cache(maxsize=256)
def _id_block(index_key: bytes, chain: Chain, g: str, block: int) -> tuple[str, ...]:
    slots = range(block * _ID_BLOCK, (block + 1) * _ID_BLOCK)
    if chain is Chain.DAY:
        return tuple(f"d{g}{_cohort_tag(index_key, slot)}" for slot in slots)
    return tuple(f"m{g}{slot:06d}" for slot in slots)


@functools.lru_cache(maxsize=65536)
def _cohort_tag(index_key: bytes, slot: int) -> str:
    """The untagged generations' id of a day: a keyed hash of it under ``index_key`` (pure, so
    memoised). Never destroyed: see ``chained_ids``."""
    return hmac.digest(index_key, b"cohort:%d" % slot, "sha256").hex()[:14]  # hmac.new's, in one C call


def day_tag(term_state: bytes) -> str:
    """A tagged generation's id of a day: a hash of the term chain's state at its slot, so that it
    can be made only while that day's keys can (a puncture destroys it with them)."""
    return hashlib.sha256(b"signpost-cohort-tag:" + term_state).hexdigest()[:14]


TAGS_PAST_HORIZON = 3653
"""How far past the derivation horizon ``punctured_day_ids`` looks before it calls a tagged id that
no key is held for destroyed: a row written by a process whose clock ran ahead is not an orphan."""


def _term_state_at(ring: KeyRing, slot: int) -> ChainState | None:
    """The term chain's state at ``slot`` (None: no term chain, or it is punctured past ``slot``)."""
    held = [s for s in states(ring) if s.chain is Chain.TERM]
    if not held:
        return None
    newest = max(held, key=lambda s: s.cutoff)
    return None if newest.cutoff > slot else advance(newest, slot)


class _TermWalk:
    """The term chain's states from the day chain's cutoff on, each stepped once however many read
    them: an install makes the day tags and the term keys from the same slots (two walks of ~9,000
    hashes each were one), and neither when it reuses what the ring holds. Local to one install:
    the states are dropped with it, as each walk's were."""

    def __init__(self, ring: KeyRing) -> None:
        day_cutoff = cutoff_of(ring, Chain.DAY)
        held = [s for s in states(ring) if s.chain is Chain.TERM]
        self._newest = max(held, key=lambda s: s.cutoff) if held and day_cutoff is not None else None
        self._day_cutoff = day_cutoff or 0
        self._values: list[bytes] = []

    @functools.cached_property
    def start(self) -> ChainState | None:
        """The term chain at the day chain's cutoff (``advance``d there), or at its own cutoff when
        it is punctured past it (None: no term chain, or no day chain)."""
        if self._newest is None:
            return None
        start = advance(self._newest, self._day_cutoff)
        self._values = [start.state]
        return start

    def values_to(self, last: int) -> list[bytes]:
        """The states at ``start.cutoff`` … ``last``."""
        start = self.start
        assert start is not None
        values = self._values
        while len(values) <= last - start.cutoff:
            values.append(_step(values[-1]))
        return values[: max(0, last - start.cutoff + 1)]


def _day_tags(ring: KeyRing, today: date, walk: _TermWalk | None = None) -> dict[int, str]:
    """Every day's tag from the day chain's cutoff to the horizon (empty when no generation the key
    file holds is tagged); those held already are kept when they are the same chain's."""
    day_cutoff = cutoff_of(ring, Chain.DAY)
    if day_cutoff is None or not any(chained_ids(ring, s.gen) for s in states(ring) if s.chain is Chain.DAY):
        return {}
    walk = walk or _TermWalk(ring)
    start = walk.start
    if start is None or start.cutoff != day_cutoff:
        return {}  # no term chain to tag with, or one punctured past the day chain: no tagged id (fails closed)
    last = horizon(Chain.DAY, today)
    before = ring.day_tags
    if before.get(day_cutoff) == day_tag(start.state) and last in before:
        return {slot: tag for slot, tag in before.items() if day_cutoff <= slot <= last}
    return {slot: day_tag(value) for slot, value in zip(range(day_cutoff, last + 1), walk.values_to(last), strict=True)}


def _walk_tags(start: ChainState, last: int) -> dict[int, str]:
    tags: dict[int, str] = {}
    value = start.state
    for slot in range(start.cutoff, last + 1):
        tags[slot] = day_tag(value)
        value = _step(value)
    return tags


_DERIVED = keydict.DERIVED_PREFIXES


def is_derived(kek: str) -> bool:
    return kek[:1] in _DERIVED


def same_family(old_id: str, gen: int) -> str:
    """The id a derived key has in generation ``gen`` (rotation keeps the slot, changes the key),
    when both generations name days alike (``chained_ids``; ``mover`` otherwise)."""
    return old_id[0] + _g(gen) + old_id[2:]


def mover(ring: KeyRing, gen: int) -> Callable[[str], str]:
    """What a rotation to ``gen`` renames a derived KEK id to: the same slot's id in ``gen``. From an
    untagged generation to a tagged one, the slot is found by its untagged id among the days the
    ring holds keys for (an id of no such day is returned as it is: no key is held for it)."""
    untagged: dict[str, int] = {}

    def move(old_id: str) -> str:
        old_gen = generation_of(old_id, gen)
        if old_id[:1] != "d" or old_gen is None or chained_ids(ring, old_gen) == chained_ids(ring, gen):
            return same_family(old_id, gen)
        if not untagged:
            untagged.update((_cohort_tag(ring.index_key, slot), slot) for slot in ring.day_tags)
        slot = untagged.get(old_id[2:])
        return old_id if slot is None else kek_id(ring, Chain.DAY, gen, slot)

    return move


_renamed: dict[tuple[bytes, int, int], dict[str, str]] = {}
"""The untagged name (``d<tag>``) of each day the ring holds tags for, to its tagged one: one
entry, for the ring's days as they are (``install`` clears it)."""


def tagged_name(ring: KeyRing, name: str) -> str | None:
    """The tagged ``d<tag>`` name of the day whose untagged name is ``name`` (an audit-terms key
    renamed by the rotation that moved the store to tags, ``rotation``), or None when no day the
    ring holds keys for has it (its cohort destroyed, or not a cohort's name)."""
    if not ring.day_tags or not name.startswith("d"):
        return None
    at = (ring.index_key, min(ring.day_tags), max(ring.day_tags))
    names = _renamed.get(at)
    if names is None:
        _renamed.clear()
        names = _renamed[at] = {
            f"d{_cohort_tag(ring.index_key, slot)}": f"d{tag}" for slot, tag in ring.day_tags.items()
        }
    return names.get(name)


def cohort_names(ring: KeyRing, first: int, last: int) -> list[str]:
    """Every name the days ``first`` to ``last`` may have in ``d<tag>`` form (an audit-terms key's):
    untagged and, for the days whose tags the ring holds, tagged."""
    slots = range(first, last + 1)
    return [f"d{_cohort_tag(ring.index_key, s)}" for s in slots] + [
        f"d{ring.day_tags[s]}" for s in slots if s in ring.day_tags
    ]


def _step(state: bytes) -> bytes:
    # The state is 32 uniformly random bytes, so domain-separated SHA-256 is a one-way ratchet
    # (as HMAC keyed by the state would be, at a third of the cost: install derives ~10,000).
    return hashlib.sha256(b"signpost-chain-next:" + state).digest()


def _kek(state: bytes) -> bytes:
    return hashlib.sha256(b"signpost-chain-kek:" + state).digest()


def walk(start: ChainState, last: int) -> Iterator[tuple[int, bytes]]:
    """Each slot from ``start``'s cutoff to ``last`` with the chain's state there."""
    value = start.state
    for slot in range(start.cutoff, last + 1):
        yield slot, value
        value = _step(value)


def step(state: bytes) -> bytes:
    """A chain's state at the next slot (as ``walk`` steps it)."""
    return _step(state)


def cohort_tag(index_key: bytes, slot: int) -> str:
    """An untagged generation's birth-date id tag of a slot (``kek_id``'s)."""
    return _cohort_tag(index_key, slot)


def kek_at(state: bytes) -> bytes:
    """The key-encryption key a chain's state at a slot derives (as ``install`` derives it)."""
    return _kek(state)


def advance(state: ChainState, cutoff: int) -> ChainState:
    """The chain state at a later cutoff; the earlier states cannot be recomputed from it."""
    value = state.state
    for _ in range(max(0, cutoff - state.cutoff)):
        value = _step(value)
    return replace(state, cutoff=max(cutoff, state.cutoff), state=value)


def states(ring: KeyRing) -> list[ChainState]:
    found = []
    for entry in [e for e in keydict.others(ring.keks) if e[:1] == "~"]:  # indexed: a few among ~9,000 keys
        chain, gen, cutoff = _entry_parts(ring, entry)
        found.append(ChainState(chain, gen, cutoff, ring.keks[entry]))
    return found


def _entry_parts(ring: KeyRing, entry: str) -> tuple[Chain, int, int]:
    """A chain entry's chain, generation and cutoff (``ChainState.entry_id``); ``KeyFileError`` in
    one line for a name Signpost never writes (``KeyRing.load`` checks the shape; the chains are ours)."""
    chain, _, numbers = entry[1:].partition(":")
    gen, _, cutoff = numbers.partition(":")
    if not all(n.isascii() and n.isdigit() for n in (gen, cutoff)):
        raise KeyFileError(f"cannot read key file {ring.path}: a key chain's entry has a name Signpost never writes")
    if chain not in Chain._value2member_map_:
        raise KeyFileError(f"cannot read key file {ring.path}: a key chain's entry names no chain Signpost keeps")
    return Chain(chain), int(gen), int(cutoff)


def horizon(chain: Chain, today: date) -> int:
    if chain is not Chain.MONTH:
        return day_slot(today) + HORIZON_DAYS
    return month_slot(today.strftime("%Y-%m")) + HORIZON_MONTHS


def install(ring: KeyRing, today: date, reuse: Mapping[str, bytes] | None = None) -> None:
    """Put every derivable cohort and month key (cutoff … horizon) into the in-memory ring.

    Deterministic, so every replica derives the same keys; keys below a cutoff another process
    punctured are dropped here too. No await inside: the swap is atomic for the event loop.
    ``reuse``: keys derived before (a puncture's; by default those the ring holds already, so that
    installing again, as every start does after ``ensure_chains``, derives nothing), taken instead
    of deriving a chain again when they hold its cutoff's key and every later one (a chain's keys
    from a slot on depend only on its state there); a key below the cutoff is never taken.
    """
    if reuse is None:
        reuse = ring.keks  # read before it is cleared below
    walk = _TermWalk(ring)  # the chain states read below are the non-derived keys, kept throughout
    ring.day_tags = _day_tags(ring, today, walk)
    _tags_from.cache_clear()  # another process may have punctured: made again when asked
    _renamed.clear()
    derived: dict[str, bytes] = {}
    for chain_state in states(ring):
        if chain_state.chain is Chain.TERM:
            continue  # not KEKs: derived below, into ring.term_keys
        try:
            ids = kek_ids(
                ring, chain_state.chain, chain_state.gen, chain_state.cutoff, horizon(chain_state.chain, today)
            )
        except KeyError:
            continue  # a tagged generation with no tags to name its keys by (no term chain): none derived
        if reuse and ids and reuse.get(ids[0]) == _kek(chain_state.state):
            try:
                derived.update({i: reuse[i] for i in ids})
                continue
            except KeyError:
                pass  # not every one of them was derived before: derive the chain again
        value = chain_state.state
        for kid in ids:
            derived[kid] = _kek(value)
            value = _step(value)
    kept = {k: v for k, v in ring.keks.items() if k[:1] not in _DERIVED}  # is_derived, inline: ~9,000 keys
    ring.keks.clear()
    ring.keks.update(kept)
    ring.keks.update(derived)
    ring.term_keys = _term_keys(ring, today, walk)


def _term_keys(ring: KeyRing, today: date, walk: _TermWalk | None = None) -> term_keys.TermKeys:
    """The term keys the key file holds: from the term chain, never below the day chain's cutoff
    (a day whose cohort key is destroyed has no term key, whatever a lagging term chain says)."""
    walk = walk or _TermWalk(ring)
    chain_state = walk.start
    if chain_state is None:
        return term_keys.TermKeys.none()
    first, last_day = slot_day(chain_state.cutoff), horizon(Chain.DAY, today)
    before = ring.term_keys
    if before.days.get(first) == term_keys.day_key(chain_state.state) and slot_day(last_day) in before.days:
        return before.since(first, today)  # a puncture of the chain these came from: nothing to derive
    days: dict[date, bytes] = {}
    years: dict[int, bytes] = {}
    day, one = slot_day(chain_state.cutoff), timedelta(days=1)
    last = day_slot(date(slot_day(last_day).year, 12, 31))
    for slot, value in zip(range(chain_state.cutoff, last + 1), walk.values_to(last), strict=True):
        if slot <= last_day:
            days[day] = term_keys.day_key(value)
        if day.month == 12 and day.day == 31:
            years[day.year] = term_keys.year_key(value)
        day += one
    return term_keys.TermKeys(days, years, today)


def wrap_under(ring: KeyRing, kek: str, data_key: bytes, aad: bytes) -> bytes:
    """Wrap under a named KEK (a cohort or month key) exactly as ``KeyRing.wrap`` does for the master."""
    return seal(ring.keks[kek], data_key, b"wrap:" + aad)


def key_for(ring: KeyRing, chain: Chain, slot: int) -> str | None:
    """The current generation's KEK id for a slot, or None when it is destroyed or beyond the horizon."""
    try:
        kid = kek_id(ring, chain, generation(ring), slot)
    except KeyError:
        return None  # a tagged generation's slot outside the held tags: destroyed or past the horizon
    return kid if kid in ring.keks else None


class NoCohortKey(Exception):
    """No birth-date key can be had for a date that should still have one (decommissioned keys?)."""


def due_for_destruction(dob: date, today: date) -> bool:
    """True for someone who is 24 or over on ``today``: such a child is never stored."""
    return birthday(dob, DESTROY_AT_AGE) <= today


def past_retention(ring: KeyRing, dob: date, today: date) -> bool:
    """True for a child who must not be stored on ``today``: 24 or over (``due_for_destruction``),
    or born on a day whose cohort a retention run has already destroyed, one whose clock was ahead
    of ``today``'s. Such a row is what a row of a child 24 or over is: never stored, its record (if
    any was held) destroyed. The key file is read only for a day whose term key is not at hand."""
    if due_for_destruction(dob, today):
        return True
    return dob not in ring.term_keys.days and punctured(ring, day_slot(dob))


def cohort_key(ring: KeyRing, dob: date, today: date) -> str | None:
    """The KEK id a child born on ``dob`` has its data key wrapped under from the moment it is
    written; None when that day's key is already destroyed (the child must not be stored).

    Creates the chains (first use) or derives the keys (a ring loaded without them) when needed.
    """
    if due_for_destruction(dob, today):
        return None
    slot = day_slot(dob)
    kid = key_for(ring, Chain.DAY, slot)
    if kid is None:
        if punctured(ring, slot):
            return None  # punctured already (retention ran ahead of ``today``)
        ensure_chains(ring, today)
        kid = key_for(ring, Chain.DAY, slot)
        if kid is None:
            raise NoCohortKey("no birth-date key can be derived: has the store been decommissioned?")
    return kid


def hold_term_keys(ring: KeyRing, today: date) -> None:
    """Before children are indexed on ``today``: the term keys derived for it (creating the chains on
    first use, as ``cohort_key`` does), unless they were derived for this day or a later one."""
    as_of = ring.term_keys.as_of
    if as_of is None or as_of < today:
        ensure_chains(ring, today)


def month_key(ring: KeyRing, period: str) -> str | None:
    """The month chain's KEK id for ``period`` ('YYYY-MM'), or None when it is not held."""
    return key_for(ring, Chain.MONTH, month_slot(period))


# -- the key file ------------------------------------------------------------------------------


@contextmanager
def editing(ring: KeyRing) -> Iterator[KeyRing]:
    """Edit the key file under an exclusive lock, starting from what is on disk now.

    Another process may have punctured or rotated since this one loaded the file, so the edit
    starts from a fresh read; afterwards the in-memory ring takes the saved contents.
    """
    if ring.path is None:
        yield ring  # an in-memory ring (tests, tools): nothing to lock or save
        return
    with key_file_lock(ring.path):
        fresh = KeyRing.load(ring.path)
        fresh.keks = {k: v for k, v in fresh.keks.items() if not is_derived(k)}
        yield fresh
        fresh.save()
        ring.keks.clear()
        ring.keks.update(fresh.keks)
        ring.current_kek_id = fresh.current_kek_id
        ring.index_key = fresh.index_key
        ring.signing_seed = fresh.signing_seed
        ring.cohort_ids_from = fresh.cohort_ids_from


def reload(ring: KeyRing) -> None:
    """Take chain states and KEKs from the key file (another process may have changed them)."""
    if ring.path is None:
        return
    fresh = KeyRing.load(ring.path)
    for entry in [k for k in ring.keks if k.startswith("~") and k not in fresh.keks]:
        del ring.keks[entry]
    ring.keks.update({k: v for k, v in fresh.keks.items() if k.startswith("~")})
    ring.cohort_ids_from = fresh.cohort_ids_from


def ensure_chains(ring: KeyRing, today: date) -> None:
    """Create the current generation's chains once (under the lock), then derive their keys."""
    if not decommissioned(ring):
        _create_missing(ring, today)
    install(ring, today)


def decommissioned(ring: KeyRing) -> bool:
    """True once decommissioning has destroyed the key-encryption keys (nothing may be re-created)."""
    return not ring.current_kek_id


def emptied(ring: KeyRing) -> bool:
    """True for a key file as decommissioning leaves it: no key-encryption key and no index key (only
    the public key that verifies its store's certificate). It can open its own store, and no other."""
    return decommissioned(ring) and not ring.index_key


def _create_missing(ring: KeyRing, today: date) -> None:
    gen = generation(ring)
    if {s.chain for s in states(ring) if s.gen == gen} != set(Chain):
        with editing(ring) as fresh:
            if decommissioned(fresh):
                return  # another process destroyed the keys meanwhile
            have = {s.chain for s in states(fresh) if s.gen == generation(fresh)}
            for chain in sorted(set(Chain) - have, key=list(Chain).index):  # the day chain before the term chain
                add_chain(fresh, chain, generation(fresh), initial_cutoff(chain, today, fresh))


def initial_cutoff(chain: Chain, today: date, ring: KeyRing | None = None) -> int:
    """Where a new chain starts. A term chain added to a key file that has a day chain already (a
    store written before term keys) starts at that chain's cutoff: the cohorts retention has not
    reached yet still hold children, whose terms need keys."""
    if chain is Chain.MONTH:
        return month_cutoff(today)
    held = cutoff_of(ring, Chain.DAY) if ring is not None and chain is Chain.TERM else None
    return held if held is not None else day_slot(first_retained_dob(today))


def add_chain(ring: KeyRing, chain: Chain, gen: int, cutoff: int) -> None:
    new = ChainState(chain, gen, cutoff, secrets.token_bytes(32))
    ring.keks[new.entry_id] = new.state


def next_generation(ring: KeyRing, old: ChainState, gen: int) -> None:
    """Give generation ``gen`` its own copy of ``old``'s chain: a fresh random chain, except the term
    chain, carried as it is (stored terms stay findable; like the index key, rotation does not
    change blind-index keys)."""
    if old.chain is Chain.TERM:
        ring.keks[replace(old, gen=gen).entry_id] = old.state
    else:
        add_chain(ring, old.chain, gen, old.cutoff)


def puncture(ring: KeyRing, chain: Chain, cutoff: int, today: date) -> int:
    """Destroy every key of ``chain`` below ``cutoff`` (all generations), and of the chains punctured
    with it (``PUNCTURED_WITH``: the day chain's term keys); returns the slots of ``chain`` destroyed."""
    together = PUNCTURED_WITH[chain]
    if all(s.cutoff >= cutoff for s in states(ring) if s.chain in together):
        return 0  # nothing below the cutoff is held here (no need to take the key-file lock)
    destroyed = 0
    held = {k: v for k, v in ring.keks.items() if k[:1] in _DERIVED}  # is_derived, inline: punctured daily
    with editing(ring) as fresh:
        for old in states(fresh):
            if old.chain in together and old.cutoff < cutoff:
                del fresh.keks[old.entry_id]
                new = advance(old, cutoff)
                fresh.keks[new.entry_id] = new.state
                if old.chain is chain:
                    destroyed = max(destroyed, cutoff - old.cutoff)
    install(ring, today, reuse=held)  # which forgets every tag of the days just destroyed
    return destroyed


def forget(ring: KeyRing) -> None:
    """Drop every cohort id and tag this process holds, in the ring and the caches (decommissioning:
    the untagged ids' caches hold the index key itself)."""
    ring.day_tags = {}
    _tags_from.cache_clear()
    _renamed.clear()
    _cohort_tag.cache_clear()
    _id_block.cache_clear()


def punctured(ring: KeyRing, slot: int) -> bool:
    """Whether the day chain has been punctured past ``slot`` (its birth-date key destroyed). Asked
    only when the key is not at hand: finding the cutoff reads every chain state."""
    cutoff = cutoff_of(ring, Chain.DAY)
    return cutoff is not None and slot < cutoff


def punctured_day_ids(ring: KeyRing, ids: Iterable[str]) -> list[str]:
    """Those of ``ids`` that name a birth-date key the key file has punctured: a day-chain id of a
    slot below the chain's cutoff, in any generation (a puncture advances every generation's chain
    and rotation starts the next at the same cutoff, so no generation holds it, or ever can again).

    Proof by the id alone: an id not held for any other reason (a generation rotated away while its
    cohort is still kept, a slot beyond the derivation horizon, an id of another index key) names
    no slot below the cutoff and is left out. The ids of every slot since ``DAY_EPOCH`` below the
    cutoff are made (once per process, ``kek_ids``) only when some id is not held."""
    unknown = [kid for kid in ids if kid[:1] == "d" and len(kid) > 2 and kid not in ring.keks]
    if not unknown:  # every key at hand (the usual case, asked of each candidate of a match)
        return []
    cutoff = cutoff_of(ring, Chain.DAY)
    if cutoff is None or cutoff <= 0:
        return []
    gen = generation(ring)
    tagged = [kid for kid in unknown if chained_ids(ring, generation_of(kid, gen) or 0)]
    ahead = _tags_held_or_ahead(ring) if tagged and ring.day_tags else frozenset()
    # No tags at hand (a ring loaded but not installed, no term chain): nothing is called destroyed.
    found = [kid for kid in tagged if ahead and kid[2:] not in ahead]
    untagged = [kid for kid in unknown if kid not in tagged]
    if untagged:
        gone = {kid[2:] for kid in kek_ids(ring, Chain.DAY, 0, 0, cutoff - 1)}  # generation 0: untagged ids
        found.extend(kid for kid in untagged if kid[2:] in gone)
    return found


def _tags_held_or_ahead(ring: KeyRing) -> frozenset[str]:
    """The tags of every day from the cutoff to ``TAGS_PAST_HORIZON`` days past the horizon: a tagged
    id whose tag is none of them names a day below the cutoff (its tag can no longer be made, which
    is the point) — or another key file's, which ``store.keys.binding`` refuses at start, or one whose
    term chain is not the store's, which ``store.keys.witness`` refuses before retention runs. Made once
    per cutoff (a walk of ~13,000 hashes), only when an id is not held."""
    start = _term_state_at(ring, cutoff_of(ring, Chain.DAY) or 0)
    if start is None:
        return frozenset()
    last = max(ring.day_tags, default=start.cutoff) + TAGS_PAST_HORIZON
    return _tags_from(start.state, start.cutoff, last)


@functools.lru_cache(maxsize=2)
def _tags_from(state: bytes, first: int, last: int) -> frozenset[str]:
    return frozenset(_walk_tags(ChainState(Chain.TERM, 0, first, state), last).values())


def cutoff_of(ring: KeyRing, chain: Chain) -> int | None:
    found = [s.cutoff for s in states(ring) if s.chain is chain]
    return min(found) if found else None
