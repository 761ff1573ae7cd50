"""`/signpost reset PRACTITIONER_ID` from Slack: signed requests in, what Slack is asked to show out.

A practitioner's duty manager resets their authenticator (a code no older than 5 minutes first),
the practitioner hears of it in a direct message through the real outbox and enrols again; a duty
manager of another authority is refused without learning whether the id exists.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bot.notify import Outbox
from handlers.stepup import flow as stepup
from handlers.stepup import reset
from store.people import credentials
from tests.access_helpers import load_access
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, code_for, later, link_with_authenticator, slack_events
from tests.bot.slack.test_registration_outcome import dm_to

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

DUTY = SlackUser("U0DUTY")  # DM01, Dana Moss: Northshire's duty manager
SOUTH = SlackUser("U0SOUTH")  # DM02, Jo Bell: Southvale's
TEACHER = SlackUser("U0TEACH")  # P003, Tom Reed: a Northshire teacher


async def said(app: SlackHarness, user: SlackUser, text: str) -> str:
    """What Slack shows ``user`` for `/signpost text` (the ack's answer, or the one posted after it)."""
    before = len(app.fake.of("response_url"))
    response = await app.slack.command(user, text)
    assert response.status == 200
    body = await response.text()
    await app.front.idle()
    if body:
        answer: dict[str, Any] = json.loads(body)
        return str(answer["text"])
    return " ".join(str(c.body.get("text", "")) for c in app.fake.of("response_url")[before:])


async def disabled_teacher(app: SlackHarness) -> None:
    """P003 linked on Slack with an authenticator whose code checks are then switched off."""
    await link_with_authenticator(app.signpost, "P003", TEACHER)
    async with app.signpost.ctx.db.write() as session:
        failure = await credentials.record_failure(
            session, "P003", app.signpost.ctx.clock.now(), lock_after=1000, lock_for=timedelta(0), disable_after=1
        )
    assert failure is not None and failure.newly_disabled


async def test_a_duty_manager_resets_from_slack_and_the_practitioner_is_told_and_enrols(
    slack_app: SlackHarness,
) -> None:
    await load_access(slack_app.signpost)
    await disabled_teacher(slack_app)
    await slack_app.link("DM01", DUTY)
    answer = await said(slack_app, DUTY, "reset P003")
    assert "Reset P003's authenticator" in answer and "by phone or in person" in answer, answer
    await Outbox(slack_app.signpost.ctx, [slack_app.front.deliverer]).deliver_due()
    told = dm_to(slack_app.fake.calls, TEACHER)
    # Slack shows the command to send as its slash command.
    assert told == [
        "Your Signpost authenticator was reset by your duty manager. If you did not ask for this, tell a Signpost "
        "admin at once. To see results again, send `/signpost enrol`"
    ]
    assert stepup.ENROL_CHAT in await said(slack_app, TEACHER, "enrol")  # a one-time link to a new QR code
    events = await slack_events(slack_app.signpost)
    assert [(e.action, e.outcome, e.actor_id, e.detail) for e in events][:1] == [
        ("totp_reset", "done", "DM01", "credential removed for P003")
    ]


async def test_a_stale_code_opens_the_code_modal_and_the_reset_runs_with_the_code(slack_app: SlackHarness) -> None:
    """Six minutes after the duty manager's last code: an empty ack and the approval's code modal;
    nothing is reset until the code is in."""
    await load_access(slack_app.signpost)
    await disabled_teacher(slack_app)
    totp = await link_with_authenticator(slack_app.signpost, "DM01", DUTY)
    later(slack_app.signpost, minutes=6)
    response = await slack_app.slack.command(DUTY, "reset P003")
    assert (response.status, await response.text()) == (200, "")
    await slack_app.front.idle()
    [opened] = slack_app.fake.of("views.open")
    view = opened.body["view"]
    assert view["callback_id"] == "signpost_code" and stepup.PROMPT_APPROVAL in json.dumps(view)
    async with slack_app.signpost.ctx.db.read() as session:
        assert await credentials.get(session, "P003") is not None
    submission = slack_app.slack.view_submission(
        DUTY, view, "V1", {"code": {"code": code_for(slack_app.signpost, totp)}}
    )
    shown = await slack_app.shown_after(submission)
    assert "Reset P003's authenticator" in json.dumps(shown["view"])
    async with slack_app.signpost.ctx.db.read() as session:
        assert await credentials.get(session, "P003") is None
    events = await slack_events(slack_app.signpost)
    assert [(e.action, e.outcome) for e in events] == [
        ("totp_reset", "challenged"),
        ("totp_reset", "done"),
        ("code", "done"),
    ]


async def test_another_authority_s_duty_manager_is_refused_as_for_an_unknown_id(slack_app: SlackHarness) -> None:
    await load_access(slack_app.signpost)
    await disabled_teacher(slack_app)
    await slack_app.link("DM02", SOUTH)
    other = await said(slack_app, SOUTH, "reset P003")
    unknown = await said(slack_app, SOUTH, "reset NOPE-404")
    assert other == unknown == reset.NOT_YOURS
    async with slack_app.signpost.ctx.db.read() as session:
        assert await credentials.get(session, "P003") is not None
    await Outbox(slack_app.signpost.ctx, [slack_app.front.deliverer]).deliver_due()
    assert dm_to(slack_app.fake.calls, TEACHER) == []


async def test_a_duty_manager_s_own_reset_and_an_admin_s_are_sent_to_the_host_alike(slack_app: SlackHarness) -> None:
    """Slack shows the two refusals as Signpost words them, one clause (``BY_AN_ADMIN``) in both."""
    await load_access(slack_app.signpost)
    await slack_app.link("DM01", DUTY)
    own = await said(slack_app, DUTY, "reset DM01")
    admin = await said(slack_app, DUTY, "reset AD01")
    assert (own, admin) == (reset.OWN.format(id="DM01"), reset.ON_THE_HOST.format(id="AD01"))
    assert reset.BY_AN_ADMIN.format(id="DM01") in own and reset.BY_AN_ADMIN.format(id="AD01") in admin
