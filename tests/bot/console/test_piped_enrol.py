"""A piped console (its output no terminal) refuses `enrol` (``NOT_A_TERMINAL``): where Signpost's
answer would say "Send: enrol", it says instead what works there, as README does: the console at a
terminal, or `signpost totp enrol ID --secret-file PATH` on the host and a code from that secret."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from bot.app import Signpost
from bot.console.console import DEFAULT_AS
from handlers.operator import people
from handlers.operator.common import audited
from handlers.stepup import flow as stepup
from handlers.vocabulary import Action
from store.people import credentials
from tests.bot.console.console_session import session
from tests.factories import seed_demo
from tests.stepup_helpers import enrol_and_step_up

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
    assert stepup.NOT_ENROLLED.text in out and "Send enrol first" in out and HOST_ENROL not in out, out


ADMIN_CODE_AT = "at your next use of approve, deny, pending, unlink, relays, lead-notices or decommission."


async def test_an_admin_before_set_up_in_a_pipe_is_told_of_their_commands_not_a_search(signpost: Signpost) -> None:
    """An admin searches nothing, yet an admin's piped `unlink` before set-up was told a code
    "answers the code prompt your next search gets": now the commands an admin's code is asked at;
    after `:as` a practitioner, a search again."""
    await seed_demo(signpost, 10)
    out = await session(signpost, ["unlink NS-P0001", ":as NS-P0001", SEARCH], as_id="ADMIN-01")
    admin, practitioner = out.split("Now acting as NS-P0001.")
    assert "signpost totp enrol ADMIN-01 --secret-file" in admin and ADMIN_CODE_AT in admin, admin
    assert "search" not in admin.split("has not run.")[1], admin
    assert practitioner.count("a code from that secret answers the code prompt at your next search.") == 1


# Every state in which Signpost tells someone to send enrol, as a piped console meets it (README's
# example store: the admin's `signpost totp enrol ID --secret-file PATH`, then a search there).
SEARCH = "999 000 1006"


async def host_enrol(app: Signpost) -> pyotp.TOTP:
    """`signpost totp enrol NS-P0001 --secret-file PATH`: a set-up left pending until its first code."""
    async with audited(app.ctx, "operator", Action.TOTP_ENROL) as audit:
        issued = await people.totp_enrol(app.ctx, audit, DEFAULT_AS, replace=False)
    totp = pyotp.parse_uri(issued.uri)
    assert isinstance(totp, pyotp.TOTP)
    return totp


def says_what_works_in_a_pipe(out: str) -> None:
    assert "send: enrol" not in out.lower() and HOST_ENROL in out, out


async def test_a_pending_set_up_s_search_in_a_pipe_says_what_works_there(signpost: Signpost) -> None:
    """After the admin's `totp enrol --secret-file`, a piped search's code prompt said "…send: enrol"."""
    await seed_demo(signpost, 10)
    await host_enrol(signpost)
    out = await session(signpost, [SEARCH])
    assert "Please finish setting up your authenticator app first" in out, out
    says_what_works_in_a_pipe(out)


async def test_a_set_up_discarded_after_wrong_codes_in_a_pipe_says_what_works_there(signpost: Signpost) -> None:
    await seed_demo(signpost, 10)
    totp = await host_enrol(signpost)
    now = signpost.ctx.clock.now()
    near = {totp.at(now + timedelta(seconds=step * 30)) for step in range(-2, 3)}
    wrong = next(code for code in ("111111", "222222", "333333", "444444", "555555", "666666") if code not in near)
    out = await session(signpost, [SEARCH, *[wrong] * stepup.StepUpPolicy().enrol_tries])
    assert "Signpost has cancelled it" in out, out
    says_what_works_in_a_pipe(out)


async def test_switched_off_code_checks_in_a_pipe_say_what_works_there(signpost: Signpost) -> None:
    await seed_demo(signpost, 10)
    await enrol_and_step_up(signpost, DEFAULT_AS)
    async with signpost.ctx.db.write() as write:
        failure = await credentials.record_failure(
            write, DEFAULT_AS, signpost.ctx.clock.now(), lock_after=1000, lock_for=timedelta(0), disable_after=1
        )
    assert failure is not None and failure.newly_disabled
    out = await session(signpost, [SEARCH])
    assert "Code checks are switched off for you" in out, out
    says_what_works_in_a_pipe(out)


async def reset_by_an_operator(signpost: Signpost) -> None:
    """The demo's default practitioner enrolled and stepped up, then reset as `signpost totp reset` does."""
    await seed_demo(signpost, 10)
    await enrol_and_step_up(signpost, DEFAULT_AS)
    async with audited(signpost.ctx, "operator", Action.TOTP_RESET) as audit:
        assert (await people.totp_reset(signpost.ctx, audit, DEFAULT_AS)).existed


async def test_a_reset_s_notice_in_a_pipe_says_what_works_there(signpost: Signpost) -> None:
    """`signpost totp reset NS-P0001`: the piped console printed "To see results again, send: enrol"."""
    await reset_by_an_operator(signpost)
    out = await session(signpost, ["help"])
    assert "[notice] Your Signpost authenticator was reset by an administrator" in out, out
    says_what_works_in_a_pipe(out)


async def test_at_a_terminal_a_reset_s_notice_still_says_send_enrol(signpost: Signpost) -> None:
    await reset_by_an_operator(signpost)
    out = await session(signpost, ["help"], terminal=True)
    assert "To see results again, send: enrol" in out and HOST_ENROL not in out, out
