"""Socket Mode goes through the same Bolt app and handlers: recorded envelopes, no network.

A recording Socket Mode client (slack_sdk's aiohttp client with the WebSocket send replaced by a
list) runs the SDK's own message processing, which hands each envelope to Bolt's Socket Mode
handler exactly as a live connection would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

import bot.slack.front
from bot.slack.front import SocketModeHandler
from handlers.stepup import flow as stepup
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import (
    SlackUser,
    another_code,
    code_for,
    later,
    link_with_authenticator,
    rate_limited_notice,
    slack_events,
)
from tests.factories import AMY, load_standard

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")


class RecordingSocketModeClient(SocketModeClient):
    """Never connects; records what would be sent back over the WebSocket."""

    sent: list[dict[str, Any]]

    async def send_socket_mode_response(self, response: dict[str, Any] | SocketModeResponse) -> None:
        self.sent.append(response.to_dict() if isinstance(response, SocketModeResponse) else response)

    async def session_id(self) -> str:
        return "recorded-session"


@asynccontextmanager
async def socket_for(app: SlackHarness) -> AsyncIterator[RecordingSocketModeClient]:
    """The front end's Socket Mode handler for the app under test, fed by a recording client."""
    handler = SocketModeHandler(app.front.bolt, "xapp-test", app.front.client)
    client = RecordingSocketModeClient(app_token="xapp-test", web_client=app.front.client)
    client.sent = []
    client.socket_mode_request_listeners.append(handler.handle)
    try:
        yield client
    finally:
        await client.close()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
        await handler.client.close()  # type: ignore[no-untyped-call]


async def deliver(client: RecordingSocketModeClient, envelope: dict[str, Any]) -> None:
    """What the SDK does with one frame received on the WebSocket."""
    raw = json.dumps(envelope)
    await client.run_message_listeners(json.loads(raw), raw)


async def test_socket_mode_slash_command_is_acked_on_the_envelope_and_answered_privately(
    slack_app: SlackHarness,
) -> None:
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    payload = slack_app.slack.command_body(user, "help")
    async with socket_for(slack_app) as socket:
        await deliver(
            socket,
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            },
        )
        await slack_app.front.idle()
    assert socket.sent == [{"envelope_id": "env-1"}]
    [posted] = slack_app.fake.of("response_url")
    assert posted.body["response_type"] == "ephemeral" and "who else is working" in posted.body["text"]
    [event] = await slack_events(slack_app.signpost)
    assert (event.platform, event.user_id, event.action, event.actor_id) == (
        "slack",
        "U0NURSE",
        "help",
        "P002",
    )


async def test_socket_mode_lookup_is_answered_in_the_envelope_ack_with_no_web_api_call(
    slack_app: SlackHarness,
) -> None:
    """Over Socket Mode a stepped-up lookup is answered in the envelope's own ack, ephemeral."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    payload = slack_app.slack.command_body(user, AMY)
    async with socket_for(slack_app) as socket:
        await deliver(
            socket,
            {"envelope_id": "env-3", "type": "slash_commands", "accepts_response_payload": True, "payload": payload},
        )
        await slack_app.front.idle()
    [sent] = socket.sent
    assert sent["envelope_id"] == "env-3" and sent["payload"]["response_type"] == "ephemeral"
    assert "Sam Carter" in json.dumps(sent["payload"]["blocks"])
    assert slack_app.fake.outbound() == []
    assert [(e.action, e.outcome) for e in await slack_events(slack_app.signpost)] == [("lookup", "answered")]


async def test_socket_mode_view_submission_carries_inline_errors_in_the_envelope_ack(
    slack_app: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong step-up code over Socket Mode: the errors travel back as the envelope's payload."""
    # Inline errors come only in the ack, given when the work ends within SUBMIT_DEADLINE: the answer
    # is held here, not this machine's speed (test_interactivity holds the deadline's other side).
    monkeypatch.setattr(bot.slack.front, "SUBMIT_DEADLINE", 60.0)
    await load_standard(slack_app.signpost)
    totp = await link_with_authenticator(slack_app.signpost, "P002", NURSE)
    later(slack_app.signpost, minutes=31)  # the code is stale: the lookup asks for a new one
    await slack_app.slack.command(NURSE, AMY)
    await slack_app.front.idle()
    [code_view] = slack_app.fake.of("views.open")  # the code modal, opened at once
    modal = code_view.body["view"]
    wrong = another_code(code_for(slack_app.signpost, totp))
    payload = slack_app.slack.view_submission(NURSE, modal, "V1", {"code": {"code": wrong}})
    async with socket_for(slack_app) as socket:
        await deliver(
            socket,
            {
                "envelope_id": "env-2",
                "type": "interactive",
                "accepts_response_payload": True,
                "payload": payload,
            },
        )
    error = stepup.WRONG.format(left=4, ies="ies")
    assert socket.sent == [
        {"envelope_id": "env-2", "payload": {"response_action": "errors", "errors": {"code": error}}}
    ]
    assert [(e.action, e.outcome) for e in await slack_events(slack_app.signpost)] == [
        ("lookup", "challenged"),
        ("code", "challenged"),
    ]


async def test_socket_mode_retried_event_acts_once(slack_app: SlackHarness) -> None:
    """An Events API envelope redelivered with retry_attempt: one App Home publish, one audit event."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    event = {
        "type": "app_home_opened",
        "user": user.user_id,
        "channel": "D0001",
        "tab": "home",
        "event_ts": "1.2",
    }
    body = {
        "team_id": user.team_id,
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev9",
    }
    async with socket_for(slack_app) as socket:
        for attempt, envelope_id in ((None, "env-3"), (1, "env-4")):
            envelope = {
                "envelope_id": envelope_id,
                "type": "events_api",
                "payload": body,
                "retry_attempt": attempt,
            }
            await deliver(socket, envelope)
            await slack_app.front.idle()
    assert socket.sent == [{"envelope_id": "env-3"}, {"envelope_id": "env-4"}]
    assert len(slack_app.fake.of("views.publish")) == 1
    assert [e.action for e in await slack_events(slack_app.signpost)] == ["home"]


async def test_socket_mode_rate_limit_notice_is_acked_and_logged_once_as_over_http(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack's ``app_rate_limited`` notice in an Events API envelope is acked and logged in the one
    warning it gets over HTTP, not taken to Bolt, which has no listener for it (its
    "slack_request_unhandled" line); nothing is sent or audited."""
    notice = rate_limited_notice()
    caplog.set_level(logging.DEBUG)
    async with socket_for(slack_app) as socket:
        with structlog.testing.capture_logs() as logs:
            await deliver(socket, {"envelope_id": "env-5", "type": "events_api", "payload": notice})
            await slack_app.front.idle()
    assert socket.sent == [{"envelope_id": "env-5"}]
    assert [e for e in logs if e.get("log_level") in ("warning", "error")] == [
        {"event": "slack_events_rate_limited", "log_level": "warning", "team": "T0001", "minute": 1518467820}
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert slack_app.fake.calls == [] and await slack_app.audit() == []
