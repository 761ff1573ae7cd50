"""An activity is bounded before its structure is checked: a body larger than any Teams sends is
refused unread (413), and a message with more entities than any Teams sends is read as one whose
content cannot be read (help, audited); any other activity with such a list is refused (400).
20,000 entities took over a second to check, as did as many members added in 256 KB."""

from __future__ import annotations

import json

import pytest

from bot.app import Signpost
from bot.teams.front import MAX_ACTIVITY, MAX_ITEMS
from tests.bot.log_stream import logged_at
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message, teams_events
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


async def test_an_activity_larger_than_teams_sends_is_refused_unread_with_a_413(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Over ``MAX_ACTIVITY`` (under the server's 1 MiB): 413, one log line, nothing sent or audited."""
    activity = message(PRIYA, "help", connector.url)
    activity["entities"] = [{"type": "clientInfo", "locale": "en-GB"}] * (MAX_ACTIVITY // 30)
    assert MAX_ACTIVITY < len(json.dumps(activity)) < 1024 * 1024
    with logged_at("info") as stream:
        response = await teams.post(activity)
    assert response.status == 413
    assert [line["problems"] for line in stream.lines() if line["event"] == "teams_activity_invalid"] == [
        ["body:too_large"]
    ]
    assert connector.sent == [] and await teams_events(loaded) == []


async def test_a_message_with_more_entities_than_teams_sends_is_answered_as_unreadable_content(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Within the size, but more than ``MAX_ITEMS``: its content is not read (as any message
    whose content cannot be): answered with help, audited once, one warning line."""
    activity = message(PRIYA, "history", connector.url)
    activity["entities"] = [{"type": "mention", "text": "x"}] * (MAX_ITEMS + 1)
    with logged_at("info") as stream:
        response = await teams.post(activity)
    assert response.status == 202
    assert [line["problems"] for line in stream.lines() if line["event"] == "teams_message_unreadable"] == [
        ["entities:too_many"]
    ]
    assert [e.action for e in await teams_events(loaded)] == ["help"]


async def test_an_activity_with_a_list_longer_than_teams_sends_is_refused_before_its_items_are_checked(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A conversation update naming more members than ``MAX_ITEMS``: 400, one log line naming the field."""
    activity = message(PRIYA, "", connector.url)
    activity.update(type="conversationUpdate", membersAdded=[{"id": "29:x"}] * (MAX_ITEMS + 1))
    with logged_at("info") as stream:
        response = await teams.post(activity)
    assert response.status == 400
    assert [line["problems"] for line in stream.lines() if line["event"] == "teams_activity_invalid"] == [
        ["membersAdded:too_many"]
    ]
    assert connector.sent == [] and await teams_events(loaded) == []
