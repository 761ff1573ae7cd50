"""What every operator use case shares: the expected-failure types, and ``audited``, the one home
of an operator command's audit: exactly one outcome event per command (and a ``started`` event
first for long work that changes records), and of the outcome of a run killed before it wrote one."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.vocabulary import CUT_SHORT, Action, Origin, Outcome
from store import runs
from store.audit.log import AuditRecord, Started, append, left_started, origin_event
from store.db import after_commit, store_busy, store_read_only
from store.people import practitioners

if TYPE_CHECKING:
    from handlers.operator.decommissioned import NotOnceSwitchedOff

log = structlog.get_logger("signpost.operator")


class Refused(Exception):
    """The command cannot go on; its message is one line for the operator (no personal data).

    Audited as ``outcome`` with ``reason``, never the message itself: that may name a file's
    folder, or repeat what the operator typed."""

    outcome = Outcome.REFUSED

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class Failed(Refused):
    """Work that went wrong on our side in a way we expect (a backup's copy, a key no KEK opens):
    the operator is told why, and the command is audited as failed."""

    outcome = Outcome.FAILED


# Long operator work that runs one at a time on a store (``store.runs.alone``), by the command that
# runs it. A run of it killed before its outcome (kill -9, a lost machine) leaves its audit ending at
# ``started``; the next command of that work, once it holds the lock (so that run is dead, not
# slow), records that run's outcome: failed, ``CUT_SHORT``, under the dead run's own name and
# correlation id. Not a key rotation (its rerun's ``started`` says it is finishing the one cut
# short: handlers/operator/lifecycle.py).
ONE_AT_A_TIME: dict[Action, str] = {
    Action.IMPORT: "signpost import",
    Action.SEED_DEMO: "signpost seed-demo",
    Action.RETENTION_RUN: "signpost retention run",
}
# Work of which runs naming different things go side by side, one at a time per name (its events
# name it: ``store.audit.log.left_started``): backups, into different files. Its ``started`` holds
# that name's lock (``Audit.one_per_name``) and records a dead run of that name cut short, as above
# (one killed after naming its file is recorded finished by its rerun instead: lifecycle.py).
ONE_PER_NAME: dict[Action, str] = {Action.BACKUP: "signpost backup"}
# Decommissioning's destruction is claimed with a lease instead (store/lifecycle/decommission.py):
# the run that wins the claim records the run whose lease ran out cut short (``record_cut_short``).
_DETAIL_AT_MOST = 200  # audit_events.detail


def cut_short(detail: str) -> str:
    """The outcome's detail for a run whose ``started`` said ``detail``: the words always whole."""
    if not detail:
        return CUT_SHORT
    return f"{detail[: _DETAIL_AT_MOST - len(CUT_SHORT) - 2]}: {CUT_SHORT}"


async def record_cut_short(
    session: AsyncSession,
    action: Action,
    at: datetime,
    origin: Origin,
    *,
    naming: tuple[str, ...] | None = None,
    past_refusals: bool = False,
) -> None:
    """For the caller who has proved no other run of this work is live (it holds its lock, or won
    its claim): when the work's last event (``left_started``, told ``naming`` and ``past_refusals``)
    is a ``started``, that run is dead; record its outcome, failed and ``CUT_SHORT``, in ``session``.
    With ``naming``, the outcome names it by the first of those names (what its events say now),
    never by a former one its ``started`` may say (a backup's file name, before labels)."""
    earlier = await left_started(session, action, naming=naming, past_refusals=past_refusals)
    if earlier is not None:
        detail = cut_short(earlier.detail if naming is None else naming[0])
        await append(session, [earlier_run_event(action, earlier, at, origin, Outcome.FAILED, detail)])


def earlier_run_event(
    action: Action, earlier: Started, at: datetime, origin: Origin, outcome: Outcome, detail: str
) -> AuditRecord:
    """The outcome of a dead run, recorded by a later one: under the dead run's own origin
    (``origin`` when not one we know), account and correlation id, so its ``started`` has its one answer."""
    known = next((known for known in Origin if known.value == earlier.platform), origin)
    return origin_event(
        known,
        action,
        at,
        who=earlier.user_id,
        outcome=outcome,
        detail=detail,
        correlation_id=earlier.correlation_id,
    )


async def record(ctx: Context, event: AuditRecord) -> None:
    """Make one event durable on its own (for commands whose work is not a transaction of ours)."""
    async with ctx.db.write() as session:
        await append(session, [event])


class Audit:
    """One operator command's audit, handed to its use case by ``audited``.

    The use case says what it knows as it goes (``detail``, ``subjects``, ``result_count``), records
    ``started`` before long work changes anything, and may record its outcome itself: ``done`` (a
    read: durable before anything is shown) or ``done_in`` (in the transaction of the work, so both
    commit or neither). Whatever it leaves unrecorded, ``audited`` records when the command ends."""

    def __init__(self, ctx: Context, who: str, action: Action, origin: Origin) -> None:
        self.ctx, self.who, self.action, self.origin = ctx, who, action, origin
        self.detail = ""
        self.subjects: tuple[int, ...] = ()
        self.result_count = 0
        self.correlation_id = uuid.uuid4().hex  # its started and its outcome share it
        self._recorded = False
        self._lock = action.value if action in ONE_AT_A_TIME else None  # the lock its started holds
        self._naming: tuple[str, ...] | None = None  # what its runs are one at a time per (``one_per_name``)
        self._shown = ""  # what the operator is told it is (``one_per_name``)
        self._alone = AsyncExitStack()  # the lock of work run one at a time, while it runs
        self._holding = False
        # The register's id of the practitioner the command acts as (``acting_as``), or None.
        self.practitioner: str | None = None

    async def acting_as(self, claimed: str) -> None:
        """The command acts as the practitioner ``claimed`` names, if the register holds one: its
        events then name them (the register's id); otherwise they keep naming the operator's account."""
        async with self.ctx.db.read() as session:
            actor = await practitioners.get_actor(session, claimed)
        if actor is not None:
            self.practitioner = self.who = actor.practitioner_id

    def one_per_name(self, name: str, shown: str | None = None, *, formerly: str | None = None) -> None:
        """Its work runs one at a time per ``name`` (``ONE_PER_NAME``): ``started`` holds the lock of
        that name, refuses while another run of it is live, and records a dead one cut short.
        ``name`` is what its events say (never text the operator typed: ``backup_label``);
        ``shown``, what the refusal tells the operator (the file they typed), never recorded;
        ``formerly``, what events written before ``name`` was its name said instead (a dead run of
        the previous version is found by it too, and recorded cut short by ``name``)."""
        assert self.action in ONE_PER_NAME
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]  # a short lock name
        self._lock, self._shown = f"{self.action.value}-{digest}", shown or name
        self._naming = (name,) if formerly is None else (name, formerly)

    def event(self, outcome: Outcome, detail: str | None = None, result_count: int | None = None) -> AuditRecord:
        return origin_event(
            self.origin,
            self.action,
            self.ctx.clock.now(),
            who=self.who,
            outcome=outcome,
            subjects=self.subjects,
            result_count=self.result_count if result_count is None else result_count,
            detail=self.detail if detail is None else detail,
            correlation_id=self.correlation_id,
        )

    async def started(self, detail: str | None = None) -> None:
        """Long work is about to change records: say so durably first, so a run cut short shows.

        Work run one at a time (``ONE_AT_A_TIME``, or per name: ``one_per_name``) is refused while
        another run of it is live; otherwise it holds the lock until its command ends, and first
        records the outcome of a run of it cut short, in the same transaction as this ``started``."""
        started = self.event(Outcome.STARTED, detail)
        if self._lock is None or self._holding:
            await record(self.ctx, started)
            return
        if not await self._hold(self._lock):
            running = (
                f"another `{ONE_PER_NAME[self.action]}` to {self._shown} is running"
                if self._naming is not None
                else f"another `{ONE_AT_A_TIME[self.action]}` is running on this store"
            )
            raise Refused(f"{running}: wait for it to finish, then run this again", reason="another run is live")
        async with self.ctx.db.write() as session:
            await self._record_cut_short(session)
            await append(session, [started])

    async def started_alone(self, detail: str | None = None) -> None:
        """``started`` for work its use case holds alone by a lock of its own, taken before this (a
        key rotation: the key file's serving lock, exclusively): no other run of it is live, so a
        ``started`` of it with nothing after is a dead run's, recorded failed, cut short, in the
        same transaction as this ``started``, as work run ``ONE_AT_A_TIME`` does."""
        async with self.ctx.db.write() as session:
            await self._record_cut_short(session)
            await append(session, [self.event(Outcome.STARTED, detail)])

    async def settle_earlier(self) -> None:
        """Before a command of work run one at a time does anything (a dry run, a refusal, a run):
        record the outcome of a run of it cut short, unless another run is live (then nothing). So a
        command that writes no ``started`` of its own never buries a dead one under its outcome."""
        async with runs.alone(self.ctx.db, self.action.value) as held:
            if not held:
                return
            async with self.ctx.db.read() as session:  # most often nothing: no write lock waited for
                if await left_started(session, self.action) is None:
                    return
            async with self.ctx.db.write() as session:
                await self._record_cut_short(session)

    async def _hold(self, lock: str) -> bool:
        """Take this work's lock for the rest of the command; False when another run holds it."""
        attempt = AsyncExitStack()
        if not await attempt.enter_async_context(runs.alone(self.ctx.db, lock)):
            await attempt.aclose()
            return False
        self._alone, self._holding = attempt, True
        return True

    async def _record_cut_short(self, session: AsyncSession) -> None:
        """Under the lock: the last event of this work (of its name) a ``started`` means its run is dead."""
        await record_cut_short(session, self.action, self.ctx.clock.now(), self.origin, naming=self._naming)

    async def let_go(self) -> None:
        """The command has ended (its outcome recorded, or not: killed from outside): another run may start."""
        self._holding = False
        await self._alone.aclose()

    async def done(self, detail: str | None = None) -> None:
        """The outcome, durable now: before a read shows anything (no event, no output)."""
        if detail is not None:
            self.detail = detail
        await record(self.ctx, self.event(Outcome.DONE))
        self._recorded = True

    async def done_in(self, session: AsyncSession, detail: str | None = None, result_count: int | None = None) -> None:
        """The outcome, in the work's own transaction: it counts once that transaction commits (a
        rollback, of it or of the savepoint it was written in, leaves the command's outcome to
        ``audited``, which records it failed). ``store.db.after_commit`` is the one home of "once it
        commits"."""
        await append(session, [self.event(Outcome.DONE, detail, result_count)])
        after_commit(session, self.recorded)

    def recorded(self) -> None:
        """The use case wrote its outcome event itself (a batch match, a destruction run shared
        with the scheduler): nothing more to record."""
        self._recorded = True

    async def close(self, outcome: Outcome, why: str = "") -> None:
        """Record the outcome unless it already was."""
        if self._recorded:
            return
        self._recorded = True
        await record(self.ctx, self.event(outcome, "; ".join(part for part in (self.detail, why) if part)))


@asynccontextmanager
async def audited(
    ctx: Context,
    who: str,
    action: Action,
    *,
    origin: Origin = Origin.TERMINAL,
    not_once_switched_off: NotOnceSwitchedOff | None = None,
    claimed: str | None = None,
) -> AsyncIterator[Audit]:
    """Run one operator command with exactly one outcome event: ``done`` when it ends normally,
    ``refused`` (or the ``Refused``'s own outcome) with its reason, ``failed`` with the kind of
    exception — never its text, which may quote a row of a feed or what was typed.

    A command that does not run once Signpost is switched off (``not_once_switched_off``) is
    refused then, before it does anything (handlers/operator/decommissioned.py).

    A command stopped from outside (Ctrl-C, a kill) records nothing more: its ``started`` event,
    if it wrote one, is left alone, as after a kill -9; the next command of that work (``ONE_AT_A_TIME``;
    of its name: ``ONE_PER_NAME``) records it cut short.

    ``claimed``: the practitioner id the operator typed for the command to act as (`match --as`),
    not yet checked. Its events name that practitioner (``Audit.practitioner``) only when the
    register holds one with that id, under the register's own id; otherwise ``who``, the operator's
    account, as for every command without one: the typed text (a name, a postcode) is kept nowhere."""
    audit = Audit(ctx, who, action, origin)
    try:
        try:
            if claimed is not None:
                await audit.acting_as(claimed)
            if not_once_switched_off is not None:
                from handlers.operator.decommissioned import refuse  # it refuses with ours: imported here

                await refuse(ctx, not_once_switched_off)
            if action in ONE_AT_A_TIME:
                await audit.settle_earlier()
            yield audit
        except Refused as refused:
            await _close_after(audit, refused.outcome, refused.reason)
            raise
        except Exception as exc:
            await _close_after(audit, Outcome.FAILED, type(exc).__name__)
            raise
        await audit.close(Outcome.DONE)
    finally:
        await audit.let_go()


async def _close_after(audit: Audit, outcome: Outcome, why: str) -> None:
    """Record a command's refusal or failure; if even that cannot be written (the store is gone),
    log it and let the command's own exception be the one the operator sees."""
    try:
        await audit.close(outcome, why)
    except Exception as exc:
        if store_read_only(exc) is not None or store_busy(exc) is not None:  # nothing could be written:
            return  # the command's own exception says so, once, where it is caught (bot/cli/main.py)
        log.error("operator_outcome_unrecorded", action=audit.action.value, outcome=outcome.value, exc_info=exc)
