"""What every operator use case shares: the expected-failure types, and ``audited``, the one home
of an operator command's audit: exactly one outcome event per command (and a ``started`` event
first for long work that changes records)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from handlers.context import Context
from handlers.vocabulary import Action, Origin, Outcome
from store.audit.log import AuditRecord, append, origin_event

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
        self._recorded = False

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
        )

    async def started(self, detail: str | None = None) -> None:
        """Long work is about to change records: say so durably first, so a run cut short shows."""
        await record(self.ctx, self.event(Outcome.STARTED, detail))

    async def done(self, detail: str | None = None) -> None:
        """The outcome, durable now: before a read shows anything (no event, no output)."""
        if detail is not None:
            self.detail = detail
        await record(self.ctx, self.event(Outcome.DONE))
        self._recorded = True

    async def done_in(self, session: AsyncSession, detail: str | None = None, result_count: int | None = None) -> None:
        """The outcome, in the work's own transaction: it counts once that transaction commits (a
        rollback leaves the command's outcome to ``audited``, which records it failed)."""
        await append(session, [self.event(Outcome.DONE, detail, result_count)])

        def committed(_: Session) -> None:
            self._recorded = True

        orm_event.listen(session.sync_session, "after_commit", committed, once=True)

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
async def audited(ctx: Context, who: str, action: Action, *, origin: Origin = Origin.TERMINAL) -> AsyncIterator[Audit]:
    """Run one operator command with exactly one outcome event: ``done`` when it ends normally,
    ``refused`` (or the ``Refused``'s own outcome) with its reason, ``failed`` with the kind of
    exception — never its text, which may quote a row of a feed or what was typed.

    A command stopped from outside (Ctrl-C, a kill) records nothing more: its ``started`` event,
    if it wrote one, is left alone, as after a kill -9."""
    audit = Audit(ctx, who, action, origin)
    try:
        yield audit
    except Refused as refused:
        await _close_after(audit, refused.outcome, refused.reason)
        raise
    except Exception as exc:
        await _close_after(audit, Outcome.FAILED, type(exc).__name__)
        raise
    await audit.close(Outcome.DONE)


async def _close_after(audit: Audit, outcome: Outcome, why: str) -> None:
    """Record a command's refusal or failure; if even that cannot be written (the store is gone),
    log it and let the command's own exception be the one the operator sees."""
    try:
        await audit.close(outcome, why)
    except Exception as exc:
        log.error("operator_outcome_unrecorded", action=audit.action.value, outcome=outcome.value, exc_info=exc)
