"""Identity fields (user, team, enterprise ids) are Slack's, never text a person typed: a signed
request with an empty one, or one holding a NUL or another control character, is a malformed
request. It is refused 400 in one log line before anything is dispatched (it was a 200 with no
answer and no audit), and the ids are never logged."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.bot.conftest import SlackHarness
from tests.bot.log_stream import logged_at
from tests.bot.slack.slack_requests import SlackUser, slack_events
from tests.factories import load_standard
from tests.spread import spread

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")
FORM = "application/x-www-form-urlencoded"

BAD_IDS = {
    "empty user": {"user_id": ""},
    "empty team": {"team_id": ""},
    "NUL in user": {"user_id": "U0NURSE\x00"},
    "newline in user": {"user_id": "U0NURSE\nU0DUTY"},
    "escape in team": {"team_id": "T0001\x1b[2J"},
    "space in user": {"user_id": "U0 NURSE"},
    "no user at all": {"user_id": None},
    "overlong user": {"user_id": "U" * 129},
}


@spread("change", BAD_IDS)
async def test_a_command_with_a_malformed_identity_is_refused_400_in_one_line(
    slack_app: SlackHarness, change: dict[str, Any]
) -> None:
    await load_standard(slack_app.signpost)
    await slack_app.link("P002", NURSE)
    body = slack_app.slack.command_body(NURSE, "help")
    body.update(change)
    form = urlencode({k: v for k, v in body.items() if v is not None})
    with logged_at("debug") as log:
        response = await slack_app.slack.post(form, FORM)
        await slack_app.front.idle()
    assert response.status == 400
    [line] = log.lines()
    assert (line["event"], line["status"]) == ("slack_request_refused", 400)
    assert line["reason"] in ("bad_identity", "missing_identity")
    assert "U0NURSE" not in log.text and "T0001" not in log.text
    assert slack_app.fake.outbound() == [] and await slack_events(slack_app.signpost) == []


async def test_the_same_command_with_good_ids_is_answered_and_audited(slack_app: SlackHarness) -> None:
    """The control case."""
    await load_standard(slack_app.signpost)
    await slack_app.link("P002", NURSE)
    response = await slack_app.slack.command(NURSE, "help")
    await slack_app.front.idle()
    assert response.status == 200
    assert [e.action for e in await slack_events(slack_app.signpost)] == ["help"]


@spread("user_id", ["", "U0NURSE\x00", "U0\tNURSE"])
async def test_a_click_with_a_malformed_user_id_is_refused_400_in_one_line(
    slack_app: SlackHarness, user_id: str
) -> None:
    button = {"action_id": "approve", "value": "junk", "text": {"type": "plain_text", "text": "Approve"}}
    payload = slack_app.slack.block_action_from_message(NURSE, button, "b1")
    payload["user"]["id"] = user_id
    with logged_at("info") as log:
        response = await slack_app.slack.interactive(payload)
        await slack_app.front.idle()
    assert response.status == 400
    assert log.events() == ["slack_request_refused"]
    assert slack_app.fake.outbound() == [] and await slack_events(slack_app.signpost) == []
