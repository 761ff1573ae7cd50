"""A genuine, correctly signed Teams message is run and audited however Entra ID is: unreachable,
too slow, or redirecting. The bot's token (``bot.teams.tokens``, real MSAL) is asked of a fake Entra
ID on loopback (``tests.fakes.entra``, HTTPS as MSAL requires) only when the answer is sent; without
one the answer cannot be sent: it is on record as not shown, the request is answered 202 as any whose
answer the connector failed, and the failure is one warning line with a fixed reason (no URL, no
traceback, no library's own line). MSAL never runs on the event loop: while Entra ID holds its
answer, Slack's route (and the fake itself, which shares the loop) is answered.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.app import Signpost
from bot.config import Settings
from bot.delivery import DeliveryFailed
from bot.teams.front import TEAMS_KEY, teams_route_adder
from handlers.vocabulary import Notice
from tests.bot.log_stream import LogStream, logged_at
from tests.bot.teams.conftest import add_slack_stand_in
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message, teams_events
from tests.bot.teams.teams_tokens import Signer
from tests.factories import AMY
from tests.fakes.elsewhere import Elsewhere, running_elsewhere
from tests.fakes.entra import TENANT, TOKEN, running_entra
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

SECRET = "not-a-real-secret"  # tests.bot.teams.teams_tokens.credentials


@pytest.fixture
async def elsewhere() -> AsyncIterator[Elsewhere]:
    async with running_elsewhere() as found:
        yield found


def nowhere() -> str:
    """An authority on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"https://127.0.0.1:{port}/{TENANT}/b2c_1_signpost"


@asynccontextmanager
async def serving(loaded: Signpost, secured: Settings, authority: str) -> AsyncIterator[TeamsApp]:
    """Signpost's web app with Teams asking ``authority`` for its token, and a Slack stand-in route;
    closed on the way out."""
    adder = teams_route_adder(secured, authority=authority)
    assert adder is not None
    app = TeamsApp(loaded, secured, [add_slack_stand_in, adder])
    await app.client.start_server()
    try:
        yield app
    finally:
        await app.close()


async def ask(app: TeamsApp, signer: Signer, connector: FakeConnector) -> int:
    token = signer.token(connector.url)
    response = await app.post(message(PRIYA, AMY, connector.url), {"Authorization": f"Bearer {token}"})
    return response.status


def assert_one_line(log: LogStream, reason: str, **more: str) -> None:
    """The failure is one warning, Signpost's own, with its fixed reason; no traceback, no URL."""
    warnings = [line for line in log.lines() if line["level"] != "info"]
    assert [(w["event"], w.get("reason")) for w in warnings] == [("teams_token_unavailable", reason)]
    assert {key: warnings[0].get(key) for key in more} == more
    for text in ("Traceback", "exception", "https://", "Retrying", SECRET, TENANT, "steal"):
        assert text not in log.text


async def assert_audited_not_shown(loaded: Signpost) -> None:
    answered, unshown = await teams_events(loaded)
    assert (answered.action, answered.outcome) == ("lookup", "answered")
    assert (unshown.action, unshown.detail.rsplit(": ", 1)[-1]) == ("answer_not_shown", "teams:no_token")


async def test_unreachable_entra_is_a_command_run_and_audited_and_one_line(
    loaded: Signpost, secured: Settings, signer: Signer, connector: FakeConnector
) -> None:
    async with serving(loaded, secured, nowhere()) as app:
        with logged_at("info") as log:
            status = await ask(app, signer, connector)
    assert status == 202
    assert connector.sent == []
    await assert_audited_not_shown(loaded)
    assert_one_line(log, "unreachable")


async def test_slow_entra_never_holds_the_event_loop_and_the_wait_is_bounded(
    loaded: Signpost,
    secured: Settings,
    signer: Signer,
    connector: FakeConnector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While Entra ID holds its answer, another front end's route is answered; the message's own
    wait ends at the bound, its answer recorded as not shown."""
    async with running_entra(tmp_path, monkeypatch) as entra:
        entra.held = True
        async with serving(loaded, secured, entra.authority) as app:
            with logged_at("info") as log:
                teams = asyncio.create_task(ask(app, signer, connector))
                await entra.arrived.wait()
                slack = await app.client.post("/slack/events", json={})
                assert slack.status == 200 and not entra.release.is_set()  # answered while Entra ID held
                status = await teams
    assert status == 202
    assert connector.sent == []
    await assert_audited_not_shown(loaded)
    assert_one_line(log, "timeout")


@pytest.mark.parametrize("configuration", [False, True], ids=["token endpoint", "openid configuration"])
async def test_a_redirect_from_entra_is_not_followed_and_the_command_stands(
    loaded: Signpost,
    secured: Settings,
    signer: Signer,
    connector: FakeConnector,
    elsewhere: Elsewhere,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    configuration: bool,
) -> None:
    """Nothing reaches the place the 307 points to (the token request carries the bot's secret);
    the refusal is the one line, naming the host that answered."""
    to = elsewhere.url("/steal")
    async with (
        running_entra(tmp_path, monkeypatch, to, redirect_configuration=configuration) as entra,
        serving(loaded, secured, entra.authority) as app,
    ):
        with logged_at("info") as log:
            status = await ask(app, signer, connector)
    assert status == 202
    assert elsewhere.received == []
    assert connector.sent == []
    await assert_audited_not_shown(loaded)
    assert_one_line(log, "redirect", host="127.0.0.1")


async def test_a_token_from_entra_reaches_the_connector_and_is_kept(
    loaded: Signpost,
    secured: Settings,
    signer: Signer,
    connector: FakeConnector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The OpenID configuration, then one token request; both answers carry the token, the second
    from MSAL's cache."""
    async with running_entra(tmp_path, monkeypatch) as entra, serving(loaded, secured, entra.authority) as app:
        assert await ask(app, signer, connector) == 202
        assert await ask(app, signer, connector) == 202
    assert [method for method, _ in entra.seen] == ["GET", "POST"]
    assert entra.credentials == ["client_secret"]
    assert len(connector.sent) == 2
    assert {sent.authorization for sent in connector.sent} == {f"Bearer {TOKEN}"}
    assert [event.action for event in await teams_events(loaded)] == ["lookup", "lookup"]


async def test_a_notice_without_a_token_is_a_delivery_failure_in_one_line(
    loaded: Signpost,
    secured: Settings,
    signer: Signer,
    connector: FakeConnector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chat is stored while Entra ID answers; then it is unreachable: the notice fails (the
    outbox retries it with backoff), in one line with the reason."""
    async with running_entra(tmp_path, monkeypatch) as entra, serving(loaded, secured, entra.authority) as app:
        assert await ask(app, signer, connector) == 202
    async with serving(loaded, secured, nowhere()) as app:
        with logged_at("info") as log, pytest.raises(DeliveryFailed, match="TokenUnavailable"):
            await app.web[TEAMS_KEY].deliverer.deliver(PRIYA.principal, NOTICE)
    assert len(connector.sent) == 1  # the answer to the message; no notice
    [line] = [line for line in log.lines() if line["level"] != "info"]
    assert (line["event"], line["reason"]) == ("teams_notice_failed", "unreachable")
    assert "Traceback" not in log.text and "https://" not in log.text


NOTICE = Notice("DM01", "access_request", "A practitioner asked for access. Open Signpost to decide.", (), "req-7")
