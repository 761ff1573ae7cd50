"""The audit log: one event per command, durable before the reply, written with group commit.

Read-only commands hand their event to ``AuditLog.record``: a single writer task gathers every
event that arrives while the previous batch is committing and writes them in one transaction, so
the disk is flushed once per batch rather than once per request; each caller waits until its own
event is durable. Commands that change data append their event inside their own transaction
(``append``), so the change and its audit record commit together or not at all.

A read-only command's delivery claim (``store.delivery.deliveries``) rides in the same batch
transaction as its event: a request is never "seen" without its event, so a crash between the two
cannot leave a redelivery answered "Already received" with no answer and nothing audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import NamedTuple, Protocol, cast

import structlog
from sqlalchemy import ColumnElement, Select, Table, bindparam, insert, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Action, Actor, Notice, Origin, Outcome
from store.audit import candidates
from store.audit import chain as audit_chain

# Possible matches have their home in store.audit.candidates; named here too for the dispatcher.
from store.audit.candidates import CANDIDATES_AT_MOST as CANDIDATES_AT_MOST
from store.audit.candidates import CANDIDATES_PREFIX as CANDIDATES_PREFIX
from store.audit.candidates import candidate_tag as candidate_tag
from store.audit.candidates import candidates_detail as candidates_detail
from store.db import Database, dialect_insert, once_more_if_lost
from store.delivery import deliveries
from store.delivery.notices import NoticeStore
from store.keys import keychain
from store.keys.crypto import (
    DecryptionError,
    KeyRing,
    WrappedKey,
    child_aad,
    child_terms_aad,
    new_data_key,
    open_sealed,
    seal,
)
from store.tables.audit import AuditEvent, AuditSubject, AuditTermKey
from store.tables.register import ChildKey

log = structlog.get_logger("signpost.audit")
MAX_BATCH = 512
LISTENER_BACKLOG = 1024  # committed batches waiting for listeners before some are dropped
# A batch whose oldest event has waited this long without becoming durable: the writer is stuck
# (a lock held elsewhere, a stalled disk) and /readyz says so.
STUCK_AFTER = timedelta(seconds=10)
# How long closing the writer waits for the events handed to it to be written (``AuditLog.close``).
CLOSE_WAIT = timedelta(seconds=10)


class AuditWriteFailed(Exception):
    """The audit event could not be made durable; the command must not answer."""


# Who asked, as an event records it (``user_id``, ``tenant``): an id, never a person's words. Some
# identities are only claimed: a refused Teams activity's ``from.id``, ``aadObjectId`` or tenant, an
# operator's ``signpost match --as`` that names no admin. The audit is append-only and hash-chained,
# so a name, date of birth or postcode typed there would stay for good. Every id Signpost takes a
# command under has this shape: Slack's users, teams and enterprises (U0NURSE, W012A3CDE, T0001,
# E0ABC), Teams account ids (29:1GcS4E…, base64url) and AAD object and tenant GUIDs, register ids
# (P001, NS-P0001), the console's tenant and Signpost's own actors (local, signpost, misuse-monitor,
# the origins), local accounts (root, first.last, uid:1000): ASCII letters, digits and . _ : -,
# starting with a letter or digit, at most the column's 128. A space, a slash, any other character
# or a date (03-04-2014, 2014.04.03) is no id: the event is recorded under ``UNRECOGNISED`` instead.
# Enforced here, where every event is built (``AuditRecord``), so no front end or command need remember.
UNRECOGNISED = "unrecognised"
_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Day-month-year or year-month-day between separators, as a date of birth is typed without a slash.
# No GUID holds one (its groups are 4 characters or more), nor any Slack id (no separators).
_DATE_INSIDE = re.compile(
    r"(?<![A-Za-z0-9])"
    r"(?:[0-9]{1,2}[._-][0-9]{1,2}[._-](?:[0-9]{4}|[0-9]{2})|[0-9]{4}[._-][0-9]{1,2}[._-][0-9]{1,2})"
    r"(?![A-Za-z0-9])"
)


def recorded_id(given: str) -> str:
    """``given`` as an audit event records an identity: as given when shaped like an id (or empty:
    nothing was claimed), else ``UNRECOGNISED``."""
    if not given or (_ID_SHAPE.fullmatch(given) and not _DATE_INSIDE.search(given)):
        return given
    return UNRECOGNISED


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
    # Tags (``candidate_tag``) of children the command named but did not show (a keyed lookup of an
    # archived child, answered "no record"): not stored in the event, filed in ``audit_candidates``
    # with it, so the child's subject access report finds the event while the child's key lives.
    named: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Whoever built it: an identity not shaped like an id is never kept (``recorded_id``). The
        # actor is not checked here: it is the register's practitioner, read from the store, never claimed.
        for name in ("tenant", "user_id"):
            given = getattr(self, name)
            kept = recorded_id(given)
            if kept is not given:
                object.__setattr__(self, name, kept)


ORIGIN_TENANT = "signpost"  # the one tenant spelling for events that no chat user sent


def origin_event(
    origin: Origin,
    action: Action,
    at: datetime,
    *,
    who: str = "",
    actor: Actor | None = None,
    outcome: Outcome = Outcome.DONE,
    subjects: tuple[int, ...] = (),
    result_count: int = 0,
    detail: str = "",
    correlation_id: str | None = None,
    terms: bytes | None = None,
    terms_key: str | None = None,
) -> AuditRecord:
    """The one way to build an audit event that no chat user sent (chat commands: the dispatcher).

    ``origin`` is stored as the event's platform, so misuse rules and reports tell an operator at
    the terminal, the scheduler, the enrolment page and a batch match apart from chat users by
    origin, never by a hand-spelt string. ``who`` names a non-practitioner actor (the operator's
    local account); ``actor`` is the practitioner acting, when there is one.
    """
    return AuditRecord(
        at=at,
        actor_id=actor.practitioner_id if actor else None,
        platform=origin.value,
        tenant=ORIGIN_TENANT,
        user_id=who or (actor.practitioner_id if actor else origin.value),  # recorded_id: one too long is no id
        actor_role=actor.role if actor else None,
        actor_org=actor.organisation if actor else None,
        actor_la=actor.local_authority if actor else None,
        channel=origin.value,
        action=action.value,
        outcome=outcome.value,
        subject_refs=subjects,
        result_count=result_count,
        correlation_id=correlation_id or uuid.uuid4().hex,
        detail=detail[:200],
        terms=terms,
        terms_key=terms_key,
    )


# Built once, in Core (the ORM's per-call build costs about as much as running the statement).
_CHILD_KEYS = cast(Table, ChildKey.__table__)
_CHILD_KEY = select(_CHILD_KEYS.c.kek_id, _CHILD_KEYS.c.wrapped).where(_CHILD_KEYS.c.child_ref == bindparam("ref"))


def _period_aad(period: str) -> bytes:
    return b"signpost:audit-terms:" + period.encode()


class TermSealer:
    """Seals query terms so that they die with the person they describe.

    - A search carrying a date of birth whose cohort is already destroyed (24 or over, or its
      key punctured): not kept at all. The event says so (``terms_key`` ``WITHHELD``, no terms):
      under the month's key, as before, the typed name, date and postcode of someone whose records
      are destroyed stayed readable for two years.
    - A search carrying any other date of birth (``born``): under that date's birth-date cohort key
      (a row of ``audit_term_keys`` named ``d<cohort tag>``, wrapped under the cohort KEK), so the
      terms die when children born that day are destroyed at 24, whatever the search found
      (archived, ambiguous, several candidates, no match). When the one child it found has its
      data key under that same cohort, the child's key is used (it dies no later).
    - Otherwise terms about one child: under the one subject's data key (the event names it as
      its subject anyway). For ``known`` without a subject, a child the command names but did not
      show (a keyed lookup of an archived child, answered "no record", or a command stopped for a
      code), under its birth day's cohort terms key, which dies with it: ``terms_key`` then names no
      reference.
    - Otherwise (no date, no single child): under the month's key, kept ``AUDIT_TERM_MONTHS``.
    """

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
        apart: bool = False,
        born: date | None = None,
        known: WrappedKey | None = None,
        withhold: bool = False,
    ) -> tuple[bytes | None, str | None]:
        """Seal ``terms`` (see the class); returns (sealed, terms_key).

        ``writer``: ``session`` is a write transaction (``Database.write``). A missing month or
        cohort key is then made in it: a second write transaction would wait for this one's lock
        on SQLite. ``apart``: ``session`` is a read-only command's, which may be closed before a
        missing cohort key is made in a write transaction of its own (a burst of challenged lookups
        of one child starved the pool: 40 at once, each holding its read connection while waiting
        for a write one). ``known``: the one subject's wrapped data key as the command already read it
        (a keyed enquiry reads it with the child), so it is not read again. ``withhold``: the terms
        name a child already destroyed (its reference): none are kept.
        """
        if not terms:
            return None, None
        if withhold or (born is not None and cohort_destroyed(self._keys, born, at.date())):
            return None, WITHHELD
        payload = terms.encode("utf-8")
        cohort = self._cohort(born, at)
        named = subject_refs[0] if len(subject_refs) == 1 else known.ref if known and not subject_refs else None
        if named is not None:
            ref = named
            stored: tuple[str, bytes] | None = None
            if known is not None and known.ref == ref:
                stored = (known.kek_id, known.wrapped)
            else:
                row = (await session.execute(_CHILD_KEY, {"ref": ref})).first()
                stored = None if row is None else (row.kek_id, row.wrapped)
            if stored is not None and (cohort is None or stored[0] == cohort):
                if not subject_refs:
                    # Not the event's subject (an archived child's "no record", a command stopped for
                    # a code): its birth day's cohort terms key, under the cohort key its own key is
                    # wrapped under, dies with it and names no reference. "child:<ref>" kept the
                    # reference in plain text in the audit for good (PostgreSQL forensics review).
                    cohort = stored[0]
                else:
                    data_key = self._keys.unwrap(stored[0], stored[1], child_aad(ref))
                    return seal(data_key, payload, child_terms_aad(ref)), f"child:{ref}"
        if cohort is not None:
            name = cohort_period(cohort)
            key = await self._period_key(session, name, writer, cohort, cache=False, apart=apart)
            return seal(key, payload, _period_aad(name)), f"cohort:{name}"
        period = audit_chain.utc(at).strftime("%Y-%m")
        key = await self._period_key(session, period, writer, keychain.month_key(self._keys, period))
        return seal(key, payload, _period_aad(period)), f"period:{period}"

    async def make_cohort_keys(self, session: AsyncSession, days: Collection[date], at: datetime) -> int:
        """Make, in the write transaction ``session``, the terms key of every birth day in ``days``
        whose cohort key exists and whose terms key does not yet: the keys searches naming those
        days would each make on first use (``seal``), two statements per 500 days; returns how many
        keys were made. For a store put to work at once (a benchmark's register)."""
        wanted: dict[str, str] = {}
        for day in days:
            cohort = self._cohort(day, at)
            if cohort is not None:
                wanted[cohort_period(cohort)] = cohort
        names = list(wanted)
        held: set[str] = set()
        for start in range(0, len(names), _IN_CHUNK):
            chunk = names[start : start + _IN_CHUNK]
            held.update(
                (await session.execute(select(_TERM_KEYS.c.period).where(_TERM_KEYS.c.period.in_(chunk)))).scalars()
            )
        rows = [
            {
                "period": name,
                "kek_id": kek,
                "wrapped": keychain.wrap_under(self._keys, kek, new_data_key(), _period_aad(name)),
            }
            for name, kek in wanted.items()
            if name not in held
        ]
        for start in range(0, len(rows), _IN_CHUNK):
            await session.execute(
                dialect_insert(session)(AuditTermKey).on_conflict_do_nothing(index_elements=[AuditTermKey.period]),
                rows[start : start + _IN_CHUNK],
            )
        return len(rows)

    def _cohort(self, born: date | None, at: datetime) -> str | None:
        """The cohort KEK id for ``born``; None with no date, or one whose key is gone (24 or over
        already: the month key then) or not derivable (a date far in the future)."""
        if born is None or keychain.due_for_destruction(born, at.date()):
            return None
        return keychain.key_for(self._keys, keychain.Chain.DAY, keychain.day_slot(born))

    async def _period_key(
        self,
        session: AsyncSession,
        period: str,
        writer: bool,
        kek: str | None,
        *,
        cache: bool = True,
        apart: bool = False,
    ) -> bytes:
        """The data key named ``period`` (a month, or a cohort's ``d<tag>``), made under ``kek``
        (else the master KEK) when missing. Cohort keys are never cached: a retention run destroys
        them while this process goes on."""
        if cache and period in self._period_keys:
            return self._period_keys[period]
        stored = None if cache else await _stored_period_key(session, period)  # cohorts: usually made
        if stored is None and writer:
            # In the caller's write transaction: a second one would wait for its lock (SQLite).
            stored = await _stored_period_key(session, period) or await _create_period_key(
                session, self._keys, period, kek
            )
        elif stored is None:
            if apart:
                # A read-only command's session (``apart``): its connection goes back to the pool
                # before a write one is taken, as the dispatcher's ``_apart`` does, so a burst of
                # commands reaching a birth day's first event does not hold every pooled connection
                # while each waits for another (the session takes a fresh one if used again).
                await session.close()
            # In a short write transaction of its own; a concurrent creator's key wins and is re-read.
            # Not read through the caller's session first: holding a pooled connection while waiting
            # for a write one starves the pool when many commands reach a new month at once.
            async with self._db.write() as w:
                stored = await _stored_period_key(w, period) or await _create_period_key(w, self._keys, period, kek)
        kek_id, wrapped = stored
        key = self._keys.unwrap(kek_id, wrapped, _period_aad(period))
        if cache and not writer:
            # Not cached from a writer: its transaction (and a key it made or saw uncommitted) may
            # still roll back.
            self._period_keys[period] = key
        return key

    async def candidate_tags(self, session: AsyncSession, refs: Sequence[int]) -> tuple[str, ...]:
        """The ``candidate_tag`` of each of ``refs`` (at most ``CANDIDATES_AT_MOST``) whose data key
        is held, in one read; a child whose key is gone (destroyed) has none."""
        refs = list(dict.fromkeys(refs))[:CANDIDATES_AT_MOST]
        if not refs:
            return ()
        rows = await session.execute(
            select(_CHILD_KEYS.c.child_ref, _CHILD_KEYS.c.kek_id, _CHILD_KEYS.c.wrapped).where(
                _CHILD_KEYS.c.child_ref.in_(refs)
            )
        )
        tags = []
        for ref, kek_id, wrapped in rows.all():
            try:
                data_key = self._keys.unwrap(kek_id, wrapped, child_aad(ref))
            except DecryptionError:  # its cohort's key is punctured: destroyed, whatever the row says
                continue
            tags.append(candidate_tag(data_key, ref))
        return tuple(tags)

    def tag_of(self, known: WrappedKey) -> str | None:
        """The ``candidate_tag`` of a child whose wrapped key the command already read, or None
        when its key no longer opens (its cohort is punctured)."""
        try:
            return candidate_tag(self._keys.unwrap(known.kek_id, known.wrapped, child_aad(known.ref)), known.ref)
        except DecryptionError:
            return None

    async def candidate_tag(self, session: AsyncSession, ref: int) -> str | None:
        """One child's tag as a possible match (a subject access report), or None once its key is gone."""
        tags = await self.candidate_tags(session, (ref,))
        return tags[0] if tags else None

    async def open(self, session: AsyncSession, sealed: bytes, terms_key: str) -> str | None:
        """Decrypt sealed terms, or None when their key has been destroyed (or they were withheld)."""
        kind, _, name = terms_key.partition(":")
        if terms_key == WITHHELD:
            return None
        if kind == "child":
            ref = int(name)
            row = (await session.execute(_CHILD_KEY, {"ref": ref})).first()
            if row is None:
                return None
            data_key = self._keys.unwrap(row.kek_id, row.wrapped, child_aad(ref))
            return open_sealed(data_key, sealed, child_terms_aad(ref)).decode()
        stored_as = name
        key_row = await _stored_period_key(session, name)
        if key_row is None and kind == "cohort":
            # An event from before the store moved to tagged ids names its cohort's key untagged;
            # that rotation renamed the key (``store.keys.rotation``): found by the day, while it lives.
            stored_as = keychain.tagged_name(self._keys, name) or name
            key_row = await _stored_period_key(session, stored_as)
        if key_row is None:
            return None
        try:
            key = self._keys.unwrap(key_row[0], key_row[1], _period_aad(stored_as))
        except DecryptionError:
            if kind == "cohort":
                return None  # the birth-date key is destroyed (its row goes at the next retention run)
            raise
        return open_sealed(key, sealed, _period_aad(name)).decode()  # sealed under the name it gives


WITHHELD = "withheld:cohort destroyed"
"""The ``terms_key`` of an event whose terms were not kept: they named a date of birth whose cohort
is destroyed (``TermSealer.seal``). Its ``terms`` are empty; nothing can ever open them."""


def cohort_destroyed(ring: KeyRing, born: date, today: date) -> bool:
    """Whether the children born on ``born`` are destroyed by ``today`` (24 or over), or that day's
    birth-date key is already gone (a retention run punctured it ahead of ``today``)."""
    if keychain.due_for_destruction(born, today):
        return True
    slot = keychain.day_slot(born)
    # A key at hand is not destroyed: the common case (every dated search) skips the cutoff's scan.
    return keychain.key_for(ring, keychain.Chain.DAY, slot) is None and keychain.punctured(ring, slot)


def cohort_period(cohort_kek_id: str) -> str:
    """The ``audit_term_keys`` name of a cohort's terms key: ``d`` and the cohort tag (the same in
    every key generation, so rotation re-wraps the row and events keep their ``terms_key``)."""
    return "d" + cohort_kek_id[2:]


# Built once, in Core: every search naming a date of birth reads its cohort's key (never cached,
# see ``TermSealer._period_key``); the ORM's per-call build cost about as much as running it.
_TERM_KEYS = cast(Table, AuditTermKey.__table__)
_IN_CHUNK = 500  # names in one IN list or one multi-row insert
_PERIOD_KEY = select(_TERM_KEYS.c.kek_id, _TERM_KEYS.c.wrapped).where(_TERM_KEYS.c.period == bindparam("period"))


async def _stored_period_key(session: AsyncSession, period: str) -> tuple[str, bytes] | None:
    """The month's wrapped key as (kek_id, wrapped), if there is one."""
    row = (await session.execute(_PERIOD_KEY, {"period": period})).first()
    return None if row is None else (row.kek_id, row.wrapped)


async def _create_period_key(
    session: AsyncSession, keys: KeyRing, period: str, kek: str | None = None
) -> tuple[str, bytes]:
    """Insert the key in ``session`` unless a concurrent creator did; the one kept.

    Wrapped under ``kek`` (its month or cohort key) from the start when there is one, so no backup
    holds it under the master key.
    """
    if kek is not None:
        kek_id, wrapped = kek, keychain.wrap_under(keys, kek, new_data_key(), _period_aad(period))
    else:
        kek_id, wrapped = keys.wrap(new_data_key(), _period_aad(period))
    await session.execute(
        dialect_insert(session)(AuditTermKey)
        .values(period=period, kek_id=kek_id, wrapped=wrapped)
        .on_conflict_do_nothing(index_elements=[AuditTermKey.period])
    )
    stored = await _stored_period_key(session, period)
    assert stored is not None  # inserted just now, or by the concurrent creator that won
    return stored


# Read by name, not by ``asdict``, which deep-copies every value (all immutable here): about 47 µs
# an event against 4 (issue 15; a keyed enquiry writes two events when it tells the lead).
_RECORD_FIELDS = tuple(field.name for field in fields(AuditRecord) if field.name not in ("subject_refs", "named"))


def _row(record: AuditRecord) -> dict[str, object]:
    # Text that reached us unverified (a refused request's claimed tenant) may hold NUL, which
    # PostgreSQL cannot store: it is recorded as U+FFFD on every backend, so the chain is the same.
    row = {
        k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v
        for k, v in ((name, getattr(record, name)) for name in _RECORD_FIELDS)
    }
    # Stored (and hashed) in UTC: SQLite keeps wall-clock time without its zone.
    row["at"] = audit_chain.utc(record.at)
    row["subject_refs"] = " ".join(str(ref) for ref in record.subject_refs)
    return row


async def append(session: AsyncSession, records: Sequence[AuditRecord]) -> list[int]:
    """Insert and chain events (and their subjects) in the caller's transaction; returns their seqs.

    The chain head is locked first, so concurrent appends take turns: call this as the last step of
    a transaction, to hold the lock briefly.
    """
    if not records:
        return []
    rows = [_row(r) for r in records]
    # Core's insert (the table, not the ORM entity): the ORM's bulk path runs one row a statement.
    events = cast(Table, AuditEvent.__table__)  # declared by the ORM: a Table
    if session.get_bind().dialect.name == "sqlite":
        # SQLite cannot hand back a multi-row insert's keys in order (SQLAlchemy has no sentinel
        # for it there), so RETURNING would insert one row per statement. The write lock is held,
        # so the numbers are the ones SQLite would give (a rowid table: the largest so far, plus
        # one), read with the head and inserted in one statement; checked against the head below.
        head, last = await audit_chain.head_and_last_event(session)
        seqs = [(last or 0) + 1 + i for i in range(len(rows))]
        await session.execute(insert(events), [{**row, "seq": seq} for row, seq in zip(rows, seqs, strict=True)])
    else:
        head = await audit_chain.lock_head(session)
        result = await session.execute(insert(events).returning(events.c.seq, sort_by_parameter_order=True), rows)
        seqs = list(result.scalars())
    chained = sorted(({**row, "seq": seq} for row, seq in zip(rows, seqs, strict=True)), key=_seq_of)
    if _seq_of(chained[0]) <= head.last_seq:
        # Sequence numbers went backwards (a reset sequence?): refuse rather than fork the chain.
        raise AuditWriteFailed("audit sequence is behind the chain head")
    await audit_chain.extend(session, head, chained)
    subjects = [
        {"seq": seq, "child_ref": ref} for seq, r in zip(seqs, records, strict=True) for ref in set(r.subject_refs)
    ]
    if subjects:
        await session.execute(insert(cast(Table, AuditSubject.__table__)), subjects)
    await candidates.file(session, seqs, records)  # an ambiguous search's possible matches, by tag
    return seqs


def _seq_of(row: dict[str, object]) -> int:
    seq = row["seq"]
    assert isinstance(seq, int)
    return seq


CommitListener = Callable[[Sequence[AuditRecord]], Awaitable[None]]


class AlsoWrite(Protocol):
    """What a command also writes with its event: notices (each with a dedupe key), and the events
    that say which of them were new, chained just before the command's own.

    A read-only command's are written in the audit writer's batch transaction, every entry's
    notices in one statement; so the command takes no write transaction of its own (on SQLite the
    one write lock), and what it wrote is durable exactly when its event is: together, before it
    answers. A writing command's, in its own transaction (``write_also``).
    """

    @property
    def notices(self) -> Sequence[tuple[Notice, datetime]]:
        """The notices, each with the time it is queued at."""
        ...

    def events(self, new: Collection[str]) -> Sequence[AuditRecord]:
        """The events to chain, given the dedupe keys of this write's notices that were new."""
        ...


class NoticeQueue(Protocol):
    """Where notices go (the outbox, counted: ``handlers.metrics.CountedNotices``)."""

    async def enqueue_new(self, session: AsyncSession, dated: Sequence[tuple[Notice, datetime]]) -> set[str]: ...


async def write_also(
    session: AsyncSession, queue: NoticeQueue, writes: Sequence[AlsoWrite | None]
) -> list[Sequence[AuditRecord]]:
    """Store every write's notices in one statement (in ``session``'s transaction); each write's
    events, in order. A dedupe key two writes share counts as new for the first of them only, as
    it would have written one after the other."""
    new = await queue.enqueue_new(session, [dated for write in writes if write for dated in write.notices])
    events: list[Sequence[AuditRecord]] = []
    for write in writes:
        if write is None:
            events.append(())
            continue
        mine = {notice.dedupe_key for notice, _ in write.notices if notice.dedupe_key in new}
        new -= mine
        events.append(write.events(mine) if write.notices else ())
    return events


# Told of every committed batch: its size, and each event's lag in seconds (queued → durable).
BatchObserver = Callable[[int, Sequence[float]], None]


class _Waiting(NamedTuple):
    """An event handed to the writer: the caller awaits ``future``; ``queued`` starts its lag."""

    record: AuditRecord
    claim: str | None
    future: asyncio.Future[int]
    queued: datetime
    also: AlsoWrite | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _claim_batch(session: AsyncSession, batch: Sequence[_Waiting]) -> list[bool]:
    """Claim the batch's delivery ids in its transaction; whether each entry's event is to be written.

    An entry without a claim is always written; of entries sharing one new id, only the first.
    """
    keys = [entry.claim for entry in batch if entry.claim is not None]
    fresh = await deliveries.claim_many(session, keys, batch[0].record.at) if keys else set()
    kept = []
    for entry in batch:
        claim = entry.claim
        kept.append(claim is None or claim in fresh)
        if claim is not None:
            fresh.discard(claim)
    return kept


async def _with_also(
    session: AsyncSession, queue: NoticeQueue, batch: Sequence[_Waiting], kept: Sequence[bool]
) -> tuple[list[AuditRecord], list[int]]:
    """The batch's events in chain order (each kept entry's ``also`` events, then its own), and
    where each kept entry's own event is in that list."""
    entries = [entry for entry, keep in zip(batch, kept, strict=True) if keep]
    also = await write_also(session, queue, [entry.also for entry in entries])
    written: list[AuditRecord] = []
    own: list[int] = []
    for entry, events in zip(entries, also, strict=True):
        written.extend(events)
        own.append(len(written))
        written.append(entry.record)
    return written, own


class AuditLog:
    """Group-committing writer for events that are the only write of their command.

    Listeners (misuse detection) hear about each committed batch from a second task, so that
    however long they take, they never delay the next commit; if they fall far behind, batches are
    dropped for them (and logged) — the periodic sweep looks at the same events again.

    ``now`` is the clock an event's lag is measured on (the process clock, so tests can move it).
    """

    def __init__(
        self, db: Database, now: Callable[[], datetime] = _utc_now, notices: NoticeQueue | None = None
    ) -> None:
        """``notices``: where the notices of a command's ``also`` go (the outbox by default)."""
        self._db = db
        self._now = now
        self._notices: NoticeQueue = notices or NoticeStore()
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[CommitListener] = []
        self._committed: asyncio.Queue[list[AuditRecord]] = asyncio.Queue(maxsize=LISTENER_BACKLOG)
        self._listener_task: asyncio.Task[None] | None = None
        self._observe: BatchObserver | None = None
        self._last_batch_failed = False
        # Events handed to the writer and not yet durable (or failed), in the order queued: when.
        self._unwritten: dict[asyncio.Future[int], datetime] = {}

    def on_batch(self, observe: BatchObserver) -> None:
        """Call ``observe`` with the size of every committed batch and each of its events' lag
        (seconds from being queued to being durable), in the writer's task (metrics)."""
        self._observe = observe

    @property
    def problem(self) -> str | None:
        """Why the writer cannot take events now (for /readyz), or None. It starts on first use.

        Stopped (its task ended), failing (its last batch could not be written) or stuck (an event
        has waited longer than ``STUCK_AFTER`` to be written).
        """
        if self._task is not None and self._task.done():
            return "the audit writer has stopped"
        if self._last_batch_failed:
            return "the audit writer's last batch failed"
        oldest = next(iter(self._unwritten.values()), None)
        if oldest is not None and self._now() - oldest > STUCK_AFTER:
            return f"the audit writer is stuck: an event has waited over {STUCK_AFTER.seconds} s to be written"
        return None

    @property
    def waiting(self) -> int:
        """Events handed to the writer and not yet durable (metrics)."""
        return len(self._unwritten)

    def on_commit(self, listener: CommitListener) -> None:
        """Call ``listener`` with every batch of events after it is durable."""
        self._listeners.append(listener)

    async def record(self, record: AuditRecord, *, claim: str | None = None, also: AlsoWrite | None = None) -> int:
        """Write one event durably (batched with concurrent ones); returns its sequence number.

        ``claim``: the request's delivery id, claimed in the same transaction as the event. If it
        was already taken (the same delivery answered elsewhere), the event is not written and
        ``deliveries.AlreadyClaimed`` is raised: the request was acted on and audited once already.
        ``also``: written in the same transaction, just before the event (never for a claim that
        was taken already); if it fails, the batch fails and nothing of it is written.
        """
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        queued = self._unwritten[future] = self._now()
        try:
            await self._queue.put(_Waiting(record, claim, future, queued, also))
            return await future
        finally:
            del self._unwritten[future]

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await self._settle(batch)
            finally:
                for _ in batch:  # ``close`` waits for every event handed over to be settled
                    self._queue.task_done()

    async def _settle(self, batch: Sequence[_Waiting]) -> None:
        """Write one batch and tell each waiting caller how it went."""
        try:
            # One transaction: run again on a fresh connection if the pool gave a dead one.
            kept, written, own, seqs = await once_more_if_lost(partial(self._write, batch), size=len(batch))
        except Exception as exc:
            self._last_batch_failed = True
            log.error("audit_batch_failed", size=len(batch), error=type(exc).__name__)
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(AuditWriteFailed("the audit record could not be written"))
            return
        durable = self._now()
        records = [written[i] for i in own]  # the entries' own events, in the batch's order
        places = iter(own)
        for entry, keep in zip(batch, kept, strict=True):
            seq = seqs[next(places)] if keep else 0
            if entry.future.done():
                continue
            if keep:
                entry.future.set_result(seq)
            else:
                entry.future.set_exception(deliveries.AlreadyClaimed("this delivery was answered before"))
        self._last_batch_failed = False
        if self._observe is not None:
            lags = [max(0.0, (durable - entry.queued).total_seconds()) for entry in batch]
            try:
                self._observe(len(batch), lags)
            except Exception:  # counting must never stop the writer
                log.exception("audit_observer_failed")
        if records:
            self._hand_to_listeners(records)

    async def _write(self, batch: Sequence[_Waiting]) -> tuple[list[bool], list[AuditRecord], list[int], list[int]]:
        """The batch in one transaction: which entries were kept (their claims new), the events
        written in chain order, where each kept entry's own event is among them, and their seqs."""
        async with self._db.write() as session:
            kept = await _claim_batch(session, batch)
            written, own = await _with_also(session, self._notices, batch, kept)
            seqs = await append(session, written)
        return kept, written, own, seqs

    def _hand_to_listeners(self, records: list[AuditRecord]) -> None:
        if not self._listeners:
            return
        if self._listener_task is None or self._listener_task.done():
            self._listener_task = asyncio.get_running_loop().create_task(self._listen(), name="audit-listeners")
        try:
            self._committed.put_nowait(records)
        except asyncio.QueueFull:
            log.warning("audit_listeners_behind", dropped=len(records))

    async def _listen(self) -> None:
        while True:
            records = await self._committed.get()
            try:
                for listener in self._listeners:
                    try:
                        await listener(records)
                    except Exception:
                        log.exception("audit_listener_failed")
            finally:
                self._committed.task_done()

    async def settle(self) -> None:
        """Wait until listeners have seen every batch committed so far (tests, orderly shutdown)."""
        await self._committed.join()

    async def close(self) -> None:
        """Stop the writer, once it has settled every event handed to it (for at most
        ``CLOSE_WAIT``): one whose caller stopped waiting (a Ctrl-C, a drain that gave up) is still
        written, as its command may have changed something apart (a code's verification commits
        before the code's event). Those still unwritten then are said in one line, and dropped."""
        if self._task is not None and not self._task.done():
            try:
                async with asyncio.timeout(CLOSE_WAIT.total_seconds()):
                    await self._queue.join()
            except TimeoutError:
                log.error("audit_unwritten_at_close", queued=self._queue.qsize(), limit_seconds=CLOSE_WAIT.seconds)
        for task in (self._task, self._listener_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._listener_task = None
        while not self._committed.empty():  # batches no listener will now hear about
            self._committed.get_nowait()
            self._committed.task_done()


# Every column but the sealed query terms, in the chain's own order (one list: chain.CANONICAL_FIELDS).
EXPORT_FIELDS = tuple(name for name in audit_chain.CANONICAL_FIELDS if name != "terms")


async def last_of(session: AsyncSession, action: Action) -> tuple[Outcome, str] | None:
    """The outcome and detail of the latest event of ``action`` (an operator's command cut short
    shows as a ``started`` with nothing after it), or None when there is none."""
    row = (
        await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == action.value)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else (Outcome(row.outcome), row.detail or "")


@dataclass(frozen=True, slots=True)
class Started:
    """A run's ``started`` event, as its outcome must name it: by whom, from where, under which id."""

    platform: str
    user_id: str
    correlation_id: str
    detail: str


async def left_started(
    session: AsyncSession, action: Action, *, naming: tuple[str, ...] | None = None, past_refusals: bool = False
) -> Started | None:
    """The latest ``started`` of ``action`` with nothing after it (a run still live, or cut short),
    or None. Anything is every later event of ``action``; with ``naming``, the started and what
    follows are of the events naming it only (any of those names: ``_naming``), and ``past_refusals`` looks past
    refusals (of work refused only before it starts). An event under its correlation id answers it
    in any case (its outcome: a backup's failure says its file's name as ``name; why``)."""
    query = select(
        AuditEvent.seq,
        AuditEvent.platform,
        AuditEvent.user_id,
        AuditEvent.correlation_id,
        AuditEvent.detail,
    ).where(AuditEvent.action == action.value, AuditEvent.outcome == Outcome.STARTED.value)
    if naming is not None:
        query = query.where(_naming(naming))
    row = (await session.execute(query.order_by(AuditEvent.seq.desc()).limit(1))).first()
    if row is None:
        return None
    closing: ColumnElement[bool] = AuditEvent.seq > row.seq  # any later event of the action
    if naming is not None:
        closing = closing & _naming(naming)
    if past_refusals:
        closing = closing & (AuditEvent.outcome != Outcome.REFUSED.value)
    answered = (AuditEvent.correlation_id == row.correlation_id) & (AuditEvent.seq > row.seq)
    after = select(AuditEvent.seq).where(AuditEvent.action == action.value, closing | answered).limit(1)
    if (await session.execute(after)).first() is not None:
        return None
    return Started(row.platform, row.user_id, row.correlation_id, row.detail or "")


def _naming(names: tuple[str, ...]) -> ColumnElement[bool]:
    """An event whose detail is one of ``names``, or begins with one and ": " (a backup's events
    name it so: by its label, or, written before labels, by its file's name)."""
    return or_(
        *((AuditEvent.detail == name) | AuditEvent.detail.startswith(f"{name}: ", autoescape=True) for name in names)
    )


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events an export wants; every bound is optional and ``until`` is exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    actor_id: str | None = None
    child_ref: int | None = None
    # The child's ``candidate_tag`` (``TermSealer.candidate_tag``): its possible matches too.
    candidate_tag: str | None = None

    def apply(self, query: Select[AuditEvent]) -> Select[AuditEvent]:
        if self.since is not None:
            query = query.where(AuditEvent.at >= audit_chain.utc(self.since))
        if self.until is not None:
            query = query.where(AuditEvent.at < audit_chain.utc(self.until))
        if self.actor_id is not None:
            query = query.where(AuditEvent.actor_id == self.actor_id)
        if self.child_ref is not None:
            # One IN over both indexes (the child's subjects, its tag's possible matches): an OR of
            # two would leave the planner free to walk every event from ``seq`` on.
            named = select(AuditSubject.seq).where(AuditSubject.child_ref == self.child_ref)
            if self.candidate_tag is None:
                return query.where(AuditEvent.seq.in_(named))
            query = query.where(AuditEvent.seq.in_(union(named, candidates.possible_match_seqs(self.candidate_tag))))
        return query


async def iter_events(
    db: Database, where: EventFilter | None = None, batch: int = 1000
) -> AsyncIterator[dict[str, object]]:
    """Matching events in sequence order, as plain values (sealed terms are not included)."""
    where = where or EventFilter()
    last = 0
    while True:
        async with db.read() as session:
            query = where.apply(select(AuditEvent).where(AuditEvent.seq > last))
            result = await session.execute(query.order_by(AuditEvent.seq).limit(batch))
            events = list(result.scalars())
        if not events:
            return
        for event in events:
            yield {name: _plain(getattr(event, name)) for name in EXPORT_FIELDS}
        last = events[-1].seq


def _plain(value: object) -> object:
    return audit_chain.utc(value).isoformat() if isinstance(value, datetime) else value


def to_json_line(event: dict[str, object]) -> str:
    return json.dumps(event, separators=(",", ":"), sort_keys=False)
