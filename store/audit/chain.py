"""The audit hash chain: canonical encoding, RFC 9162-style leaf hashing, one chain head, signed checkpoints.

Every audit event is encoded canonically (all of its columns, in a fixed order, length-prefixed and
typed) and hashed as an RFC 9162 leaf: ``SHA-256(0x00 || encoding)``. Leaves are chained in append
order: ``head_n = SHA-256(0x01 || head_{n-1} || leaf_n)``, starting from the RFC 9162 empty-tree hash
``SHA-256("")``. The chain lives beside the events in ``audit_chain`` (one row per event, written in
the same transaction) and its current end in the one-row ``audit_chain_head``, which every append
locks first, so concurrent writers (several bot replicas) take turns and never fork the chain.

A checkpoint signs ``(origin, size, head hash, time)`` with the checkpoint signing key
(store/audit/signing.py). It is printed as a signed note (after the C2SP checkpoint format) so it can
be kept outside the system (``export_note`` writes one to a folder an operator ships elsewhere); a
later verification against it detects a truncated end or a tail rewritten with recomputed hashes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.audit.signing import Signer, origin_of
from store.db import Database
from store.files import temporary_for, write_whole
from store.prepared import Prepared
from store.tables.audit import AuditChainEntry, AuditChainHead, AuditCheckpoint, AuditEvent

HEAD_ID = 1
NOTE_PREFIX = "checkpoint-"  # exported notes: checkpoint-<UTC time>-<size>.note
NOTE_PARTIAL = ".partial"  # what versions before wrote a note under (unhidden), cleared as a leftover
EMPTY_HEAD = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: the hash of an empty list
ENCODING_VERSION = b"signpost-audit-event/v1\n"

# Every column of audit_events, in hash order. A test checks this list against the table, so a new
# column cannot slip in unhashed (adding one means a new ENCODING_VERSION for the events after it).
CANONICAL_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "platform",
    "tenant",
    "user_id",
    "actor_role",
    "actor_org",
    "actor_la",
    "channel",
    "action",
    "outcome",
    "subject_refs",
    "result_count",
    "correlation_id",
    "detail",
    "terms",
    "terms_key",
)


# -- canonical encoding and hashing ------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """Aware UTC; a naive value (SQLite returns them) is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _field(value: object) -> bytes:
    if value is None:
        tag, raw = b"N", b""
    elif isinstance(value, bool):
        raise TypeError("no boolean columns are hashed")
    elif isinstance(value, int):
        tag, raw = b"I", str(value).encode("ascii")
    elif isinstance(value, str):
        tag, raw = b"S", value.encode("utf-8")
    elif isinstance(value, bytes | bytearray | memoryview):
        tag, raw = b"B", bytes(value)
    elif isinstance(value, datetime):
        tag, raw = b"T", utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode("ascii")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in an audit event")
    return tag + len(raw).to_bytes(4, "big") + raw


def canonical(event: Mapping[Any, Any]) -> bytes:
    """The unambiguous byte encoding of every field of one event (typed, length-prefixed, fixed order)."""
    return ENCODING_VERSION + b"".join(_field(event[name]) for name in CANONICAL_FIELDS)


def leaf_hash(event: Mapping[Any, Any]) -> bytes:
    return hashlib.sha256(b"\x00" + canonical(event)).digest()


def link(head: bytes, leaf: bytes) -> bytes:
    """The chain head after appending ``leaf`` to a chain whose head was ``head``."""
    return hashlib.sha256(b"\x01" + head + leaf).digest()


# -- appending ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    last_seq: int
    head_hash: bytes


# Every audit batch runs these: built once, in Core (no ORM object for the head, nothing for the
# session to keep in step, no statement built per call).
_HEAD, _ENTRIES = AuditChainHead.__table__, AuditChainEntry.__table__
_HEAD_COLUMNS = (_HEAD.c.size, _HEAD.c.last_seq, _HEAD.c.head_hash)
# Prepared (compiled once, run on the driver): every batch reads the head first.
_LOCK_HEAD = Prepared(select(*_HEAD_COLUMNS).where(_HEAD.c.id == bindparam("id")).with_for_update())
# SQLite: the head and the largest event number so far, in one statement (the write lock is held,
# so neither moves until the batch commits).
_HEAD_AND_LAST = Prepared(
    select(*_HEAD_COLUMNS, select(func.max(AuditEvent.__table__.c.seq)).scalar_subquery().label("last_event")).where(
        _HEAD.c.id == bindparam("id")
    )
)
_MOVE_HEAD = (
    update(cast(Table, _HEAD))
    .where(_HEAD.c.id == bindparam("head_id"))
    .values(size=bindparam("size"), last_seq=bindparam("last_seq"), head_hash=bindparam("head_hash"))
)


async def lock_head(session: AsyncSession) -> Head:
    """Take the chain head for this transaction (row lock on PostgreSQL; SQLite's write lock is held)."""
    row = await _LOCK_HEAD.first(session, {"id": HEAD_ID})
    if row is None:
        raise LookupError("the audit chain has no head row")
    return Head(row.size, row.last_seq, row.head_hash)


async def head_and_last_event(session: AsyncSession) -> tuple[Head, int | None]:
    """SQLite, in a write transaction (its write lock held): the chain head, and the largest event
    number stored (None: no event yet), read together."""
    row = await _HEAD_AND_LAST.first(session, {"id": HEAD_ID})
    if row is None:
        raise LookupError("the audit chain has no head row")
    return Head(row.size, row.last_seq, row.head_hash), row.last_event


async def extend(session: AsyncSession, head: Head, events: Sequence[Mapping[str, object]]) -> Head:
    """Chain events (each with its ``seq``, in append order) after ``head``, which the caller holds locked."""
    entries = []
    prev_seq, current = head.last_seq, head.head_hash
    for event in events:
        seq = int(event["seq"])  # type: ignore[call-overload]  # an int column
        leaf = leaf_hash(event)
        current = link(current, leaf)
        entries.append({"seq": seq, "prev_seq": prev_seq, "leaf_hash": leaf, "head_hash": current})
        prev_seq = seq
    if not entries:
        return head
    await session.execute(insert(cast(Table, _ENTRIES)), entries)
    new = Head(head.size + len(entries), prev_seq, current)
    moved = {"head_id": HEAD_ID, "size": new.size, "last_seq": new.last_seq, "head_hash": new.head_hash}
    await session.execute(_MOVE_HEAD, moved)
    return new


# -- checkpoints -------------------------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint file could not be read (the message says why, in one line)."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key_hint(origin: str, public: bytes) -> bytes:
    # C2SP signed-note key id: the first 4 bytes of SHA-256(name || "\n" || 0x01 || key); 0x01 = Ed25519.
    return hashlib.sha256(origin.encode() + b"\n\x01" + public).digest()[:4]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    last_seq: int
    head_hash: bytes
    at: datetime
    signature: bytes

    def body(self) -> bytes:
        """The signed text: origin, size, head (base64), then time and last sequence number."""
        head = b64(self.head_hash)
        stamp = utc(self.at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"{self.origin}\n{self.size}\n{head}\ntime {stamp}\nlast-seq {self.last_seq}\n".encode()

    def to_note(self, public: bytes) -> str:
        """The checkpoint as a signed note, to keep outside Signpost."""
        sig = b64(_key_hint(self.origin, public) + self.signature)
        return self.body().decode() + f"\n\u2014 {self.origin} {sig}\n"

    def signed_by(self, public: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(self.signature, self.body())
        except InvalidSignature:
            return False
        return True

    @property
    def label(self) -> str:
        return f"checkpoint of {utc(self.at):%Y-%m-%d %H:%M:%S}Z (size {self.size})"


def sign(signer: Signer, head: Head, at: datetime) -> Checkpoint:
    unsigned = Checkpoint(origin_of(signer.public), head.size, head.last_seq, head.head_hash, utc(at), b"")
    signature = signer.sign(unsigned.body())
    return Checkpoint(unsigned.origin, unsigned.size, unsigned.last_seq, unsigned.head_hash, unsigned.at, signature)


def parse_note(text: str) -> Checkpoint:
    """Read a checkpoint note written by ``Checkpoint.to_note``."""
    body, sep, sig_block = text.replace("\r\n", "\n").partition("\n\n")
    lines = body.split("\n")
    if not sep or len(lines) != 5 or not lines[3].startswith("time ") or not lines[4].startswith("last-seq "):
        raise CheckpointError("not a Signpost audit checkpoint (expected origin, size, head, time, last-seq)")
    # Signature lines follow the blank line; use the one in this log's name (others may co-sign).
    signed = [line.split(" ") for line in sig_block.split("\n") if line.startswith("\u2014 ")]
    sig_line = next((parts for parts in signed if len(parts) == 3 and parts[1] == lines[0]), [])
    if not sig_line:
        raise CheckpointError("the checkpoint's signature line is missing or names another log")
    try:
        raw_sig = base64.b64decode(sig_line[2], validate=True)
        return Checkpoint(
            origin=lines[0],
            size=int(lines[1]),
            last_seq=int(lines[4].removeprefix("last-seq ")),
            head_hash=base64.b64decode(lines[2], validate=True),
            at=utc(datetime.fromisoformat(lines[3].removeprefix("time ").replace("Z", "+00:00"))),
            signature=raw_sig[4:],
        )
    except ValueError:
        raise CheckpointError("the checkpoint has a malformed number, hash, time or signature") from None


def _from_row(row: AuditCheckpoint) -> Checkpoint:
    return Checkpoint(row.origin, row.size, row.last_seq, row.head_hash, utc(row.at), row.signature)


async def stored_checkpoints(session: AsyncSession) -> list[Checkpoint]:
    """Every stored checkpoint, smallest first."""
    rows = await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.size, AuditCheckpoint.id))
    return [_from_row(row) for row in rows.scalars()]


async def latest_checkpoint(session: AsyncSession) -> Checkpoint | None:
    row = (
        await session.execute(
            select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc(), AuditCheckpoint.id.desc()).limit(1)
        )
    ).scalar_one_or_none()
    return None if row is None else _from_row(row)


async def current_head(session: AsyncSession) -> Head:
    row = (await session.execute(select(AuditChainHead).where(AuditChainHead.id == HEAD_ID))).scalar_one()
    return Head(row.size, row.last_seq, row.head_hash)


async def fresh_checkpoint(db: Database, signer: Signer, now: datetime) -> Checkpoint:
    """A checkpoint of the head as it is now, signed now and not stored (for a monitor polling)."""
    async with db.read() as session:
        head = await current_head(session)
    return sign(signer, head, now)


async def make_checkpoint(db: Database, signer: Signer, now: datetime) -> Checkpoint:
    """Sign and store a checkpoint of the current head (the latest again if nothing was appended since)."""
    async with db.write() as session:
        head = await current_head(session)
        latest = await latest_checkpoint(session)
        if latest is not None and latest.size == head.size and latest.head_hash == head.head_hash:
            return latest
        checkpoint = sign(signer, head, now)
        session.add(
            AuditCheckpoint(
                origin=checkpoint.origin,
                size=checkpoint.size,
                last_seq=checkpoint.last_seq,
                head_hash=checkpoint.head_hash,
                at=checkpoint.at,
                signature=checkpoint.signature,
            )
        )
    return checkpoint


async def checkpoint_if_due(
    db: Database, signer: Signer, now: datetime, every_seconds: float = 300
) -> Checkpoint | None:
    """For the scheduler: a new checkpoint when the chain grew and the latest is ``every_seconds`` old."""
    async with db.read() as session:
        head = await current_head(session)
        latest = await latest_checkpoint(session)
    if latest is not None and (latest.size == head.size or (utc(now) - latest.at).total_seconds() < every_seconds):
        return None
    return await make_checkpoint(db, signer, now)


def export_note(folder: Path, checkpoint: Checkpoint, public: bytes) -> Path | None:
    """Write a checkpoint note to ``folder`` as a new file named by its time (and size); never
    overwrite one. None when the newest note there already has this size and head (nothing new)."""
    folder.mkdir(parents=True, exist_ok=True)
    notes = sorted(folder.glob(f"{NOTE_PREFIX}*.note"))
    if notes:
        try:
            newest = parse_note(notes[-1].read_text("utf-8"))
        except (OSError, UnicodeDecodeError, CheckpointError):
            newest = None
        if newest is not None and (newest.size, newest.head_hash) == (checkpoint.size, checkpoint.head_hash):
            return None
    target = folder / f"{NOTE_PREFIX}{utc(checkpoint.at):%Y%m%dT%H%M%S.%fZ}-{checkpoint.size}.note"
    if target.exists():
        return None  # this very checkpoint was exported before
    # Written whole under another name first, then named: a process killed part-way (kill -9) leaves
    # no checkpoint file that is not a whole note (an empty one made every later verify of the
    # folder fail), and the next export removes what it left.
    # Its temporary is ``store.files.temporary_for``'s; versions before wrote the name unhidden.
    for pattern in (temporary_for(folder / f"{NOTE_PREFIX}*.note").name, f"{NOTE_PREFIX}*.note{NOTE_PARTIAL}"):
        for leftover in folder.glob(pattern):
            leftover.unlink(missing_ok=True)
    data = checkpoint.to_note(public).encode("utf-8")
    # Linked, not renamed: append-only, never over an existing note.
    return target if write_whole(target, data, replace=False) else None
