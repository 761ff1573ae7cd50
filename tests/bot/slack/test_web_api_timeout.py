"""A Web API call Slack never answers ends when the client's timeout says. slack_sdk gives aiohttp
that timeout only on a session it makes itself; on the one Signpost supplies (bot.outbound, which
refuses redirects) it passes none, and aiohttp's own 300 s applied: a hung Slack held a notice, an
answer and its worker five minutes. The real front end against the fake Slack on loopback, holding
the call unanswered far past the timeout."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Signpost
from bot.slack.front import SLACK_KEY, add_slack
from bot.web import create_app
from tests.bot.conftest import slack_settings
from tests.fakes.slack_api import FakeSlackApi

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

TIMEOUT = 1  # the client's, in seconds
BOUND = 20.0  # the test's own bound: far past the timeout, far short of aiohttp's 300 s


async def test_a_web_api_call_slack_never_answers_fails_at_the_clients_timeout(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """The call fails with a timeout while Slack still holds it, not when Slack lets go."""
    app = create_app(signpost, slack_settings(fake_slack), [add_slack])
    front = app[SLACK_KEY]
    front.client.timeout = TIMEOUT
    server = TestClient(TestServer(app, host="127.0.0.1"))
    await server.start_server()
    fake_slack.hold("chat.postMessage")  # unanswered until released, after the call has ended
    try:
        call = asyncio.ensure_future(front.client.chat_postMessage(channel="C1", text="hello"))
        done, _ = await asyncio.wait({call}, timeout=BOUND)  # not wait_for: its own TimeoutError would pass
        if not done:
            call.cancel()
        assert call in done, "the call was still waiting for Slack at the test's bound"
        assert isinstance(call.exception(), TimeoutError)
        assert fake_slack.waiting, "the call reached Slack and was still held when it ended"
        assert fake_slack.of("chat.postMessage") == []
    finally:
        fake_slack.release("chat.postMessage")
        await server.close()
