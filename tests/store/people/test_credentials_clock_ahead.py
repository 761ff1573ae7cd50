"""Links and parked commands made by a clock ahead are dead when the clock is put right (``store.skew``).

An enrolment link issued while the host's clock read 2037 worked its ten minutes of that clock:
until 2037 once the clock was put right, for anyone the link reached. A command parked for a code
then kept what was typed (sealed) past every minute's clean-up as long, and a code for it resumed it.
Now a link or parked command made later than now and ``CLOCK_SKEW`` is dead, and the clean-up
removes it; one made within the skew lives its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import Signpost
from store.people import credentials
from store.skew import CLOCK_SKEW
from store.tables.people import ParkedCommand
from tests.factories import load_standard
from tests.store.people.test_credentials import P1, park_a_search

AHEAD = datetime(2037, 8, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    return signpost


async def test_an_enrolment_link_issued_at_2037_is_dead_now_and_one_within_the_skew_works(app: Signpost) -> None:
    now = app.ctx.clock.now()
    async with app.ctx.db.write() as session:
        ahead = await credentials.issue_token(session, "P001", AHEAD, TTL)
        near = await credentials.issue_token(session, "P002", now + CLOCK_SKEW - timedelta(minutes=1), TTL)
    async with app.ctx.db.read() as session:
        assert not await credentials.token_is_live(session, ahead, now)
        assert await credentials.token_is_live(session, near, now)
    async with app.ctx.db.write() as session:
        assert await credentials.redeem_token(session, ahead, now) is None
        assert await credentials.retire_dead_token(session, ahead, now) == ("P001", "link expired")
        assert await credentials.redeem_token(session, near, now) == "P002"


async def test_a_command_parked_at_2037_is_dropped_now_and_a_code_does_not_resume_it(app: Signpost) -> None:
    """Claimed by a code now, it is taken out as expired (not run); left, the minute's clean-up
    removes it. One parked within the skew is kept and resumes."""
    now = app.ctx.clock.now()
    ahead = await park_a_search(app, AHEAD)
    async with app.ctx.db.write() as session:
        parked = await credentials.claim(session, app.ctx.keys, ahead, P1, now)
    assert parked is not None and parked.expired, "taken out, and not run"
    await park_a_search(app, AHEAD)
    assert await credentials.forget_expired_parked(app.ctx.db, now) == 1
    near = await park_a_search(app, now + CLOCK_SKEW - timedelta(minutes=1))
    assert await credentials.forget_expired_parked(app.ctx.db, now) == 0
    async with app.ctx.db.read() as session:
        assert list((await session.execute(select(ParkedCommand.challenge_id))).scalars()) == [near]
    async with app.ctx.db.write() as session:
        resumed = await credentials.claim(session, app.ctx.keys, near, P1, now)
    assert resumed is not None and not resumed.expired and resumed.text == "Amy Jones 03/04/2014"
