"""While the signing-key (JWKS) endpoint is down or hanging, forged tokens cannot pile up fetches.

The endpoint here is a loopback server that serves the keys, or hangs until the test lets the
request fail (standing in for a timeout, so no test waits on one). Tokens with an unknown key id
are what make a verifier fetch; a stream of them during an outage must cost one fetch, not one
each, and must not hold up genuine requests whose key is already known.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from bot.app import Signpost
from bot.teams.front import TEAMS_KEY, teams_route_adder
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message, settings
from tests.bot.teams.teams_tokens import Signer, credentials, fake_entra
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


class KeyServer:
    """A JWKS endpoint on loopback that counts fetches and can be made to hang, then fail."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.hits = 0
        self.down = False  # hang until ``release`` is set, then answer 503
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/keys", self._keys)
        self.server = TestServer(app, host="127.0.0.1")

    async def _keys(self, request: web.Request) -> web.Response:
        self.hits += 1
        if not self.down:
            return web.json_response(self.jwks)
        await self.release.wait()
        return web.Response(status=503)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/keys"))

    async def hits_reach(self, n: int) -> None:
        while self.hits < n:
            await asyncio.sleep(0.01)


class Timer:
    """Monotonic seconds the test moves on (the key cache's clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def jwks(signer: Signer) -> AsyncIterator[KeyServer]:
    server = KeyServer(signer.jwks())
    await server.server.start_server()
    yield server
    server.release.set()
    await server.server.close()


@pytest.fixture
async def bot(loaded: Signpost, jwks: KeyServer) -> AsyncIterator[TeamsApp]:
    configured = settings(**credentials(jwks.url))
    adder = teams_route_adder(configured, token_source=fake_entra)
    assert adder is not None
    app = TeamsApp(loaded, configured, [adder])
    await app.client.start_server()
    yield app
    await app.close()


def post(bot: TeamsApp, connector: FakeConnector, token: str) -> asyncio.Task[ClientResponse]:
    headers = {"Authorization": f"Bearer {token}"}
    return asyncio.create_task(bot.post(message(PRIYA, AMY, connector.url), headers))


async def test_forged_tokens_during_an_outage_cost_one_fetch_not_one_each(
    bot: TeamsApp, jwks: KeyServer, connector: FakeConnector
) -> None:
    """The endpoint hangs from the start: four forged tokens at once, then a fifth, make one fetch."""
    jwks.down = True
    stranger = Signer(kid="not-a-published-key")
    forged = [post(bot, connector, stranger.token(connector.url)) for _ in range(4)]
    await jwks.hits_reach(1)
    jwks.release.set()  # the hanging fetch fails (as a timeout would)
    assert [r.status for r in await asyncio.gather(*forged)] == [401] * 4
    with capture_logs() as logs:
        late = await post(bot, connector, stranger.token(connector.url))
    assert late.status == 401
    assert jwks.hits == 1
    assert [line["event"] for line in logs] == ["teams_request_rejected"]  # one line, no fetch
    assert connector.sent == []


async def test_a_genuine_request_is_answered_while_a_forged_one_waits_on_a_hanging_fetch(
    bot: TeamsApp, jwks: KeyServer, connector: FakeConnector, signer: Signer
) -> None:
    timer = Timer()
    signing_keys = bot.web[TEAMS_KEY].keys
    assert signing_keys is not None  # a JWKS URL is configured
    signing_keys.timer = timer
    assert (await post(bot, connector, signer.token(connector.url))).status == 202
    assert jwks.hits == 1

    # Within the cool-down after a fetch, an unknown key id is refused without another fetch.
    stranger = Signer(kid="not-a-published-key")
    assert (await post(bot, connector, stranger.token(connector.url))).status == 401
    assert jwks.hits == 1

    timer.now += 60  # past the cool-down; the endpoint goes down
    jwks.down = True
    first = post(bot, connector, stranger.token(connector.url))
    await jwks.hits_reach(2)
    second = post(bot, connector, stranger.token(connector.url))  # shares the fetch in flight
    assert (await post(bot, connector, signer.token(connector.url))).status == 202  # key known: answered
    assert not first.done()
    jwks.release.set()
    assert (await first).status == 401
    assert (await second).status == 401
    assert jwks.hits == 2

    # Back-off after the failure: refused at once, no fetch.
    assert (await post(bot, connector, stranger.token(connector.url))).status == 401
    assert jwks.hits == 2

    # Past its lifespan, a known key still answers through the outage (its refresh fails aside).
    timer.now += 3600
    assert (await post(bot, connector, signer.token(connector.url))).status == 202
    await jwks.hits_reach(3)

    # The endpoint returns with a new key: after the back-off, a token signed with it is accepted.
    rotated = Signer(kid="next-key")
    jwks.jwks = {"keys": signer.jwks()["keys"] + rotated.jwks()["keys"]}
    jwks.down = False
    timer.now += 60
    assert (await post(bot, connector, rotated.token(connector.url))).status == 202
    assert jwks.hits == 4
    assert (await post(bot, connector, stranger.token(connector.url))).status == 401
    assert jwks.hits == 4
