"""Re-walk the audit chain and say whether it is complete and unaltered, or where it first goes wrong.

The walk reads events, chain entries and child-index rows in windows of sequence numbers, up to the
chain head read at the start (events appended meanwhile are left for the next verification). For
each event it checks, in order: that the event has a chain entry and the entry an event; that the
entry continues from the event before it; that the event still hashes to its leaf; that its child
index rows match; and that the chain head follows. Then every stored checkpoint and any supplied
one must carry a valid signature and match the chain at its size: this is what catches a truncated
end, or a tail rewritten with recomputed hashes by someone without the signing key.

Only the public key is needed (never a secret), so the chain stays verifiable after decommissioning
has destroyed the signing seed; an auditor passes the key published earlier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.audit.chain import (
    CANONICAL_FIELDS,
    EMPTY_HEAD,
    Checkpoint,
    Head,
    current_head,
    leaf_hash,
    link,
    stored_checkpoints,
)
from store.audit.signing import origin_of
from store.db import Database
from store.tables.audit import AuditChainEntry, AuditEvent, AuditSubject

WINDOW = 2000  # sequence numbers per read
REORDER_REACH = 64  # how far either side to look for an event's original place


class Problem(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    REWRITTEN = "rewritten"  # altered together with recomputed hashes
    BAD_CHECKPOINT = "bad checkpoint"


@dataclass(frozen=True, slots=True)
class Finding:
    problem: Problem
    seq: int  # the first bad sequence number (for a rewritten range, its first event)
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    count: int  # events verified
    last_seq: int
    head_hash: bytes
    checkpoints: int  # checkpoints that matched
    finding: Finding | None = None

    @property
    def ok(self) -> bool:
        return self.finding is None


@dataclass
class _Walk:
    """The walk's state: how far it got and the chain at the sizes checkpoints need."""

    wanted: set[int]
    prev: int = 0
    head: bytes = EMPTY_HEAD
    count: int = 0
    marks: dict[int, tuple[bytes, int]] = field(default_factory=lambda: {0: (EMPTY_HEAD, 0)})

    def advance(self, seq: int, head: bytes) -> None:
        self.prev, self.head, self.count = seq, head, self.count + 1
        if self.count in self.wanted:
            self.marks[self.count] = (head, seq)


async def verify(db: Database, public: bytes, supplied: Sequence[Checkpoint] = ()) -> Verdict:
    """Walk the whole chain; check stored checkpoints and any ``supplied`` ones (e.g. a kept file)
    against the checkpoint signing key's ``public`` half."""
    async with db.read() as session:
        head = await current_head(session)
        checkpoints = sorted([*await stored_checkpoints(session), *supplied], key=lambda c: c.size)
    forged = _bad_signature(public, checkpoints)
    if forged is not None:
        return Verdict(0, 0, EMPTY_HEAD, 0, forged)
    walk = _Walk(wanted={1} | {c.size for c in checkpoints} | {c.size + 1 for c in checkpoints})
    finding = await _walk_chain(db, walk, head.last_seq)
    if finding is None:
        finding = await _outside_chain(db, head.last_seq)
    matched = 0
    if finding is None:
        finding, matched = _against_checkpoints(walk, checkpoints)
    if finding is None:
        finding = _against_head(walk, head)
    return Verdict(walk.count, walk.prev, walk.head, matched, finding)


def _bad_signature(public: bytes, checkpoints: Sequence[Checkpoint]) -> Finding | None:
    origin = origin_of(public)
    for cp in checkpoints:
        if cp.origin != origin:
            return Finding(Problem.BAD_CHECKPOINT, cp.last_seq, f"the {cp.label} belongs to another log ({cp.origin})")
        if not cp.signed_by(public):
            return Finding(
                Problem.BAD_CHECKPOINT,
                cp.last_seq,
                f"the {cp.label} does not carry this Signpost's signature",
            )
    return None


async def _walk_chain(db: Database, walk: _Walk, last_seq: int) -> Finding | None:
    low = 1
    while low <= last_seq:
        high = min(low + WINDOW - 1, last_seq)
        async with db.read() as session:
            events, entries, subjects = await _window(session, low, high)
            for seq in sorted(events.keys() | entries.keys()):
                finding = await _check(session, walk, seq, events.get(seq), entries.get(seq), subjects)
                if finding is not None:
                    return finding
        low = high + 1
    return None


async def _window(
    session: AsyncSession, low: int, high: int
) -> tuple[dict[int, dict[str, object]], dict[int, AuditChainEntry], dict[int, set[int]]]:
    columns = [getattr(AuditEvent, name) for name in CANONICAL_FIELDS]
    rows = (await session.execute(select(*columns).where(AuditEvent.seq.between(low, high)))).mappings()
    events = {int(row["seq"]): dict(row) for row in rows}
    chain = await session.execute(select(AuditChainEntry).where(AuditChainEntry.seq.between(low, high)))
    entries = {entry.seq: entry for entry in chain.scalars()}
    subjects: dict[int, set[int]] = {}
    for seq, ref in await session.execute(
        select(AuditSubject.seq, AuditSubject.child_ref).where(AuditSubject.seq.between(low, high))
    ):
        subjects.setdefault(seq, set()).add(ref)
    return events, entries, subjects


async def _check(
    session: AsyncSession,
    walk: _Walk,
    seq: int,
    event: dict[str, object] | None,
    entry: AuditChainEntry | None,
    subjects: Mapping[int, set[int]],
) -> Finding | None:
    """The first thing wrong with one event and its chain entry, or None after advancing the walk."""
    if entry is None:
        return Finding(Problem.INSERTED, seq, f"event {seq} is not in the chain: it was added outside Signpost")
    if event is None:
        return Finding(Problem.DELETED, seq, f"event {seq} was deleted (its chain entry remains)")
    finding = _continuity(walk, seq, entry)
    if finding is not None:
        return finding
    if leaf_hash(event) != entry.leaf_hash:
        return await _changed(session, seq, event)
    refs = {int(part) for part in str(event["subject_refs"]).split()}
    if refs != subjects.get(seq, set()):
        return Finding(Problem.EDITED, seq, f"the child index of event {seq} was altered (rows added or removed)")
    expected = link(walk.head, entry.leaf_hash)
    if expected != entry.head_hash:
        return Finding(
            Problem.REWRITTEN,
            seq,
            f"the chain breaks at event {seq}: event {walk.prev} or this entry was rewritten with new hashes",
        )
    walk.advance(seq, expected)
    return None


def _continuity(walk: _Walk, seq: int, entry: AuditChainEntry) -> Finding | None:
    if entry.prev_seq >= seq:
        return Finding(Problem.REORDERED, seq, f"event {seq} was moved: it was written after event {entry.prev_seq}")
    if entry.prev_seq > walk.prev:
        return Finding(
            Problem.DELETED,
            entry.prev_seq,
            f"event {entry.prev_seq} was deleted (event {seq} follows it in the chain; "
            f"the last intact event before it is {walk.prev})",
        )
    if entry.prev_seq < walk.prev:
        return Finding(
            Problem.INSERTED, walk.prev, f"event {walk.prev} was inserted between {entry.prev_seq} and {seq}"
        )
    return None


async def _changed(session: AsyncSession, seq: int, event: dict[str, object]) -> Finding:
    """An event no longer hashes to its leaf: copied or moved from another place, or edited."""
    nearby = await session.execute(
        select(AuditChainEntry.seq, AuditChainEntry.leaf_hash).where(
            AuditChainEntry.seq.between(seq - REORDER_REACH, seq + REORDER_REACH), AuditChainEntry.seq != seq
        )
    )
    for other, leaf in nearby:
        if leaf_hash({**event, "seq": other}) == leaf:
            if await _intact(session, other, leaf):
                return Finding(Problem.INSERTED, seq, f"event {seq} is a copy of event {other}, inserted")
            return Finding(Problem.REORDERED, seq, f"event {seq} holds the record written as event {other}")
    return Finding(Problem.EDITED, seq, f"event {seq} was edited: its content no longer matches its hash")


async def _intact(session: AsyncSession, seq: int, leaf: bytes) -> bool:
    columns = [getattr(AuditEvent, name) for name in CANONICAL_FIELDS]
    row = (await session.execute(select(*columns).where(AuditEvent.seq == seq))).mappings().first()
    return row is not None and leaf_hash(row) == leaf


async def _outside_chain(db: Database, last_seq: int) -> Finding | None:
    """Events or entries past the head the walk started from that no append wrote.

    An append writes the event, its entry and the new head in one transaction, so an event without
    an entry, or anything beyond the head read *afterwards*, was written some other way.
    """
    async with db.read() as session:
        orphan = (
            await session.execute(
                select(func.min(AuditEvent.seq))
                .outerjoin(AuditChainEntry, AuditChainEntry.seq == AuditEvent.seq)
                .where(AuditEvent.seq > last_seq, AuditChainEntry.seq.is_(None))
            )
        ).scalar()
        top_event = (await session.execute(select(func.max(AuditEvent.seq)))).scalar() or 0
        top_entry = (await session.execute(select(func.max(AuditChainEntry.seq)))).scalar() or 0
        head = await current_head(session)
    if orphan is not None:
        return Finding(Problem.INSERTED, orphan, f"event {orphan} is not in the chain: it was added outside Signpost")
    beyond = max(top_event, top_entry)
    if beyond > head.last_seq:
        return Finding(
            Problem.INSERTED,
            beyond,
            f"event {beyond} lies beyond the chain head (seq {head.last_seq}): it was added outside Signpost",
        )
    return None


def _against_checkpoints(walk: _Walk, checkpoints: Sequence[Checkpoint]) -> tuple[Finding | None, int]:
    good_size, good_seq, matched = 0, 0, 0
    for cp in checkpoints:
        if cp.size > walk.count:
            return Finding(
                Problem.TRUNCATED,
                walk.prev + 1,
                f"the chain ends after {walk.count} events (seq {walk.prev}) but the {cp.label} covers "
                f"{cp.size}, up to seq {cp.last_seq}: the events after seq {walk.prev} were removed",
            ), matched
        head, seq = walk.marks[cp.size]
        if head != cp.head_hash or seq != cp.last_seq:
            first = walk.marks.get(good_size + 1, (b"", good_seq + 1))[1]
            return Finding(
                Problem.REWRITTEN,
                first,
                f"the first {cp.size} events no longer match the {cp.label}: events from seq {first} "
                f"(after the last matching checkpoint) to seq {cp.last_seq} were rewritten "
                "with recomputed hashes",
            ), matched
        good_size, good_seq, matched = cp.size, cp.last_seq, matched + 1
    return None, matched


def _against_head(walk: _Walk, head: Head) -> Finding | None:
    if head.size > walk.count:
        return Finding(
            Problem.TRUNCATED,
            walk.prev + 1,
            f"the chain head records {head.size} events up to seq {head.last_seq}, but only {walk.count} "
            f"remain: the events after seq {walk.prev} were removed",
        )
    if (head.size, head.last_seq, head.head_hash) != (walk.count, walk.prev, walk.head):
        return Finding(Problem.REWRITTEN, walk.prev, "the chain head row does not match the chain: it was altered")
    return None
