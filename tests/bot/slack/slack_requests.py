"""Real signed Slack requests (slash commands, interactivity, events) for the running aiohttp app.

Payload shapes follow Slack's documented examples; signatures come from slack_sdk's own
SignatureVerifier, so Bolt's verification runs for real.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pyotp
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Platform, Principal
from store.people import practitioners
from store.tables.audit import AuditEvent
from tests.fakes.slack_api import BOT_USER, FakeSlackApi
from tests.stepup_helpers import code_now, ensure_enrolled

SIGNING_SECRET = "test-signing-secret-not-a-real-one"
BOT_TOKEN = "xoxb-test-token"
TEAM = "T0001"


def signed_headers(
    body: str, *, content_type: str, timestamp: int | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or ""
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature, "Content-Type": content_type}


@dataclass
class SlackUser:
    user_id: str
    team_id: str = TEAM


@dataclass
class SignedSlack:
    """Builds and posts signed requests as Slack would, to /slack/events of the app under test."""

    client: TestClient  # type: ignore[type-arg]
    fake: FakeSlackApi
    _n: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def trigger(self) -> str:
        return f"{next(self._n)}.1700000000.trigger{next(self._n):04d}"

    async def post(self, body: str, content_type: str, **header_extra: str) -> ClientResponse:
        headers = {**signed_headers(body, content_type=content_type), **header_extra}
        return await self.client.post("/slack/events", data=body.encode(), headers=headers)

    def command_body(
        self, user: SlackUser, text: str, *, trigger: str | None = None, channel: str = "C0001"
    ) -> dict[str, str]:
        return {
            "token": "deprecated-verification-token",
            "team_id": user.team_id,
            "team_domain": "test",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "safeguarding",
            "user_id": user.user_id,
            "user_name": "someone",  # present in real payloads; Signpost must never use it
            "command": "/signpost",
            "text": text,
            "api_app_id": "A0001",
            "response_url": self.fake.response_url(f"cmd{next(self._n)}"),
            "trigger_id": trigger or self.trigger(),
        }

    async def command(self, user: SlackUser, text: str, **extra: Any) -> ClientResponse:
        headers: dict[str, str] = extra.pop("headers", {})
        body = urlencode(self.command_body(user, text, **extra))
        return await self.post(body, "application/x-www-form-urlencoded", **headers)

    async def interactive(self, payload: dict[str, Any]) -> ClientResponse:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded")

    def block_action_from_message(
        self,
        user: SlackUser,
        button: dict[str, Any],
        block_id: str,
        *,
        message_ts: str = "1700000000.000100",
        channel_id: str = "D0001",
        clicked_at: int = 1700000000,
    ) -> dict[str, Any]:
        """What Slack sends when ``button`` (an element we rendered) is clicked in a message
        (``clicked_at``: the second of the click, in its ``action_ts``)."""
        return {
            "type": "block_actions",
            "user": {"id": user.user_id, "username": "someone", "team_id": user.team_id},
            "api_app_id": "A0001",
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": self.trigger(),
            "team": {"id": user.team_id, "domain": "test"},
            "channel": {"id": channel_id, "name": "directmessage"},
            # The clicked message, as Slack sends it: one of the bot's own (a notice in its DM).
            "message": {"type": "message", "bot_id": "B0001", "app_id": "A0001", "user": BOT_USER, "ts": message_ts},
            "response_url": self.fake.response_url(f"act{next(self._n)}"),
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": block_id,
                    "text": button["text"],
                    "value": button["value"],
                    "type": "button",
                    "action_ts": f"{clicked_at}.{next(self._n):06d}",
                }
            ],
        }

    def block_action_from_view(
        self, user: SlackUser, button: dict[str, Any], block_id: str, view_id: str
    ) -> dict[str, Any]:
        """What Slack sends when ``button`` is clicked inside one of our modals."""
        return {
            "type": "block_actions",
            "user": {"id": user.user_id, "username": "someone", "team_id": user.team_id},
            "api_app_id": "A0001",
            "token": "deprecated-verification-token",
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": self.trigger(),
            "team": {"id": user.team_id, "domain": "test"},
            "view": {
                "id": view_id,
                "type": "modal",
                "callback_id": "signpost_result",
                "hash": "h1",
                "team_id": user.team_id,
            },
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": block_id,
                    "text": button["text"],
                    "value": button["value"],
                    "type": "button",
                    "action_ts": f"1700000000.{next(self._n):06d}",
                }
            ],
        }

    def view_submission(
        self, user: SlackUser, view: dict[str, Any], view_id: str, values: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        """Submitting ``view`` (a modal we sent) with text inputs {block_id: {action_id: value}}."""
        state = {
            block: {action: {"type": "plain_text_input", "value": v} for action, v in acts.items()}
            for block, acts in values.items()
        }
        return {
            "type": "view_submission",
            "team": {"id": user.team_id, "domain": "test"},
            "user": {"id": user.user_id, "username": "someone", "team_id": user.team_id},
            "api_app_id": "A0001",
            "token": "deprecated-verification-token",
            "trigger_id": self.trigger(),
            "view": {
                **view,
                "id": view_id,
                "team_id": user.team_id,
                "hash": "h1",
                "state": {"values": state},
                "private_metadata": view.get("private_metadata", ""),
            },
        }

    async def event(
        self, user: SlackUser, event: dict[str, Any], *, event_id: str, retry: int | None = None
    ) -> ClientResponse:
        body = json.dumps(
            {
                "token": "deprecated-verification-token",
                "team_id": user.team_id,
                "api_app_id": "A0001",
                "event": event,
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(time.time()),
                "authorizations": [
                    {"enterprise_id": None, "team_id": user.team_id, "user_id": "UBOT0001", "is_bot": True}
                ],
            }
        )
        extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        return await self.post(body, "application/json", **extra)


def buttons_in(blocks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(block_id, button element) for every button in rendered blocks."""
    return [
        (block["block_id"], element)
        for block in blocks
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("type") == "button"
    ]


# ---- step-up and audit helpers for the Slack tests --------------------------------------------


def principal_of(user: SlackUser) -> Principal:
    return Principal(Platform.SLACK, user.team_id, user.user_id)


async def link_identity(signpost: Signpost, practitioner_id: str, user: SlackUser) -> SlackUser:
    """Link a Slack identity to a practitioner, without enrolling an authenticator.

    For the scripted front-end tests (their dispatcher has no step-up gate), and for someone who
    is about to enrol from Slack itself.
    """
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, principal_of(user), practitioner_id, signpost.ctx.clock.now())
    return user


async def link_with_authenticator(signpost: Signpost, practitioner_id: str, user: SlackUser) -> pyotp.TOTP:
    """Link, then enrol and step up through the console (fresh on Slack too); the authenticator
    comes back so the test can answer later challenges with real codes."""
    await link_identity(signpost, practitioner_id, user)
    return await ensure_enrolled(signpost, practitioner_id)


def later(signpost: Signpost, **delta: float) -> None:
    """Move the app's (fake) clock on, e.g. past the 30-minute freshness of the last code."""
    clock = signpost.ctx.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(**delta))


def code_for(signpost: Signpost, totp: pyotp.TOTP) -> str:
    """The code the authenticator app shows at the app's current (fake) time."""
    return code_now(signpost, totp)


def another_code(code: str) -> str:
    """A well-formed 6-digit code that is not ``code`` (a wrong code, for certain)."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def slack_events(signpost: Signpost) -> list[AuditEvent]:
    """The audit events of requests made from Slack, oldest first.

    Linking a test user enrols their authenticator in the console first (an ``enrol`` and a
    ``code`` event on the console platform): that set-up precedes every test and is not what the
    Slack tests are about, so it is left out here. Step-up events raised from Slack stay in.
    """
    async with signpost.ctx.db.read() as session:
        stmt = select(AuditEvent).where(AuditEvent.platform == Platform.SLACK.value).order_by(AuditEvent.seq)
        return list((await session.execute(stmt)).scalars())


def rate_limited_notice() -> dict[str, Any]:
    """Slack's ``app_rate_limited`` callback: an Events API body with no inner event."""
    return {
        "token": "deprecated-verification-token",
        "type": "app_rate_limited",
        "team_id": "T0001",
        "minute_rate_limited": 1518467820,
        "api_app_id": "A0001",
    }
