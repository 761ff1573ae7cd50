"""`retention run --dry-run --as-of` years ahead: counts what the days would do, in a handful of
statements whatever the span, and agrees with the runs that then do it."""

from __future__ import annotations

import csv
from datetime import date, timedelta

from sqlalchemy import select

from bot.app import Signpost
from store.keys.keychain import ARCHIVE_AT_AGE, DESTROY_AT_AGE, birthday
from store.lifecycle import retention as lifecycle
from store.register.feeds import Feed, import_feeds
from store.tables.register import Child
from tests.factories import CHILDREN, INVOLVEMENTS, PRACTITIONERS
from tests.statements import statements_sent
from tests.store.lifecycle.lifecycle_data import at, ref, retention_on

NOV_2 = date(2026, 11, 2)
# One child every 61 days from 16 November 2002 (24 a fortnight after the import) to 2026: some are
# adults held archived, some turn 18 or 24 within a year, some turn 18 and then 24 within seven.
SPAN = {ref(100 + n): date(2002, 11, 16) + timedelta(days=61 * n) for n in range(140)}
# Every child held, the standard test children among them, by reference.
BORN = {row[0]: date.fromisoformat(row[4]) for row in csv.reader(CHILDREN.splitlines()[1:]) if row} | SPAN


async def load_span(app: Signpost) -> None:
    rows = "".join(
        f"{child},Kit,Span{n},,{born.isoformat()},F,M9 9ZZ,Northshire,false\n"
        for n, (child, born) in enumerate(SPAN.items())
    )
    feeds = [
        Feed("practitioners.csv", PRACTITIONERS),
        Feed("children.csv", CHILDREN + rows),
        Feed("involvements.csv", INVOLVEMENTS),
    ]
    report = await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
    assert not report.problems


async def expected(app: Signpost, first: date, last: date) -> tuple[int, int]:
    """(archived, destroyed) by the children's own dates of birth and states: what the days from
    ``first`` to ``last`` archive (active, turning 18) and destroy (active or archived, turning 24)."""
    async with app.ctx.db.read() as session:
        state = {child: held for child, held in await session.execute(select(Child.ref, Child.state))}
    archived = destroyed = 0
    for child, born in BORN.items():
        held = state[int(child)]
        archived += held == "active" and first <= birthday(born, ARCHIVE_AT_AGE) <= last
        destroyed += held in ("active", "archived") and first <= birthday(born, DESTROY_AT_AGE) <= last
    return archived, destroyed


async def test_a_dry_run_years_ahead_counts_every_child_the_days_would_archive_or_destroy(signpost: Signpost) -> None:
    """A dry run a day, a year and seven years ahead counts exactly the children whose 18th or 24th
    birthday falls in its span (a child turning both counted as both, as the run counts it), in a
    few statements: it read two a day before (5,110 over seven years) and listed every child."""
    signpost.ctx.clock.set(at(NOV_2))  # type: ignore[attr-defined]
    await load_span(signpost)
    await retention_on(signpost, NOV_2)
    first = NOV_2 + timedelta(days=1)
    for last in (first, first + timedelta(days=365), first + timedelta(days=7 * 365)):
        with statements_sent(signpost.ctx.db) as statements:
            preview = await lifecycle.preview(signpost.ctx.db, signpost.ctx.keys, NOV_2, last)
        assert (preview.archived, preview.destroyed) == await expected(signpost, first, last), last
        assert len(statements) <= 24, (last, len(statements))  # 12 counts over seven years, and the rest
    seven_years = await lifecycle.preview(signpost.ctx.db, signpost.ctx.keys, NOV_2, first + timedelta(days=7 * 365))
    assert seven_years.archived >= 30 and seven_years.destroyed >= 30  # the span is not empty
    both = [b for b in BORN.values() if first <= birthday(b, ARCHIVE_AT_AGE) <= first + timedelta(days=365 * 7)]
    assert any(birthday(b, DESTROY_AT_AGE) <= first + timedelta(days=365 * 7) for b in both)


async def test_a_dry_run_a_year_ahead_says_what_the_runs_of_that_year_then_do(signpost: Signpost) -> None:
    """The counts of a dry run 400 days ahead are the sums of the daily runs that follow."""
    signpost.ctx.clock.set(at(NOV_2))  # type: ignore[attr-defined]
    await load_span(signpost)
    await retention_on(signpost, NOV_2)
    last = NOV_2 + timedelta(days=400)
    preview = await lifecycle.preview(signpost.ctx.db, signpost.ctx.keys, NOV_2, last)
    archived = destroyed = 0
    day = NOV_2
    while day < last:
        day = min(day + timedelta(days=30), last)
        report = await retention_on(signpost, day)
        archived, destroyed = archived + report.archived, destroyed + report.destroyed
    assert (archived, destroyed) == (preview.archived, preview.destroyed)
    assert archived > 0 and destroyed > 0
