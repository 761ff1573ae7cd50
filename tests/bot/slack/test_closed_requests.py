"""An access request closed without a decision takes back its asks: no duty manager is asked, once
Slack takes notices again, to decide a request that has expired (through the real outbox). So does
a registration, and an Approve clicked on an ask delivered before it closed changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlparse

import pytest

from bot.notify import Outbox
from handlers.access.jobs import expire_requests
from handlers.operator import people
from handlers.operator.common import audited
from handlers.vocabulary import Action
from store.people import access
from tests.access_helpers import load_access
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, buttons_in, code_for, later, link_with_authenticator
from tests.factories import SHIELDED
from tests.fakes.slack_api import Call

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")  # P002, Priya Shah: finds the shielded child, has no grant
JO = SlackUser("U0JO")  # DM02, Jo Bell: a Southvale duty manager, asked to decide first


def dm_to(calls: list[Call], user: SlackUser) -> list[str]:
    """The texts of the direct messages Slack took for ``user``."""
    channels = {
        c.answer["channel"]["id"] for c in calls if c.method == "conversations.open" and c.body["users"] == user.user_id
    }
    posted = [c for c in calls if c.method == "chat.postMessage" and c.answer["ok"]]
    return [c.body["text"] for c in posted if c.body["channel"] in channels]


async def asked_while_slack_refuses(slack_app: SlackHarness) -> Outbox:
    """Priya (P002) asks to see the shielded record; Slack refuses the one notice due, Jo's ask,
    which the outbox (returned) keeps for later."""
    signpost = slack_app.signpost
    await load_access(signpost)
    await slack_app.link("P002", NURSE)
    await slack_app.link("DM02", JO)
    assert (await slack_app.slack.command(NURSE, f"request {SHIELDED} section 47 enquiry")).status == 200
    await slack_app.front.idle()
    box = Outbox(signpost.ctx, [slack_app.front.deliverer])
    slack_app.fake.fail("chat.postMessage")
    assert (await box.deliver_due()).retried == 1
    return box


async def test_an_expired_request_is_not_put_to_a_duty_manager_after_it_expired(slack_app: SlackHarness) -> None:
    """Priya asks to see a shielded record while Slack takes no messages; nobody decides within the
    request's 24 hours and it expires. When Slack is back, Priya is told it expired, and Jo is not
    asked to decide a request that can no longer be decided."""
    signpost = slack_app.signpost
    box = await asked_while_slack_refuses(slack_app)
    assert dm_to(slack_app.fake.calls, JO) == []  # tried, refused, kept for later
    later(signpost, hours=25)
    assert await expire_requests(signpost.ctx, signpost.ctx.clock.now()) == 1
    mark = len(slack_app.fake.calls)
    await box.deliver_due(signpost.ctx.clock.now() + timedelta(days=1))
    calls = slack_app.fake.calls[mark:]
    assert [t for t in dm_to(calls, NURSE) if "expired" in t], "the requester is told"
    assert [t for t in dm_to(calls, JO) if "needs a decision" in t] == [], "no ask after expiry"


async def test_a_leavers_request_is_not_put_to_a_duty_manager_after_they_left(slack_app: SlackHarness) -> None:
    """Priya asks while Slack takes no messages, then leaves (`signpost practitioner leave P002`),
    which closes her request undecided: when Slack is back, Jo is not asked to decide it."""
    signpost = slack_app.signpost
    box = await asked_while_slack_refuses(slack_app)
    async with audited(signpost.ctx, "operator", Action.PRACTITIONER_LEAVE) as audit:
        assert (await people.leave(signpost.ctx, audit, "P002")).changed
    mark = len(slack_app.fake.calls)
    await box.deliver_due(signpost.ctx.clock.now() + timedelta(days=1))
    assert [t for t in dm_to(slack_app.fake.calls[mark:], JO) if "needs a decision" in t] == []


DANA = SlackUser("U0DANA")  # DM01, Dana Moss: Northshire's duty manager, who decides P002's registrations
STRANGER = SlackUser("U0ASKS")  # an account linked to nobody, asking to act as P002


async def test_a_leavers_registration_is_closed_and_cannot_be_approved(slack_app: SlackHarness) -> None:
    """An account asks to act as Priya (P002) while Slack takes no messages; Priya then leaves,
    which closes the registration undecided: Dana is not asked to decide it once Slack is back, and
    her Approve from an older ask links nothing to a practitioner who has left."""
    signpost = slack_app.signpost
    await load_access(signpost)
    await slack_app.link("DM01", DANA)
    assert (await slack_app.slack.command(STRANGER, "register P002")).status == 200
    await slack_app.front.idle()
    box = Outbox(signpost.ctx, [slack_app.front.deliverer])
    slack_app.fake.fail("chat.postMessage")  # Slack does not take Dana's ask
    assert (await box.deliver_due()).retried >= 1
    async with audited(signpost.ctx, "operator", Action.PRACTITIONER_LEAVE) as audit:
        assert (await people.leave(signpost.ctx, audit, "P002")).changed
    mark = len(slack_app.fake.calls)
    await box.deliver_due(signpost.ctx.clock.now() + timedelta(days=1))
    assert [t for t in dm_to(slack_app.fake.calls[mark:], DANA) if "Registration request" in t] == []
    assert (await slack_app.slack.command(DANA, "approve R1")).status == 200
    await slack_app.front.idle()
    decided = [e for e in await slack_app.audit() if e.actor_id == "DM01" and e.action == "approve"]
    assert [(e.outcome, e.detail) for e in decided] == [("refused", "registration R1 already closed: P002 has left")]
    async with signpost.ctx.db.read() as session:
        assert await access.identity_owner(session, "slack", STRANGER.team_id, STRANGER.user_id) is None


async def test_a_registration_nobody_decides_expires_and_an_approve_on_its_old_ask_links_nothing(
    slack_app: SlackHarness,
) -> None:
    """An account asks to act as Priya (P002); Dana gets the ask with Approve / Deny in Slack and
    does not decide. After 7 days the expiry job closes it: the asking account is told once, in
    Slack, that it expired and how to ask again. A week late, Dana clicks Approve on that message
    and enters her code: the message is replaced by "already closed: expired", and no account is
    linked."""
    signpost = slack_app.signpost
    await load_access(signpost)
    totp = await link_with_authenticator(signpost, "DM01", DANA)
    assert (await slack_app.slack.command(STRANGER, "register P002")).status == 200
    await slack_app.front.idle()
    box = Outbox(signpost.ctx, [slack_app.front.deliverer])
    assert (await box.deliver_due()).delivered >= 1
    [ask] = [c for c in slack_app.fake.of("chat.postMessage") if "Registration request R1" in c.body["text"]]
    [(block_id, approve), _deny] = buttons_in(ask.body["blocks"])

    later(signpost, days=7)
    assert await expire_requests(signpost.ctx, signpost.ctx.clock.now()) == 1
    mark = len(slack_app.fake.calls)
    await box.deliver_due(signpost.ctx.clock.now())
    await box.deliver_due(signpost.ctx.clock.now() + timedelta(hours=1))
    [told] = dm_to(slack_app.fake.calls[mark:], STRANGER)
    assert "R1" in told and "expired" in told and "register P002" in told
    assert dm_to(slack_app.fake.calls[mark:], DANA) == []

    click = slack_app.slack.block_action_from_message(DANA, approve, block_id)
    assert (await slack_app.slack.interactive(click)).status == 200
    await slack_app.front.idle()
    [code_view] = [u for u in slack_app.fake.of("views.update") if u.body["view"]["callback_id"] == "signpost_code"]
    code = code_for(signpost, totp)
    submission = slack_app.slack.view_submission(DANA, code_view.body["view"], "V1", {"code": {"code": code}})
    assert "already closed: expired" in json.dumps((await slack_app.shown_after(submission))["view"])
    await slack_app.front.idle()
    clicked = urlparse(click["response_url"]).path
    [replaced] = [c for c in slack_app.fake.of("response_url") if c.path == clicked]  # the clicked ask itself
    assert replaced.body["replace_original"] is True
    assert replaced.body["text"] == "Registration R1 was already closed: expired. Nothing changed."

    events = [(e.action, e.outcome, e.detail) for e in await slack_app.audit()]
    assert ("registration_expired", "done", "registration R1") in events
    assert [(o, d) for a, o, d in events if a == "approve" and o != "challenged"] == [
        ("refused", "registration R1 already closed: expired")
    ]
    async with signpost.ctx.db.read() as session:
        assert await access.identity_owner(session, "slack", STRANGER.team_id, STRANGER.user_id) is None
