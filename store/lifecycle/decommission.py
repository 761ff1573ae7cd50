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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Table, and_, delete, exists, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Notice, Role
from store.audit.chain import current_head
from store.audit.signing import Signer
from store.db import Database
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.keys.term_keys import TermKeys
from store.lifecycle.retention import compact
from store.people.practitioners import holders
from store.tables import Personal, tables_holding, wrapped_key_tables
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from store.tables.lifecycle import Decommission
from store.tables.people import ChatIdentity, Practitioner, TeamsConversation
from store.tables.register import Child

log = structlog.get_logger("signpost.decommission")
DEFAULT_DESTROY_DAYS = 60
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


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    state: str
    switch_off: date
    destroy_by: date
    steps_done: tuple[str, ...]

    def describe(self, today: date) -> str:
        if self.state == "destroyed":
            return f"Signpost was switched off on {_d(self.switch_off)}; all personal data has been destroyed."
        if today >= self.switch_off:
            return (
                f"Signpost was switched off on {_d(self.switch_off)}. Personal data will be destroyed by "
                f"{_d(self.destroy_by)} (steps done: {', '.join(self.steps_done) or 'none yet'})."
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


async def schedule(
    session: AsyncSession, switch_off: date, destroy_by: date | None, by: str, now: datetime
) -> Decommission:
    """Schedule the switch-off (and the destruction, by default 60 days later)."""
    today = now.date()
    destroy_by = destroy_by or switch_off + timedelta(days=DEFAULT_DESTROY_DAYS)
    if switch_off < today:
        raise ScheduleError("the switch-off date is in the past")
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
    return row


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
        plural = "s" if milestone != 1 else ""
        text = f"Signpost will be switched off in {milestone} day{plural}, on {_d(row.switch_off)}."
        notices += to_admins(ids, row.id, f"{milestone}d", text)
    if is_switched_off(row.switch_off, today):
        text = (
            f"Signpost has been switched off ({_d(row.switch_off)}): it answers no searches. All personal "
            f"data will be destroyed by {_d(row.destroy_by)}."
        )
        notices += to_admins(ids, row.id, "switched_off", text)
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
                    (Decommission.state == "destroying") & (Decommission.lease_until < now),
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

    The certificate is signed last; then the signing seed is destroyed too (its public key stays,
    so the audit chain and the certificate remain verifiable). ``audit_done`` is awaited in the
    transaction that signs the certificate, before its audit summary is taken: the certificate's
    final chain head covers the event that says destruction is done."""
    async with db.read() as session:
        row = await session.get(Decommission, schedule_id)
        assert row is not None
        done = set(row.steps_done.split(","))
    if "keys" in done:
        _wipe_key_file(keys, keep_signing=True)  # idempotent: a crash may have come between the two
    for number, step in enumerate(STEPS, start=1):
        if step in done:
            continue
        if step == "certificate":
            counts = await _step_certificate(db, keys, signer, schedule_id, now, audit_done)
        else:
            counts = await _STEP_FUNCTIONS[step](db, keys, signer, schedule_id, now)
        await _finish_step(db, enqueue, schedule_id, step, number, counts, now)
        if step == "keys":
            _wipe_key_file(keys, keep_signing=True)
    _wipe_key_file(keys, keep_signing=False)  # the certificate is signed: the signing seed goes too
    signer.destroy()  # and from a signing key file of its own
    async with db.read() as session:
        row = await session.get(Decommission, schedule_id)
        assert row is not None and row.certificate is not None
        cert: dict[str, Any] = json.loads(row.certificate)
    await purge_if_due(db, schedule_id, now)  # at once when there is no admin to tell
    return cert


def _certificate_notices(schedule_id: int) -> Any:
    return NoticeRow.dedupe_key.like(f"decommission:{schedule_id}:step:certificate:%")


async def purge_if_due(db: Database, schedule_id: int, now: datetime) -> dict[str, int] | None:
    """The last deletion: every row left in a child or person table (the admins' rows, chat links,
    Teams conversations, the notices), once every admin's certificate notice has been delivered or
    ``PURGE_GRACE`` after completion. Returns the counts, or None when not (or no longer) due."""
    async with db.write() as session:
        row = await session.get(Decommission, schedule_id)
        if row is None or row.state != "destroyed" or PURGE in row.steps_done.split(","):
            return None
        undelivered = (
            await session.execute(
                select(func.count())
                .select_from(NoticeRow)
                .where(and_(_certificate_notices(schedule_id), NoticeRow.delivered_at.is_(None)))
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
    await compact(db, [t.name for t in personal_tables()], full=True)
    log.info("decommission_purge", undelivered=undelivered, **counts)
    return counts


async def _finish_step(
    db: Database,
    enqueue: NoticeEnqueue,
    schedule_id: int,
    step: str,
    number: int,
    counts: dict[str, int],
    now: datetime,
) -> None:
    async with db.write() as session:
        row = await session.get(Decommission, schedule_id)
        assert row is not None
        merged = json.loads(row.counts)
        for table, n in counts.items():  # a table emptied by two steps counts the rows of both
            merged[table] = merged.get(table, 0) + n
        row.counts = json.dumps(merged, sort_keys=True)
        row.steps_done = ",".join(s for s in STEPS if s in {*row.steps_done.split(","), step})
        row.lease_until = now + LEASE
        if step == "certificate":
            row.state, row.completed_at = "destroyed", now
        text = _step_text(step, number, counts, row)
        await enqueue(session, to_admins(await holders(session, Role.ADMIN), schedule_id, f"step:{step}", text), now)
    log.info("decommission_step", step=step, **counts)


def _step_text(step: str, number: int, counts: dict[str, int], row: Decommission) -> str:
    if step == "certificate" and row.certificate:
        return certificate_text(json.loads(row.certificate))
    listed = ", ".join(f"{table}: {n}" for table, n in sorted(counts.items()))
    label = {"keys": "keys destroyed", "data": "personal data deleted", "compact": "storage compacted"}[step]
    return f"Decommissioning step {number} of {len(STEPS)} done: {label} ({listed or 'nothing left'})."


async def _step_keys(db: Database, keys: KeyRing, signer: Signer, schedule_id: int, now: datetime) -> dict[str, int]:
    counts = {
        "key_encryption_keys": sum(1 for k in _stored_keks(keys) if not k.startswith("~")),
        "key_chains": sum(1 for k in _stored_keks(keys) if k.startswith("~")),
    }
    async with db.write() as session:
        for table, _, _ in wrapped_key_tables():
            counts[table.name] = int((await session.execute(delete(table))).rowcount)  # type: ignore[attr-defined]
    return counts


def _stored_keks(keys: KeyRing) -> list[str]:
    keychain.reload(keys)
    return [k for k in keys.keks if not keychain.is_derived(k)]


def _wipe_key_file(keys: KeyRing, *, keep_signing: bool) -> None:
    """Every KEK, chain state and the index key gone from the key file (and from this process)."""
    with keychain.editing(keys) as fresh:
        fresh.keks.clear()
        fresh.current_kek_id = ""
        fresh.index_key = b""
        if not keep_signing:
            fresh.signing_seed = b""
    keys.keks.clear()
    keys.term_keys = TermKeys.none()


def personal_tables() -> list[Table]:
    """Every table of children's or people's data, in an order that deletes dependents first."""
    return tables_holding(Personal.CHILD, Personal.PERSON)


def _n(result: Any) -> int:
    return int(result.rowcount)


async def _step_data(db: Database, keys: KeyRing, signer: Signer, schedule_id: int, now: datetime) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with db.write() as session:
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
        counts["notices"] = await _close_notices(session, ids, now)
    return counts


async def _close_notices(session: AsyncSession, admins: list[str], now: datetime) -> int:
    """Blank every notice's text, which may be personal (a lead's notice, an access request), and
    drop those not sent, saying why: never marked delivered, as nobody was told. Only the admins'
    own news (``STILL_TOLD``) stays as it is, to be delivered; the purge deletes every notice."""
    still_told = and_(NoticeRow.kind.in_(STILL_TOLD), NoticeRow.recipient_id.in_(admins))
    pending = and_(NoticeRow.delivered_at.is_(None), NoticeRow.dropped_at.is_(None))
    dropped = await session.execute(
        update(NoticeRow)
        .where(pending, not_(still_told))
        .values(body=WIPED_BODY, account=None, dropped_at=now, last_error=NOT_SENT)
    )
    closed = await session.execute(
        update(NoticeRow).where(not_(pending), NoticeRow.body != WIPED_BODY).values(body=WIPED_BODY, account=None)
    )
    return _n(dropped) + _n(closed)


async def _step_compact(db: Database, keys: KeyRing, signer: Signer, schedule_id: int, now: datetime) -> dict[str, int]:
    await compact(db, [t.name for t in personal_tables()], full=True)
    return {}


async def _step_certificate(
    db: Database, keys: KeyRing, signer: Signer, schedule_id: int, now: datetime, audit_done: AuditStep | None = None
) -> dict[str, int]:
    async with db.write() as session:
        row = await session.get(Decommission, schedule_id)
        assert row is not None
        if audit_done is not None:  # first, so that the summary's final chain head covers it
            await audit_done(session, row.steps_done)
        audit = await audit_summary(session)
        body = {
            "service": "signpost",
            "decommission_id": row.id,
            "switch_off": row.switch_off.isoformat(),
            "destroy_by": row.destroy_by.isoformat(),
            "completed_at": now.isoformat(),
            "destroyed": json.loads(row.counts),
            # Emptied by the purge once this certificate has reached the admins (or PURGE_GRACE later).
            "purged_after_delivery": sorted(t.name for t in personal_tables()),
            "audit": audit,
            # Informative only: verify against the key published beforehand, never this copy.
            "public_key": base64.b64encode(signer.public).decode(),
        }
        signature = signer.sign(canonical(body))
        row.certificate = json.dumps(
            {"certificate": body, "signature": base64.b64encode(signature).decode()}, sort_keys=True
        )
    return {}


_STEP_FUNCTIONS = {
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
