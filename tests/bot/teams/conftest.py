"""Fixtures for Teams with a bot registration configured: real RS256 tokens, keys on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.app import Signpost
from bot.config import Settings
from bot.teams.front import teams_route_adder
from tests.bot.teams.teams_support import TeamsApp, settings
from tests.bot.teams.teams_tokens import Signer, credentials, fake_entra
from tests.fakes.teams_connector import FakeConnector


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def secured(connector: FakeConnector, signer: Signer) -> Settings:
    connector.jwks = signer.jwks()
    return settings(**credentials(connector.jwks_url))


async def slack_stand_in(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def add_slack_stand_in(app: web.Application, signpost: Signpost, settings: Settings) -> None:
    """Another front end's route on the same application (Slack's, in production)."""
    app.router.add_post("/slack/events", slack_stand_in)


@pytest.fixture
async def teams_secured(loaded: Signpost, secured: Settings) -> AsyncIterator[TeamsApp]:
    """Signpost's web app with Teams behind a (fake) bot registration, and a Slack stand-in route."""
    adder = teams_route_adder(secured, token_source=fake_entra)
    assert adder is not None
    app = TeamsApp(loaded, secured, [add_slack_stand_in, adder])
    await app.client.start_server()
    yield app
    await app.close()
