"""Admins are told of every retention run that archived or destroyed records: one notice each per
run, queued in the transactions that changed the records, so a run killed part way is still told."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.app import Signpost
from bot.notify import Outbox
from handlers.clock import FakeClock
from handlers.lifecycle.flows import UNTOLD_AFTER, RetentionNews, retention_tick
from handlers.vocabulary import Notice, Origin, Platform, Principal
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from tests.store.lifecycle.lifecycle_data import at, load, retention_on

ROOT = Path(__file__).resolve().parents[3]
ADMINS = ["AD01", "AD02"]
NOV_2, NOV_3, NOV_5 = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 5)


class ConsolePlatform:
    """Takes every notice for the console (where every active practitioner is reachable)."""

    platform = Platform.CONSOLE

    def __init__(self) -> None:
        self.sent: list[tuple[Principal, Notice]] = []

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.sent.append((to, notice))

    def told(self) -> list[tuple[str, str]]:
        """(admin, text) of every retention notice sent so far."""
        return sorted((to.user_id, n.text) for to, n in self.sent if n.kind == "retention")


async def retention_rows(app: Signpost) -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        found = await session.execute(select(NoticeRow).where(NoticeRow.kind == "retention").order_by(NoticeRow.id))
        return list(found.scalars())


async def retention_details(app: Signpost) -> list[str]:
    async with app.ctx.db.read() as session:
        found = await session.execute(
            select(AuditEvent.detail).where(AuditEvent.action == "retention").order_by(AuditEvent.seq)
        )
        return [str(detail) for detail in found.scalars()]


# `signpost retention run` on 3 November 2026, killed (SIGKILL) once its days are committed and
# punctured (in seal-in of the audit-term month keys), before the end of the run.
_KILLED_AFTER_THE_DAYS = """
import os, signal
from datetime import UTC, datetime
import handlers.clock
import store.lifecycle.retention as retention
from bot.cli.main import main

handlers.clock.SystemClock.now = lambda self: datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


async def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


retention._seal_in_periods = die
main(["retention", "run"])
"""


async def test_a_retention_run_killed_after_its_days_still_tells_every_admin_once(
    signpost: Signpost, clock: FakeClock, db_url: str, tmp_path: Path
) -> None:
    """The review's case as a real process: `signpost retention run` killed (SIGKILL) after the
    day that archived one child and destroyed another was committed. The next run has nothing due,
    yet each admin already has the run's notice queued, with its counts: held a few minutes (a
    live run replaces it with its summary), then delivered once by the outbox."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    platform = ConsolePlatform()
    box = Outbox(signpost.ctx, [platform])
    await box.deliver_due(at(NOV_2))  # the first run's own notice, told before the one under test
    platform.sent.clear()
    before = await retention_rows(signpost)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SIGNPOST_DATABASE_URL": db_url,
        "SIGNPOST_KEY_FILE": str(signpost.ctx.keys.path),
        "SIGNPOST_LOG_FORMAT": "json",
    }
    died = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_THE_DAYS], cwd=tmp_path, env=env, capture_output=True, check=False
    )
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]
    # The day is committed and audited; the run never reached its end (no "run totals" after it).
    assert (await retention_details(signpost))[-1] == "day 2026-11-03: archived 1 destroyed 1"

    clock.set(at(NOV_3))
    again = await retention_tick(signpost.ctx, clock.now())
    assert again.first_day is None and (again.archived, again.destroyed) == (0, 0)  # "nothing due"
    queued = [row for row in await retention_rows(signpost) if row.id not in {r.id for r in before}]
    assert sorted(row.recipient_id for row in queued) == ADMINS
    assert all(row.delivered_at is None and row.dropped_at is None for row in queued)

    await box.deliver_due(at(NOV_3))
    assert platform.told() == []  # held: a live run would have replaced it with its summary by now
    await box.deliver_due(at(NOV_3) + UNTOLD_AFTER + timedelta(minutes=1))
    await box.deliver_due(at(NOV_3) + UNTOLD_AFTER + timedelta(hours=2))
    told = platform.told()
    assert [admin for admin, _ in told] == ADMINS, "each admin told once"
    assert all("so far 1 record archived at 18 and 1 destroyed at 24" in text for _, text in told)
    assert all("has not finished" in text for _, text in told)


async def test_a_run_over_several_days_sends_one_summary_per_admin(signpost: Signpost, clock: FakeClock) -> None:
    """Catching up four days, two of which changed records, queues one notice per admin: the run's
    summary, due at once (the news written by each day is replaced, never sent beside it)."""
    await load(signpost)
    report = await retention_on(signpost, NOV_5)
    assert (report.first_day, report.archived, report.destroyed) == (NOV_2, 1, 1)
    rows = await retention_rows(signpost)
    assert sorted(row.recipient_id for row in rows) == ADMINS
    assert all(row.not_before == clock.now() and "Retention (02/11/2026 to 05/11/2026)" in row.body for row in rows)
    platform = ConsolePlatform()
    await Outbox(signpost.ctx, [platform]).deliver_due(clock.now())
    assert [admin for admin, _ in platform.told()] == ADMINS


async def test_news_already_delivered_is_followed_by_the_summary(signpost: Signpost, clock: FakeClock) -> None:
    """A run that stalls past the hold has its news so far delivered; its summary is then a notice
    of its own (never written over one already sent), and each is delivered once."""
    await load(signpost)
    news = RetentionNews(signpost.ctx, Origin.SCHEDULER, clock.now(), "")
    async with signpost.ctx.db.write() as session:
        await news.step(session, "day 2026-11-02: archived 2 destroyed 0", 2, 0)
    platform = ConsolePlatform()
    box = Outbox(signpost.ctx, [platform])
    await box.deliver_due(clock.now() + UNTOLD_AFTER)
    assert [text for _, text in platform.told()] == [
        "A retention run that began 02/11/2026 09:00 GMT has not finished: so far 2 records archived at 18 "
        "and 0 destroyed at 24 (each step is in the audit log). If it was stopped, the next run carries on "
        "where it left off."
    ] * 2
    async with signpost.ctx.db.write() as session:
        await news.tell(session, "Retention (02/11/2026 to 02/11/2026): the summary.")
    await box.deliver_due(clock.now() + UNTOLD_AFTER)
    summaries = [admin for admin, text in platform.told() if text.endswith("the summary.")]
    assert summaries == ADMINS
    assert len(await retention_rows(signpost)) == 4


async def test_a_day_with_nothing_archived_or_destroyed_tells_no_admin_but_is_audited(
    signpost: Signpost, clock: FakeClock
) -> None:
    """The day after the birthdays nobody turns 18 or 24: the run is in the audit log as ever, but
    no admin gets a notice saying that nothing happened (a daily "0 and 0" teaches admins to skip
    retention notices; at national scale every day archives some, and those days are still told)."""
    await load(signpost)
    await retention_on(signpost, NOV_5)
    told_before = len(await retention_rows(signpost))
    audited_before = len(await retention_details(signpost))
    report = await retention_on(signpost, date(2026, 11, 6))
    assert report.first_day == date(2026, 11, 6) and (report.archived, report.destroyed) == (0, 0)
    assert len(await retention_rows(signpost)) == told_before, "no notice for a day with nothing done"
    assert len(await retention_details(signpost)) > audited_before, "the run is audited all the same"
