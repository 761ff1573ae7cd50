"""A registration's outcome reaches the Slack account that asked, through the real outbox.

The account asking to act as a practitioner is not linked to anyone until a duty manager approves,
so the practitioner's own links do not reach it: its outcome is addressed to it.
"""

from __future__ import annotations

import pytest

from bot.notify import Outbox
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser
from tests.factories import load_standard
from tests.fakes.slack_api import Call

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

ASKER = SlackUser("U0ASKER")  # an account asking to act as P001, Sam Carter (not linked on Slack)
DUTY = SlackUser("U0DUTY")  # DM01, Dana Moss: Northshire's duty manager


def dm_to(calls: list[Call], user: SlackUser) -> list[str]:
    """The texts of the direct messages Slack was asked to post to ``user``."""
    channels = {
        c.answer["channel"]["id"] for c in calls if c.method == "conversations.open" and c.body["users"] == user.user_id
    }
    return [c.body["text"] for c in calls if c.method == "chat.postMessage" and c.body["channel"] in channels]


async def test_a_denied_registration_is_told_to_the_account_that_asked_with_the_reason(
    slack_app: SlackHarness,
) -> None:
    """`/signpost register P001` from an unlinked account, denied by the duty manager with a reason:
    the asking account gets a DM saying so (it was told "you'll be told here"), reason and all."""
    await load_standard(slack_app.signpost)
    await slack_app.link("DM01", DUTY)
    assert (await slack_app.slack.command(ASKER, "register P001")).status == 200
    await slack_app.front.idle()
    assert (await slack_app.slack.command(DUTY, "deny R1 not known to this team")).status == 200
    await slack_app.front.idle()
    await Outbox(slack_app.signpost.ctx, [slack_app.front.deliverer]).deliver_due()
    [told] = dm_to(slack_app.fake.calls, ASKER)
    assert "Registration R1" in told and "denied" in told and "not known to this team" in told
