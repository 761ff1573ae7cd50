"""Slack's Web API (or anything at its configured address) and a response URL answering with a
redirect are not followed: a notice or an answer, and the bot token, reach nowhere else. The call
fails as any refused call does, in its one log line (``redirect_<status>``, nothing of the URL or
body). Real sessions on loopback: the fake Slack redirects to a server recording what reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import structlog

from bot.delivery import DeliveryFailed
from handlers.vocabulary import Notice, Outcome, Platform, Principal, Reply
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser
from tests.fakes.elsewhere import Elsewhere, running_elsewhere

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

DUTY = SlackUser("U0DUTY")
NOTICE = Notice("DM01", "access_request", "A practitioner asked for access. Open Signpost to decide.", (), "req-7")


@pytest.fixture
async def elsewhere() -> AsyncIterator[Elsewhere]:
    async with running_elsewhere() as found:
        yield found


@pytest.mark.parametrize("status", [302, 307, 308])
async def test_a_web_api_redirect_is_not_followed_and_the_notice_fails_in_one_line(
    slack_app: SlackHarness, elsewhere: Elsewhere, status: int
) -> None:
    """The notice fails (the outbox retries it); nothing, not even the token, reaches the other host."""
    slack_app.fake.redirects["chat.postMessage"] = (status, elsewhere.url("/api/chat.postMessage"))
    with structlog.testing.capture_logs() as logs, pytest.raises(DeliveryFailed, match=f"redirect_{status}"):
        await slack_app.front.deliverer.deliver(Principal(Platform.SLACK, DUTY.team_id, DUTY.user_id), NOTICE)
    assert elsewhere.received == []
    [post] = slack_app.fake.of("chat.postMessage")
    assert post.answer == {"redirect": status}
    warnings = [e for e in logs if e["log_level"] != "info"]
    assert [(e["event"], e["error"]) for e in warnings] == [("slack_notice_failed", f"redirect_{status}")]


@pytest.mark.parametrize("status", [302, 307, 308])
async def test_a_response_url_redirect_is_not_followed_and_is_one_line(
    slack_app: SlackHarness, elsewhere: Elsewhere, status: int
) -> None:
    """The answer posted to a response URL that redirects goes no further."""
    slack_app.fake.redirects["response_url"] = (status, elsewhere.url("/steal"))
    reply = Reply(Outcome.INFO, "Signposts for 999 000 0018")
    with structlog.testing.capture_logs() as logs:
        await slack_app.front.show_in_message(slack_app.fake.response_url(), reply, replace=False)
    assert elsewhere.received == []
    [post] = slack_app.fake.of("response_url")
    assert post.answer == {"redirect": status}
    warnings = [e for e in logs if e["log_level"] != "info"]
    assert [(e["event"], e["error"]) for e in warnings] == [("slack_response_failed", f"redirect_{status}")]
    assert "steal" not in repr(logs)
