"""Admission control on /slack/events: above the in-flight limit Slack is told "busy" in the ack,
and nothing is started, answered or audited for that request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from bot.admission import BUSY_TEXT
from bot.app import Signpost
from bot.slack import render
from bot.slack.inbound import FORM
from tests.bot.conftest import SlackHarness, serving
from tests.bot.slack.slack_requests import SlackUser, signed_headers, slack_events
from tests.factories import load_standard
from tests.fakes.slack_api import FakeSlackApi

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")


@pytest.fixture
async def one_at_a_time(signpost: Signpost, fake_slack: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    async with serving(signpost, fake_slack, SIGNPOST_MAX_IN_FLIGHT=1) as harness:
        yield harness


async def test_a_command_above_the_in_flight_limit_is_told_busy_in_its_ack_and_not_acted_on(
    one_at_a_time: SlackHarness,
) -> None:
    """With one request in flight (its answer held at Slack's door), a second gets a private "busy"
    ack; once the first is answered, a third is admitted again. Two answers, two events, no more."""
    slack, fake = one_at_a_time.slack, one_at_a_time.fake
    await load_standard(one_at_a_time.signpost)
    user = await one_at_a_time.link("P002", NURSE)
    fake.hold("response_url")
    first = await slack.command(user, "help")
    assert (first.status, await first.text()) == (200, "")
    await fake.wait_for_waiting("response_url", 1)  # the first is acknowledged and still in flight

    refused = await slack.command(user, "help")
    assert refused.status == 200
    assert await refused.json() == {"text": BUSY_TEXT, "response_type": "ephemeral"}

    fake.release("response_url")
    await one_at_a_time.front.idle()
    again = await slack.command(user, "help")
    assert (again.status, await again.text()) == (200, "")
    await one_at_a_time.front.idle()
    assert len(fake.of("response_url")) == 2
    assert [e.action for e in await slack_events(one_at_a_time.signpost)] == ["help", "help"]
    assert one_at_a_time.front.admission.refused == 1


async def test_health_turns_503_and_new_commands_are_told_busy_once_draining(slack_app: SlackHarness) -> None:
    """Draining (SIGTERM): /healthz says 503 so traffic moves elsewhere; Slack gets "busy", not silence."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    assert await slack_app.front.admission.drain(0) == 0
    health = await slack_app.slack.client.get("/healthz")
    assert health.status == 503
    refused = await slack_app.slack.command(user, "help")
    assert await refused.json() == {"text": BUSY_TEXT, "response_type": "ephemeral"}
    await slack_app.front.idle()
    assert slack_app.fake.of("response_url") == []
    assert await slack_events(slack_app.signpost) == []


async def test_while_refusing_a_forged_command_is_401_and_a_code_submission_is_told_busy_inline(
    slack_app: SlackHarness,
) -> None:
    """Refusals come before Bolt but never before the signature: above the bound, an unsigned or
    wrongly signed command is still a 401 (no "busy" for a forger); a signed code submission
    shows "busy" inline on the code field. Nothing is answered or audited, two refusals counted."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    assert await slack_app.front.admission.drain(0) == 0
    client = slack_app.slack.client
    body = urlencode(slack_app.slack.command_body(user, "help"))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    unsigned = await client.post("/slack/events", data=body.encode(), headers=form)
    forged = await client.post(
        "/slack/events", data=body.encode(), headers=signed_headers(body, content_type=FORM, secret="not-the-secret")
    )
    assert (unsigned.status, forged.status) == (401, 401)
    assert BUSY_TEXT not in await unsigned.text() + await forged.text()

    refused = await slack_app.slack.command(user, "help")
    assert await refused.json() == {"text": BUSY_TEXT, "response_type": "ephemeral"}
    modal = {"type": "modal", "callback_id": render.CODE_CALLBACK, "private_metadata": "challenge-1"}
    values = {render.CODE_BLOCK: {render.CODE_ACTION: "123456"}}
    submitted = await slack_app.slack.interactive(slack_app.slack.view_submission(user, modal, "V0001", values))
    assert submitted.status == 200
    assert await submitted.json() == {"response_action": "errors", "errors": {render.CODE_BLOCK: BUSY_TEXT}}

    await slack_app.front.idle()
    assert slack_app.fake.of("response_url") == []
    assert await slack_events(slack_app.signpost) == []
    assert slack_app.front.admission.refused == 2


async def test_a_click_without_a_message_is_told_busy_in_a_modal_not_left_unanswered(slack_app: SlackHarness) -> None:
    """A click in a message is told "busy" through its response_url; a click on the Home tab or in
    a modal has none, and was told nothing at all. It is told in a modal (over the modal it came
    from, or of its own); nothing is run or audited."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("DM01", NURSE)
    assert await slack_app.front.admission.drain(0) == 0
    approve = {"action_id": "approve", "value": '{"c":"approve R1"}', "text": {"type": "plain_text", "text": "x"}}
    home = slack_app.slack.block_action_from_view(user, approve, "b1", "V0HOME01")
    home["view"].update(type="home", callback_id="")
    in_modal = slack_app.slack.block_action_from_view(user, approve, "b1", "V0MODAL1")
    for click in (home, in_modal):
        assert (await slack_app.slack.interactive(click)).status == 200
    await slack_app.front.idle()
    [opened] = slack_app.fake.of("views.open")
    [pushed] = slack_app.fake.of("views.push")
    assert (opened.body["trigger_id"], pushed.body["trigger_id"]) == (home["trigger_id"], in_modal["trigger_id"])
    assert BUSY_TEXT in json.dumps(opened.body["view"]) and BUSY_TEXT in json.dumps(pushed.body["view"])
    assert slack_app.fake.of("views.update") == []
    assert await slack_events(slack_app.signpost) == []
