"""A piped console (its output no terminal) refuses `enrol` (``NOT_A_TERMINAL``): where Signpost's
answer would say "Send: enrol", it says instead what works there, as README does: the console at a
terminal, or `signpost totp enrol ID --secret-file PATH` on the host and a code from that secret."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from bot.console.console import DEFAULT_AS
from handlers.stepup import flow as stepup
from tests.bot.console.console_session import session
from tests.factories import seed_demo

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

HOST_ENROL = f"signpost totp enrol {DEFAULT_AS} --secret-file"


async def test_a_piped_search_before_set_up_says_what_works_in_a_pipe(signpost: Signpost) -> None:
    """`printf '999 000 1006\\nenrol\\n' | signpost console`: the search's answer said "Send: enrol",
    and enrol is then refused; the greeting said "Send enrol first". Neither says so now."""
    await seed_demo(signpost, 10)
    out = await session(signpost, ["999 000 1006", "enrol"])
    assert "Send: enrol" not in out and "Send enrol first" not in out, out
    assert "has not run" in out and out.count(HOST_ENROL) == 2, out  # the greeting's and the search's


async def test_at_a_terminal_the_search_still_says_send_enrol(signpost: Signpost) -> None:
    await seed_demo(signpost, 10)
    out = await session(signpost, ["999 000 1006"], terminal=True)
    assert stepup.NOT_ENROLLED in out and "Send enrol first" in out and HOST_ENROL not in out, out
