"""The data lifecycle from the terminal: retention, backup, key rotation, decommissioning.

Changes are audited with ``Origin.TERMINAL``; the periodic work they share with the scheduler
(retention, destruction) is the same use case in ``handlers.lifecycle.flows``, told its origin.
Schedules and notices name the actor ``operator`` (what admins read); the audit event names the
local account.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from handlers.context import Context
from handlers.lifecycle import flows
from handlers.operator.audit import published_key
from handlers.operator.common import Refused, record, terminal_event
from handlers.vocabulary import Action, Origin, Outcome
from store.audit.log import append
from store.keys.backup import BackupFailed, backup
from store.keys.rotation import Plan, RotationFailed, RotationReport, rotate
from store.lifecycle import decommission
from store.lifecycle import retention as lifecycle
from store.lifecycle.decommission import ScheduleError
from store.lifecycle.retention import Due, RetentionReport

BY = "operator"  # how schedules, cancellations and admins' notices name an operator at the terminal
MAX_DAYS = 366  # days of retention one tick catches up; a run repeats until none are pending
Counter = Callable[[int], None]  # told a count: a total, or how many more items are done


async def retention_due(ctx: Context) -> Due:
    """How many days a run would process and how many data keys it would seal in (for progress)."""
    return await lifecycle.due(ctx.db, ctx.clock.now().date())


async def retention_run(
    ctx: Context, who: str, *, on_day: Counter | None = None, on_sealed: Counter | None = None
) -> RetentionReport:
    """Process every day since the last run, then seal in and compact; audited even when idle.

    ``on_day`` is told of each day processed, ``on_sealed`` of more data keys sealed in (see
    ``retention_due`` for how many of each to expect)."""

    async def tick() -> RetentionReport:
        now = ctx.clock.now()
        return await flows.retention_tick(
            ctx, now, max_days=MAX_DAYS, origin=Origin.TERMINAL, who=who, on_day=on_day, on_sealed=on_sealed
        )

    report = await tick()
    worked = report.did_work
    while report.pending_days:
        report = await tick()
        worked = worked or report.did_work
    if not worked:  # a tick audits only the work it did; the operator's run is audited regardless
        await record(ctx, terminal_event(Action.RETENTION, ctx.clock.now(), who, detail="nothing due"))
    return report


async def retention_preview(ctx: Context, as_of: date | None) -> RetentionReport:
    """What a run on ``as_of`` (default today) would do; changes nothing, so writes no event."""
    today = ctx.clock.now().date()
    as_of = as_of or today
    if as_of < today:
        raise Refused("--as-of must be today or later")
    return await lifecycle.preview(ctx.db, ctx.keys, today, as_of)


async def backup_to(
    ctx: Context, who: str, target: Path, *, on_progress: Counter | None = None, on_total: Counter | None = None
) -> int:
    """Write a consistent backup (wrapped keys only) to a new file; its size in bytes. Audited
    "started" (the file's name only, never its folder) before anything is copied, then its outcome:
    a backup cut short leaves the started event and no file of that name.

    ``on_total``: the size the backup is expected to reach; ``on_progress``: more bytes written.
    """
    name = target.name
    await record(ctx, terminal_event(Action.BACKUP, ctx.clock.now(), who, outcome=Outcome.STARTED, detail=name))
    try:
        size = await backup(ctx.db, target, on_progress=on_progress, on_total=on_total)
    except BackupFailed as exc:
        await record(ctx, terminal_event(Action.BACKUP, ctx.clock.now(), who, outcome=Outcome.FAILED, detail=name))
        raise Refused(str(exc)) from None
    await record(ctx, terminal_event(Action.BACKUP, ctx.clock.now(), who, detail=f"{name}: {size} bytes"))
    return size


async def rotate_keys(
    ctx: Context, who: str, *, on_progress: Counter | None = None, on_total: Counter | None = None
) -> RotationReport:
    """New key-encryption keys; every wrapped key re-wrapped; the old keys removed (or a rotation
    cut short finished). Audited "started" before the key file or any row changes, then its outcome.

    ``on_total``: how many wrapped keys there are to re-wrap; ``on_progress``: how many more are done.
    """
    detail = ""  # "generation N" once planned (RotationFailed only comes after that)

    async def starting(plan: Plan) -> None:
        nonlocal detail
        detail = f"generation {plan.generation}"
        said = f"finishing {detail} (a rotation cut short)" if plan.finishing else detail
        await record(
            ctx, terminal_event(Action.KEYS_ROTATE, ctx.clock.now(), who, outcome=Outcome.STARTED, detail=said)
        )

    today = ctx.clock.now().date()
    try:
        report = await rotate(ctx.db, ctx.keys, today, starting=starting, on_progress=on_progress, on_total=on_total)
    except RotationFailed as exc:
        failed = terminal_event(Action.KEYS_ROTATE, ctx.clock.now(), who, outcome=Outcome.FAILED, detail=detail)
        await record(ctx, failed)
        raise Refused(str(exc)) from None
    await record(ctx, terminal_event(Action.KEYS_ROTATE, ctx.clock.now(), who, detail=detail))
    return report


@dataclass(frozen=True, slots=True)
class Scheduled:
    switch_off: date
    destroy_by: date


async def decommission_schedule(ctx: Context, who: str, switch_off: date, destroy_by: date | None) -> Scheduled:
    """Set the switch-off date and tell every admin, with its audit event, in one transaction."""
    now = ctx.clock.now()
    try:
        async with ctx.db.write() as session:
            row = await flows.schedule_with_notices(ctx, session, switch_off, destroy_by, BY, now)
            event = terminal_event(Action.DECOMMISSION, now, who, detail=f"scheduled {row.id}")
            await append(session, [event])
    except ScheduleError as exc:
        raise Refused(str(exc)) from None
    return Scheduled(row.switch_off, row.destroy_by)


async def decommission_cancel(ctx: Context, who: str) -> None:
    """Cancel before the switch-off date and tell every admin."""
    now = ctx.clock.now()
    try:
        async with ctx.db.write() as session:
            row = await flows.cancel_with_notices(ctx, session, BY, now)
            await append(session, [terminal_event(Action.DECOMMISSION, now, who, detail=f"cancelled {row.id}")])
    except ScheduleError as exc:
        raise Refused(str(exc)) from None


async def decommission_status(ctx: Context) -> str:
    async with ctx.db.read() as session:
        return await flows.status_text(ctx, session, ctx.clock.now().date())


async def decommission_certificate(ctx: Context) -> dict[str, Any]:
    """The signed destruction certificate, once destruction has completed."""
    async with ctx.db.read() as session:
        row = await decommission.current(session)
    if row is None or row.certificate is None:
        raise Refused("there is no destruction certificate yet: it is produced when destruction completes")
    document: dict[str, Any] = json.loads(row.certificate)
    return document


@dataclass(frozen=True, slots=True)
class CertificateCheck:
    valid: bool
    text: str  # what the certificate says (only worth reading when valid)


def verify_certificate(certificate: tuple[str, str], public_key: tuple[str, str]) -> CertificateCheck:
    """Check a destruction certificate (source, JSON text) against the public key published before
    (source, text) — never against the key the certificate carries, which a forger would replace.
    Needs no store and no secret: an auditor can run it anywhere."""
    source, text = certificate
    key = published_key(*public_key)
    try:
        document = json.loads(text)
        described = decommission.certificate_text(document)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Refused(f"{source}: not a Signpost destruction certificate") from None
    return CertificateCheck(decommission.verify(document, key), described)


async def decommission_destroy(ctx: Context, who: str) -> str:
    """After switch-off: destroy everything now; the certificate, as text."""
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        row = await decommission.current(session)
    if row is None or not decommission.is_switched_off(row.switch_off, now.date()):
        await _refused_destroy(ctx, who, "before switch-off")
        raise Refused("destruction comes after the switch-off date: schedule one, or wait for it")
    finished = await flows.finish_destruction(ctx, now, origin=Origin.TERMINAL, who=who)  # a run cut short
    if finished is not None:
        return finished
    if row.state == "destroyed":
        await _refused_destroy(ctx, who, f"schedule {row.id}: already destroyed")
        raise Refused("everything has already been destroyed: see `signpost decommission certificate`")
    cert = await flows.destroy_now(ctx, now, row.id, origin=Origin.TERMINAL, who=who)
    if cert is None:
        # Another process holds the lease, or one that died did (until LEASE after its last step).
        await _refused_destroy(ctx, who, f"schedule {row.id}: claimed by another process")
        raise Refused("another Signpost process is destroying the data right now; check the status shortly")
    return decommission.certificate_text(cert)


async def _refused_destroy(ctx: Context, who: str, why: str) -> None:
    """An operator's ``decommission destroy`` that did nothing is audited too (outcome refused)."""
    refused = terminal_event(Action.DECOMMISSION_DESTROY, ctx.clock.now(), who, outcome=Outcome.REFUSED, detail=why)
    await record(ctx, refused)
