"""Data lifecycle use cases: the switch-off gate, admins' ``decommission`` command, and the periodic
ticks (retention; the decommissioning timeline and destruction).

The ticks are plain async functions, idempotent and safe to run at once in several replicas (work
is claimed in the database); the scheduler calls them, and so do the ``signpost`` sub-commands.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.clock import uk_time
from handlers.context import Context
from handlers.dispatch.spec import ADMIT, Request, Result, Spec, StepUp, Verdict, parsed_by
from handlers.grammar import UsageError, a_word_too_many, parse_date
from handlers.help import destruction_said
from handlers.operator.common import record_cut_short
from handlers.vocabulary import Action, Notice, Origin, Outcome, Reply, Role, plural
from store.audit.log import append, origin_event
from store.db import store_busy, store_damage, store_read_only
from store.delivery.notices import post
from store.keys import witness
from store.keys.crypto import KeyFileError
from store.lifecycle import decommission
from store.lifecycle import retention as lifecycle
from store.lifecycle import stall as stalls
from store.lifecycle.decommission import ScheduleError
from store.lifecycle.retention import RetentionReport
from store.lifecycle.stall import Stall
from store.people.practitioners import holders
from store.register import children
from store.tables.lifecycle import Decommission

log = structlog.get_logger("signpost.lifecycle")

SWITCHED_OFF = "Signpost has been switched off, so it can no longer answer this. Its personal data "
DECOMMISSION_USAGE = (
    "decommission schedule DD/MM/YYYY [DESTROY_BY] [at once] · decommission status · "
    "decommission cancel · decommission certificate"
)


# -- the gate ----------------------------------------------------------------------------------


async def switch_off_gate(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Verdict:
    """From the switch-off date every command is refused (searches, registrations, requests,
    enrolments, codes …) except those whose Spec declares ``after_switch_off`` (help, and the
    admins' decommission status and certificate).

    This gate runs before the step-up gate, and after switch-off it admits those commands at once
    (the identity and role gates have already let only active admins through to status and
    certificate): from then on nobody can enrol or answer a code, and once destroyed no seed can
    be opened, so asking for a code would lock the admins out of both for good. Neither holds
    personal data; the certificate also reaches every admin as a notice.

    The date is read for every command, with the asker's standing (``Request.standing``); no
    cache, so every replica switches off at the same moment and a cancellation is seen at once.
    """
    if spec.after_switch_off and spec.stepup is StepUp.NONE:
        return None  # runs either way, and no later gate would stop it
    if not decommission.is_switched_off(req.standing.switch_off, req.now.date()):
        return None
    if spec.after_switch_off:
        return ADMIT
    text = SWITCHED_OFF + await destruction_said(session)
    return Result(Reply(Outcome.SWITCHED_OFF, text), detail="switched off")


# -- the admin command -------------------------------------------------------------------------


async def run_decommission(ctx: Context, req: Request, session: AsyncSession) -> Result:
    assert req.actor is not None
    sub, _, rest = req.args.partition(" ")
    try:
        match sub.lower():
            case "schedule":
                switch_off, destroy_by, at_once = _schedule_args(rest)
                return await _schedule(
                    ctx, session, switch_off, destroy_by, req.actor.practitioner_id, req.now, at_once=at_once
                )
            case "cancel":
                row, _ = await cancel_with_notices(ctx, session, req.actor.practitioner_id, req.now)
                text = f"The switch-off planned for {row.switch_off:%d/%m/%Y} is cancelled."
                return Result(Reply(Outcome.DONE, text), detail="cancelled")
            case "status":
                return Result(Reply(Outcome.INFO, await status_text(ctx, session, req.now.date())), detail="status")
            case "certificate":
                return Result(Reply(Outcome.INFO, await certificate_text(session)), detail="certificate")
            case "destroy":  # the command line's alone: say where it is, not "please say what to do"
                return Result(Reply(Outcome.INVALID, DESTROY_AT_TERMINAL), detail="destroy is not a chat command")
    except ScheduleError as exc:
        today = isinstance(exc, decommission.SwitchOffToday)
        confirm = ". To switch off today regardless, add: at once" if today else ""
        return Result(Reply(Outcome.INVALID, f"Sorry, {exc}{confirm}."), detail="rejected")
    raise UsageError("please say what to do")


_STEPS = ("schedule", "cancel", "status", "certificate", "destroy")


def _decommission_args(args: str) -> None:
    """``UsageError`` for a step Signpost does not know, or a schedule whose dates it cannot read
    (``Spec.check``: so a typo is answered before anyone is asked for a code)."""
    sub, _, rest = args.partition(" ")
    step = sub.lower()
    if step not in _STEPS:
        raise UsageError("please say what to do")
    if step == "schedule":
        _schedule_args(rest)
    elif step != "destroy" and rest.split():  # "decommission cancel now": cancel takes no words
        raise a_word_too_many(f"decommission {step}")


def _schedule_args(text: str) -> tuple[date, date | None, bool]:
    """The switch-off date, the destroy-by date (None: the default) and whether "at once" was added."""
    words = text.split()
    at_once = [word.lower() for word in words[-2:]] == ["at", "once"]
    switch_off, destroy_by = _dates(" ".join(words[:-2] if at_once else words))
    return switch_off, destroy_by, at_once


def _dates(text: str) -> tuple[date, date | None]:
    parts = text.split()
    if not parts or len(parts) > 2:
        raise UsageError("please give the switch-off date, and optionally the destroy-by date")
    days = [parse_date(part) for part in parts]
    if any(day is None for day in days):
        raise UsageError("that is not a real date: please use DD/MM/YYYY or YYYY-MM-DD")
    return days[0], days[1] if len(days) == 2 else None  # type: ignore[return-value]


async def _schedule(
    ctx: Context,
    session: AsyncSession,
    switch_off: date,
    destroy_by: date | None,
    by: str,
    now: datetime,
    *,
    at_once: bool,
) -> Result:
    row, _ = await schedule_with_notices(ctx, session, switch_off, destroy_by, by, now, at_once=at_once)
    done = (
        f"Signpost is switched off now, at once ({row.switch_off:%d/%m/%Y})"
        if row.switch_off <= now.date()
        else f"Decommissioning scheduled: switch-off {row.switch_off:%d/%m/%Y}"
    )
    text = f"{done}, all personal data destroyed by {row.destroy_by:%d/%m/%Y}. Every admin has been told."
    return Result(Reply(Outcome.DONE, text), detail=f"scheduled {row.id}")


class Told(NamedTuple):
    """A schedule or a cancellation, and how many admins its notice went to (none when the register
    holds no active admin: then nobody was told)."""

    row: Decommission
    admins: int


async def schedule_with_notices(
    ctx: Context,
    session: AsyncSession,
    switch_off: date,
    destroy_by: date | None,
    by: str,
    now: datetime,
    *,
    at_once: bool = False,
) -> Told:
    """Schedule and tell every admin, in the caller's transaction (``at_once``: today allowed)."""
    row = await decommission.schedule(session, switch_off, destroy_by, by, now, at_once=at_once)
    admins = await holders(session, Role.ADMIN)
    notices = decommission.to_admins(admins, row.id, "scheduled", decommission.scheduled_text(row))
    await ctx.notices.enqueue(session, notices, now)
    return Told(row, len(admins.ids))


async def cancel_with_notices(ctx: Context, session: AsyncSession, by: str, now: datetime) -> Told:
    """Cancel (before switch-off) and tell every admin, in the caller's transaction."""
    row = await decommission.cancel(session, by, now)
    text = f"The switch-off planned for {row.switch_off:%d/%m/%Y} has been cancelled by {by}. Signpost stays on."
    admins = await holders(session, Role.ADMIN)
    await ctx.notices.enqueue(session, decommission.to_admins(admins, row.id, "cancelled", text), now)
    return Told(row, len(admins.ids))


async def status_text(ctx: Context, session: AsyncSession, today: date) -> str:
    """The schedule's status; once destroyed, whether key material is still on this host."""
    found = await decommission.status(session)
    if found is None:
        return "No decommissioning is scheduled."
    if found.state != "destroyed":
        return found.describe(today)
    said = found.describe(today, decommission.key_material_left(ctx.keys, ctx.signer))
    left = decommission.left_behind(ctx.db.dialect, await decommission.backups_taken(session))
    return " ".join(filter(None, (said, left)))


async def certificate_text(session: AsyncSession) -> str:
    row = await decommission.current(session)
    if row is None or row.certificate is None:
        return "There is no destruction certificate yet: it is produced when destruction completes."
    return decommission.certificate_text(json.loads(row.certificate))


DESTROY_AT_TERMINAL = (
    "Destruction is not started in chat: it runs by itself from the destroy-by date, or after the "
    "switch-off date at the terminal with: signpost decommission destroy"
)


_DECOMMISSION = Spec(
    name="decommission",
    action=Action.DECOMMISSION,
    run=run_decommission,
    summary="schedule, check or cancel switching Signpost off (admins)",
    usage=DECOMMISSION_USAGE,
    role=Role.ADMIN,
    stepup=StepUp.FRESH,
    writes=True,
    check=parsed_by(_decommission_args),
)
# Status and certificate still answer after switch-off (schedule and cancel do not).
_AFTER_SWITCH_OFF = replace(_DECOMMISSION, after_switch_off=True)
SPECS = (replace(_DECOMMISSION, subcommands={"status": _AFTER_SWITCH_OFF, "certificate": _AFTER_SWITCH_OFF}),)


# -- periodic work -----------------------------------------------------------------------------


async def retention_tick(
    ctx: Context,
    now: datetime,
    *,
    max_days: int = 31,
    origin: Origin = Origin.SCHEDULER,
    who: str = "",
    on_day: Callable[[int], None] | None = None,
    on_sealed: Callable[[int], None] | None = None,
    catch_up_to: date | None = None,
) -> RetentionReport:
    """The daily retention work (safe to call often and from every replica); audited as ``origin``
    (the scheduler, or the operator ``who`` at the terminal) when it did any work, and told to the
    admins when that work archived or destroyed anything (``RetentionReport.worth_telling``). ``on_day`` and
    ``on_sealed`` follow its progress (``store.lifecycle.retention.run``). More than a month of days
    due waits for ``catch_up_to``, today's date as an operator confirmed it (``ClockUnchecked``): the
    scheduler never gives it, so its run stalls and the admins are told (``scheduled_retention``)."""

    news = RetentionNews(ctx, origin, now, who)
    report = await lifecycle.run(
        ctx.db,
        ctx.keys,
        now,
        max_days=max_days,
        compaction=False,
        on_day=on_day,
        on_sealed=on_sealed,
        audit_step=news.step,
        catch_up_to=catch_up_to,
    )
    if report.did_work:
        async with ctx.db.write() as session:
            if report.worth_telling:
                await news.tell(session, report.summary())
            # The run's totals, in a form the transparency report does not add up: each step that
            # archived or destroyed wrote its own event with its counts (news.step above).
            detail = (
                f"run totals: archived={report.archived} destroyed={report.destroyed} sealed={report.sealed_in} "
                f"notices_pruned={report.notices_pruned}"
            )
            await append(session, [origin_event(origin, Action.RETENTION, now, who=who, detail=detail)])
    await lifecycle.compact_after_run(ctx.db, report)  # last: after every write
    if report.compaction_pending:  # destroyed bytes may still be in the files: say so, once a day
        async with ctx.db.write() as session:
            pending = [
                Notice(pid, "retention", report.compaction_pending, dedupe_key=f"compaction:{now:%Y-%m-%d}:{pid}")
                for pid in await holders(session, Role.ADMIN)
            ]
            await ctx.notices.enqueue(session, pending, now)
    return report


async def scheduled_retention(ctx: Context, now: datetime) -> RetentionReport:
    """The scheduler's hourly retention run (bot/scheduler.py ``standard_tasks``): ``retention_tick``,
    and when it fails, the admins told and the failure audited, once a day while it lasts (nobody
    reads the scheduler's log, and a child past 24 undestroyed breaks a promise); once it runs again
    after that, the admins told so, once. The failure is raised on, for the scheduler to log and count."""
    try:
        report = await retention_tick(ctx, now)
    except Exception as exc:
        try:
            await _retention_stalled(ctx, now, exc)
        except Exception as untold:  # the store itself failing, most likely: its log is all there is
            log.error("retention_stall_untold", error=type(untold).__name__)
        raise
    await _retention_resumed(ctx, now)
    return report


def retention_stopped_by(exc: BaseException) -> str:
    """What stopped a retention run, in words quoting no data: a refusal written for the operator
    (the key file's chains not the store's, the search index of another version, the store damaged
    or read-only), else the error's type alone (its text may quote anything, a child's details included)."""
    return _stopped(exc)[0]


def _stopped(exc: BaseException) -> tuple[str, str]:
    """``retention_stopped_by``, and the same in a few words for the audit event's detail."""
    if isinstance(exc, lifecycle.ClockUnchecked):
        return str(exc), "clock unchecked"  # dates and a count only (store/lifecycle/retention.py)
    if isinstance(exc, witness.ChainsNotOurs):
        return f"the key file {exc}", "key chains not this store's"  # fixed words (store/keys/witness.py)
    if isinstance(exc, children.IndexNotCurrent):
        return f"{exc} (Signpost is being updated)", "index not current"  # versions only
    if isinstance(exc, KeyFileError):  # its text names the key file's path: not for a chat message
        return "the key file (SIGNPOST_KEY_FILE) cannot be read", "key file unreadable"
    damaged = store_damage(exc)
    if damaged is not None:
        return damaged, "store damaged"
    read_only = store_read_only(exc)
    if read_only is not None:
        return read_only, "store read-only"
    if store_busy(exc) is not None:
        return "the store was busy: another signpost command held it for longer than Signpost waits", "store busy"
    return f"an unexpected error ({type(exc).__name__})", f"unexpected error ({type(exc).__name__})"


def retention_stalled_text(stall: Stall, now: datetime, said: str) -> str:
    return (
        f"Scheduled retention has failed since {uk_time(stall.since)} (last tried {uk_time(now)}): {said}. "
        "Any record due to be archived at 18 or destroyed at 24 since then is overdue until it runs. "
        "At the terminal, `signpost retention run` says why in full (of an unexpected error, its log says "
        'where), and runs it once that is put right (README: "Retention and decommissioning"). You are '
        "told again each day while it fails, and once when it runs again."
    )


def retention_resumed_text(stall: Stall, now: datetime) -> str:
    return (
        f"Scheduled retention is running again ({uk_time(now)}), after failing since {uk_time(stall.since)}. "
        "It works through the days it missed, at most 31 a run, and tells you of each run that archives "
        "or destroys records."
    )


async def _retention_stalled(ctx: Context, now: datetime, exc: BaseException) -> None:
    """A scheduled run failed: audited failed and the admins told what stopped it and what to do,
    the first time each day, whether this run's stall began today or after a run that succeeded (the
    run is tried every hour: the audit does not grow by 24 a day)."""
    today = now.date()
    async with ctx.db.write() as session:
        stall = await stalls.claim_day(session, now)
        if stall is None:
            return  # told today already, by this replica or another
        said, reason = _stopped(exc)
        detail = f"scheduled run failed: {reason}"
        await append(
            session, [origin_event(Origin.SCHEDULER, Action.RETENTION, now, outcome=Outcome.FAILED, detail=detail)]
        )
        text = retention_stalled_text(stall, now, said)
        admins = await holders(session, Role.ADMIN)
        told = [
            Notice(pid, "retention", text, dedupe_key=f"retention_stalled:{today:%Y-%m-%d}:{pid}") for pid in admins
        ]
        await ctx.notices.enqueue(session, told, now)


async def _retention_resumed(ctx: Context, now: datetime) -> None:
    """A scheduled run succeeded: if runs were failing and the admins were told so, audited and the
    admins told, once (one read of one row by its key an hour otherwise). A stall they were not told
    of (it began on a day they were told of another) ends unsaid: never more "running again" than
    "failed"."""
    async with ctx.db.read() as session:
        if await stalls.current(session) is None:
            return
    async with ctx.db.write() as session:
        stall = await stalls.clear(session)
        if stall is None:
            return  # untold, or another run has just said so
        detail = f"scheduled run running again after failing since {stall.since:%Y-%m-%d %H:%M} UTC"
        await append(session, [origin_event(Origin.SCHEDULER, Action.RETENTION, now, detail=detail)])
        text = retention_resumed_text(stall, now)
        key = f"{stall.since:%Y%m%dT%H%M%S}"
        admins = await holders(session, Role.ADMIN)
        told = [Notice(pid, "retention", text, dedupe_key=f"retention_resumed:{key}:{pid}") for pid in admins]
        await ctx.notices.enqueue(session, told, now)


async def finish_retention_puncture(
    ctx: Context, now: datetime, *, origin: Origin = Origin.SCHEDULER, who: str = ""
) -> int:
    """Destroy the birth-date keys that a retention run killed after a day's commit left in the key
    file (its children destroyed and audited, yet a backup taken before still opened with it),
    without processing a new day; returns how many children it destroyed on the way, each audited
    as ``origin``. Every retention run (the scheduler's hourly tick, `signpost retention run`) does
    this first; a process starting up does not, so the window lasts until the next tick."""
    news = RetentionNews(ctx, origin, now, who)
    destroyed = await lifecycle.finish_puncture(ctx.db, ctx.keys, now, audit_step=news.step)
    if destroyed:
        async with ctx.db.write() as session:
            await news.tell(session, RetentionReport(destroyed=destroyed).summary())
    return destroyed


UNTOLD_AFTER = timedelta(minutes=10)
"""How long a retention run's notice is held after its last committed step. The run's summary
replaces it within seconds; a run killed part way never does, and this is how long its admins wait
to be told what it did before it died."""


class RetentionNews:
    """What one retention run tells the admins: a single notice each, true at every commit.

    Each step that archived or destroyed records writes its audit event and rewrites the run's
    notice with the totals so far, held ``UNTOLD_AFTER`` past the step, in the step's own
    transaction; the end of the run rewrites it with its summary, due at once. So admins get one
    notice per run, and a run killed after any commit (kill -9 between two days, or before the
    summary) has already queued what it did: nothing has to remember to send it afterwards.
    """

    def __init__(self, ctx: Context, origin: Origin, now: datetime, who: str) -> None:
        self.ctx, self.origin, self.now, self.who = ctx, origin, now, who
        self.run_id = uuid.uuid4().hex[:12]
        self.archived = self.destroyed = 0
        self.sent: dict[str, int] = {}  # per admin, notices of this run already out of reach (delivered)

    async def step(self, session: AsyncSession, detail: str, archived: int, destroyed: int) -> None:
        """The audit event of one step that archived or destroyed (counts only), and the news so far."""
        await append(session, [origin_event(self.origin, Action.RETENTION, self.now, who=self.who, detail=detail)])
        self.archived += archived
        self.destroyed += destroyed
        so_far = (
            f"A retention run that began {uk_time(self.now)} has not finished: so far "
            f"{plural(self.archived, 'record')} archived at 18 and {self.destroyed} destroyed at 24 "
            "(each step is in the audit log). If it was stopped, the next run carries on where it left off."
        )
        await self._post(session, so_far, self.ctx.clock.now() + UNTOLD_AFTER)

    async def tell(self, session: AsyncSession, text: str) -> None:
        """The run's summary, due now, in place of the news so far (in the caller's transaction)."""
        await self._post(session, text, self.now)

    async def _post(self, session: AsyncSession, text: str, due: datetime) -> None:
        admins = list(await holders(session, Role.ADMIN))
        while admins:
            found = [Notice(pid, "retention", text, dedupe_key=self._key(pid)) for pid in admins]
            stored = await post(session, found, self.now, due)
            # Delivered already (the run stalled past UNTOLD_AFTER): the rest is news of its own.
            admins = [n.recipient_id for n in found if n.dedupe_key not in stored]
            for pid in admins:
                self.sent[pid] = self.sent.get(pid, 0) + 1

    def _key(self, pid: str) -> str:
        sent = self.sent.get(pid, 0)
        return f"retention:{self.run_id}:{pid}" + (f":{sent}" if sent else "")


async def switched_off(ctx: Context, now: datetime) -> bool:
    """Whether the store's switch-off date has come (destroyed or not): the scheduler asks it for
    the tasks that do not run then (bot/scheduler.py ``Task.after_switch_off``); read, not cached."""
    async with ctx.db.read() as session:
        row = await decommission.current(session)
    return row is not None and decommission.is_switched_off(row.switch_off, now.date())


async def decommission_tick(ctx: Context, now: datetime) -> dict[str, Any] | None:
    """Warnings, switch-off, from the destroy-by date destruction, then the purge. Returns a new certificate.

    Once the certificate is signed, each tick first finishes what a run killed after signing left
    (``finish_destruction``)."""
    async with ctx.db.write() as session:
        row = await decommission.timeline(session, ctx.notices.enqueue, now)
    if row is not None and row.certificate is not None:
        await finish_destruction(ctx, now)
        await decommission.purge_if_due(ctx.db, row.id, now)  # once the certificate has reached the admins
        return None
    if row is None or row.state in ("cancelled", "destroyed") or now.date() < row.destroy_by:
        return None
    run = uuid.uuid4().hex  # its started and its outcome share it
    try:
        return await destroy_now(ctx, now, row.id, correlation_id=run)
    except decommission.CompactionNotDone as stopped:
        await _destruction_stalled(ctx, now, row.id, str(stopped), run)
        return None


async def _destruction_stalled(ctx: Context, now: datetime, schedule_id: int, why: str, run: str) -> None:
    """The tick's destruction stopped before the certificate (compaction not done): audited failed,
    as the command's is, and the admins told why and what to do, once a day while it lasts (the
    tick tries again every 10 minutes; nobody reads the scheduler's log)."""
    event = origin_event(
        Origin.SCHEDULER,
        Action.DECOMMISSION_DESTROY,
        now,
        outcome=Outcome.FAILED,
        detail=f"schedule {schedule_id}; compaction not done",
        correlation_id=run,
    )
    async with ctx.db.write() as session:
        await append(session, [event])
        admins = await holders(session, Role.ADMIN)
        await ctx.notices.enqueue(
            session, decommission.to_admins(admins, schedule_id, f"stalled:{now:%Y-%m-%d}", why), now
        )


async def finish_destruction(
    ctx: Context, now: datetime, *, origin: Origin = Origin.SCHEDULER, who: str = ""
) -> str | None:
    """Finish a destruction whose certificate is signed: destroy every key material still on this
    host (a run killed after signing left the signing seed, say) and record it complete. The
    scheduler's tick, ``signpost decommission destroy`` and a server starting up call it; needs no
    lease. Audited as ``origin`` whenever it did anything (key material was left, or the completion
    was not yet recorded), in the transaction that records the destruction complete. Returns what it
    says it did (None: no certificate yet, or nothing left to do)."""
    async with ctx.db.read() as session:
        row = await decommission.current(session)
    if row is None or row.certificate is None:
        return None
    state, schedule_id = row.state, row.id

    async def audit_finished(session: AsyncSession, what: str) -> None:
        done = f", destroyed what was left after the certificate: {what}" if what else " (nothing was left to destroy)"
        detail = f"schedule {schedule_id}: finished{done}"
        await append(session, [origin_event(origin, Action.DECOMMISSION_DESTROY, now, who=who, detail=detail)])

    left = await decommission.finish_certified(
        ctx.db, ctx.keys, ctx.signer, ctx.notices.enqueue, row.id, now, audit=audit_finished
    )
    if not left and state == "destroyed":
        return None
    said = f"Destroyed what a destruction cut short left: {', '.join(left)}. " if left else ""
    async with ctx.db.read() as session:
        return said + await decommission.completion_said(session, json.loads(row.certificate), ctx.db.dialect)


async def destroy_now(
    ctx: Context,
    now: datetime,
    schedule_id: int,
    *,
    origin: Origin = Origin.SCHEDULER,
    who: str = "",
    correlation_id: str | None = None,
) -> dict[str, Any] | None:
    """Destroy everything (after switch-off); None when another process holds the work.

    Audited "started" in the transaction that claims the work (saying which steps an earlier
    attempt finished, when this one resumes it), so the certificate's audit summary covers who
    began it; "done" in the transaction that signs the certificate, whose final chain head then
    covers it too; both under ``correlation_id`` (the caller's, to record a failure under it too).
    A run cut short leaves "started" without "done" until the run that next wins the claim (its
    lease ran out: it is dead) records it failed, cut short (``record_cut_short``), in that same
    transaction. Refusals are looked past: a destroy is refused only before it starts."""
    run = correlation_id or uuid.uuid4().hex

    async def audit_started(session: AsyncSession, earlier: str) -> None:
        await record_cut_short(session, Action.DECOMMISSION_DESTROY, ctx.clock.now(), origin, past_refusals=True)
        detail = f"schedule {schedule_id}" + (f", resuming after {earlier}" if earlier else "")
        event = origin_event(
            origin,
            Action.DECOMMISSION_DESTROY,
            now,
            who=who,
            outcome=Outcome.STARTED,
            detail=detail,
            correlation_id=run,
        )
        await append(session, [event])

    async def audit_done(session: AsyncSession, steps: str) -> None:
        detail = f"schedule {schedule_id}"
        event = origin_event(
            origin, Action.DECOMMISSION_DESTROY, ctx.clock.now(), who=who, detail=detail, correlation_id=run
        )
        await append(session, [event])

    if not await decommission.claim(ctx.db, schedule_id, now, audit_started):
        return None
    return await decommission.run_destruction(
        ctx.db, ctx.keys, ctx.signer, ctx.notices.enqueue, schedule_id, now, audit_done
    )
