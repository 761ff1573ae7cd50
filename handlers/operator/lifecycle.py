"""The data lifecycle from the terminal: retention, backup, key rotation, decommissioning.

Each command is audited through its ``Audit`` (``handlers.operator.common.audited``); the periodic
work they share with the scheduler (retention, destruction) is the same use case in
``handlers.lifecycle.flows``, told its origin, whose steps write their own events as the
scheduler's do. Schedules and notices name the actor ``operator`` (what admins read); the audit
event names the local account.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

from handlers.context import Context
from handlers.lifecycle import flows
from handlers.operator.audit import published_key
from handlers.operator.common import Audit, Failed, Refused, earlier_run_event, record
from handlers.operator.decommissioned import refuse_without_keys
from handlers.vocabulary import Action, Origin, Outcome, plural
from store.audit import log as audit_log
from store.db import sqlite_path
from store.keys import keychain, rotation, witness
from store.keys.backup import BackupFailed, backup, forget_partial_name, named_unrecorded
from store.keys.crypto import KeyRing, key_file_use
from store.keys.rotation import Plan, RotationFailed, RotationReport, rotate
from store.keys.unheld import unheld
from store.lifecycle import decommission
from store.lifecycle import retention as lifecycle
from store.lifecycle.decommission import CompactionNotDone, ScheduleError, SwitchOffToday
from store.lifecycle.retention import Due, RetentionReport
from store.register import children

BY = "operator"  # how schedules, cancellations and admins' notices name an operator at the terminal
MAX_DAYS = 366  # days of retention one tick catches up; a run repeats until none are pending
Counter = Callable[[int], None]  # told a count: a total, or how many more items are done


async def retention_due(ctx: Context) -> Due:
    """How many days a run would process and how many data keys it would seal in (for progress)."""
    return await lifecycle.due(ctx.db, ctx.clock.now().date())


def refuse_unless_today(catch_up_to: date | None, today: date) -> None:
    """`--catch-up-to` is today's date as the operator knows it: refused, changing nothing, when the
    host's clock (``today``) disagrees."""
    if catch_up_to is not None and catch_up_to != today:
        raise Refused(
            f"The host's clock says today is {today:%d/%m/%Y}, not {catch_up_to:%d/%m/%Y}: nothing was changed. "
            "Put the clock right first (retention takes today's date from it), then run again.",
            reason="--catch-up-to not today",
        )


async def retention_run(
    ctx: Context,
    audit: Audit,
    *,
    on_day: Counter | None = None,
    on_sealed: Counter | None = None,
    catch_up_to: date | None = None,
) -> RetentionReport:
    """Process every day since the last run, then seal in and compact: ``started`` first, each step
    that archived or destroyed audited as the scheduler's are, then the run's totals as its outcome.

    ``catch_up_to``: today's date as the operator knows it, which lets a run act on more than a
    month of days (``ClockUnchecked``); refused, changing nothing, when the host's clock disagrees.

    ``on_day`` is told of each day processed, ``on_sealed`` of more data keys sealed in (see
    ``retention_due`` for how many of each to expect)."""

    async def tick() -> RetentionReport:
        now = ctx.clock.now()
        return await flows.retention_tick(
            ctx,
            now,
            max_days=MAX_DAYS,
            origin=Origin.TERMINAL,
            who=audit.who,
            on_day=on_day,
            on_sealed=on_sealed,
            # Checked once, below: a catch-up of years that goes past midnight stays confirmed.
            catch_up_to=None if catch_up_to is None else now.date(),
        )

    refuse_unless_today(catch_up_to, ctx.clock.now().date())
    await audit.started()
    with _index_current("retention stopped"):
        report = await tick()
        reports = [report]
        while report.pending_days:
            report = await tick()
            reports.append(report)
    whole = lifecycle.combined(reports)  # what the operator is shown: every pass, not the last
    totals = f"archived {whole.archived}, destroyed {whole.destroyed}, sealed in {whole.sealed_in}"
    if whole.notices_pruned:
        totals += f", notices pruned {whole.notices_pruned}"
    audit.result_count = whole.archived + whole.destroyed
    await audit.done(totals if whole.did_work else "nothing due")
    return whole


# How far ahead a dry run may look: a record is destroyed six years after it is archived (24 - 18),
# so seven years shows every record archived in the coming year through to its destruction. A
# preview reads the register once for every day up to --as-of: the horizon bounds it (a date
# centuries ahead ran for hours).
PREVIEW_YEARS = keychain.DESTROY_AT_AGE - keychain.ARCHIVE_AT_AGE + 1


def preview_limit(today: date) -> date:
    """The last day a dry run may be ``--as-of`` (29 February's anniversary is 1 March)."""
    return keychain.birthday(today, PREVIEW_YEARS)


async def retention_preview(ctx: Context, audit: Audit, as_of: date | None) -> RetentionReport:
    """What a run on ``as_of`` (default today, at most ``PREVIEW_YEARS`` ahead) would do; changes
    nothing, and is audited as a read."""
    today = ctx.clock.now().date()
    as_of = as_of or today
    audit.detail = "dry run"
    if as_of < today:
        raise Refused("--as-of must be today or later", reason="--as-of in the past")
    limit = preview_limit(today)
    if as_of > limit:
        raise Refused(
            f"--as-of can be at most {PREVIEW_YEARS} years ahead, {limit:%d/%m/%Y} at the latest: that shows "
            "every record archived in the coming year through to its destruction. Please choose an earlier date.",
            reason="--as-of too far ahead",
        )
    with _index_current("nothing previewed"):
        report = await lifecycle.preview(ctx.db, ctx.keys, today, as_of)
    await audit.done(f"dry run as of {as_of.isoformat()}")
    return report


@contextmanager
def _index_current(stopped: str) -> Iterator[None]:
    """``children.IndexNotCurrent`` as one line for the operator, audited failed: retention finds
    its children through the blind index, and a day it cannot read stays due (nothing of it applied).
    So is a key file whose chains are not the store's (``witness.ChainsNotOurs``): nothing changed."""
    try:
        yield
    except children.IndexNotCurrent as exc:
        raise Failed(
            f"{stopped}: {exc} (Signpost is being updated); the days not done stay due for the next run",
            reason="index not current",
        ) from None
    except witness.ChainsNotOurs as exc:
        raise Failed(f"{stopped}: the key file {exc}", reason="key chains not this store's") from None
    except lifecycle.ClockUnchecked as exc:
        raise Refused(f"{stopped}, nothing changed: {exc}", reason="clock unchecked") from None


async def backup_to(
    ctx: Context, audit: Audit, target: Path, *, on_progress: Counter | None = None, on_total: Counter | None = None
) -> BackupWritten:
    """Write a consistent backup (``BACKUP_HOLDS`` says what is in clear in it) to a new file; its size. A file that
    exists (the store's own included) or a folder that does not is refused before anything starts.
    Audited "started" before anything is copied, then its outcome (its size and SHA-256): the events
    name the backup by its label (``backup_label``), never by the name the operator typed, which
    may be a child's. A backup cut short leaves the started event and no file of that name, and the
    next backup of that name, holding its lock (``Audit.one_per_name``), records it failed, cut short;
    while one is live, another of its name is refused. One killed after the file took its name,
    before its outcome was written, is recorded finished by its rerun (``BackupWritten.recorded_late``),
    which writes nothing else.

    ``on_total``: the size the backup is expected to reach; ``on_progress``: more bytes written.
    """
    label = backup_label(ctx.keys, target.name)
    late = await _backup_unrecorded(ctx, target, label)
    if late is not None:
        size, dead = late
        audit.detail = label
        digest = await asyncio.to_thread(_sha256, target)
        detail = f"{label}: {size} bytes, sha256 {digest}: {BACKUP_RECORDED_LATE}"
        await record(ctx, earlier_run_event(Action.BACKUP, dead, ctx.clock.now(), audit.origin, Outcome.DONE, detail))
        audit.recorded()
        forget_partial_name(target)
        return BackupWritten(size, label, digest, recorded_late=True)
    _check_backup_target(ctx, target)
    await _refuse_what_retention_has_destroyed(ctx)
    audit.detail = label
    # A run of this name killed while copying: recorded cut short (by its label, one of the previous
    # version's, whose events said the file's name, too).
    audit.one_per_name(label, target.name, formerly=target.name)
    await audit.started()
    digests: list[str] = []

    async def named(size: int) -> None:  # recorded before the partial name goes (store/keys/backup.py)
        digests.append(await asyncio.to_thread(_sha256, target))
        await audit.done(f"{label}: {size} bytes, sha256 {digests[0]}")

    try:
        size = await backup(ctx.db, target, on_progress=on_progress, on_total=on_total, named=named)
    except BackupFailed as exc:
        raise Failed(str(exc)) from None
    return BackupWritten(size, label, digests[0] if digests else "")


def backup_label(keys: KeyRing, file_name: str) -> str:
    """What the audit calls a backup to a file named ``file_name``: ``backup`` and 12 hex digits keyed
    by the key file's index key from the name (never its folder), printed to the terminal when it is
    written. The one home of "a path never goes into the audit": the audit is permanent and cannot
    forget a name, and an operator may name a file after the child it is about. The same file name
    has the same label (a rerun finds the run it follows); keyed, so a guessed name cannot be
    checked against the audit."""
    name = file_name.encode("utf-8", "surrogateescape")
    return f"backup {hmac.new(keys.index_key, b'backup-file:' + name, hashlib.sha256).hexdigest()[:12]}"


def _sha256(path: Path) -> str:
    """The first 16 hex digits of a written backup's SHA-256 (what `sha256sum` prints first)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


# What a backup holds, said when it is written: wrapping keeps children's identities closed once the
# key file is wiped, but practitioners and the involvements are stored in clear, so no wipe reaches them.
BACKUP_HOLDS = (
    "Children's identities in it are wrapped under the key file, but practitioners' names and contact details "
    "(phones, e-mails) and the involvements (which practitioner works with which child reference) are in clear"
)
BACKUP_RECORDED_LATE = "a backup cut short after it took its name, recorded finished"


@dataclass(frozen=True, slots=True)
class BackupWritten:
    size: int
    label: str  # what the audit calls it (``backup_label``)
    sha256: str  # the first 16 hex digits of the file's SHA-256, as its outcome event records them
    recorded_late: bool = False  # written by a run killed before its outcome; this run recorded it


async def _backup_unrecorded(ctx: Context, target: Path, label: str) -> tuple[int, audit_log.Started] | None:
    """The size of the backup at ``target`` and the ``started`` of its run, when that run was killed
    after naming it and its audit still ends at ``started`` (named by ``label``, or by the file's
    name in events written before labels); a leftover partial name of one already recorded is removed."""
    size = named_unrecorded(target)
    if size is None:
        return None
    async with ctx.db.read() as session:
        dead = await audit_log.left_started(session, Action.BACKUP, naming=(label, target.name))
    if dead is not None:
        return size, dead
    forget_partial_name(target)  # killed after recording it: only the second name was left
    return None


async def _refuse_what_retention_has_destroyed(ctx: Context) -> None:
    """Refuse a backup of a store holding children whose birth-date key the key file has destroyed
    (a backup put back beside a later key file, before retention finished the destruction): the new
    copy, dated after their destruction, would carry their rows and involvements in clear."""
    held = await lifecycle.destroyed_but_held(ctx.db, ctx.keys)
    if held:
        raise Refused(
            f"this store holds {plural(held, 'record')} of children retention has already destroyed (a backup put "
            "back?), whose involvements a backup would carry in clear: run `signpost retention run` first, "
            "then back up",
            reason="destroyed since",
        )


def _check_backup_target(ctx: Context, target: Path) -> None:
    """Refuse a target a backup cannot be written to, in one line (audited by its kind, never the
    path). ``backup`` checks again as it writes: a file may appear meanwhile."""
    live = sqlite_path(str(ctx.db.engine.url)) if ctx.db.dialect == "sqlite" else None
    if live is not None and target.exists() and live.exists() and os.path.samefile(target, live):
        raise Refused(f"{target} is Signpost's own database: back up to a new file", reason="the live database")
    refuse_an_existing_file(target)
    if not target.parent.is_dir():
        raise Refused(f"the folder {target.parent} does not exist", reason="no such folder")


def refuse_an_existing_file(target: Path) -> None:
    """A file the operator names for a command to write (a backup, a certificate) must be new:
    nothing is ever written over one that exists, or over a link (audited by its kind, never the path)."""
    if target.exists() or target.is_symlink():
        raise Refused(f"{target} already exists: choose a new file name", reason="file exists")


async def rotate_keys(
    ctx: Context, audit: Audit, *, on_progress: Counter | None = None, on_total: Counter | None = None
) -> RotationReport:
    """New key-encryption keys; every wrapped key re-wrapped; the old keys removed (or a rotation
    cut short finished). Audited "started" before the key file or any row changes, then its outcome.

    ``on_total``: how many wrapped keys there are to re-wrap; ``on_progress``: how many more are done.
    """
    refuse_without_keys(ctx)  # new keys in an emptied key file: it would no longer belong to its store
    with _no_one_serving(ctx.keys):
        return await _rotate_alone(ctx, audit, on_progress=on_progress, on_total=on_total)


PUNCTURE_UNFINISHED = (
    "cannot rotate, nothing was changed: the key file still holds birth-date and search-term keys of children "
    "retention has destroyed, which a rotation would carry into the new generation: run `signpost retention run` "
    "to finish the destruction, then rotate again"
)
"""Why a rotation is refused while a retention run killed before its key file's write left it so
(``store.lifecycle.retention.unfinished_puncture``; `signpost db check` counts the days)."""

SERVING = (
    "a Signpost server on this host is serving with this key file, holding its keys in memory: stop every "
    "replica (`signpost run`, the console) first, then rotate, and start them again"
)


@contextmanager
def _no_one_serving(ring: KeyRing) -> Iterator[None]:
    """The key file's serving lock, exclusively, for the whole rotation: refused (nothing changed)
    while a process on this host serves with it (bot/cli/common.py ``serving_with_keys``), whose
    keys the rotation would replace under it. Replicas on other hosts hold their own copy."""
    if ring.path is None:  # keys in memory only: no other process can hold them
        yield
        return
    with key_file_use(ring.path, exclusive=True) as alone:
        if not alone:
            raise Refused(SERVING, reason="a server is serving with the key file")
        yield


async def _rotate_alone(
    ctx: Context, audit: Audit, *, on_progress: Counter | None = None, on_total: Counter | None = None
) -> RotationReport:
    async def starting(plan: Plan) -> None:
        audit.detail = _rotation_detail(plan.generation)  # what the outcome names too
        # Alone (``_no_one_serving``): a rotation's 'started' with no outcome is a dead run's.
        await audit.started_alone(
            f"finishing {audit.detail} (a rotation cut short)" if plan.finishing else audit.detail
        )

    unrecorded = await _rotation_done_unrecorded(ctx)
    if unrecorded is not None:  # killed after its last step, before its outcome: not rotated again
        audit.detail = _rotation_detail(unrecorded)
        await audit.done(f"{audit.detail}: a rotation cut short after its last step, recorded finished")
        return RotationReport(unrecorded - 1, unrecorded, finishing=True)
    lost = await unheld(ctx.db, ctx.keys)
    if lost:  # nothing could re-wrap them: said before anything changes, with what to do
        said = "; ".join(each.said() + (f": {each.remedy()}" if each.remedy() else "") for each in lost)
        raise Failed(f"cannot rotate, nothing was changed: {said} (`signpost db check` counts them); then rotate again")
    if await lifecycle.unfinished_puncture(ctx.db, ctx.keys):  # a new generation would carry those keys
        raise Refused(PUNCTURE_UNFINISHED, reason="a retention run's key-file write is unfinished")
    today = ctx.clock.now().date()
    try:
        report = await rotate(ctx.db, ctx.keys, today, starting=starting, on_progress=on_progress, on_total=on_total)
    except RotationFailed as exc:
        raise Failed(str(exc)) from None
    except witness.ChainsNotOurs as exc:
        raise Failed(f"cannot rotate: the key file {exc}", reason="key chains not this store's") from None
    await audit.done()
    return report


async def _rotation_done_unrecorded(ctx: Context) -> int | None:
    """The generation of the last rotation, when its last step is on disk but the audit holds only
    its ``started`` (a process killed between the key file's last write and the outcome)."""
    async with ctx.db.read() as session:
        last = await audit_log.last_of(session, Action.KEYS_ROTATE)
    if last is None or last[0] is not Outcome.STARTED:
        return None
    named = _ROTATION_DETAIL.search(last[1])
    at = await rotation.finished_at(ctx.db, ctx.keys)
    return at if named is not None and at is not None and int(named.group(1)) == at else None


# A rotation's events name its generation in these words, and a rerun reads it back from them.
_ROTATION_DETAIL = re.compile(r"generation (\d+)")


def _rotation_detail(generation: int) -> str:
    return f"generation {generation}"


@dataclass(frozen=True, slots=True)
class Scheduled:
    switch_off: date
    destroy_by: date
    admins_told: int  # how many admins its notice went to


async def decommission_schedule(
    ctx: Context, audit: Audit, switch_off: date, destroy_by: date | None, *, at_once: bool = False
) -> Scheduled:
    """Set the switch-off date and tell every admin, with its audit event, in one transaction;
    ``at_once`` confirms a switch-off today (otherwise refused)."""
    now = ctx.clock.now()
    audit.detail = "schedule at once" if at_once else "schedule"
    try:
        async with ctx.db.write() as session:
            row, told = await flows.schedule_with_notices(
                ctx, session, switch_off, destroy_by, BY, now, at_once=at_once
            )
            await audit.done_in(session, f"scheduled {row.id}")
    except ScheduleError as exc:
        message = f"{exc}; to switch off today, add --at-once" if isinstance(exc, SwitchOffToday) else str(exc)
        raise Refused(message, reason=str(exc)) from None  # our own wording about dates
    return Scheduled(row.switch_off, row.destroy_by, told)


async def decommission_cancel(ctx: Context, audit: Audit) -> int:
    """Cancel before the switch-off date and tell every admin; how many admins were told."""
    now = ctx.clock.now()
    audit.detail = "cancel"
    try:
        async with ctx.db.write() as session:
            row, told = await flows.cancel_with_notices(ctx, session, BY, now)
            await audit.done_in(session, f"cancelled {row.id}")
    except ScheduleError as exc:
        raise Refused(str(exc), reason=str(exc)) from None
    return told


async def decommission_status(ctx: Context, audit: Audit) -> str:
    async with ctx.db.read() as session:
        text = await flows.status_text(ctx, session, ctx.clock.now().date())
    await audit.done("status")
    return text


async def decommission_certificate(ctx: Context, audit: Audit, out: Path | None = None) -> dict[str, Any]:
    """The signed destruction certificate, once destruction has completed; refused when it is to
    be written to ``out`` and a file is there already."""
    audit.detail = "certificate"
    if out is not None:
        refuse_an_existing_file(out)
    async with ctx.db.read() as session:
        row = await decommission.current(session)
    if row is None or row.certificate is None:
        raise Refused(
            "there is no destruction certificate yet: it is produced when destruction completes", reason="none yet"
        )
    document: dict[str, Any] = json.loads(row.certificate)
    await audit.done()
    return document


async def _lease_held(ctx: Context) -> str:
    """Why destruction cannot be run now: a run holds its lease, live or killed part-way."""
    async with ctx.db.read() as session:
        row = await decommission.current(session)
    lease = row.lease_until if row is not None else None
    minutes = int(decommission.LEASE.total_seconds() // 60)
    when = (
        f"after {(lease.replace(tzinfo=lease.tzinfo or UTC) + timedelta(minutes=1)).astimezone(UTC):%H:%M} UTC"
        if lease is not None
        else f"in {minutes} minutes"
    )
    return (
        f"another Signpost process is destroying the data, or one stopped part-way less than {minutes} minutes "
        f"ago (its claim lasts {minutes} minutes after its last step): check `signpost decommission status`, "
        f"and try again {when}; it carries on where the last run stopped"
    )


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


async def decommission_destroy(ctx: Context, audit: Audit) -> str:
    """After switch-off: destroy everything now; the certificate, as text. The run's ``started``
    and ``done`` events are the destruction's own (shared with the scheduler); a refusal or a
    failure is this command's."""
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        row = await decommission.current(session)
    if row is None or not decommission.is_switched_off(row.switch_off, now.date()):
        raise Refused(
            "destruction comes after the switch-off date: schedule one, or wait for it", reason="before switch-off"
        )
    audit.detail = f"schedule {row.id}"
    finished = await flows.finish_destruction(ctx, now, origin=Origin.TERMINAL, who=audit.who)  # a run cut short
    if finished is not None:
        audit.recorded()
        return finished
    if row.state == "destroyed":
        raise Refused(
            "everything has already been destroyed: see `signpost decommission certificate`", reason="already destroyed"
        )
    try:
        cert = await flows.destroy_now(
            ctx, now, row.id, origin=Origin.TERMINAL, who=audit.who, correlation_id=audit.correlation_id
        )
    except CompactionNotDone as stopped:  # the steps before it are kept; a rerun carries on
        raise Failed(str(stopped), reason="compaction not done") from None
    if cert is None:
        # Another process holds the lease, or one that died did (until LEASE after its last step):
        # from here the two look alike, so the refusal says both, and when the lease runs out.
        raise Refused(await _lease_held(ctx), reason="claimed by another process")
    audit.recorded()
    async with ctx.db.read() as session:
        return await decommission.completion_said(session, cert, ctx.db.dialect)
