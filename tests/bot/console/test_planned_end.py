"""An involvement with a planned end (``ended`` after today, which a feed may carry) is current until
that day, then ended on it without any re-import: what a practitioner sees in the console, Slack and
Teams after a real keyed enquiry, on both backends. The FakeClock starts on 02/11/2026."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.app import Signpost
from bot.console.render import render
from bot.slack.render import signpost_block
from bot.teams.render import signpost_container
from handlers.vocabulary import Outcome, Reply
from store.register.feeds import Feed, import_feeds
from tests.access_helpers import load_access, search_as
from tests.factories import AMY, INVOLVEMENTS_HEADER

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

# Sam (P001) leads until tomorrow; Priya's (P002) ended before today; Tom (P003) has no end.
PLANNED = f"""{INVOLVEMENTS_HEADER}
{AMY},P001,Children's social care,2025-01-10,2026-11-03,true
{AMY},P002,School nursing,2024-09-01,2026-10-30,false
{AMY},P003,Education,2022-09-01,,false
"""


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    await import_feeds(
        signpost.ctx.db, signpost.ctx.keys, [Feed("involvements.csv", PLANNED)], signpost.ctx.clock.now()
    )
    return signpost


async def _seen(app: Signpost) -> tuple[Reply, str, str, str]:
    """The answer to DM01's keyed enquiry for Amy, as the console, Slack and Teams show it."""
    reply = await search_as(app, "DM01", AMY)
    assert reply.outcome is Outcome.ANSWERED
    slack = json.dumps([signpost_block(p) for p in reply.signposts], ensure_ascii=False)
    teams = json.dumps([signpost_container(p) for p in reply.signposts], ensure_ascii=False)
    return reply, render(reply), slack, teams


async def test_an_involvement_ending_tomorrow_is_shown_current_with_its_end(app: Signpost) -> None:
    reply, console, slack, teams = await _seen(app)
    assert [(p.practitioner_name, p.current) for p in reply.signposts] == [
        ("Sam Carter", True),
        ("Tom Reed", True),
        ("Priya Shah", False),
    ]
    assert "Children's social care: since 10/01/2025, current, ends 03/11/2026" in console
    assert "Education: since 01/09/2022, current\n" in console
    assert "School nursing: since 01/09/2024, ended 30/10/2026" in console
    assert "since 10/01/2025 · current, ends 03/11/2026" in slack and "Ended* 03/11/2026" not in slack
    assert "(since 10/01/2025, current, ends 03/11/2026)" in teams and "ended 03/11/2026" not in teams


async def test_on_its_end_date_the_involvement_is_shown_ended_without_a_reimport(app: Signpost) -> None:
    app.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    reply, console, slack, teams = await _seen(app)
    assert [(p.practitioner_name, p.current) for p in reply.signposts] == [
        ("Sam Carter", False),
        ("Tom Reed", True),
        ("Priya Shah", False),
    ]
    assert "Children's social care: since 10/01/2025, ended 03/11/2026" in console
    assert "ends 03/11/2026" not in console + slack + teams
    assert "since 10/01/2025 · *Ended* 03/11/2026" in slack
    assert "(since 10/01/2025, ended 03/11/2026)" in teams


async def test_an_end_date_is_a_day_in_the_uk(app: Signpost) -> None:
    """At 00:30 BST on its end date (23:30 UTC the day before) the involvement has ended, as a
    practitioner reading the date would say; at 23:30 BST the day before it is still current."""
    await import_feeds(
        app.ctx.db,
        app.ctx.keys,
        [Feed("involvements.csv", PLANNED.replace("2026-11-03", "2027-07-31"))],
        app.ctx.clock.now(),
    )
    app.ctx.clock.set(datetime(2027, 7, 30, 22, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    reply, _, _, _ = await _seen(app)
    assert ("Sam Carter", True) in [(p.practitioner_name, p.current) for p in reply.signposts]
    app.ctx.clock.set(datetime(2027, 7, 30, 23, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    reply, console, _, _ = await _seen(app)
    assert ("Sam Carter", False) in [(p.practitioner_name, p.current) for p in reply.signposts]
    assert "Children's social care: since 10/01/2025, ended 31/07/2027" in console
