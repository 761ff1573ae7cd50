"""A notice someone must act on reaches a person through the server as wired for Slack: the duty
manager with no linked account is passed over for an admin who has one, and Slack is asked to DM them."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from bot.notify import Outbox
from bot.slack.front import SlackDeliverer, add_slack, web_client
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome, Platform, Principal
from store.people import practitioners
from tests.access_helpers import load_access
from tests.bot.conftest import slack_settings
from tests.fakes.slack_api import FakeSlackApi
from tests.stepup_helpers import five_wrong_codes


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def test_a_lockout_whose_only_duty_manager_is_unlinked_reaches_a_linked_admin_on_slack(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """DM01, Northshire's only duty manager, has no Slack account; AD01 has. P001 is locked out: the
    notice is DMed to AD01 on Slack, and nothing is left waiting for DM01."""
    create_app(app, slack_settings(fake_slack), [add_slack])  # the server as `signpost run` wires it
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, Principal(Platform.SLACK, "T0001", "U0ADMIN"), "AD01", clock.now())
    locked = await five_wrong_codes(app, clock, "P001")
    assert locked.outcome is Outcome.LOCKED and "Signpost's administrators have been told." in locked.text

    report = await Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))]).deliver_due()
    assert report.unreachable == 0, "nothing queued for someone Slack cannot reach"
    opened = {c.answer["channel"]["id"]: c.body["users"] for c in fake_slack.of("conversations.open")}
    posted = [(opened[c.body["channel"]], c.body["text"]) for c in fake_slack.of("chat.postMessage")]
    locks = [(user, text) for user, text in posted if "paused code entry for practitioner P001" in text]
    assert [user for user, _ in locks] == ["U0ADMIN"]
