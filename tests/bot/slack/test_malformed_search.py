"""A search Signpost cannot run (an impossible date) is answered with how to write it: in the slash
command's own response when it is ready in time, as a well-formed search is, and never behind a
"Checking…" placeholder, which opens only when a code may be asked."""

from __future__ import annotations

import pytest

from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser
from tests.factories import load_standard

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")
IMPOSSIBLE = "Amy Jones 31/02/2014"


async def test_a_malformed_search_is_answered_in_the_ack_with_nothing_sent_to_slack(slack_app: SlackHarness) -> None:
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    response = await slack_app.slack.command(user, IMPOSSIBLE)
    answer = await response.text()
    await slack_app.front.idle()
    assert response.status == 200 and "ephemeral" in answer and "date" in answer.lower()
    assert "Amy" not in answer and "31/02" not in answer  # nothing it held is said back
    assert slack_app.fake.outbound() == []  # no views.open placeholder, no response_url post


async def test_a_late_malformed_search_is_told_in_a_message_not_behind_a_placeholder(modal_app: SlackHarness) -> None:
    """With no time to answer in the ack (budget 0), the answer goes to its response_url."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    response = await modal_app.slack.command(user, IMPOSSIBLE)
    assert response.status == 200
    await modal_app.front.idle()
    assert [call.method for call in modal_app.fake.outbound()] == ["response_url"]
