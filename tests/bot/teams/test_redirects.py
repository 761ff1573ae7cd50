"""A connector that answers Signpost's outbound call with a redirect is not followed: the answer
(a child's signposts) and the bot's token go nowhere else, and the refusal is one log line naming
the status and the host that answered. Real signed activities; the "connector" and the place it
points to are servers on loopback, the second recording anything that reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import Signpost
from bot.delivery import DeliveryFailed
from bot.teams.front import TEAMS_KEY
from handlers.vocabulary import Notice
from tests.bot.log_stream import logged_at
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message, teams_events
from tests.bot.teams.teams_tokens import Signer
from tests.factories import AMY
from tests.fakes.elsewhere import Elsewhere, running_elsewhere

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


def redirecting(status: int, to: str) -> TestServer:
    """A "connector" answering every call with ``status`` to ``to``."""

    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": to + "steal" + request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return TestServer(app, host="127.0.0.1")


@pytest.fixture
async def elsewhere() -> AsyncIterator[Elsewhere]:
    async with running_elsewhere() as found:
        yield found


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_connector_redirect_is_not_followed_and_is_one_line(
    teams_secured: TeamsApp, elsewhere: Elsewhere, signer: Signer, loaded: Signpost, status: int
) -> None:
    """The lookup is audited, its answer on record as not shown; nothing reaches the other host
    (no second post of the answer, no bot token); one warning, no traceback, no URL path or body."""
    connector = redirecting(status, elsewhere.url())
    await connector.start_server()
    try:
        url = str(connector.make_url("/"))
        with logged_at("info") as log:
            response = await teams_secured.post(
                message(PRIYA, AMY, url), {"Authorization": f"Bearer {signer.token(url)}"}
            )
    finally:
        await connector.close()
    assert response.status == 202
    assert elsewhere.received == []
    warnings = [line for line in log.lines() if line["level"] != "info"]
    assert [(w["event"], w["status"], w["host"]) for w in warnings] == [("teams_reply_refused", status, "127.0.0.1")]
    assert "Traceback" not in log.text and "exception" not in log.text and "steal" not in log.text
    answered, unshown = await teams_events(loaded)
    assert (answered.action, answered.outcome) == ("lookup", "answered")
    assert (unshown.action, unshown.detail.rsplit(": ", 1)[-1]) == ("answer_not_shown", f"teams:http_{status}")


async def test_a_notice_whose_connector_redirects_is_a_delivery_failure_in_one_line(
    teams: TeamsApp, elsewhere: Elsewhere
) -> None:
    """The notice is not sent where the redirect points; it fails (the outbox retries it with
    backoff), in one line naming the status and the host that answered."""
    connector = redirecting(307, elsewhere.url())
    await connector.start_server()
    try:
        await teams.post(message(PRIYA, "help", str(connector.make_url("/"))))  # the chat is stored
        with logged_at("info") as log, pytest.raises(DeliveryFailed, match="RedirectRefused"):
            await teams.web[TEAMS_KEY].deliverer.deliver(PRIYA.principal, NOTICE)
    finally:
        await connector.close()
    assert elsewhere.received == []
    [line] = [line for line in log.lines() if str(line.get("logger", "")).startswith("signpost")]
    assert (line["event"], line["status"], line["host"]) == ("teams_notice_failed", 307, "127.0.0.1")


NOTICE = Notice("DM01", "access_request", "A practitioner asked for access. Open Signpost to decide.", (), "req-7")
