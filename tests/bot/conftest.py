"""Fixtures for the Slack front end: the recording fake Web API, and Signpost's real aiohttp app
with the Slack front end on a loopback test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import Signpost
from bot.config import Settings, load_settings
from bot.slack import SLACK_KEY, SlackFrontEnd, add_slack
from bot.web import create_app
from handlers.model import Platform, Principal
from store import practitioners
from store.models import AuditEvent
from tests.bot.slack_requests import BOT_TOKEN, SIGNING_SECRET, SignedSlack, SlackUser
from tests.fakes.slack_api import FakeSlackApi, running_fake_slack

try:
    from tests.stepup_helpers import enrol_and_step_up
except ImportError:  # FALLBACK until issue 4 (step-up) is merged: the lead removes this at merge.

    async def enrol_and_step_up(app: Signpost, practitioner_id: str) -> None:
        """No step-up gate exists yet, so there is nothing to enrol or step up."""


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlackApi]:
    async with running_fake_slack() as fake:
        yield fake


def slack_settings(fake: FakeSlackApi, **extra: object) -> Settings:
    return load_settings(
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SIGNPOST_SLACK_API_URL=fake.api_url,
        **extra,
    )


@dataclass
class SlackHarness:
    """The app under test: signed requests in, what Slack receives recorded by the fake."""

    signpost: Signpost
    front: SlackFrontEnd
    slack: SignedSlack
    fake: FakeSlackApi

    async def link(self, practitioner_id: str, user: SlackUser) -> SlackUser:
        """Link a Slack identity to a practitioner (as registration will) and step them up."""
        async with self.signpost.ctx.db.write() as session:
            principal = Principal(Platform.SLACK, user.team_id, user.user_id)
            await practitioners.link_identity(session, principal, practitioner_id, self.signpost.ctx.clock.now())
        await enrol_and_step_up(self.signpost, practitioner_id)
        return user

    async def audit(self) -> list[AuditEvent]:
        async with self.signpost.ctx.db.read() as session:
            return list((await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars())


@pytest.fixture
async def slack_app(signpost: Signpost, fake_slack: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    app = create_app(signpost, slack_settings(fake_slack), [add_slack])
    server = TestServer(app, host="127.0.0.1")
    client = TestClient(server)
    await client.start_server()
    try:
        yield SlackHarness(signpost, app[SLACK_KEY], SignedSlack(client, fake_slack), fake_slack)
    finally:
        await client.close()
