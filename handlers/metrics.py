"""What Signpost counts, as a small recorder passed in the Context (no globals).

Handlers, the dispatcher, the audit writer and the scheduler record through ``Recorder``;
bot/metrics.py implements it with prometheus-client (bot/web.py serves ``/metrics``). Labels are only our own
words (an action, an outcome, a notice state, a scheduled task's name, a result): never a person, a
reference, a tenant or anything typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Action, Notice, Outcome
from store.db import after_commit

if TYPE_CHECKING:
    from handlers.context import NoticeSink

# A code that did not step the person up: wrong, reused, malformed, or the credential locked/disabled.
STEPUP_FAILED = frozenset({Outcome.CHALLENGED, Outcome.INVALID, Outcome.LOCKED, Outcome.REFUSED})


class Recorder(Protocol):
    def command(self, action: str, outcome: str, seconds: float) -> None:
        """One answered command: its action, how it ended, and how long it took."""

    def audit_batch(self, size: int, lags: Sequence[float]) -> None:
        """One group commit of the audit writer, of ``size`` events; ``lags`` holds each event's
        seconds from being handed to the writer to being durable."""

    def stepup_failure(self) -> None:
        """A step-up code that was not accepted."""

    def notices(self, state: str, count: int = 1) -> None:
        """Notices ``queued``, ``delivered``, ``failed`` (an attempt to be retried) or ``dropped``
        (not sent on purpose: the recipient is no longer active, or it could not be sent for a week)."""

    def task_run(self, task: str, result: str, seconds: float) -> None:
        """One run of a scheduled task (its fixed name), ``ok`` or ``failed``, and how long it took."""

    def tasks(self, names: Sequence[str]) -> None:
        """The scheduled tasks this process runs (shown with no runs before their first)."""


class NoRecorder:
    """Counts nothing (the default, for tools that serve no /metrics)."""

    def command(self, action: str, outcome: str, seconds: float) -> None:
        pass

    def audit_batch(self, size: int, lags: Sequence[float]) -> None:
        pass

    def stepup_failure(self) -> None:
        pass

    def notices(self, state: str, count: int = 1) -> None:
        pass

    def task_run(self, task: str, result: str, seconds: float) -> None:
        pass

    def tasks(self, names: Sequence[str]) -> None:
        pass


def record_command(recorder: Recorder, action: Action, outcome: Outcome, seconds: float) -> None:
    recorder.command(action.value, outcome.value, seconds)
    if action is Action.CODE and outcome in STEPUP_FAILED:
        recorder.stepup_failure()


class CountedNotices:
    """The notice outbox, counting what is queued (a NoticeSink around another): the new notices,
    once the transaction storing them commits (not a repeat its dedupe key refused, nor a rollback)."""

    def __init__(self, inner: NoticeSink, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    async def enqueue(self, session: AsyncSession, notices: list[Notice], now: datetime) -> int:
        stored = await self.inner.enqueue(session, notices, now)
        self._count(session, stored)
        return stored

    async def enqueue_new(self, session: AsyncSession, dated: Sequence[tuple[Notice, datetime]]) -> set[str]:
        stored = await self.inner.enqueue_new(session, dated)
        self._count(session, len(stored))
        return stored

    def _count(self, session: AsyncSession, stored: int) -> None:
        if stored:
            after_commit(session, lambda: self.recorder.notices("queued", stored))
