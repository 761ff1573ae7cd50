"""Decommissioning: a switch-off date, notices to admins, destruction of all personal data, a certificate.

One schedule is live at a time (``live`` is unique while set; a cancelled schedule clears it).
Everything here is idempotent and safe in several replicas: notices carry a dedupe key per
(schedule, milestone, admin); state changes are compare-and-set; destruction is claimed with a
lease and records each finished step, so a crash resumes where it stopped.

What is destroyed is derived from the tables' classification (store/tables), never listed by
hand: the "keys" step empties every table declaring wrapped keys; the "data" step every table of
children's or people's data, except the admins' means of being reached (their practitioner row,
blanked, their chat links and Teams conversations, and the notices outbox: every notice blanked
but the admins' own news, which is still delivered) so that each step's notice and the signed
certificate reach them; the **purge** deletes every row left in any child or person table once
every admin's certificate notice is delivered, or ``PURGE_GRACE`` after completion at the latest
(the certificate itself stays in ``decommissions``, for ``signpost decommission certificate``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Table, and_, delete, exists, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import CUT_SHORT, Action, Notice, Outcome, Role
from store.audit.chain import current_head
from store.audit.signing import Signer
from store.db import Database, after_commit
from store.delivery import drops
from store.delivery.notices import drop_decided
from store.keys import keychain
from store.keys.backup import PARTIAL
from store.keys.crypto import KeyRing, copies_left, remove_leftovers
from store.keys.term_keys import TermKeys
from store.lifecycle import retention
from store.lifecycle.retention import COMPACTION_NOT_PERMITTED, Compaction, compact_checked
from store.people.practitioners import holders
from store.tables import Personal, feed_text_tables, tables_holding, wrapped_key_tables
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from store.tables.lifecycle import Decommission
from store.tables.people import ChatIdentity, Practitioner, TeamsConversation
from store.tables.register import Child, LocalAuthority

log = structlog.get_logger("signpost.decommission")
DEFAULT_DESTROY_DAYS = 60
# How far ahead a switch-off may be planned: a date further off is a slip (2199 for 2019) or a plan
# nobody can stand behind; the 30/7/1-day warnings would not start for decades.
MAX_NOTICE = timedelta(days=5 * 365 + 1)
MILESTONES = (30, 7, 1)  # days before switch-off
LEASE = timedelta(minutes=15)
STEPS = ("keys", "data", "compact", "certificate")
PURGE = "purge"  # after the certificate has reached the admins: not signed, so not one of STEPS
PURGE_GRACE = timedelta(hours=1)  # the purge waits at most this long for the certificate's delivery
# What the "data" step keeps for the admins only, so the certificate reaches them (the purge
# deletes the rest): each is handled by name in _step_data.
REACHING_ADMINS: frozenset[str] = frozenset(("practitioners", "chat_identities", "teams_conversations", "notices"))
WIPED_BODY = json.dumps({"text": "(removed at decommissioning)", "buttons": []})
# Notices the "data" step leaves deliverable: the admins' own news of retention and of this
# decommissioning (its dates and steps), whose text is counts, dates and staff ids only, never a
# child's or a person's details. Admins are told after each step, even one right before this one.
STILL_TOLD: frozenset[str] = frozenset(("decommission", "retention"))
NOT_SENT = "not sent: destroyed at decommissioning"  # last_error of a notice the data step drops

NoticeEnqueue = Callable[[AsyncSession, list[Notice], datetime], Awaitable[object]]


class ScheduleError(ValueError):
    """The request cannot be carried out; the message says why, kindly."""


class CompactionNotDone(Exception):
    """Destruction stopped before the certificate: the compact step could not be done (the role
    may not vacuum the tables, or a reader held an old snapshot). The steps before it stay done and
    the lease is released, so the next run (``signpost decommission destroy``, the scheduler's
    tick) carries on from compaction at once. The message is one line for the operator."""


# Why the compact step was not done, for the operator: who can do it, and when.
NOT_COMPACTED = (
    "Destruction stopped before the certificate: storage compaction was not done, so deleted records "
    "may still be recoverable from the database files. "
)
NOT_PERMITTED_TODO = (
    "The role in SIGNPOST_DATABASE_URL may not vacuum Signpost's tables (PostgreSQL lets only their owner, "
    "or from version 17 a role granted MAINTAIN): run `signpost decommission destroy` again as the owner role "
    "(the one that runs `signpost db upgrade`); it carries on from compaction."
)
PENDING_TODO = (
    "Another connection held the database open: close long-running readers (reports, backups, shells) and run "
    "`signpost decommission destroy` again; it carries on from compaction."
)


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    state: str
    switch_off: date
    destroy_by: date
    steps_done: tuple[str, ...]

    def describe(self, today: date, left: Sequence[str] = ()) -> str:
        """What admins are told; ``left``: key material still on this host (``key_material_left``)."""
        if self.state == "destroyed" and left:
            return (
                f"Signpost was switched off on {_d(self.switch_off)}; its personal data has been deleted, but "
                f"destruction is NOT finished: still on this host: {', '.join(left)}. The next decommission "
                "run destroys it, or now: `signpost decommission destroy`."
            )
        if self.state == "destroyed":
            # Only in its database: the backups taken before are said by ``left_behind``.
            destroyed = "all personal data has been destroyed in its database"
            return f"Signpost was switched off on {_d(self.switch_off)}; {destroyed}."
        if today >= self.switch_off:
            uncompacted = (
                "; storage is not compacted yet, so deleted records may still be recoverable from the database "
                "files until `signpost decommission destroy` completes"
                if "data" in self.steps_done and "compact" not in self.steps_done
                else ""
            )
            return (
                f"Signpost was switched off on {_d(self.switch_off)}. Personal data will be destroyed by "
                f"{_d(self.destroy_by)} (steps done: {', '.join(self.steps_done) or 'none yet'}{uncompacted})."
            )
        days = (self.switch_off - today).days
        return (
            f"Signpost is scheduled to be switched off on {_d(self.switch_off)} (in {days} day"
            f"{'s' if days != 1 else ''}); personal data destroyed by {_d(self.destroy_by)}."
        )


def _d(day: date) -> str:
    return day.strftime("%d/%m/%Y")


# -- schedule ----------------------------------------------------------------------------------


# Built once: every command asks it (the switch-off gate), and building it per call cost more than running it.
_LIVE = Decommission.live == "live"
_CURRENT = select(Decommission).where(_LIVE)


async def current(session: AsyncSession) -> Decommission | None:
    return (await session.execute(_CURRENT)).scalar_one_or_none()


# The live schedule's switch-off date (no row: none scheduled). Every command's gate asks it, with
# the asker's standing in one statement (``store.people.standing``).
SWITCH_OFF = select(Decommission.switch_off).where(_LIVE)


async def status(session: AsyncSession) -> Status | None:
    row = await current(session)
    if row is None:
        return None
    return Status(row.id, row.state, row.switch_off, row.destroy_by, tuple(s for s in row.steps_done.split(",") if s))


def is_switched_off(switch_off: date | None, today: date) -> bool:
    return switch_off is not None and today >= switch_off


class SwitchOffToday(ScheduleError):
    """Today's date without ``at_once``: each front end names its own way to confirm."""


SWITCH_OFF_TODAY = (
    "a switch-off today would take effect at once, and a switch-off cannot be cancelled once it has begun: "
    "choose tomorrow or later (admins are warned 30, 7 and 1 day before)"
)


async def schedule(
    session: AsyncSession,
    switch_off: date,
    destroy_by: date | None,
    by: str,
    now: datetime,
    *,
    at_once: bool = False,
) -> Decommission:
    """Schedule the switch-off (and the destruction, by default 60 days later). A switch-off today
    starts at once and for good: only with ``at_once``, an operator's explicit confirmation."""
    today = now.date()
    if switch_off < today:
        raise ScheduleError("the switch-off date is in the past")
    if switch_off == today and not at_once:
        raise SwitchOffToday(SWITCH_OFF_TODAY)
    if switch_off > today + MAX_NOTICE:
        raise ScheduleError("the switch-off date is more than 5 years away: schedule it nearer the time")
    # Only now: 60 days after a switch-off of 31/12/9999 is past the calendar (OverflowError).
    destroy_by = destroy_by or switch_off + timedelta(days=DEFAULT_DESTROY_DAYS)
    if not switch_off < destroy_by <= switch_off + timedelta(days=DEFAULT_DESTROY_DAYS):
        raise ScheduleError(
            f"the destroy-by date must be after the switch-off and at most {DEFAULT_DESTROY_DAYS} days later"
        )
    if await current(session) is not None:
        raise ScheduleError("a decommissioning is already scheduled: cancel it first (before its switch-off)")
    row = Decommission(
        live="live",
        switch_off=switch_off,
        destroy_by=destroy_by,
        state="scheduled",
        scheduled_at=now,
        scheduled_by=by,
        steps_done="",
        counts="{}",
    )
    session.add(row)
    await session.flush()
    if is_switched_off(switch_off, today):
        await close_undecidable(session, now)
    return row


# Notices that ask someone to decide (Approve / Deny) what nobody can once every command is answered
# "switched off". A relayed message is not among them: it carries its sender's purpose and how to
# reach them, which the lead may still act on outside Signpost.
ASK_FOR_DECISION = ("access_request", "registration_request")
UNDECIDABLE = "not sent: Signpost was switched off before it was delivered"


async def close_undecidable(session: AsyncSession, now: datetime) -> None:
    """Close unsent every notice still waiting (or waiting for a retry) that asks for a decision:
    from the switch-off nobody can approve or deny anything. Idempotent; read through the pending
    notices' index."""
    for kind in ASK_FOR_DECISION:  # claim-first: one being sent is recorded delivered if it went through
        await drop_decided(session, kind, "", now, UNDECIDABLE)


async def cancel(session: AsyncSession, by: str, now: datetime) -> Decommission:
    row = await current(session)
    if row is None:
        raise ScheduleError("no decommissioning is scheduled")
    if is_switched_off(row.switch_off, now.date()):
        raise ScheduleError("the service is already switched off; a switch-off cannot be cancelled")
    result = await session.execute(
        update(Decommission)
        .where(Decommission.id == row.id, Decommission.state == "scheduled")
        .values(live=None, state="cancelled", cancelled_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise ScheduleError("that decommissioning has already moved on and cannot be cancelled")
    return row


# -- notices -----------------------------------------------------------------------------------


def to_admins(ids: Iterable[str], schedule_id: int, what: str, text: str) -> list[Notice]:
    return [Notice(pid, "decommission", text, dedupe_key=f"decommission:{schedule_id}:{what}:{pid}") for pid in ids]


def scheduled_text(row: Decommission) -> str:
    """What admins are told when it is scheduled: a switch-off today ("at once") has already happened."""
    if row.switch_off <= row.scheduled_at.date():
        return (
            f"Signpost was switched off on {_d(row.switch_off)}, at once, by {row.scheduled_by}. It answers no "
            f"searches; all personal data will be destroyed by {_d(row.destroy_by)}."
        )
    return (
        f"Signpost is scheduled to be switched off on {_d(row.switch_off)}. From then it answers no "
        f"searches; all personal data will be destroyed by {_d(row.destroy_by)}. "
        f"Scheduled by {row.scheduled_by}."
    )


def due_milestone(row: Decommission, today: date) -> int | None:
    """The closest 30/7/1-day warning now due (those already past when it was scheduled never are)."""
    due = [
        n
        for n in MILESTONES
        if row.switch_off - timedelta(days=n) <= today < row.switch_off
        and row.switch_off - timedelta(days=n) > row.scheduled_at.date()
    ]
    return min(due) if due else None


async def timeline(session: AsyncSession, enqueue: NoticeEnqueue, now: datetime) -> Decommission | None:
    """Warnings and the switch-off notice that are due, and the switch-off itself (idempotent)."""
    row = await current(session)
    if row is None or row.state in ("destroyed", "cancelled"):
        return row
    today, notices, ids = now.date(), [], await holders(session, Role.ADMIN)
    milestone = due_milestone(row, today)
    if milestone is not None:
        # The days really left: a warning sent late (the scheduler was down on its day) says so.
        left = (row.switch_off - today).days
        plural = "s" if left != 1 else ""
        text = f"Signpost will be switched off in {left} day{plural}, on {_d(row.switch_off)}."
        notices += to_admins(ids, row.id, f"{milestone}d", text)
    if is_switched_off(row.switch_off, today):
        text = (
            f"Signpost has been switched off ({_d(row.switch_off)}): it answers no searches. All personal "
            f"data will be destroyed by {_d(row.destroy_by)}."
        )
        notices += to_admins(ids, row.id, "switched_off", text)
        await close_undecidable(session, now)
        await session.execute(
            update(Decommission)
            .where(Decommission.id == row.id, Decommission.state == "scheduled")
            .values(state="switched_off")
        )
    await enqueue(session, notices, now)
    return row


# -- destruction -------------------------------------------------------------------------------


AuditStep = Callable[[AsyncSession, str], Awaitable[None]]  # records an audit event in the step's transaction


async def claim(db: Database, schedule_id: int, now: datetime, audit: AuditStep | None = None) -> bool:
    """Take the destruction lease (after switch-off); False when another process holds it.

    ``audit`` is awaited in the claiming transaction with the steps an earlier attempt finished
    (comma-separated, empty for none): the claim and its audit event are durable together or not at all."""
    async with db.write() as session:
        result = await session.execute(
            update(Decommission)
            .where(
                Decommission.id == schedule_id,
                Decommission.switch_off <= now.date(),
                or_(
                    Decommission.state.in_(("scheduled", "switched_off")),
                    # No lease: a run that stopped released it (``_release``).
                    (Decommission.state == "destroying")
                    & or_(Decommission.lease_until.is_(None), Decommission.lease_until < now),
                ),
            )
            .values(state="destroying", lease_until=now + LEASE)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        if audit is not None:
            done = (
                await session.execute(select(Decommission.steps_done).where(Decommission.id == schedule_id))
            ).scalar_one()
            await audit(session, done)
        return True


async def run_destruction(
    db: Database,
    keys: KeyRing,
    signer: Signer,
    enqueue: NoticeEnqueue,
    schedule_id: int,
    now: datetime,
    audit_done: AuditStep | None = None,
) -> dict[str, Any]:
    """Run the destruction steps not yet done (the caller holds the ``claim``); returns the certificate.

    Each step is recorded, and its notice queued, only once its effect is durable (in the
    transaction that deletes its rows; for the keys step, the one after the key file's wipe): a run
    killed part way redoes the step whole (the key file's wipe too), and never tells the admins of
    a step not done. The certificate is signed last; then
    the signing seed is destroyed too (its public key stays, so the audit chain and the certificate
    remain verifiable), and only then is the destruction recorded complete (``finish_certified``).
    ``audit_done`` is awaited in the transaction that signs the certificate, before its audit
    summary is taken: the certificate's final chain head covers the event that says it is done."""
    async with db.read() as session:
        row = await session.get(Decommission, schedule_id)
        assert row is not None
        done = set(row.steps_done.split(","))
    if "keys" in done:
        _wipe_key_file(keys)  # idempotent: a run before this order recorded the step before its wipe
    step = Step(db, keys, signer, enqueue, schedule_id, now, audit_done)
    for number, name in enumerate(STEPS, start=1):
        if name not in done:
            await _STEP_FUNCTIONS[name](step, number)
    async with db.read() as session:
        row = await session.get(Decommission, schedule_id)
        assert row is not None and row.certificate is not None
        cert: dict[str, Any] = json.loads(row.certificate)
    await purge_if_due(db, schedule_id, now)  # at once when there is no admin to tell
    return cert


@dataclass(frozen=True, slots=True)
class Step:
    """What every destruction step works with."""

    db: Database
    keys: KeyRing
    signer: Signer
    enqueue: NoticeEnqueue
    schedule_id: int
    now: datetime
    audit_done: AuditStep | None = None


# -- key material ------------------------------------------------------------------------------


def key_material_left(keys: KeyRing, signer: Signer) -> list[str]:
    """What secret key material is still on this host, as the files say (not this process's memory):
    the key file's KEKs, chain states, index key or signing seed, a signing key file's seed, and a
    copy a write cut short left beside either file (``<file>.tmp``). Empty once all is destroyed."""
    left: list[str] = []
    if keys.path is not None:
        disk = KeyRing.load(keys.path)
        if any(not k.startswith("~") for k in disk.keks) or disk.current_kek_id:
            left.append("key-encryption keys (key file)")
        if any(k.startswith("~") for k in disk.keks):
            left.append("birth-date and month key chains (key file)")
        if disk.index_key:
            left.append("blind-index key (key file)")
        if disk.signing_seed:
            left.append("signing seed (key file)")
        left += [f"leftover copy {p.name}" for p in copies_left(keys.path)]
    elif keys.keks or keys.index_key or keys.signing_seed:
        left.append("keys held in memory")
    if signer.path is not None:
        if signer.seed_on_disk():
            left.append("signing seed (signing key file)")
        left += [f"leftover copy {p.name}" for p in copies_left(signer.path)]
    return left


def destroy_key_material(keys: KeyRing, signer: Signer) -> None:
    """Every secret in the key file and the signing key file destroyed, and the copies a write cut
    short left beside them (idempotent): under the key file's lock, which also guards the signing
    key file's writes (``Signer``), and which removes the key file's own leftovers first."""
    with keychain.editing(keys) as fresh:
        fresh.keks.clear()
        fresh.current_kek_id = ""
        fresh.index_key = b""
        fresh.signing_seed = b""
        signer.destroy()  # a signing key file of its own: its seed goes, its public key stays
        if signer.path is not None:
            remove_leftovers(signer.path)
    keys.keks.clear()
    keys.term_keys = TermKeys.none()


def _certificate_notices(schedule_id: int) -> Any:
    return NoticeRow.dedupe_key.like(f"decommission:{schedule_id}:step:certificate:%")


async def purge_if_due(db: Database, schedule_id: int, now: datetime) -> dict[str, int] | None:
    """The last deletion: every row left in a child or person table (the admins' rows, chat links,
    Teams conversations, the notices), once every admin's certificate notice has been delivered (or
    dropped: it will never go) or ``PURGE_GRACE`` after completion. Returns the counts, or None when
    not (or no longer) due."""
    async with db.write() as session:
        row = await session.get(Decommission, schedule_id)
        if row is None or row.state != "destroyed" or PURGE in row.steps_done.split(","):
            return None
        undelivered = (
            await session.execute(
                select(func.count())
                .select_from(NoticeRow)
                # A notice dropped (its admin has no way to be reached, or left) will never go: it is
                # not waited for, as one still to be delivered is.
                .where(
                    and_(
                        _certificate_notices(schedule_id),
                        NoticeRow.delivered_at.is_(None),
                        NoticeRow.dropped_at.is_(None),
                    )
                )
            )
        ).scalar_one()
        completed = row.completed_at and row.completed_at.replace(tzinfo=row.completed_at.tzinfo or UTC)
        if undelivered and (completed is None or now < completed + PURGE_GRACE):
            return None
        claimed = await session.execute(
            update(Decommission)
            .where(Decommission.id == schedule_id, Decommission.steps_done == row.steps_done)
            .values(steps_done=f"{row.steps_done},{PURGE}")
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None  # another replica purged
        counts = {table.name: _n(await session.execute(delete(table))) for table in personal_tables()}
    log.info("decommission_purge", undelivered=undelivered, **counts)
    # Best effort, never claimed done: the purge deletes only what the data step kept to reach the
    # admins (blanked rows, chat links, wiped notices). A compaction not done here is logged with why.
    result = await _compact(db)
    if not result.done:
        log.warning("decommission_purge_compaction_pending", compaction=result.detail)
    return counts


async def _record_step(
    session: AsyncSession,
    step: Step,
    name: str,
    number: int,
    counts: dict[str, int],
    told: dict[str, int] | None = None,
) -> None:
    """Record a step done and queue its notice, in the transaction that made its effect durable or
    after it (``told``: the counts the notice gives, when more than those added here). Logged once
    that transaction commits: a run killed or failing before then did not do the step."""
    row = await session.get(Decommission, step.schedule_id)
    assert row is not None
    merged = json.loads(row.counts)
    for table, n in counts.items():  # a table emptied by two steps counts the rows of both
        merged[table] = merged.get(table, 0) + n
    row.counts = json.dumps(merged, sort_keys=True)
    row.steps_done = ",".join(s for s in STEPS if s in {*row.steps_done.split(","), name})
    row.lease_until = step.now + LEASE
    if name == "certificate":
        row.state, row.completed_at = "destroyed", step.now
    backups = await backups_taken(session) if name == "certificate" else []
    text = _step_text(name, number, told if told is not None else counts, row, step.db.dialect, backups)
    admins = await holders(session, Role.ADMIN)
    await step.enqueue(session, to_admins(admins, step.schedule_id, f"step:{name}", text), step.now)
    logged = dict(counts)
    after_commit(session, lambda: log.info("decommission_step", step=name, **logged))


def _step_text(
    step: str, number: int, counts: dict[str, int], row: Decommission, dialect: str, backups: Sequence[BackupTaken]
) -> str:
    if step == "certificate" and row.certificate:
        return completion_text(json.loads(row.certificate), dialect, backups)
    listed = ", ".join(f"{table}: {n}" for table, n in sorted(counts.items()))
    label = {"keys": "keys destroyed", "data": "personal data deleted", "compact": "storage compacted"}[step]
    return f"Decommissioning step {number} of {len(STEPS)} done: {label} ({listed or 'nothing left'})."


KEY_COUNTS = ("key_encryption_keys", "key_chains")  # counted from the key file, before its wipe


async def _step_keys(step: Step, number: int) -> None:
    """The store forgets every wrapped key (committed), then the key file's KEKs, chains and index
    key are wiped (fsync), then the step is recorded and its notice queued: in that order, so that a
    key file is never emptied while the store still holds keys only it opened (such a store refuses
    every key file: store/keys/binding.py), and no admin is told of keys still on disk. Killed
    between any two, the key file left opens nothing in the store, and a rerun deletes what is left
    (nothing), wipes the key file again and records the step with what the first run counted."""
    await _count_keks(step)
    await _forget_wrapped_keys(step)
    _wipe_key_file(step.keys)
    async with step.db.write() as session:
        row = await session.get(Decommission, step.schedule_id)
        assert row is not None
        held = json.loads(row.counts)
        told = {k: held.get(k, 0) for k in (*KEY_COUNTS, *(table.name for table, _, _ in wrapped_key_tables()))}
        await _record_step(session, step, "keys", number, {}, told)


async def _forget_wrapped_keys(step: Step) -> None:
    """Every wrapped key deleted, and counted with the schedule, in one transaction (a rerun adds
    the none it finds to what an earlier run deleted)."""
    async with step.db.write() as session:
        deleted = {table.name: _n(await session.execute(delete(table))) for table, _, _ in wrapped_key_tables()}
        row = await session.get(Decommission, step.schedule_id)
        assert row is not None
        counts = json.loads(row.counts)
        for table, n in deleted.items():
            counts[table] = counts.get(table, 0) + n
        row.counts = json.dumps(counts, sort_keys=True)
        row.lease_until = step.now + LEASE
    log.info("decommission_wrapped_keys_deleted", **deleted)


async def _count_keks(step: Step) -> None:
    """The KEKs and chain states the key file holds, kept with the schedule while it still holds
    them (a run killed after the wipe counts them from here, not from an emptied file)."""
    stored = _stored_keks(step.keys)
    if not stored:
        return
    async with step.db.write() as session:
        row = await session.get(Decommission, step.schedule_id)
        assert row is not None
        counts = json.loads(row.counts)
        counts["key_encryption_keys"] = sum(1 for k in stored if not k.startswith("~"))
        counts["key_chains"] = sum(1 for k in stored if k.startswith("~"))
        row.counts = json.dumps(counts, sort_keys=True)


def _stored_keks(keys: KeyRing) -> list[str]:
    if keys.path is None:
        return [k for k in keys.keks if not keychain.is_derived(k)]
    return [k for k in KeyRing.load(keys.path).keks if not keychain.is_derived(k)]


def _wipe_key_file(keys: KeyRing) -> None:
    """Every KEK, chain state and the index key gone from the key file (and from this process);
    the signing seed stays, to sign the certificate."""
    with keychain.editing(keys) as fresh:
        fresh.keks.clear()
        fresh.current_kek_id = ""
        fresh.index_key = b""
    keys.keks.clear()
    keys.term_keys = TermKeys.none()
    keychain.forget(keys)


def personal_tables() -> list[Table]:
    """Every table of children's or people's data, in an order that deletes dependents first."""
    return tables_holding(Personal.CHILD, Personal.PERSON)


def _n(result: Any) -> int:
    return int(result.rowcount)


async def _step_data(step: Step, number: int) -> None:
    """Deleted and recorded in one transaction: a rerun never finds the rows gone and counts none."""
    counts: dict[str, int] = {}
    now = step.now
    async with step.db.write() as session:
        # Children whose identity this destroys (those retention destroyed before leave a reference
        # only: its row goes too, but is not counted again).
        living = select(func.count()).select_from(Child).where(Child.state != "destroyed")
        identities = (await session.execute(living)).scalar_one()
        for table in personal_tables():
            if table.name not in REACHING_ADMINS:
                counts[table.name] = _n(await session.execute(delete(table)))
        counts["children"] = identities
        # Until the purge, admins keep an active row (no name or contact details), their chat links
        # and Teams conversations, so that the certificate reaches them and they can read it.
        ids = list(await holders(session, Role.ADMIN))
        counts["chat_identities"] = _n(
            await session.execute(delete(ChatIdentity).where(ChatIdentity.practitioner_id.not_in(ids)))
        )
        admins_on_teams = exists().where(
            ChatIdentity.platform == "teams",
            ChatIdentity.tenant == TeamsConversation.tenant,
            ChatIdentity.user_id == TeamsConversation.user_id,
        )
        counts["teams_conversations"] = _n(await session.execute(delete(TeamsConversation).where(~admins_on_teams)))
        deleted = _n(await session.execute(delete(Practitioner).where(Practitioner.id.not_in(ids))))
        blanked = _n(
            await session.execute(
                update(Practitioner)
                .where(Practitioner.email != "")
                .values(given_name="", family_name="", phone="", email="", updated_at=now)
            )
        )
        counts["practitioners"] = deleted + blanked
        # An authority only children named may be a child's name (a children row out of line).
        await session.execute(delete(LocalAuthority).where(~retention.named_by_anyone()))
        counts["notices"] = await _close_notices(session, ids, now)
        await _record_step(session, step, "data", number, counts)


async def _close_notices(session: AsyncSession, admins: list[str], now: datetime) -> int:
    """Blank every notice's text, which may be personal (a lead's notice, an access request), and
    drop those not sent, saying why: never marked delivered, as nobody was told. Only the admins'
    own news (``STILL_TOLD``) stays as it is, to be delivered; the purge deletes every notice."""
    still_told = and_(NoticeRow.kind.in_(STILL_TOLD), NoticeRow.recipient_id.in_(admins))
    pending = and_(NoticeRow.delivered_at.is_(None), NoticeRow.dropped_at.is_(None))
    # Logged and counted as every notice closed unsent is, once the step commits (ids and kinds only).
    dropped = await drops.close(
        session, not_(still_told), now, NOT_SENT, attempted=False, body=WIPED_BODY, account=None
    )
    closed = await session.execute(
        update(NoticeRow).where(not_(pending), NoticeRow.body != WIPED_BODY).values(body=WIPED_BODY, account=None)
    )
    return len(dropped) + _n(closed)


async def _step_compact(step: Step, number: int) -> None:
    """Recorded only once compaction is done: the certificate must not claim what did not happen."""
    result = await _compact(step.db)
    if not result.done:
        log.warning("decommission_compaction_not_done", compaction=result.detail)
        await _release(step)
        todo = NOT_PERMITTED_TODO if result.why == COMPACTION_NOT_PERMITTED else PENDING_TODO
        raise CompactionNotDone(NOT_COMPACTED + todo)
    async with step.db.write() as session:
        await _record_step(session, step, "compact", number, {})


async def _compact(db: Database) -> Compaction:
    """VACUUM FULL (SQLite: VACUUM) of every table ``_step_data`` deleted from, and whether it was done."""
    tables = [t.name for t in (*personal_tables(), *feed_text_tables())]
    return await compact_checked(db, tables, full=True, wait=retention.COMPACTION_WAIT)


async def _release(step: Step) -> None:
    """Give up the lease of a run that stopped, so the next one need not wait ``LEASE`` for it."""
    async with step.db.write() as session:
        await session.execute(
            update(Decommission)
            .where(Decommission.id == step.schedule_id, Decommission.state == "destroying")
            .values(lease_until=None)
        )


async def _step_certificate(step: Step, number: int) -> None:
    """Sign and store the certificate (once: a rerun finds it stored), then ``finish_certified``."""
    async with step.db.write() as session:
        row = await session.get(Decommission, step.schedule_id)
        assert row is not None
        if row.certificate is None:
            await _sign_certificate(session, step, row)
    await finish_certified(step.db, step.keys, step.signer, step.enqueue, step.schedule_id, step.now)


async def _sign_certificate(session: AsyncSession, step: Step, row: Decommission) -> None:
    if step.audit_done is not None:  # first, so that the summary's final chain head covers it
        await step.audit_done(session, row.steps_done)
    audit = await audit_summary(session)
    body = {
        "service": "signpost",
        "decommission_id": row.id,
        "switch_off": row.switch_off.isoformat(),
        "destroy_by": row.destroy_by.isoformat(),
        "completed_at": step.now.isoformat(),
        "destroyed": json.loads(row.counts),
        # Emptied by the purge once this certificate has reached the admins (or PURGE_GRACE later).
        "purged_after_delivery": sorted(t.name for t in personal_tables()),
        "audit": audit,
        # Informative only: verify against the key published beforehand, never this copy.
        "public_key": base64.b64encode(step.signer.public).decode(),
    }
    signature = step.signer.sign(canonical(body))
    row.certificate = json.dumps(
        {"certificate": body, "signature": base64.b64encode(signature).decode()}, sort_keys=True
    )


async def finish_certified(
    db: Database,
    keys: KeyRing,
    signer: Signer,
    enqueue: NoticeEnqueue,
    schedule_id: int,
    now: datetime,
    audit: AuditStep | None = None,
) -> list[str] | None:
    """Once the certificate is signed: destroy every key material still here, then record the
    destruction complete and send the certificate (once, whoever gets here first). Safe to run
    from any process at any time, without the lease: nothing is left to sign. Returns what key
    material was still here (empty: none), or None when there is no certificate yet.

    ``audit`` (a run finishing one cut short) records its event, given what was left (comma
    separated, empty: none), in the transaction that records the destruction complete (in one of
    its own when that was recorded before and key material was still left): a kill never leaves
    the finish recorded and unaudited. Key material destroyed just before a kill, with nothing
    recorded yet, is audited by the next run as "nothing was left to destroy": the files were
    already gone. Not called when there was nothing to do."""
    async with db.read() as session:
        row = await session.get(Decommission, schedule_id)
        if row is None or row.certificate is None:
            return None
        state = row.state
    if state == "destroyed" and not key_material_left(keys, signer):
        _forget(keys, signer)  # another process destroyed the files: this one keeps no copy in memory
        return []
    # One finisher at a time, from what is left to what it records: the row is held (PostgreSQL's
    # row lock; SQLite's one writer) while this one looks for key material, destroys it, records the
    # destruction complete and audits, so a second finisher (a server's tick beside the command) finds
    # it all done and audits nothing. Looked for before the row was held, the two could each audit:
    # one "nothing was left" having recorded it, the other what it had destroyed.
    async with db.write() as session:
        row = await session.get(Decommission, schedule_id, with_for_update=True)
        assert row is not None
        left = key_material_left(keys, signer)
        if left:
            destroy_key_material(keys, signer)
        else:
            _forget(keys, signer)
        if row.state != "destroyed":
            step = Step(db, keys, signer, enqueue, schedule_id, now)
            await _record_step(session, step, "certificate", len(STEPS), {})
            if audit is not None:
                await audit(session, ", ".join(left))
        elif left and audit is not None:  # recorded before (a run killed after it): what this one destroyed
            await audit(session, ", ".join(left))
    return left


def _forget(keys: KeyRing, signer: Signer) -> None:
    """Drop this process's copies of the destroyed secrets (the public key stays)."""
    keys.keks.clear()
    keys.current_kek_id = ""
    keys.index_key = b""
    keys.signing_seed = b""
    keys.term_keys = TermKeys.none()
    keychain.forget(keys)
    signer.destroy()


_STEP_FUNCTIONS: dict[str, Callable[[Step, int], Awaitable[None]]] = {
    "keys": _step_keys,
    "data": _step_data,
    "compact": _step_compact,
    "certificate": _step_certificate,
}


# -- certificate -------------------------------------------------------------------------------


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def verify(document: dict[str, Any], public_key: bytes) -> bool:
    """Whether the certificate's Ed25519 signature holds under ``public_key``: the key published
    before (``signpost audit checkpoint --public-key``), never the one the certificate carries, which
    anyone forging a certificate would simply replace with their own."""
    try:
        body = document["certificate"]
        signature = base64.b64decode(document["signature"], validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, canonical(body))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
    return True


# What destruction cannot reach on a PostgreSQL server (found by a forensic review): the server
# recycles its write-ahead log segments without wiping them, and the disk blocks of the files a
# VACUUM FULL replaced are freed, not zeroed. Said wherever completion is (``left_behind``: in
# ``completion_text`` and ``flows.status_text``, beside the backups taken before); SQLite's WAL is
# truncated and its freed pages zeroed (``secure_delete``).
LEFT_ON_POSTGRESQL = (
    "On PostgreSQL this is not yet the end: the server's own write-ahead log (pg_wal) and the disk blocks its "
    "rewritten tables freed still hold deleted rows, practitioners' names, phones and emails among them, "
    "until they happen to be overwritten (as do any WAL archive, base backup or replica): to finish, drop "
    "the database and destroy the server's data volume (or the whole cluster), now that the certificate is issued."
)


def left_on_server(dialect: str) -> str:
    """What only the database server's operator can still destroy, in words ("" on SQLite)."""
    return LEFT_ON_POSTGRESQL if dialect == "postgresql" else ""


@dataclass(frozen=True, slots=True)
class BackupTaken:
    """A backup the audit log records written: its file name (the audit keeps no folder) and when."""

    name: str
    at: datetime


# The audit detail of a backup written: "FILE: N bytes", or "FILE: N bytes: …" recorded late (the
# name runs to the last such count: a file name may hold ": 5 bytes" itself).
_BACKUP_DETAIL = re.compile(r"(?P<name>.+): \d+ bytes(?:, sha256 (?P<sha256>[0-9a-f]+))?(?:: [^:]*)?", re.DOTALL)
# A backup's label (``handlers.operator.lifecycle.backup_label``): what its events say in place of
# the file's name since the audit stopped keeping names typed at the terminal (older events: a name).
_BACKUP_LABEL = re.compile(r"backup [0-9a-f]{12}")
BACKUPS_NAMED = 10  # the latest this many by name; the rest counted, with how to list them


def backup_name(detail: str) -> str:
    """How a backup's audit detail names it: its label and SHA-256 (``sha256sum`` finds the file),
    or, in events written before labels, the file name. The audit keeps 200 characters of a detail,
    so a long name's count may be cut off: the detail is then the name's start, shown cut ("…")."""
    named = _BACKUP_DETAIL.fullmatch(detail)
    if named is None:
        return f"{detail}…"
    return f"{named['name']} (sha256 {named['sha256']})" if named["sha256"] else named["name"]


def partial_name(detail: str) -> str:
    """The partial copy a backup killed part-way may have left, by what its ``started`` said."""
    if _BACKUP_LABEL.fullmatch(detail):
        return f"a partial copy (*{PARTIAL}) by {detail}"
    return f"{detail}{PARTIAL}"


async def backups_taken(session: AsyncSession) -> list[BackupTaken]:
    """Every `signpost backup` the audit log records written, oldest first (each one counted,
    whatever its detail holds: a backup left unnamed would go undeleted), and every one it records
    started and never ended (killed: a failure removes its copy), by the partial copy it may have
    left (``FILE.signpost-partial``, practitioners in clear in it, removed only by a later backup
    into its folder)."""
    rows = (
        await session.execute(
            select(AuditEvent.at, AuditEvent.detail, AuditEvent.outcome, AuditEvent.correlation_id)
            .where(
                AuditEvent.action == Action.BACKUP.value,
                AuditEvent.outcome.in_([Outcome.DONE.value, Outcome.STARTED.value, Outcome.FAILED.value]),
            )
            .order_by(AuditEvent.seq)
        )
    ).all()
    # A run that recorded its own end, done or failed, left no partial copy (a failure removes it);
    # one killed before its end may have: the next run to its name records it failed, cut short,
    # under the dead run's own correlation id (``CUT_SHORT``), which still names that copy.
    ended = {
        run
        for _, detail, outcome, run in rows
        if outcome == Outcome.DONE.value or (outcome == Outcome.FAILED.value and CUT_SHORT not in (detail or ""))
    }
    return [
        BackupTaken(backup_name(detail or "") if outcome == Outcome.DONE.value else partial_name(detail or ""), at)
        for at, detail, outcome, run in rows
        if outcome == Outcome.DONE.value or (outcome == Outcome.STARTED.value and run not in ended)
    ]


def left_in_backups(backups: Sequence[BackupTaken]) -> str:
    """What destruction cannot reach in the backups taken before it, in words: practitioners are
    stored in clear, and so are the involvements (a child's reference beside its practitioner)."""
    held = (
        "still holds practitioners' names and contact details (phones, e-mails) and who works with which "
        "child reference, in clear (destroying the keys does not reach them)"
    )
    if not backups:
        return (
            f"No `signpost backup` is recorded in the audit log; any other copy of the database taken before "
            f"destruction {held}, and must be deleted."
        )
    shown = ", ".join(f"{b.name} ({_d(b.at.date())})" for b in backups[-BACKUPS_NAMED:])
    earlier = len(backups) - BACKUPS_NAMED
    more = (
        f" and {earlier:,} earlier (`signpost audit export` lists each: action backup, outcome done)"
        if earlier > 0
        else ""
    )
    return (
        f"Every backup taken before destruction {held}, and must be deleted wherever it is kept; the audit "
        f"log records {len(backups):,} (by label and SHA-256, as `signpost backup` printed them, older ones by "
        f"file name; it keeps no folder): {shown}{more}."
    )


def left_behind(dialect: str, backups: Sequence[BackupTaken]) -> str:
    """What destruction leaves for the operator to destroy: backups, and the server's own files."""
    return " ".join(filter(None, (left_in_backups(backups), left_on_server(dialect))))


def completion_text(document: dict[str, Any], dialect: str, backups: Sequence[BackupTaken]) -> str:
    """The certificate in words, then what is left behind (``left_behind``)."""
    return " ".join(filter(None, (certificate_text(document), left_behind(dialect, backups))))


async def completion_said(session: AsyncSession, document: dict[str, Any], dialect: str) -> str:
    """``completion_text`` with the backups the audit log records."""
    return completion_text(document, dialect, await backups_taken(session))


def certificate_text(document: dict[str, Any]) -> str:
    body = document["certificate"]
    counts = ", ".join(f"{table}: {n}" for table, n in sorted(body["destroyed"].items()))
    audit = body["audit"]
    return (
        f"Signpost decommissioning complete at {body['completed_at']}. Destroyed — {counts}. Audit: "
        f"{audit['events']} events, last seq {audit['last_seq']}, rows SHA-256 {audit['rows_sha256']}, "
        f"chain head {audit['chain_head']} (size {audit['chain_size']}). "
        f"Signed (Ed25519) with public key {body['public_key']}; signature {document['signature']}."
    )


async def audit_summary(session: AsyncSession) -> dict[str, Any]:
    """The audit log's end state: count, last sequence number, a SHA-256 over every row in order,
    and the tamper-evident chain's head and size (what ``signpost audit verify`` prints)."""
    digest = hashlib.sha256()
    last, events = 0, 0
    columns = [c for c in AuditEvent.__table__.columns]
    while True:
        rows = (
            await session.execute(select(*columns).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(5000))
        ).all()
        if not rows:
            break
        for row in rows:
            digest.update(json.dumps([_plain(v) for v in row], separators=(",", ":")).encode() + b"\n")
        events += len(rows)
        last = rows[-1].seq
    head = await current_head(session)
    return {
        "events": events,
        "last_seq": last,
        "rows_sha256": digest.hexdigest(),
        "chain_head": head.head_hash.hex(),
        "chain_size": head.size,
    }


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value
