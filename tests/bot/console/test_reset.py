"""`reset PRACTITIONER_ID` in the console: the real Console class, the duty manager's turn, then the
practitioner's, whose console shows the notice and a new QR code on `enrol`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.app import Signpost
from handlers.examples import for_any_store
from handlers.stepup import reset
from store.people import credentials
from tests.access_helpers import load_access
from tests.bot.console.console_session import session
from tests.factories import seed_demo
from tests.stepup_helpers import ensure_enrolled

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


async def test_a_duty_manager_resets_in_the_console_and_the_practitioner_enrols_again(signpost: Signpost) -> None:
    await load_access(signpost)
    for who in ("DM01", "P003"):
        await ensure_enrolled(signpost, who)
    async with signpost.ctx.db.write() as session_:
        await credentials.record_failure(
            session_, "P003", signpost.ctx.clock.now(), lock_after=1000, lock_for=timedelta(0), disable_after=1
        )
    dana = await session(signpost, ["help", "reset", "reset P003"], as_id="DM01")
    assert f"• {for_any_store(reset.RESET_USAGE)}: {reset.SUMMARY}" in dana
    assert "Reset P003's authenticator" in dana and "by phone or in person" in dana
    tom = await session(signpost, ["enrol"], as_id="P003", terminal=True)
    told = reset.RESET_NOTICE.format(by="your duty manager").text
    assert f"[notice] {told}" in tom and told.endswith("To see results again, send: enrol")
    assert "Scan the QR code above" in tom


async def test_in_the_console_another_authority_s_duty_manager_is_refused(signpost: Signpost) -> None:
    await load_access(signpost)
    for who in ("DM02", "P003"):
        await ensure_enrolled(signpost, who)
    jo = await session(signpost, ["reset P003", "reset NOPE-404"], as_id="DM02")
    assert jo.count(reset.NOT_YOURS) == 2
    tom = await session(signpost, ["help"], as_id="P003")
    assert "[notice]" not in tom and "• reset" not in tom


async def test_the_readme_s_demo_reset_says_there_is_nothing_to_reset(signpost: Signpost) -> None:
    """README's example on the demo data (as `make run` seeds it): NS-DM01 resets NS-P0002, who has
    no authenticator yet, and is told so; NS-P0002 is told nothing."""
    await seed_demo(signpost)
    await ensure_enrolled(signpost, "NS-DM01")
    dana = await session(signpost, ["reset NS-P0002"], as_id="NS-DM01")
    assert reset.NOTHING.format(id="NS-P0002") in dana
    assert "[notice]" not in await session(signpost, ["help"], as_id="NS-P0002")
