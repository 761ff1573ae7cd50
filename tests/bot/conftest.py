"""Fixtures for the chat front ends: the recording fake Slack Web API and fake Teams connector, and
Signpost's real aiohttp app with each front end on a loopback test server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import Signpost
from bot.config import Settings, load_settings
from bot.slack import render
from bot.slack.front import SLACK_KEY, SlackFrontEnd, add_slack
from bot.web import RouteAdder, create_app
from handlers.commands import all_specs
from handlers.dispatch.dispatcher import Dispatcher
from handlers.vocabulary import Platform, Principal
from store.people import practitioners
from store.tables.audit import AuditEvent
from tests.bot.scripted import SCRIPTED
from tests.bot.slack.slack_requests import BOT_TOKEN, SIGNING_SECRET, SignedSlack, SlackUser
from tests.bot.teams.teams_support import DANA, PRIYA, TeamsApp, link, settings
from tests.factories import load_standard
from tests.fakes.slack_api import FakeSlackApi, running_fake_slack
from tests.fakes.teams_connector import FakeConnector
from tests.stepup_helpers import enrol_and_step_up


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

    async def shown_after(self, submission: dict[str, Any]) -> dict[str, Any]:
        """Submit a modal; what the user then sees: the ack's ``response_action`` (its body), with
        the view the late answer updated it to when the ack had to show "Checking…" (the front end
        answers within SUBMIT_DEADLINE, else updates the modal afterwards: on a loaded machine the
        answer may come either way, and the user sees the same)."""
        response = await self.slack.interactive(submission)
        assert response.status == 200
        text = await response.text()
        answer: dict[str, Any] = json.loads(text) if text else {}
        view = answer.get("view")
        if answer.get("response_action") == "update" and json.dumps(view) == json.dumps(render.placeholder_modal()):
            await self.front.idle()
            view_id = submission["view"]["id"]
            [*_, late] = [c for c in self.fake.of("views.update") if c.body.get("view_id") == view_id]
            answer = {**answer, "view": late.body["view"]}
        return answer

    async def audit(self) -> list[AuditEvent]:
        async with self.signpost.ctx.db.read() as session:
            return list((await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars())


# The answer budget of a test that does not set one: as long as the answer takes, so that a search
# answered in the ack (or a code modal opened at once) never depends on how loaded the machine is
# (1.5 s, the default, lapsed for a step-up on a loaded CI host and a placeholder came first).
# Tests of a late answer set SIGNPOST_SLACK_ANSWER_BUDGET=0 (``modal_app``): no clock either way.
UNHURRIED = 120.0


@asynccontextmanager
async def serving(
    signpost: Signpost, fake: FakeSlackApi, also: Sequence[RouteAdder] = (), **extra: object
) -> AsyncIterator[SlackHarness]:
    """Signpost's one aiohttp app with the Slack front end (and the routes ``also`` adds: the
    enrolment page, say), on a loopback test server."""
    app = create_app(signpost, slack_settings(fake, **extra), [add_slack, *also])
    if "SIGNPOST_SLACK_ANSWER_BUDGET" not in extra:
        app[SLACK_KEY].answer_budget = UNHURRIED
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield SlackHarness(signpost, app[SLACK_KEY], SignedSlack(client, fake), fake)
    finally:
        await client.close()


@pytest.fixture
async def slack_app(signpost: Signpost, fake_slack: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    async with serving(signpost, fake_slack) as harness:
        yield harness


@pytest.fixture
async def fast_app(signpost: Signpost, fake_slack: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    """The default app (searches answered in the ack), for modules whose ``slack_app`` is another."""
    async with serving(signpost, fake_slack) as harness:
        yield harness


@pytest.fixture
async def modal_app(signpost: Signpost, fake_slack: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    """The answer budget at 0: every search goes the way a late one does (an empty ack, then a
    placeholder modal updated with the answer), without waiting on any clock."""
    async with serving(signpost, fake_slack, SIGNPOST_SLACK_ANSWER_BUDGET=0) as harness:
        yield harness


@pytest.fixture
async def scripted_app(signpost: Signpost, fake_slack: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    """The real dispatcher and policy chain, with scripted stand-ins for the commands other features
    build (the step-up code, access requests and decisions), so the Slack plumbing they will use is
    exercised end to end before those features exist."""
    replaced = {spec.name for spec in SCRIPTED}
    specs = [spec for spec in all_specs() if spec.name not in replaced] + list(SCRIPTED)
    signpost.dispatcher = Dispatcher.build(signpost.ctx, specs)
    async with serving(signpost, fake_slack) as harness:
        yield harness


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector().start()
    yield fake
    await fake.close()


@pytest.fixture
async def loaded(signpost: Signpost) -> Signpost:
    """The standard synthetic feeds, PRIYA linked to P002 and DANA to DM01, both stepped up."""
    await load_standard(signpost)
    await link(signpost, PRIYA, "P002")
    await link(signpost, DANA, "DM01")
    await enrol_and_step_up(signpost, "P002")
    await enrol_and_step_up(signpost, "DM01")
    return signpost


@pytest.fixture
async def teams(loaded: Signpost) -> AsyncIterator[TeamsApp]:
    """Signpost's web app with Teams in (explicit) anonymous development mode."""
    app = await TeamsApp.start(loaded, settings())
    yield app
    await app.close()
