"""The one home of a notice closed unsent ("dropped"): every way a notice is closed without being
sent (a request decided, a relayed message handed on, a drop a worker finds on its claim, a recipient
no longer active, a week gone by, a decommissioning, the child it names destroyed) closes it through
``close``, which tells the operator once the closing has committed: one ``notice_dropped`` log line
a notice (its id, kind and reason, which names nobody; nothing else) and one count a notice
(``signpost_notices_total{state="dropped"}`` on /metrics, through every counter ``count_with`` gives
the database). A closing rolled back is neither logged nor counted (``store.db.after_commit``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database, after_commit
from store.tables.delivery import Notice as NoticeRow

log = structlog.get_logger("signpost.notify")

_COUNT = "store.delivery.drops.count"
"""``session.info`` key (``Database.session_info``): what counts the notices dropped, once committed."""


@dataclass(frozen=True, slots=True, order=True)
class Dropped:
    """A notice closed unsent: its id, its kind, and why (as logged: names nobody)."""

    notice_id: int
    kind: str
    reason: str


def count_with(db: Database, count: Callable[[int], None]) -> None:
    """Count with ``count`` (how many) the notices every write transaction on ``db`` drops, once it
    commits: the process's /metrics (``bot.app.build``). Without it they are logged only.

    Every counter given is kept, and each counts every notice ``db`` drops: a drop is a fact of the
    database, not of the app whose request made it (a session comes from ``db``, which knows no app),
    so two apps built on one database each show all of its drops rather than one stealing them."""
    counters: list[Callable[[int], None]] = db.session_info.setdefault(_COUNT, [])
    counters.append(count)


async def close(
    session: AsyncSession,
    where: ColumnElement[bool],
    now: datetime,
    reason: str | ColumnElement[Any],
    *,
    attempted: bool = True,
    said: Callable[[str], str] = str,
    **also: Any,
) -> list[Dropped]:
    """Close, unsent, the notices ``where`` names that are still open (neither delivered nor
    dropped), recorded with ``reason`` (a string, or an expression of the row) and as one more
    attempt unless not ``attempted``, with any ``also`` set besides: one statement. Each one closed,
    by id, told once the caller's transaction commits (``told``), its reason as ``said`` puts it."""
    values: dict[str, Any] = {"dropped_at": now, "last_error": reason, **also}
    if attempted:
        values["attempts"] = NoticeRow.attempts + 1
    result = await session.execute(
        update(NoticeRow)
        .where(where, NoticeRow.delivered_at.is_(None), NoticeRow.dropped_at.is_(None))
        .values(values)
        .returning(NoticeRow.id, NoticeRow.kind, NoticeRow.last_error)
        .execution_options(synchronize_session=False)
    )
    dropped = sorted(Dropped(int(row.id), row.kind, said(row.last_error or "")) for row in result)
    told(session, dropped)
    return dropped


def told(session: AsyncSession, dropped: Sequence[Dropped]) -> None:
    """Once the session's transaction commits (never if it rolls back): a ``notice_dropped`` line
    each, and all counted at once."""
    if not dropped:
        return
    counters: list[Callable[[int], None]] = session.info.get(_COUNT, [])

    def tell() -> None:
        for notice in dropped:
            log.info("notice_dropped", notice_id=notice.notice_id, kind=notice.kind, reason=notice.reason)
        for count in tuple(counters):
            count(len(dropped))

    after_commit(session, tell)
