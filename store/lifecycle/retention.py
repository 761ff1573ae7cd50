"""Retention: archive at 18, destroy at 24 (crypto-shredding), and compact storage afterwards.

A run works day by day from the day after the last one it finished, so days missed while nothing
ran are caught up (at most ``max_days`` per call; the next call goes on). A store's first run
starts with the earliest day a held child was written (``first_day``): an import sets each
child's state as of its own day, so every birthday after it is still to act on. Each day is
claimed with a compare-and-set on ``retention_state.last_day`` in the same transaction as its
changes, so two replicas never process a day twice and a crash leaves the day for the next run.

For day D the children turning 18 are found through the blind index (the term
``retention_term(dob)`` for each date of birth whose 18th birthday is D, see
``keychain.dobs_turning`` for 29 February) and archived; those turning 24 are destroyed:
index terms (recomputed from the decrypted identity *before* the key goes), every row of a table
declaring a child column (``store.tables.child_rows``: involvements, access requests and grants,
the wrapped data key) deleted, identity set to NULL, state "destroyed". Audit query terms sealed
under the child's key die with it. In the same transaction any child still under a birth-date key
the day is about to destroy whom the blind index did not find is destroyed too (or moved under its
own cohort when it is not 24): every record changed is counted and audited with its day.

Before the first day, any child whose data key is under a birth-date key the key file has
**already** punctured is destroyed (``_destroy_orphans``): a run never leaves one, but a backup
taken before a destruction and restored beside the current key file brings them back, and no day
of this store will find them through the blind index (their term keys are gone too). Their index
rows are deleted first, in one pass over ``child_terms`` (``_delete_index_rows``); their name counts,
kept by name and not by child, stay as the backup has them. Rows of the other tables of wrapped keys
under such a key (a search's cohort terms key, a parked command) go too (``_drop_orphan_wrapped``).

Right after the day's commit the day chain is **punctured** through that day: the birth-date keys
of the cohorts now 24 stop existing, in the key file and so for every backup of the store. Never
before the commit (a crash would leave undestroyed children whose key is gone, their index rows
then impossible to recompute), and never later than needed: a run killed between the commit and
the key file's write leaves a lagging puncture, which the next run (the scheduler's hourly tick
or `signpost retention run`) finishes before anything else.

Then **seal-in** moves data keys still under the master KEK (stores written before issue 13)
under their birth-date cohort key, archiving or destroying on the way any child imported already
past 18 or 24; month keys for audit terms likewise, and the month chain is punctured past
``AUDIT_TERM_MONTHS``.

Last, notices delivered or dropped 30 days before are **pruned** (``store.lifecycle.notices``), so
that neither the store nor a later backup keeps them: counted in the report and its audited totals.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    Table,
    bindparam,
    delete,
    func,
    not_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import plural
from store.db import Database, busy_ms, dialect_insert
from store.delivery import drops
from store.delivery.notices import DESTROYED, KEEP_CLOSED
from store.keys import keychain, witness
from store.keys.crypto import KeyRing, child_aad
from store.keys.keychain import ARCHIVE_AT_AGE, DESTROY_AT_AGE, Chain
from store.lifecycle import notices as closed_notices
from store.register import children, name_counts
from store.register.children import retention_term
from store.tables import Personal, child_rows, feed_text_tables, tables_holding, wrapped_key_tables
from store.tables.audit import AuditTermKey
from store.tables.delivery import Notice as NoticeRow
from store.tables.lifecycle import RetentionState
from store.tables.people import Practitioner
from store.tables.register import Child, ChildKey, ChildTerm, LocalAuthority

log = structlog.get_logger("signpost.retention")
Counter = Callable[[int], None]  # told how many more items are done (progress; counts only)
# Writes the audit event of a step (counts only, never a reference) in the step's own transaction.
AuditStep = Callable[[AsyncSession, str, int, int], Awaitable[None]]
"""Writes the audit event of one step: (session, detail, archived, destroyed), in its transaction."""
STATE_KEY = "daily"
CHUNK = 500
# Seal-in decrypts in the event loop: batches of 100 (each ending in a database round trip) keep
# every CPU stretch near 10 ms, so searches served by the same process are not held up; one
# transaction per CHUNK keeps commits (and the SQLite write lock) short and few.
SEAL_CHUNK = 100
COMPACTION_PENDING = (
    "Storage compaction is pending: another connection held the database open, so destroyed records "
    "may still be recoverable from the database files until it completes. The next retention run "
    "tries again; close long-running readers (reports, backups, shells) if this persists."
)
COMPACTION_NOT_PERMITTED = (
    "Storage compaction was not done: the role in SIGNPOST_DATABASE_URL may not vacuum Signpost's tables "
    "(PostgreSQL lets only their owner, or from version 17 a role granted MAINTAIN), so destroyed records "
    "may still be recoverable from the database files. Run `signpost retention run` as the owner role "
    "(the one that runs `signpost db upgrade`): it compacts at once."
)
# Compaction waits at most this long (seconds, over retries) for readers holding old snapshots.
COMPACTION_WAIT = 10.0

# Core tables, for executemany with bound WHERE values (the ORM's bulk forms do not allow it).
CHILD_TERMS: Table = ChildTerm.__table__  # type: ignore[assignment]  # typed as FromClause
CHILD_KEYS: Table = ChildKey.__table__  # type: ignore[assignment]

# Rows per child that destruction deletes by their child column: every table declaring one
# (store/tables), those pointing at others first. Not child_terms: it has no index on child_ref
# alone, so destruction deletes its rows by (term, child_ref) pairs recomputed from the identity.
CHILD_ROWS: tuple[tuple[Table, str], ...] = tuple((t, c) for t, c in child_rows() if t is not CHILD_TERMS)

# What compaction touches on PostgreSQL (VACUUM) after a run: every table of children's data, every
# other table destruction deletes rows of (notices naming a child), and the feeds' free text where a
# destroyed child's name may have been (an authority only it named: ``_forget_unshown_authority``).
AFFECTED_TABLES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *(t.name for t in tables_holding(Personal.CHILD)),
            *(t.name for t, _ in child_rows()),
            *(t.name for t in feed_text_tables()),
        ]
    )
)

# What a destroyed child's row keeps: its reference and state, and nothing that says when it was
# born or what it was. The time of the run that destroyed it would give its date of birth (a daily
# run destroys a child on its 24th birthday), so the row is dated this fixed time instead; and a
# destroyed record was never shielded as far as anyone can tell from it.
DESTROYED_AT = datetime(1970, 1, 1, tzinfo=UTC)


# More days due than this and a run waits for a person to say the clock is right. The scheduler runs
# retention every hour, so a month of days due means either nothing ran for a month or the host's
# clock jumped ahead (a dead clock battery, a bad time server, a virtual machine restored): taken on
# the clock's word, a clock set years ahead destroys every child those years would make 24, for good.
UNCHECKED_DAYS = 31


class ClockUnchecked(Exception):
    """More than ``UNCHECKED_DAYS`` days are due and nobody has confirmed today's date: nothing was
    changed. Its text names two dates and a count, nothing of any record."""

    def __init__(self, last: date, today: date) -> None:
        self.last, self.today = last, today
        super().__init__(
            f"the host's clock says today is {today:%d/%m/%Y}, {(today - last).days:,} days after the last day "
            f"retention processed ({last:%d/%m/%Y}), and a run acts on more than {UNCHECKED_DAYS} days at once "
            "only when someone has checked the clock: if it is wrong, put it right; if it is right, run "
            "`signpost retention run --catch-up-to DD/MM/YYYY` at the terminal with today's date as you know "
            "it (`--dry-run` first says what the run would archive and destroy)"
        )


@dataclass
class RetentionReport:
    first_day: date | None = None
    last_day: date | None = None
    archived: int = 0
    destroyed: int = 0
    sealed_in: int = 0
    period_keys_destroyed: int = 0
    cohort_days_destroyed: int = 0
    pending_days: int = 0  # days still to catch up after this call
    notices_pruned: int = 0  # closed notices deleted, or emptied to their dedupe key
    dry_run: bool = False
    compaction: str = ""
    # Why compaction could not finish, for the operator ("" when it did: see ``Compaction.why``):
    # destroyed bytes may still be in the database files until a later run compacts.
    compaction_pending: str = ""

    @property
    def did_work(self) -> bool:
        return bool(
            self.first_day
            or self.archived
            or self.destroyed
            or self.sealed_in
            or self.period_keys_destroyed
            or self.notices_pruned
        )

    @property
    def worth_telling(self) -> bool:
        """Whether the admins are told of this run: it archived or destroyed records, or destroyed
        expired audit-term keys. A day with none of these (sealing in, pruning closed notices) is
        audited all the same, but a notice saying nothing happened, every quiet day, would teach
        admins to skip the ones that say something did."""
        return bool(self.archived or self.destroyed or self.period_keys_destroyed)

    def summary(self) -> str:
        days = (
            f"{self.first_day:%d/%m/%Y} to {self.last_day:%d/%m/%Y}"
            if self.first_day and self.last_day
            else "no new days"
        )

        def were(count: int) -> str:
            return "would be" if self.dry_run else ("was" if count == 1 else "were")

        keys = self.period_keys_destroyed
        text = (
            f"Retention ({days}): {plural(self.archived, 'record')} {were(self.archived)} archived at 18, "
            f"{self.destroyed:,} {were(self.destroyed)} destroyed at 24; "
            f"{plural(keys, 'expired audit-term key')} {were(keys)} destroyed."
        )
        if self.notices_pruned:
            pruned = self.notices_pruned
            text += f" {plural(pruned, 'notice')} closed over {KEEP_CLOSED.days} days ago {were(pruned)} pruned."
        return text + (" " + self.compaction_pending if self.compaction_pending else "")


def combined(reports: Sequence[RetentionReport]) -> RetentionReport:
    """One run's report from the passes it took (a long catch-up runs in bounded passes): its days
    from the first pass's first to the last pass's last, every count added up, and the last pass's
    word on what is still pending and on compaction."""
    if not reports:
        return RetentionReport()
    last = reports[-1]
    days = [r for r in reports if r.first_day is not None]
    return RetentionReport(
        first_day=days[0].first_day if days else None,
        last_day=days[-1].last_day if days else None,
        archived=sum(r.archived for r in reports),
        destroyed=sum(r.destroyed for r in reports),
        sealed_in=sum(r.sealed_in for r in reports),
        period_keys_destroyed=sum(r.period_keys_destroyed for r in reports),
        cohort_days_destroyed=sum(r.cohort_days_destroyed for r in reports),
        notices_pruned=sum(r.notices_pruned for r in reports),
        pending_days=last.pending_days,
        dry_run=last.dry_run,
        compaction=last.compaction,
        compaction_pending=last.compaction_pending,
    )


# -- state -------------------------------------------------------------------------------------


async def last_day(session: AsyncSession) -> date | None:
    return (
        await session.execute(select(RetentionState.last_day).where(RetentionState.name == STATE_KEY))
    ).scalar_one_or_none()


async def first_day(session: AsyncSession, today: date) -> date:
    """The first day a store's first run must process: the earliest day any held child's state was
    set on (an import stores a child archived or not as of that day, and never one already 24).

    Every birthday since then may not have been acted on: a first run that started with today left
    the children who turned 18 in between active for good, and those who turned 24 to be destroyed
    unaudited when the chain was punctured past them. Never before the first import, so a store
    imported years after its children's births does not walk through those years. One scan of the
    children, once: afterwards ``retention_state`` says where runs have got to.
    """
    earliest = (
        await session.execute(select(func.min(Child.updated_at)).where(Child.state != "destroyed"))
    ).scalar_one_or_none()
    return today if earliest is None else min(today, earliest.date())


async def _ensure_state(db: Database, done: date, now: datetime) -> date:
    """A first run's state: the last processed day recorded as ``done`` (the day before ``first_day``,
    read first by the caller: it reads every child once, which must not hold SQLite's write lock,
    since every audit write waits on it), unless another process has begun meanwhile; the day recorded."""
    async with db.write() as session:
        if await last_day(session) is None:
            await session.execute(
                dialect_insert(session)(RetentionState)
                .values(name=STATE_KEY, last_day=done, updated_at=now)
                .on_conflict_do_nothing(index_elements=[RetentionState.name])
            )
        found = await last_day(session)
    assert found is not None
    return found


async def _done_or_first(session: AsyncSession, today: date) -> date:
    """The last processed day, or the day before a first run would start (reads only)."""
    return await last_day(session) or await first_day(session, today) - timedelta(days=1)


async def _claim_day(session: AsyncSession, day: date, now: datetime) -> bool:
    result = await session.execute(
        update(RetentionState)
        .where(RetentionState.name == STATE_KEY, RetentionState.last_day == day - timedelta(days=1))
        .values(last_day=day, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- finding and changing children ---------------------------------------------------------------


async def turning(
    session: AsyncSession, keys: KeyRing, day: date, *, checked: bool = False
) -> tuple[list[int], list[int]]:
    """The children ``day`` is the 18th birthday of and still active (to archive), and those it is
    the 24th birthday of and active or archived (to destroy), found through the blind index only: one
    read of it for both, between two checks of its version (``children.reading_index``; ``checked``:
    the caller has just made the first).

    ``children.IndexNotCurrent`` when the index is not of this code's version: it would find nobody,
    and a day recorded done on that answer would never archive or destroy its children."""
    ages = {ARCHIVE_AT_AGE: ["active"], DESTROY_AT_AGE: ["active", "archived"]}
    terms = {
        years: set(children.probes(keys, [retention_term(dob) for dob in keychain.dobs_turning(day, years)]))
        for years in ages
    }
    wanted = sorted(set().union(*terms.values()))
    held: dict[int, set[int]] = {years: set() for years in ages}
    async with children.reading_index(
        session, checked=checked
    ):  # also with nothing to probe: "nobody" is this version's answer
        if wanted:
            # Two lookups by primary key, not a join: PostgreSQL, its statistics not yet gathered after a
            # large import (120 children where 40,000 were), walked every child and probed the index for
            # each (~85 ms a query; 0.1 ms this way, whatever its statistics say).
            rows = await session.execute(select(ChildTerm.term, ChildTerm.child_ref).where(ChildTerm.term.in_(wanted)))
            for term, ref in rows:
                for years, theirs in terms.items():
                    if term in theirs:
                        held[years].add(ref)
    found: dict[int, list[int]] = {}
    for years, states in ages.items():
        refs = sorted(held[years])
        found[years] = []
        for start in range(0, len(refs), CHUNK):
            chunk = refs[start : start + CHUNK]
            found[years].extend(
                (
                    await session.execute(select(Child.ref).where(Child.ref.in_(chunk), Child.state.in_(states)))
                ).scalars()
            )
    return sorted(found[ARCHIVE_AT_AGE]), sorted(found[DESTROY_AT_AGE])


async def archive(session: AsyncSession, refs: Sequence[int], now: datetime) -> int:
    """Archive children (no ordinary search finds them). ``updated_at`` is left as the import set
    it: dated by a daily run, the row would say in clear that the child turned 18 that day."""
    count = 0
    for start in range(0, len(refs), CHUNK):
        result = await session.execute(
            update(Child)
            .where(Child.ref.in_(refs[start : start + CHUNK]), Child.state == "active")
            .values(state="archived")
        )
        count += result.rowcount  # type: ignore[attr-defined]
    return count


async def destroy(session: AsyncSession, keys: KeyRing, refs: Sequence[int], now: datetime) -> tuple[int, set[str]]:
    """Crypto-shred children: terms, per-child rows (notices naming them among them), wrapped key,
    identity; the row keeps its reference and nothing else (``DESTROYED_AT``). Returns (count, KEK ids)."""
    count, kek_ids = 0, set[str]()
    for start in range(0, len(refs), CHUNK):
        chunk = list(refs[start : start + CHUNK])
        found = await session.execute(select(ChildKey.child_ref, ChildKey.kek_id).where(ChildKey.child_ref.in_(chunk)))
        held = {ref: kek for ref, kek in found}
        kek_ids.update(held.values())
        # A key the key file no longer holds (a cohort punctured since a restored backup was taken:
        # ``orphans``) has no identity to read: its name counts cannot be recomputed, and its terms
        # are deleted apart (``_delete_index_rows``, one pass over the index, before this).
        readable = [ref for ref in chunk if held.get(ref) in keys.keks]
        identities = await children.load_identities(session, keys, readable)
        await name_counts.forget(session, keys, identities.values())
        pairs = [{"t": t, "r": ref} for ref, ident in identities.items() for t in children.terms_for(keys, ident)]
        if pairs:
            terms = CHILD_TERMS.c
            await (await session.connection()).execute(
                delete(CHILD_TERMS).where(terms.term == bindparam("t"), terms.child_ref == bindparam("r")),
                pairs,
            )
        # Notices naming them go too, deleted: those still open are first closed unsent, to be logged
        # and counted as every such notice is (ids and kinds only) once the destruction commits.
        await drops.close(session, NoticeRow.child_ref.in_(chunk), now, DESTROYED, attempted=False)
        for table, column in CHILD_ROWS:  # the wrapped data key among them: the identity is shredded
            await session.execute(delete(table).where(table.c[column].in_(chunk)))
        result = await session.execute(
            update(Child)
            .where(Child.ref.in_(chunk), Child.state != "destroyed")
            .values(identity=None, row_mac=None, shielded=False, state="destroyed", updated_at=DESTROYED_AT)
        )
        count += result.rowcount  # type: ignore[attr-defined]
        await _forget_unshown_authority(session, chunk)
    return count, kek_ids


UNSHOWN_AUTHORITY = ""  # a destroyed child's authority when no practitioner belonged to the one it named
_PRACTITIONER_OF = select(Practitioner.id).where(Practitioner.local_authority == Child.local_authority).exists()


async def _forget_unshown_authority(session: AsyncSession, refs: Sequence[int]) -> None:
    """A destroyed child keeps its local authority, unless no practitioner belongs to it: then it
    may be no authority at all but a name a children row out of line put there (never shown, but
    kept in clear), which must go with the child. Such a row is given ``UNSHOWN_AUTHORITY`` (no
    feed may name it: the field is required), and the authority's own row goes once nothing names it."""
    named = select(Child.local_authority).where(
        Child.ref.in_(refs), Child.local_authority != UNSHOWN_AUTHORITY, ~_PRACTITIONER_OF
    )
    names = sorted(set((await session.execute(named)).scalars()))
    if not names:
        return
    authorities: Table = LocalAuthority.__table__  # type: ignore[assignment]  # typed as FromClause
    await session.execute(
        dialect_insert(session)(authorities)
        .values(name=UNSHOWN_AUTHORITY, first_seen=DESTROYED_AT)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    await session.execute(
        update(Child)
        .where(Child.ref.in_(refs), Child.local_authority.in_(names))
        .values(local_authority=UNSHOWN_AUTHORITY)
    )
    await session.execute(delete(LocalAuthority).where(LocalAuthority.name.in_(names), ~named_by_anyone()))


def named_by_anyone() -> Any:
    """Whether a child or a practitioner names the ``LocalAuthority`` row at hand."""
    by_child = select(Child.ref).where(Child.local_authority == LocalAuthority.name).exists()
    return by_child | select(Practitioner.id).where(Practitioner.local_authority == LocalAuthority.name).exists()


async def _process_day(
    session: AsyncSession, keys: KeyRing, day: date, now: datetime, report: RetentionReport, *, checked: bool = False
) -> None:
    """Archive the day's 18-year-olds and destroy its 24-year-olds (``checked``: as ``turning``'s)."""
    grown, doomed = await turning(session, keys, day, checked=checked)
    report.archived += await archive(session, grown, now)
    wanted = set(keychain.dobs_turning(day, DESTROY_AT_AGE))
    identities = await children.load_identities(session, keys, doomed)
    # A 64-bit blind index can collide; destruction is irreversible, so check the decrypted date.
    confirmed = [ref for ref in doomed if ref not in identities or identities[ref].date_of_birth in wanted]
    report.destroyed += (await destroy(session, keys, confirmed, now))[0]


# -- seal-in: data keys under their birth-date cohort ----------------------------------------------


async def _seal_in_children(
    db: Database,
    keys: KeyRing,
    as_of: date,
    now: datetime,
    limit: int,
    on_sealed: Counter | None = None,
    audit_step: AuditStep | None = None,
) -> tuple[int, int, int]:
    """Move master-wrapped child keys under their cohort key; returns (sealed, archived, destroyed).

    ``on_sealed`` is told how many more keys were looked at after each transaction."""
    totals = [0, 0, 0]
    cursor = -1
    while totals[0] + totals[2] < limit:
        async with db.write() as session:
            refs = list(
                (
                    await session.execute(
                        select(ChildKey.child_ref)
                        .where(not_(ChildKey.kek_id.like("d%")), ChildKey.child_ref > cursor)
                        .order_by(ChildKey.child_ref)
                        .limit(CHUNK)
                    )
                ).scalars()
            )
            if not refs:
                break
            cursor = refs[-1]
            changed = [0, 0]
            for start in range(0, len(refs), SEAL_CHUNK):
                done = await _seal_in_batch(session, keys, refs[start : start + SEAL_CHUNK], as_of, now)
                totals = [t + d for t, d in zip(totals, done, strict=True)]
                changed = [changed[0] + done[1], changed[1] + done[2]]
            if audit_step is not None and any(changed):
                await audit_step(session, f"seal-in: archived {changed[0]} destroyed {changed[1]}", *changed)
        if on_sealed is not None:
            on_sealed(len(refs))
    return totals[0], totals[1], totals[2]


async def _seal_in_batch(
    session: AsyncSession, keys: KeyRing, refs: Sequence[int], as_of: date, now: datetime
) -> tuple[int, int, int]:
    identities = await children.load_identities(session, keys, refs)
    cutoff = keychain.first_retained_dob(as_of)
    fates = {ref: _seal_in_fate(ident.date_of_birth, cutoff, as_of) for ref, ident in identities.items()}
    past = [ref for ref, fate in fates.items() if fate == "destroy"]
    destroyed = (await destroy(session, keys, past, now))[0]
    archived = await archive(session, [ref for ref, fate in fates.items() if fate == "archive"], now)
    moves = [(ref, ident.date_of_birth) for ref, ident in identities.items() if ref not in past]
    return await _rewrap_children(session, keys, moves), archived, destroyed


def _seal_in_fate(dob: date, cutoff: date, as_of: date) -> str | None:
    """What sealing in a child's key on ``as_of`` does to it first: "destroy" when born before the
    day chain's ``cutoff`` (24 by then), "archive" when 18 by then (``archive`` leaves all but the
    active), None otherwise. The dry run counts by the same rule (``_count_unsealed_due``)."""
    if dob < cutoff:
        return "destroy"
    return "archive" if keychain.birthday(dob, ARCHIVE_AT_AGE) <= as_of else None


async def _rewrap_children(session: AsyncSession, keys: KeyRing, moves: Sequence[tuple[int, date]]) -> int:
    rows = (
        await session.execute(
            select(ChildKey.child_ref, ChildKey.kek_id, ChildKey.wrapped).where(
                ChildKey.child_ref.in_([r for r, _ in moves])
            )
        )
    ).all()
    dob_of = dict(moves)
    params: list[dict[str, Any]] = []
    for ref, old_id, wrapped in rows:
        target = keychain.key_for(keys, Chain.DAY, keychain.day_slot(dob_of[ref]))
        if target is None or target == old_id:
            continue  # beyond the derivation horizon (a date of birth in the future): stays as is
        data_key = keys.unwrap(old_id, wrapped, child_aad(ref))
        params.append(
            {
                "r": ref,
                "o": old_id,
                "k": target,
                "w": keychain.wrap_under(keys, target, data_key, child_aad(ref)),
            }
        )
    if params:
        cols = CHILD_KEYS.c
        await (await session.connection()).execute(
            update(CHILD_KEYS)
            .where(cols.child_ref == bindparam("r"), cols.kek_id == bindparam("o"))
            .values(kek_id=bindparam("k"), wrapped=bindparam("w")),
            params,
        )
    return len(params)


async def _stragglers(session: AsyncSession, keys: KeyRing, old_cutoff: int, new_cutoff: int, now: datetime) -> int:
    """Children still under a cohort key about to be destroyed that their day did not find (a
    blind-index row missing, a date of birth corrected since seal-in): destroy those really past 24,
    move the others under their own cohort. Returns how many were destroyed (the caller counts and
    audits them in this transaction)."""
    gen = keychain.generation(keys)
    ids = [keychain.kek_id(keys, Chain.DAY, g, s) for g in (gen, gen - 1) for s in range(old_cutoff, new_cutoff)]
    cutoff = keychain.slot_day(new_cutoff)
    destroyed = 0
    for start in range(0, len(ids), CHUNK):
        refs = list(
            (
                await session.execute(select(ChildKey.child_ref).where(ChildKey.kek_id.in_(ids[start : start + CHUNK])))
            ).scalars()
        )
        identities = await children.load_identities(session, keys, refs)
        past = [r for r, i in identities.items() if i.date_of_birth < cutoff]
        destroyed += (await destroy(session, keys, past, now))[0]
        await _rewrap_children(session, keys, [(r, i.date_of_birth) for r, i in identities.items() if r not in past])
    return destroyed


# -- orphans: children under a birth-date key already punctured -----------------------------------

# Every KEK id child_keys holds, one index seek each (a loose index scan: a few thousand cohort ids
# among millions of rows), never a read of the rows themselves.
_STORED_KEK_IDS = text(
    "WITH RECURSIVE ids(kek_id) AS ("
    " SELECT min(kek_id) FROM child_keys"
    " UNION ALL"
    " SELECT (SELECT min(c.kek_id) FROM child_keys c WHERE c.kek_id > ids.kek_id) FROM ids"
    " WHERE ids.kek_id IS NOT NULL"
    ") SELECT kek_id FROM ids WHERE kek_id IS NOT NULL"
)


async def _orphan_kek_ids(session: AsyncSession, keys: KeyRing) -> list[str]:
    """The birth-date KEK ids child keys are still wrapped under whose cohorts the key file has
    punctured (``keychain.punctured_day_ids``). A run leaves none: it destroys a cohort's children
    before the puncture. They come back with a backup taken before, restored beside the current key
    file: the blind index cannot find those children (their term keys are gone too), yet their rows
    are there, involvements in clear by reference."""
    stored = (await session.execute(_STORED_KEK_IDS)).scalars()
    return sorted(keychain.punctured_day_ids(keys, stored))


async def _destroy_orphans(db: Database, keys: KeyRing, now: datetime, audit_step: AuditStep | None) -> int:
    """Destroy every child whose data key is under a punctured birth-date key (``_orphan_kek_ids``),
    ``CHUNK`` children a transaction, each audited in it; returns how many were destroyed.

    Their index rows go first (``_delete_index_rows``): ``destroy`` cannot recompute them without
    the key, and those under the birth year's term key stay testable with the key file until the
    year's last cohort is destroyed. While a child's wrapped key is there it is still found as an
    orphan, so a run killed between the two does it again.

    Only a punctured cohort is proof: a child whose key is under a master KEK or a generation the
    key file no longer holds, or not derived yet, is left as it is (its cohort is not shown to be 24)."""
    async with db.read() as session:
        ids = await _orphan_kek_ids(session, keys)
    destroyed = 0
    for start in range(0, len(ids), CHUNK):
        under = select(ChildKey.child_ref).where(ChildKey.kek_id.in_(ids[start : start + CHUNK]))
        while True:
            async with db.read() as session:
                refs = list((await session.execute(under.order_by(ChildKey.child_ref).limit(ORPHAN_SWEEP))).scalars())
            if not refs:
                break
            await _delete_index_rows(db, refs)
            for part in range(0, len(refs), CHUNK):
                async with db.write() as session:
                    done = (await destroy(session, keys, refs[part : part + CHUNK], now))[0]  # wrapped keys go
                    if audit_step is not None and done:
                        await audit_step(session, f"cohorts destroyed before: archived 0 destroyed {done}", 0, done)
                destroyed += done
    await _drop_orphan_wrapped(db, keys)
    return destroyed


async def _drop_orphan_wrapped(db: Database, keys: KeyRing) -> None:
    """Delete the rows of every other table of wrapped keys (``store.tables.wrapped_key_tables``: a
    search's cohort terms key, a parked command) still under a punctured birth-date key. A run
    deletes them with their cohort (``_drop_cohort_term_keys``); a backup taken before brings them
    back, and nothing can open them any more, yet ``signpost db check`` rightly calls such a store
    one not to trust until they are gone."""
    for table, kek_column, _ in wrapped_key_tables():
        if table is CHILD_KEYS:
            continue  # its children are destroyed above, each with its wrapped key
        column = table.c[kek_column]
        async with db.read() as session:
            stored = (await session.execute(select(column).where(column.like("d%")).distinct())).scalars()
            ids = sorted(keychain.punctured_day_ids(keys, [str(kek) for kek in stored]))
        for start in range(0, len(ids), CHUNK):
            async with db.write() as session:
                await session.execute(delete(table).where(column.in_(ids[start : start + CHUNK])))


# The term space (signed 64-bit blind values) cut into ranges, one SQLite transaction each, so that
# a pass over the national index (~176 M rows) never holds the write lock for long.
TERM_SLICES = 64
ORPHAN_SWEEP = 200_000  # orphans whose index rows one pass over child_terms deletes (~80 s at 176 M rows)


async def _delete_index_rows(db: Database, refs: Sequence[int]) -> int:
    """Delete every ``child_terms`` row naming one of ``refs``: one pass over the table (it has no
    index by child; an orphan's terms cannot be recomputed). Rare (a restored backup) and bounded:
    a hash probe per row, never a query per child. Returns how many rows went."""
    removed = 0
    if db.dialect == "postgresql":
        async with db.write() as session:
            result = await session.execute(  # a hash join (an ``= ANY`` of a parameter is a list scan a row)
                text(
                    "DELETE FROM child_terms t USING unnest(CAST(:refs AS BIGINT[])) AS o(ref)"
                    " WHERE t.child_ref = o.ref"
                ),
                {"refs": list(refs)},
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
    wanted, low, step = json.dumps(list(refs)), -(1 << 63), (1 << 64) // TERM_SLICES
    for n in range(TERM_SLICES):
        high = (1 << 63) - 1 if n == TERM_SLICES - 1 else low + (n + 1) * step - 1
        async with db.write() as session:
            result = await session.execute(
                text(
                    "DELETE FROM child_terms WHERE term BETWEEN :lo AND :hi"
                    " AND child_ref IN (SELECT value FROM json_each(:refs))"
                ),
                {"lo": low + n * step, "hi": high, "refs": wanted},
            )
            removed += int(result.rowcount)  # type: ignore[attr-defined]
    return removed


async def destroyed_but_held(db: Database, keys: KeyRing) -> int:
    """How many children the store holds whose birth-date key the key file has already destroyed
    (a backup put back beside a later key file): the next run destroys them (``_destroy_orphans``)."""
    async with db.read() as session:
        return await _count_orphans(session, keys)


async def _count_orphans(session: AsyncSession, keys: KeyRing) -> int:
    """How many children ``_destroy_orphans`` would destroy now (the dry run's count)."""
    ids = await _orphan_kek_ids(session, keys)
    total = 0
    for start in range(0, len(ids), CHUNK):
        counted = (
            select(func.count())
            .select_from(ChildKey)
            .join(Child, Child.ref == ChildKey.child_ref)
            .where(ChildKey.kek_id.in_(ids[start : start + CHUNK]), Child.state != "destroyed")
        )
        total += int((await session.execute(counted)).scalar_one())
    return total


DAYS_A_TRANSACTION = 31  # days a run processes in one write transaction, punctured once after it


async def _before_puncture(
    session: AsyncSession, keys: KeyRing, through: date, now: datetime, since: int | None = None
) -> int:
    """In the transaction that makes ``through`` processed: what puncturing the day chain through it
    needs done first (stragglers destroyed or moved, the cohorts' audit-terms keys deleted), from
    the cutoff ``since`` (the key file's when None; the day before's, within a transaction of
    several days). Returns how many children were destroyed."""
    old, new = since if since is not None else keychain.cutoff_of(keys, Chain.DAY), _day_cutoff(through)
    if old is None or old >= new:
        return 0
    destroyed = await _stragglers(session, keys, old, new, now)
    await _drop_cohort_term_keys(session, keys, old, new)
    return destroyed


async def _drop_cohort_term_keys(session: AsyncSession, keys: KeyRing, old_cutoff: int, new_cutoff: int) -> None:
    """Delete the audit-terms keys of the cohorts about to be destroyed (their KEK goes with the
    puncture that follows the commit, so this is tidiness and compaction, not the destruction itself)."""
    names = keychain.cohort_names(keys, old_cutoff, new_cutoff - 1)
    for start in range(0, len(names), CHUNK):
        await session.execute(delete(AuditTermKey).where(AuditTermKey.period.in_(names[start : start + CHUNK])))


def _day_cutoff(through: date) -> int:
    """The day chain's cutoff once every day up to ``through`` is processed: the first cohort kept."""
    return keychain.day_slot(keychain.first_retained_dob(through))


def _puncture_days(keys: KeyRing, through: date, today: date, report: RetentionReport) -> None:
    """Destroy the birth-date keys of every cohort 24 by ``through``, whose children are destroyed
    in committed transactions: only ever called after the commit that made ``through`` processed."""
    report.cohort_days_destroyed += keychain.puncture(keys, Chain.DAY, _day_cutoff(through), today)


# -- audit-term month keys ---------------------------------------------------------------------------


def _period_aad(period: str) -> bytes:
    return b"signpost:audit-terms:" + period.encode()  # as store.audit.log.TermSealer wraps them


async def _seal_in_periods(db: Database, keys: KeyRing, as_of: date) -> int:
    """Month keys under their month chain key; keys of months past retention deleted."""
    oldest = keychain.slot_period(keychain.month_cutoff(as_of))
    async with db.write() as session:
        gone = await session.execute(delete(AuditTermKey).where(AuditTermKey.period < oldest))
        legacy = not_(AuditTermKey.kek_id.like("m%")) & not_(AuditTermKey.period.like("d%"))  # not cohort rows
        rows = (await session.execute(select(AuditTermKey).where(legacy))).scalars().all()
        for row in rows:
            target = keychain.key_for(keys, Chain.MONTH, keychain.month_slot(row.period))
            if target is None:
                continue
            data_key = keys.unwrap(row.kek_id, row.wrapped, _period_aad(row.period))
            row.wrapped = keychain.wrap_under(keys, target, data_key, _period_aad(row.period))
            row.kek_id = target
    return int(gone.rowcount)  # type: ignore[attr-defined]


# -- the run -----------------------------------------------------------------------------------


async def run(
    db: Database,
    keys: KeyRing,
    now: datetime,
    *,
    max_days: int = 31,
    seal_limit: int = 100_000,
    compaction: bool = True,
    on_day: Counter | None = None,
    on_sealed: Counter | None = None,
    audit_step: AuditStep | None = None,
    catch_up_to: date | None = None,
) -> RetentionReport:
    """Process every unprocessed day up to today (at most ``max_days``), seal in, puncture, and
    compact (unless the caller will, after writing its own last rows).

    ``ClockUnchecked`` before anything changes when more than ``UNCHECKED_DAYS`` days are due and
    ``catch_up_to`` (today's date as a person confirmed it) is not today by ``now``: a puncture
    left unfinished and children a restored backup holds under keys already punctured wait for it
    too, so that a refused run has changed nothing.

    ``audit_step`` writes the audit event of each transaction that archived or destroyed any
    record, in that transaction: a run killed part way leaves no record changed unaudited.

    ``on_day`` is told of each day processed (1 at a time) and ``on_sealed`` how many more data
    keys seal-in has looked at; ``due`` says how many of each there are.

    ``children.IndexNotCurrent`` when the blind index is not of this code's version: nothing of
    the day it was found in is applied, and that day stays due.
    """
    today = now.date()
    report = RetentionReport()
    if not await _chains_ready(db, keys, today):
        return report  # after decommissioning there is nothing left to keep or destroy
    async with db.read() as session:
        # Before anything changes (each day's ``turning`` checks again, in its transaction): the
        # days are found through the blind index, and destruction deletes a child's terms as this
        # version writes them. A newer index stops the run; its days stay due for the newer code.
        await children.require_current_index(session)
        # Before anything changes: more than a month of days due waits for the date confirmed.
        recorded = await last_day(session)
        last = recorded if recorded is not None else await first_day(session, today) - timedelta(days=1)
    if (today - last).days > UNCHECKED_DAYS and catch_up_to != today:
        raise ClockUnchecked(last, today)
    done = recorded if recorded is not None else await _ensure_state(db, last, now)
    # A run stopped between a day's commit and its puncture (kill -9) left that day's cohort keys
    # in the key file, though the audit says its children are destroyed: finish that first.
    await _finish_puncture(db, keys, done, today, now, report, audit_step)
    # Children under birth-date keys punctured before this store's state was taken (a restored
    # backup): the days that destroyed them are not this store's to process again.
    report.destroyed += await _destroy_orphans(db, keys, now, audit_step)
    day = done + timedelta(days=1)

    def due_day() -> bool:
        return day <= today and (report.first_day is None or (day - report.first_day).days < max_days)

    while due_day():
        # Up to DAYS_A_TRANSACTION days in one transaction (each claimed, processed and audited as
        # its own day), then one puncture through the last: a catch-up of years is one commit and
        # one key-file write a month, not a day. Killed before the commit, none of them is done;
        # between the commit and the puncture, the next run finishes it (``_finish_puncture``).
        # An index another version rebuilt since the batch's last day stops it before the next day
        # writes anything: the days done stand (committed and punctured), then the run stops.
        batch: list[date] = []
        stopped: children.IndexNotCurrent | None = None
        async with db.write() as session:
            cutoff = keychain.cutoff_of(keys, Chain.DAY)
            while due_day() and len(batch) < DAYS_A_TRANSACTION:
                try:
                    # The day's first read of the index: its version checked before the claim, so
                    # that a day after the first stops here, its claim and work not begun.
                    await children.require_current_index(session)
                except children.IndexNotCurrent as exc:
                    if not batch:
                        raise  # nothing done in this transaction: it rolls back, the day still due
                    stopped = exc
                    break
                if not await _claim_day(session, day, now):
                    break  # another replica has this day
                before = (report.archived, report.destroyed)
                await _process_day(session, keys, day, now, report, checked=True)
                report.destroyed += await _before_puncture(session, keys, day, now, since=cutoff)
                cutoff = None if cutoff is None else max(cutoff, _day_cutoff(day))
                changed = (report.archived - before[0], report.destroyed - before[1])
                if audit_step is not None and any(changed):
                    detail = f"day {day:%Y-%m-%d}: archived {changed[0]} destroyed {changed[1]}"
                    await audit_step(session, detail, *changed)
                batch.append(day)
                report.first_day = report.first_day or day
                report.last_day = day
                day += timedelta(days=1)
        if not batch:
            break
        # Right after the commit: the days' children are destroyed for good, so their cohort keys
        # go now, not after seal-in (a backup taken before stayed readable until the run's end).
        _puncture_days(keys, batch[-1], today, report)
        if on_day is not None:
            for _ in batch:
                on_day(1)
        if stopped is not None:
            raise stopped
        if len(batch) < DAYS_A_TRANSACTION and due_day():
            break  # another replica has the next day
    async with db.read() as session:
        processed = await last_day(session) or today
    report.pending_days = max(0, (today - processed).days)
    sealed, archived, destroyed = await _seal_in_children(db, keys, processed, now, seal_limit, on_sealed, audit_step)
    report.sealed_in, report.archived, report.destroyed = (
        sealed,
        report.archived + archived,
        report.destroyed + destroyed,
    )
    report.period_keys_destroyed = await _seal_in_periods(db, keys, processed)
    await _finish_puncture(db, keys, processed, today, now, report, audit_step)  # days other replicas did
    report.notices_pruned = await closed_notices.prune(db, now)  # before compaction, which covers them
    if compaction:
        await compact_after_run(db, report)
    log.info(
        "retention_run",
        archived=report.archived,
        destroyed=report.destroyed,
        sealed_in=report.sealed_in,
        notices_pruned=report.notices_pruned,
        pending_days=report.pending_days,
        compaction=report.compaction or "deferred",  # the caller compacts after its own writes
    )
    return report


async def _chains_ready(db: Database, keys: KeyRing, today: date) -> bool:
    """Take the key file as it is now and derive today's keys; False once decommissioned.
    ``witness.ChainsNotOurs`` before anything changes when its chains are not this store's (one
    chain made again at random, or a wrong one, would make every live child look destroyed):
    judged before a missing chain is made, and again after."""
    keychain.reload(keys)
    if keychain.decommissioned(keys):
        return False
    await witness.check(db, keys, today)
    keychain.ensure_chains(keys, today)
    await witness.check(db, keys, today)
    return True


async def finish_puncture(db: Database, keys: KeyRing, now: datetime, *, audit_step: AuditStep | None = None) -> int:
    """Destroy the birth-date keys a stopped run left behind: every cohort 24 by the last processed
    day (and the month keys past retention), without processing a new day (every run does this
    first).
    Returns how many children it destroyed on the way (stragglers, audited through ``audit_step``).
    ``children.IndexNotCurrent`` (nothing changed) when the blind index is not of this code's version."""
    today = now.date()
    report = RetentionReport()
    if not await _chains_ready(db, keys, today):
        return 0
    async with db.read() as session:
        await children.require_current_index(session)  # as ``run``: destruction reads the index
        done = await last_day(session)
    if done is not None:
        await _finish_puncture(db, keys, done, today, now, report, audit_step)
    return report.destroyed


async def _finish_puncture(
    db: Database,
    keys: KeyRing,
    through: date,
    today: date,
    now: datetime,
    report: RetentionReport,
    audit_step: AuditStep | None,
) -> None:
    """Puncture both chains through the processed day ``through`` where they lag behind it."""
    old = keychain.cutoff_of(keys, Chain.DAY)
    if old is not None and old < _day_cutoff(through):
        async with db.write() as session:
            destroyed = await _before_puncture(session, keys, through, now)
            if audit_step is not None and destroyed:
                detail = f"cohorts to {through:%Y-%m-%d}: archived 0 destroyed {destroyed}"
                await audit_step(session, detail, 0, destroyed)
        report.destroyed += destroyed
        _puncture_days(keys, through, today, report)
    keychain.puncture(keys, Chain.MONTH, keychain.month_cutoff(through), today)


async def unfinished_puncture(db: Database, keys: KeyRing) -> int:
    """How many days of births the key file still holds birth-date or term keys of (day and term
    chains, every generation) whose children this store has destroyed: a run killed between a
    day's commit and the key file's write (``_finish_puncture`` finishes it), or an earlier copy of
    the key file put back. 0 when the key file is at or past where the store's runs have got
    (``retention_state``), as after every finished run. Reads only: `signpost db check` says it,
    and `signpost keys rotate`, which would carry those keys into its new generation, refuses."""
    held = [s.cutoff for s in keychain.states(keys) if s.chain in keychain.PUNCTURED_WITH[Chain.DAY]]
    if not held:  # no chains (a store written before them), or decommissioned: nothing to tell
        return 0
    async with db.read() as session:
        done = await last_day(session)
    return 0 if done is None else max(0, _day_cutoff(done) - min(held))


UNFINISHED_PUNCTURE = (
    "still holds the birth-date and search-term keys of {days} of births whose children retention has "
    "destroyed (a retention run stopped before it wrote the key file), so a backup taken before opens "
    "those children with it: run `signpost retention run` to finish the destruction"
)
"""What `signpost db check` says of ``unfinished_puncture`` after the key file's name (a count only:
no cohort's date)."""


@dataclass(frozen=True, slots=True)
class Due:
    """How much a run would work through: days to process, data keys to seal in (for progress)."""

    days: int
    keys: int


async def due(db: Database, today: date) -> Due:
    """Cheap counts of a run's work (one read; another replica may take some of it meanwhile)."""
    async with db.read() as session:
        done = await _done_or_first(session, today)
        keys = (
            await session.execute(select(func.count()).select_from(ChildKey).where(not_(ChildKey.kek_id.like("d%"))))
        ).scalar_one()
    return Due(max(0, (today - done).days), int(keys))


# -- dry run -----------------------------------------------------------------------------------


PREVIEW_DATES = 500  # dates of birth counted in one statement of a dry run


async def preview(db: Database, keys: KeyRing, today: date, as_of: date) -> RetentionReport:
    """What a run on ``as_of`` would do, changing nothing (reads only).

    Counted, never listed: years ahead of a national register that is millions of children, and a
    list of their references (then their records) took memory in proportion. A child sealed under
    its cohort key is counted through the blind index, ``PREVIEW_DATES`` dates of birth a statement
    (a handful of statements for seven years, where it read two a day); one whose key the run would seal
    in first is decrypted, ``CHUNK`` at a time, as the run would. Like the run, which works through
    the days in order, a child turning 18 and then 24 within the span counts as archived and as
    destroyed."""
    report = RetentionReport(dry_run=True)
    async with db.read() as session:
        first = await _done_or_first(session, today) + timedelta(days=1)
        if first <= as_of:
            report.first_day, report.last_day = first, as_of
        archive, destroy = _birth_dates_due(first, as_of)
        async with children.reading_index(session):
            report.archived = await _count_sealed_born(session, keys, archive, ["active"])
            report.destroyed = await _count_sealed_born(session, keys, destroy, ["active", "archived"])
        archived, destroyed = await _count_unsealed_due(session, keys, as_of)
        report.archived += archived
        report.destroyed += destroyed + await _count_orphans(session, keys)
        report.period_keys_destroyed = (
            await session.execute(
                select(func.count())
                .select_from(AuditTermKey)
                .where(AuditTermKey.period < keychain.slot_period(keychain.month_cutoff(as_of)))
            )
        ).scalar_one()
        report.notices_pruned = await closed_notices.would_prune(session, as_of)
    return report


def _birth_dates_due(first: date, last: date) -> tuple[list[date], list[date]]:
    """The dates of birth of the children the days ``first`` to ``last`` archive (turning 18) and
    destroy (turning 24), as ``_process_day`` finds them day by day."""
    archive: list[date] = []
    destroy: list[date] = []
    day = first
    while day <= last:
        archive += keychain.dobs_turning(day, ARCHIVE_AT_AGE)
        destroy += keychain.dobs_turning(day, DESTROY_AT_AGE)
        day += timedelta(days=1)
    return archive, destroy


async def _count_sealed_born(session: AsyncSession, keys: KeyRing, dobs: Sequence[date], states: Sequence[str]) -> int:
    """How many children in ``states`` whose keys are under a cohort key were born on one of
    ``dobs`` (the blind index only: one retention term a child, so the batches' counts add up)."""
    total = 0
    for start in range(0, len(dobs), PREVIEW_DATES):
        terms = children.probes(keys, [retention_term(dob) for dob in dobs[start : start + PREVIEW_DATES]])
        if not terms:
            continue
        counted = (
            select(func.count(ChildTerm.child_ref.distinct()))
            .join(Child, Child.ref == ChildTerm.child_ref)
            .join(ChildKey, ChildKey.child_ref == ChildTerm.child_ref)
            .where(ChildTerm.term.in_(terms), Child.state.in_(states), ChildKey.kek_id.like("d%"))
        )
        total += int((await session.execute(counted)).scalar_one())
    return total


async def _count_unsealed_due(session: AsyncSession, keys: KeyRing, as_of: date) -> tuple[int, int]:
    """(archived, destroyed) among children whose keys a run on ``as_of`` seals in first
    (``_seal_in_batch``): past 24 by then destroyed, else archived if active and 18 by then."""
    cutoff = keychain.first_retained_dob(as_of)
    archived = destroyed = 0
    cursor = -1
    while True:
        rows = (
            await session.execute(
                select(ChildKey.child_ref, Child.state)
                .join(Child, Child.ref == ChildKey.child_ref)
                .where(not_(ChildKey.kek_id.like("d%")), ChildKey.child_ref > cursor)
                .order_by(ChildKey.child_ref)
                .limit(CHUNK)
            )
        ).all()
        if not rows:
            return archived, destroyed
        cursor = rows[-1][0]
        identities = await children.load_identities(session, keys, [ref for ref, _ in rows])
        for ref, state in rows:
            identity = identities.get(ref)
            if identity is None:
                continue
            fate = _seal_in_fate(identity.date_of_birth, cutoff, as_of)
            destroyed += fate == "destroy"
            archived += fate == "archive" and state == "active"


# -- compaction --------------------------------------------------------------------------------


async def compact_after_run(db: Database, report: RetentionReport, *, wait: float | None = None) -> None:
    """Compact after a run's last write; record (and log) in ``report`` whether it is pending."""
    result = await compact_checked(db, AFFECTED_TABLES, wait=COMPACTION_WAIT if wait is None else wait)
    report.compaction, report.compaction_pending = result.detail, result.why
    if result.done:
        log.info("retention_compacted", compaction=result.detail)
    else:
        log.warning("retention_compaction_pending", compaction=result.detail)


@dataclass(frozen=True, slots=True)
class Compaction:
    """What compaction achieved: ``done`` only when no destroyed byte can remain in the files;
    ``why`` it is not, for the operator (``COMPACTION_PENDING``, ``COMPACTION_NOT_PERMITTED``)."""

    done: bool
    detail: str
    why: str = ""


async def compact_checked(db: Database, tables: Sequence[str], *, wait: float, full: bool = False) -> Compaction:
    """Make deleted bytes go away: SQLite checkpoints and truncates the WAL (secure_delete has
    already zeroed freed cells); PostgreSQL vacuums the tables (outside a transaction).

    A reader holding an old snapshot stops SQLite's checkpoint from copying the pages that zero a
    destroyed child over the old ones (and from truncating the WAL that still holds them), and
    stops PostgreSQL's VACUUM from removing dead row versions. So each is retried with backoff for
    at most ``wait`` seconds; if readers still hold on, the result says so (``done`` False) and the
    next retention run tries again.

    A PostgreSQL role that may not vacuum the tables is told so at once, without retries: its
    VACUUM would skip them with a warning, and waiting cannot change that.
    """
    if db.dialect == "postgresql":
        barred = await _pg_not_vacuumable(db, tables)
        if barred:
            detail = f"postgresql vacuum not permitted: the connected role may not vacuum {plural(barred, 'table')}"
            return Compaction(False, detail, COMPACTION_NOT_PERMITTED)
    deadline = time.monotonic() + wait
    pause, attempts = 0.05, 0
    while True:
        attempts += 1
        remaining = max(0.0, deadline - time.monotonic())
        done, detail = await (_sqlite_compact if db.dialect == "sqlite" else _pg_compact)(
            db, tables, full, min(remaining, max(pause, 0.05))
        )
        if done or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 2.0)
    if not done:
        detail += f"; pending after {plural(attempts, 'attempt')}: a reader holds an old snapshot"
    return Compaction(done, detail, "" if done else COMPACTION_PENDING)


async def _pg_not_vacuumable(db: Database, tables: Sequence[str]) -> int:
    """How many of ``tables`` the connected role may not VACUUM (PostgreSQL skips those with a
    warning, not an error): up to 16 only a superuser, the table's owner (or a role with its
    privileges) and the database's owner may; from 17 a role holding MAINTAIN on the table (which
    an owner and the pg_maintain role hold) and the database's owner."""
    async with db.engine.connect() as conn:
        version = int((await conn.exec_driver_sql("SHOW server_version_num")).scalar_one())
        may = "has_table_privilege(c.oid, 'MAINTAIN')" if version >= 170000 else "pg_has_role(c.relowner, 'USAGE')"
        barred = await conn.execute(
            text(
                "SELECT count(*) FROM pg_class c WHERE c.relname = ANY(:tables) "
                "AND c.relnamespace = current_schema()::regnamespace "
                f"AND NOT ({may} OR pg_has_role((SELECT datdba FROM pg_database "
                "WHERE datname = current_database()), 'USAGE'))"
            ),
            {"tables": list(tables)},
        )
        return int(barred.scalar_one())


async def _sqlite_compact(db: Database, tables: Sequence[str], full: bool, wait: float) -> tuple[bool, str]:
    wait_ms = max(1, int(wait * 1000))
    async with db.engine.connect() as conn:

        def attempt(sync: Any) -> tuple[Any, ...]:
            raw_sqlite(sync, f"PRAGMA busy_timeout={wait_ms}")
            try:
                if full:
                    raw_sqlite(sync, "VACUUM")
                return raw_sqlite(sync, "PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError:
                return (1, -1, -1)  # VACUUM could not get the database: as busy
            finally:
                raw_sqlite(sync, f"PRAGMA busy_timeout={busy_ms(db.busy_seconds)}")  # the connection's own

        busy, frames, done = await conn.run_sync(attempt)
    return busy == 0, f"sqlite wal_checkpoint busy={busy} frames={frames} checkpointed={done}"


async def _pg_compact(db: Database, tables: Sequence[str], full: bool, wait: float) -> tuple[bool, str]:
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            if full:
                await conn.exec_driver_sql(f"VACUUM FULL {_quoted(table)}")
            # After FULL too: VACUUM FULL rewrites the table but reports nothing to the statistics,
            # so the count below would stay at the deletes' and every attempt look held up (each
            # decommissioning waited out COMPACTION_WAIT). A plain VACUUM of the rewritten table
            # is cheap and counts what the rewrite had to keep.
            await conn.exec_driver_sql(f"VACUUM {_quoted(table)}")
        # Dead row versions VACUUM had to keep for an older snapshot are counted here (before the
        # ANALYZE below, which replaces that count with its own sample's estimate).
        kept = (
            await conn.exec_driver_sql(
                "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE relname = ANY($1)",
                (list(tables),),
            )
        ).scalar_one()
        # The planner's statistics (pg_stats, readable by any role that may read the table) sample
        # each column's values, a destroyed child's reference and its involvements' services among
        # them: only a new sample of the live rows replaces them (dead ones are never sampled). A
        # table left empty keeps its old sample: PostgreSQL changes no statistics when ANALYZE
        # finds no row.
        for table in tables:
            await conn.exec_driver_sql(f"ANALYZE {_quoted(table)}")
    detail = f"postgresql vacuum{' full' if full else ''} {plural(len(tables), 'table')}"
    return int(kept) == 0, detail if not kept else f"{detail}, {plural(int(kept), 'dead row version')} kept"


def raw_sqlite(sync_conn: Any, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """Run a statement on the raw SQLite connection, outside any transaction (VACUUM needs that)."""
    cursor = sync_conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone() if cursor.description else None
        return tuple(row) if row else ()
    finally:
        cursor.close()


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError("unexpected table name")
    return f'"{name}"'
