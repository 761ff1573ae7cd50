"""A shielded child found by name and date of birth, through the real Slack front end: the buttons'
values (which Slack's client holds) carry no reference, and nothing Slack is sent for the
practitioner who searched names it, through Send a message, its answer, Request access and the
approval. The lead professional and the duty manager still see it."""

from __future__ import annotations

import json

import pytest

from tests.access_helpers import load_access
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, buttons_in
from tests.bot.slack.test_relay import ANSWER, MARKER, button, calls_since, deliver, dm_to, raw, submit_input
from tests.factories import SHIELDED
from tests.fakes.slack_api import Call

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")  # P002: finds the shielded child by name, has no grant
LEAD = SlackUser("U0LEAD")  # S001: the shielded child's lead professional
JO = SlackUser("U0JO")  # DM02: a duty manager of the child's authority
SPELLINGS = (SHIELDED, "999 000 0050", "999-000-0050")


def names_the_child(calls: list[Call]) -> bool:
    shown = raw(calls)
    return any(spelling in shown for spelling in SPELLINGS)


async def test_nothing_slack_is_sent_for_the_finder_names_the_reference(modal_app: SlackHarness) -> None:
    app = modal_app
    await load_access(app.signpost)
    nurse = await app.link("P002", NURSE)
    lead = await app.link("S001", LEAD)
    await app.link("DM02", JO)
    mark = len(app.fake.calls)
    await app.slack.command(nurse, "Mia Stone 30/06/2015")
    await app.front.idle()
    [result] = app.fake.of("views.update")
    blocks = result.body["view"]["blocks"]
    assert [b["action_id"] for _, b in buttons_in(blocks)] == ["request_access", "relay_message"]
    block_id, send = button(blocks, "relay_message")
    click = app.slack.block_action_from_view(nurse, send, block_id, result.body["view_id"])
    await app.slack.interactive(click)
    await app.front.idle()
    [pushed] = app.fake.of("views.push")
    assert json.loads(pushed.body["view"]["private_metadata"])["c"].startswith("message found-")
    delivered = await submit_input(app, nurse, pushed.body["view"], "V100", MARKER)
    assert "Message 1 about the record you found by name and date of birth delivered" in delivered
    to_nurse = calls_since(app, mark)

    mark = len(app.fake.calls)
    assert await deliver(app) == 1
    [notice] = dm_to(app, calls_since(app, mark), lead)
    assert "999 000 0050" in notice.body["text"], "the lead professional is told which record"
    reply_block, reply = button(notice.body["blocks"], "relay_reply")
    answer = app.slack.block_action_from_message(
        lead, reply, reply_block, message_ts="1700000000.000100", channel_id=notice.body["channel"]
    )
    await app.slack.interactive(answer)
    await app.front.idle()
    [opened] = [c for c in calls_since(app, mark) if c.method == "views.open"]
    await submit_input(app, lead, opened.body["view"], "V200", ANSWER)
    mark = len(app.fake.calls)
    assert await deliver(app) == 1
    [told] = dm_to(app, calls_since(app, mark), nurse)
    assert "was answered" in told.body["text"]
    to_nurse += [told]

    mark = len(app.fake.calls)
    block_id, ask = button(blocks, "request_access")
    click = app.slack.block_action_from_view(nurse, ask, block_id, result.body["view_id"])
    await app.slack.interactive(click)
    await app.front.idle()
    [pushed] = [c for c in calls_since(app, mark) if c.method == "views.push"]
    asked = await submit_input(app, nurse, pushed.body["view"], "V300", "section 47 enquiry")
    assert "Access request 1 for the record you found by name and date of birth" in asked
    to_nurse += calls_since(app, mark)
    mark = len(app.fake.calls)
    await deliver(app)
    assert "Access request 1 for shielded record 999 000 0050" in raw(calls_since(app, mark)), "to the deciders"
    await app.slack.command(JO, "approve 1")
    await app.front.idle()
    mark = len(app.fake.calls)
    await deliver(app)
    [approved] = [c for c in calls_since(app, mark) if c.body.get("channel") == told.body["channel"]]
    assert "Access request 1 was approved" in approved.body["text"]
    to_nurse += [approved]
    assert not names_the_child(to_nurse)
