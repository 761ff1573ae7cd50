"""Notices reach someone, and the practitioner is told truthfully who.

In the standard synthetic register Southvale has a practitioner (S001) and a shielded child but
no duty manager; AD01 is the only admin. Whatever would go to Southvale's duty manager goes to
the admins instead, and each reply names who really got it.
"""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome, Platform, Principal
from store.people import practitioners
from tests.access_helpers import decide, notices, request_access
from tests.factories import SHIELDED, load_standard, say
from tests.stepup_helpers import five_wrong_codes

SLACK_USER = Principal(Platform.SLACK, "T0001", "U0042")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    return signpost


async def stepup_notices(app: Signpost) -> list[tuple[str, str]]:
    # Only step-up's own notices: the misuse monitor may add its credential alert at any moment.
    return [(n.recipient_id, n.kind) for n in await notices(app) if n.kind.startswith("stepup_")]


async def test_a_lockout_in_an_authority_without_a_duty_manager_tells_the_admins(
    app: Signpost, clock: FakeClock
) -> None:
    """Five wrong codes from S001 (Southvale): AD01 gets the notice, and S001 is told the admins know."""
    locked = await five_wrong_codes(app, clock, "S001")
    assert locked.outcome is Outcome.LOCKED and "paused for 15 more minutes" in locked.text
    assert "Signpost's administrators have been told." in locked.text
    assert "duty manager has been told" not in locked.text
    assert await stepup_notices(app) == [("AD01", "stepup_locked")]
    [notice] = [n for n in await notices(app, "AD01") if n.kind == "stepup_locked"]
    assert "S001" in notice.text and "Lee" not in notice.text and "Hart" not in notice.text


async def test_a_lockout_with_a_duty_manager_still_tells_the_duty_manager(app: Signpost, clock: FakeClock) -> None:
    """Five wrong codes from P002 (Northshire): DM01 alone is told, and P002 hears that."""
    locked = await five_wrong_codes(app, clock, "P002")
    assert "Your duty manager has been told." in locked.text
    assert await stepup_notices(app) == [("DM01", "stepup_locked")]


async def test_a_lockout_nobody_could_hear_of_says_so(app: Signpost, clock: FakeClock) -> None:
    """No duty manager and no active admin: nobody is notified, and S001 is asked to tell their duty manager."""
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "AD01", "inactive")
    locked = await five_wrong_codes(app, clock, "S001")
    assert locked.outcome is Outcome.LOCKED and "has been told" not in locked.text
    assert "please contact your duty manager" in locked.text
    assert await stepup_notices(app) == []


async def test_a_registration_in_an_authority_without_a_duty_manager_goes_to_the_admins(app: Signpost) -> None:
    """S001 registers a Slack account: AD01 gets Approve/Deny and can decide. The account is told what
    anyone registering is told, whatever the id (it names neither the request nor who was asked)."""
    asked = await say(app, SLACK_USER, "register S001")
    assert asked.outcome is Outcome.DONE and "R1" not in asked.text and "administrators" not in asked.text
    [notice] = await notices(app)
    assert (notice.recipient_id, notice.kind) == ("AD01", "registration_request")
    assert [b.command for b in notice.buttons] == ["approve R1", "deny R1"]
    assert (await decide(app, "AD01", "approve", "R1")).outcome is Outcome.DONE


async def test_the_sole_duty_managers_own_registration_goes_to_the_admins(app: Signpost) -> None:
    """DM01 is Northshire's only duty manager and nobody decides their own request: AD01 is asked."""
    asked = await say(app, SLACK_USER, "register DM01")
    assert asked.outcome is Outcome.DONE and "administrators" not in asked.text  # the one answer to anyone
    assert [(n.recipient_id, n.kind) for n in await notices(app)] == [("AD01", "registration_request")]


async def test_an_access_request_in_an_authority_without_a_duty_manager_goes_to_the_admins(app: Signpost) -> None:
    """P001 asks for Southvale's shielded child: AD01 gets the request and P001's reply names the admins."""
    asked = await request_access(app, "P001", SHIELDED)
    assert asked.outcome is Outcome.DONE
    assert "sent to Signpost's administrators" in asked.text and "sent to a duty manager" not in asked.text
    requests = [(n.recipient_id, n.kind) for n in await notices(app) if n.kind == "access_request"]
    assert requests == [("AD01", "access_request")]


async def test_an_access_request_nobody_can_decide_says_so(app: Signpost) -> None:
    """No Southvale duty manager and no active admin: the request is kept and P001 is told nobody got it."""
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "AD01", "inactive")
    asked = await request_access(app, "P001", SHIELDED)
    assert asked.outcome is Outcome.DONE and "nobody to send it to" in asked.text
    assert [n for n in await notices(app) if n.kind == "access_request"] == []
