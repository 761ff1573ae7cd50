"""An import after a retention run whose clock was ahead of the import's: a row of a birth date whose
cohort that run already destroyed is a child past retention, never a crash that blocks the feed."""

from __future__ import annotations

from datetime import date

from bot.app import Signpost
from store.register import children
from store.register.feeds import Feed, ImportReport, import_feeds
from tests.factories import CHILDREN, INVOLVEMENTS, PRACTITIONERS
from tests.store.lifecycle.lifecycle_data import (
    LIFECYCLE_CHILDREN,
    LIFECYCLE_INVOLVEMENTS,
    MARKER,
    TURNS_18,
    at,
    ref,
    retention_on,
)

NOV_2, NOV_8 = date(2026, 11, 2), date(2026, 11, 8)
AHEAD = ref(6)  # born 5 November 2002: 23 on 2 November 2026, 24 on the 5th
AHEAD_ROW = f"{AHEAD},Kit,{MARKER},,2002-11-05,F,M9 1AA,Northshire,false\n"


def feeds(turns_18_postcode: str = "M3 4EF") -> list[Feed]:
    lifecycle = LIFECYCLE_CHILDREN.replace("M3 4EF", turns_18_postcode)
    return [
        Feed("practitioners.csv", PRACTITIONERS),
        Feed("children.csv", CHILDREN + lifecycle + AHEAD_ROW),
        Feed(
            "involvements.csv",
            INVOLVEMENTS + LIFECYCLE_INVOLVEMENTS + f"{AHEAD},P001,School nursing,2020-01-10,,false\n",
        ),
    ]


async def import_on(app: Signpost, day: date, postcode: str = "M3 4EF") -> ImportReport:
    app.ctx.clock.set(at(day))  # type: ignore[attr-defined]
    return await import_feeds(app.ctx.db, app.ctx.keys, feeds(postcode), app.ctx.clock.now())


async def held(app: Signpost, reference: str) -> tuple[str | None, str | None]:
    """(state, postcode) of a child: the postcode only while its identity can be read."""
    async with app.ctx.db.read() as session:
        record = await children.find(session, app.ctx.keys, int(reference))
        identities = await children.load_identities(session, app.ctx.keys, [int(reference)])
    found = identities.get(int(reference))
    return (None if record is None else record.state), (None if found is None else found.postcode)


def said_plainly(report: ImportReport) -> str:
    notes = " ".join(report.notes())
    assert MARKER not in notes and "Kit" not in notes and "2002" not in notes  # no name, no date of birth
    return notes


async def test_a_first_import_after_a_run_ahead_leaves_that_row_out_as_past_retention(signpost: Signpost) -> None:
    """Retention ran on 8 November (a clock ahead) on an empty store, destroying the cohort of 5
    November 2002; an import on the 2nd of a row born that day stores everything else, leaves that
    child out as past retention, and says so without naming it."""
    await retention_on(signpost, NOV_8)
    report = await import_on(signpost, NOV_2)
    assert report.ok
    # Born 2000 (24 or over); born 3 and 5 November 2002 (23, both cohorts destroyed by the run).
    assert (report.past_retention, report.past_retention_ahead, report.past_retention_involvements) == (3, 2, 2)
    assert await held(signpost, AHEAD) == (None, None)
    assert (await held(signpost, TURNS_18))[0] == "active"
    assert "a retention run dated later than this import" in said_plainly(report)


async def test_a_later_import_after_a_run_ahead_goes_through_and_keeps_the_record_destroyed(
    signpost: Signpost,
) -> None:
    """The child was held; a run on 8 November destroyed it with its cohort; the next day's feed
    on the 2nd (still holding its row) imports every other change, and the record stays destroyed."""
    await import_on(signpost, NOV_2)
    assert (await held(signpost, AHEAD))[0] == "archived"
    await retention_on(signpost, NOV_8)
    assert (await held(signpost, AHEAD))[0] == "destroyed"
    report = await import_on(signpost, NOV_2, postcode="M3 9ZZ")
    assert report.ok
    assert (report.past_retention, report.past_retention_ahead) == (3, 2)
    assert await held(signpost, AHEAD) == ("destroyed", None)
    assert await held(signpost, TURNS_18) == ("archived", "M3 9ZZ")  # the rest of the feed applied
    assert "a retention run dated later than this import" in said_plainly(report)
