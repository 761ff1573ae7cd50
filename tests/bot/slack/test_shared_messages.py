"""A Signpost message clicked where others can see it (a DM notice forwarded or shared into a
channel, a group DM): the answer goes to the clicker alone, and the shared message is never
replaced with it (Slack shows a replaced message to everyone who can see the original, whatever
the ``response_type``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import buttons_in, code_for, later
from tests.bot.slack.test_interactivity import DUTY, access_request_notice, deliver_notice

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


def shared_into(app: SlackHarness, button: dict[str, Any], block_id: str, channel_id: str, name: str) -> dict[str, Any]:
    """A click on ``button`` as Slack sends it when the message sits in ``channel_id`` (not the DM
    it was sent to), posted there by the person who shared it."""
    click = app.slack.block_action_from_message(DUTY, button, block_id, channel_id=channel_id)
    click["channel"] = {"id": channel_id, "name": name}
    click["message"] = {"type": "message", "user": DUTY.user_id, "ts": click["container"]["message_ts"]}
    return click


def replacements(app: SlackHarness) -> list[dict[str, Any]]:
    """What was posted to a clicked message's response_url to replace it."""
    return [r.body for r in app.fake.of("response_url") if r.body.get("replace_original") is not False]


async def test_approve_clicked_in_a_shared_copy_in_a_channel_never_replaces_that_message(
    slack_app: SlackHarness,
) -> None:
    """The duty manager's Approve, clicked on the notice shared into a public channel: decided, the
    decision shown in the clicker's modal, and no reply replaces the channel's message (the child's
    reference and the grant would be shown to the whole channel)."""
    notice, _ = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    click = shared_into(slack_app, approve, block_id, "C0PUBLIC", "safeguarding")
    assert (await slack_app.slack.interactive(click)).status == 200
    await slack_app.front.idle()
    shown = [json.dumps(u.body["view"]) for u in slack_app.fake.of("views.update")]
    assert any("Request 1 approved" in view for view in shown)  # decided, in the clicker's own modal
    assert replacements(slack_app) == []


async def test_approve_with_a_code_in_a_shared_copy_in_a_group_dm_never_replaces_that_message(
    slack_app: SlackHarness,
) -> None:
    """The same click in a group DM, a code asked first: once the code is in, the decision is in
    the modal only; the group's copy is not replaced."""
    notice, totp = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    later(slack_app.signpost, minutes=6)  # decisions need a code less than 5 minutes old
    click = shared_into(slack_app, approve, block_id, "G0GROUP", "mpdm-duty--someone--other-1")
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    [code_view] = slack_app.fake.of("views.update")
    code = code_for(slack_app.signpost, totp)
    submission = slack_app.slack.view_submission(DUTY, code_view.body["view"], "V1", {"code": {"code": code}})
    answer = await slack_app.shown_after(submission)
    assert "Request 1 approved" in json.dumps(answer["view"])
    await slack_app.front.idle()
    assert replacements(slack_app) == []


async def test_deny_clicked_in_a_copy_forwarded_into_a_dm_between_people_never_replaces_that_message(
    slack_app: SlackHarness,
) -> None:
    """A DM between two people is a DM too (its id starts with D), but the copy there is the
    forwarder's message, which the other person sees: Deny, with its reason asked in a modal, is
    answered there and the copy is left as it is."""
    notice, _ = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [_approve, (block_id, deny)] = buttons_in(posted["blocks"])
    click = shared_into(slack_app, deny, block_id, "D0PEOPLE", "directmessage")
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    [opened] = slack_app.fake.of("views.open")
    form = opened.body["view"]
    [block] = [b for b in form["blocks"] if b.get("type") == "input"]
    action_id = block["element"]["action_id"]
    submission = slack_app.slack.view_submission(
        DUTY, form, "V1", {block["block_id"]: {action_id: "not enough detail given"}}
    )
    answer = await slack_app.shown_after(submission)
    assert "Request 1 denied" in json.dumps(answer["view"])
    await slack_app.front.idle()
    assert replacements(slack_app) == []


async def test_approve_clicked_in_the_bots_own_dm_still_replaces_the_notice(slack_app: SlackHarness) -> None:
    """The notice where Slack put it, the bot's DM with the duty manager: the decision replaces
    it, buttons and all, as before (no one else sees that DM)."""
    notice, _ = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    click = slack_app.slack.block_action_from_message(DUTY, approve, block_id)
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    [replaced] = slack_app.fake.of("response_url")
    assert replaced.body["replace_original"] is True and replaced.body["text"].startswith("Request 1 approved")


async def test_approve_in_the_bots_own_dm_replaces_the_notice_while_slack_cannot_say_who_the_bot_is(
    slack_app: SlackHarness,
) -> None:
    """The first click after a restart, Slack's auth.test failing: the notice is still known as the
    app's own by the app id Slack puts on it and on the click, so it is replaced — its buttons are
    not left live for a second duty manager to decide a request already decided."""
    notice, _ = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    slack_app.fake.fail("auth.test", times=5)
    click = slack_app.slack.block_action_from_message(DUTY, approve, block_id)
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    [replaced] = slack_app.fake.of("response_url")
    assert replaced.body["replace_original"] is True and replaced.body["text"].startswith("Request 1 approved")
