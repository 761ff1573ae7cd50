"""A signed slash command too long to be a command, through the real Slack front end: answered
kindly in a private message, never searched, and audited once without its text."""

from __future__ import annotations

import pytest

from handlers.grammar import MAX_COMMAND_TEXT
from tests.access_helpers import audit_events
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser
from tests.factories import load_standard

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")  # linked to P002, stepped up
STRANGER = SlackUser("U0STRANGER")  # no chat identity in the register
LONG_SEARCH = "Amy " * (MAX_COMMAND_TEXT // 4) + "03/04/2014"


async def test_a_long_search_from_a_stepped_up_practitioner_is_told_it_is_too_long(slack_app: SlackHarness) -> None:
    """The ack is empty, the answer goes to response_url, no placeholder is opened, and the one
    event (usage, refused, "too long") keeps no terms: the search handler never ran."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    before = len(await audit_events(slack_app.signpost))
    response = await slack_app.slack.command(user, LONG_SEARCH)
    assert response.status == 200 and await response.text() == ""
    await slack_app.front.idle()
    [posted] = slack_app.fake.outbound()
    assert posted.method == "response_url" and posted.body["response_type"] == "ephemeral"
    assert "That message is too long for a command" in posted.raw and "Amy" not in posted.raw
    [event] = (await audit_events(slack_app.signpost))[before:]
    assert (event.user_id, event.actor_id, event.action, event.outcome) == ("U0NURSE", "P002", "usage", "refused")
    assert (event.detail, event.terms, event.terms_key, event.subject_refs) == ("too long", None, None, "")


async def test_a_long_message_from_someone_unregistered_is_answered_alike(slack_app: SlackHarness) -> None:
    """Not registered: the same answer, and one event naming no practitioner."""
    response = await slack_app.slack.command(STRANGER, "A " * (MAX_COMMAND_TEXT // 2 + 1))
    assert response.status == 200
    await slack_app.front.idle()
    [posted] = slack_app.fake.outbound()
    assert "That message is too long for a command" in posted.raw
    [event] = await audit_events(slack_app.signpost)
    assert (event.actor_id, event.action, event.detail, event.terms) == (None, "usage", "too long", None)
