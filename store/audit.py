"""The audit log: one event per command, durable before the reply, written with group commit.

Read-only commands hand their event to ``AuditLog.record``: a single writer task gathers every
event that arrives while the previous batch is committing and writes them in one transaction, so
the disk is flushed once per batch rather than once per request; each caller waits until its own
event is durable. Commands that change data append their event inside their own transaction
(``append``), so the change and its audit record commit together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import structlog
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.crypto import KeyRing, child_aad, new_data_key, open_sealed, seal
from store.db import Database, dialect_insert
from store.models import AuditEvent, AuditSubject, AuditTermKey, ChildKey

log = structlog.get_logger("signpost.audit")
MAX_BATCH = 512


class AuditWriteFailed(Exception):
    """The audit event could not be made durable; the command must not answer."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    actor_id: str | None
    platform: str
    tenant: str
    user_id: str
    actor_role: str | None
    actor_org: str | None
    actor_la: str | None
    channel: str
    action: str
    outcome: str
    subject_refs: tuple[int, ...]
    result_count: int
    correlation_id: str
    detail: str = ""
    terms: bytes | None = None  # already sealed
    terms_key: str | None = None


def _period_aad(period: str) -> bytes:
    return b"signpost:audit-terms:" + period.encode()


class TermSealer:
    """Seals query terms so they die with the child (one subject) or with their month's key."""

    def __init__(self, db: Database, keys: KeyRing) -> None:
        self._db = db
        self._keys = keys
        self._period_keys: dict[str, bytes] = {}

    async def seal(
        self,
        session: AsyncSession,
        terms: str,
        subject_refs: Sequence[int],
        at: datetime,
        *,
        writer: bool = False,
    ) -> tuple[bytes | None, str | None]:
        """Seal ``terms`` with the one child's key, else with the month's key.

        ``writer``: ``session`` is a write transaction (``Database.write``). A missing month key is
        then made in it: a second write transaction would wait for this one's lock on SQLite.
        """
        if not terms:
            return None, None
        payload = terms.encode("utf-8")
        if len(subject_refs) == 1:
            ref = subject_refs[0]
            row = (
                await session.execute(select(ChildKey.kek_id, ChildKey.wrapped).where(ChildKey.child_ref == ref))
            ).first()
            if row is not None:
                data_key = self._keys.unwrap(row.kek_id, row.wrapped, child_aad(ref))
                return seal(data_key, payload, b"audit-terms:" + child_aad(ref)), f"child:{ref}"
        period = at.strftime("%Y-%m")
        key = await self._period_key(session, period, writer)
        return seal(key, payload, _period_aad(period)), f"period:{period}"

    async def _period_key(self, session: AsyncSession, period: str, writer: bool) -> bytes:
        if period in self._period_keys:
            return self._period_keys[period]
        if writer:
            # In the caller's write transaction: a second one would wait for its lock (SQLite).
            stored = await _stored_period_key(session, period) or await _create_period_key(session, self._keys, period)
        else:
            # In a short write transaction of its own; a concurrent creator's key wins and is re-read.
            # Not read through the caller's session first: holding a pooled connection while waiting
            # for a write one starves the pool when many commands reach a new month at once.
            async with self._db.write() as w:
                stored = await _stored_period_key(w, period) or await _create_period_key(w, self._keys, period)
        kek_id, wrapped = stored
        key = self._keys.unwrap(kek_id, wrapped, _period_aad(period))
        if not writer:
            # Not cached from a writer: its transaction (and a key it made or saw uncommitted) may
            # still roll back.
            self._period_keys[period] = key
        return key

    async def open(self, session: AsyncSession, sealed: bytes, terms_key: str) -> str | None:
        """Decrypt sealed terms, or None when their key has been destroyed."""
        kind, _, name = terms_key.partition(":")
        if kind == "child":
            ref = int(name)
            row = (
                await session.execute(select(ChildKey.kek_id, ChildKey.wrapped).where(ChildKey.child_ref == ref))
            ).first()
            if row is None:
                return None
            data_key = self._keys.unwrap(row.kek_id, row.wrapped, child_aad(ref))
            return open_sealed(data_key, sealed, b"audit-terms:" + child_aad(ref)).decode()
        key_row = (
            await session.execute(select(AuditTermKey).where(AuditTermKey.period == name))
        ).scalar_one_or_none()
        if key_row is None:
            return None
        key = self._keys.unwrap(key_row.kek_id, key_row.wrapped, _period_aad(name))
        return open_sealed(key, sealed, _period_aad(name)).decode()


async def _stored_period_key(session: AsyncSession, period: str) -> tuple[str, bytes] | None:
    """The month's wrapped key as (kek_id, wrapped), if there is one."""
    found = select(AuditTermKey.kek_id, AuditTermKey.wrapped).where(AuditTermKey.period == period)
    row = (await session.execute(found)).first()
    return None if row is None else (row.kek_id, row.wrapped)


async def _create_period_key(session: AsyncSession, keys: KeyRing, period: str) -> tuple[str, bytes]:
    """Insert the month's key in ``session`` unless a concurrent creator did; the one kept."""
    kek_id, wrapped = keys.wrap(new_data_key(), _period_aad(period))
    await session.execute(
        dialect_insert(session)(AuditTermKey)
        .values(period=period, kek_id=kek_id, wrapped=wrapped)
        .on_conflict_do_nothing(index_elements=[AuditTermKey.period])
    )
    stored = await _stored_period_key(session, period)
    assert stored is not None  # inserted just now, or by the concurrent creator that won
    return stored


async def append(session: AsyncSession, records: Sequence[AuditRecord]) -> list[int]:
    """Insert events (and their subjects) in the caller's transaction; returns their sequence numbers."""
    if not records:
        return []
    rows = [
        {
            **{k: v for k, v in asdict(r).items() if k != "subject_refs"},
            "subject_refs": " ".join(str(ref) for ref in r.subject_refs),
        }
        for r in records
    ]
    result = await session.execute(
        insert(AuditEvent).returning(AuditEvent.seq, sort_by_parameter_order=True), rows
    )
    seqs = list(result.scalars())
    subjects = [
        {"seq": seq, "child_ref": ref} for seq, r in zip(seqs, records, strict=True) for ref in set(r.subject_refs)
    ]
    if subjects:
        await session.execute(insert(AuditSubject), subjects)
    return seqs


class AuditLog:
    """Group-committing writer for events that are the only write of their command."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: asyncio.Queue[tuple[AuditRecord, asyncio.Future[int]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def record(self, record: AuditRecord) -> int:
        """Write one event durably (batched with concurrent ones); returns its sequence number."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put((record, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                async with self._db.write() as session:
                    seqs = await append(session, [record for record, _ in batch])
            except Exception as exc:
                log.error("audit_batch_failed", size=len(batch), error=type(exc).__name__)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(AuditWriteFailed("the audit record could not be written"))
                continue
            for (_, future), seq in zip(batch, seqs, strict=True):
                if not future.done():
                    future.set_result(seq)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


EXPORT_FIELDS = (
    "seq", "at", "actor_id", "platform", "tenant", "user_id", "actor_role", "actor_org", "actor_la",
    "channel", "action", "outcome", "subject_refs", "result_count", "correlation_id", "detail", "terms_key",
)


async def iter_events(db: Database, batch: int = 1000) -> AsyncIterator[dict[str, object]]:
    """Every event in sequence order, as plain values (sealed terms are not included)."""
    last = 0
    while True:
        async with db.read() as session:
            result = await session.execute(
                select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
            )
            events = list(result.scalars())
        if not events:
            return
        for event in events:
            yield {name: _plain(getattr(event, name)) for name in EXPORT_FIELDS}
        last = events[-1].seq


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def to_json_line(event: dict[str, object]) -> str:
    return json.dumps(event, separators=(",", ":"), sort_keys=False)
