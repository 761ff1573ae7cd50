"""bot.outbound's refused redirect says only its status and the host that answered: slack_sdk logs
a failed Socket Mode connection with the exception's text (``Failed to connect (error: {e})``), and
bot.logging keeps the text of Signpost's own exceptions, so a URL in it (a WebSocket's one-time
``?ticket=``) would have reached the log. Real sessions and a real server on loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.outbound import RedirectRefused, outbound_session
from tests.bot.log_stream import logged_at

PATH = "/link/"
QUERY = "ticket=ONE-TIME-TICKET&app_id=A1"


@pytest.fixture
async def redirecting() -> AsyncIterator[TestServer]:
    """A server that answers every request with a redirect elsewhere."""

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("https://elsewhere.example/")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.mark.parametrize("websocket", [True, False], ids=["ws_connect", "request"])
async def test_a_refused_redirect_logged_as_slack_sdk_logs_it_names_no_path_or_query(
    redirecting: TestServer, websocket: bool
) -> None:
    """The log line of a redirected call, written as slack_sdk writes it, names the status and host."""
    url = str(redirecting.make_url(PATH)) + "?" + QUERY
    session = outbound_session()
    with logged_at("info") as log:
        try:
            with pytest.raises(RedirectRefused) as refused:
                if websocket:
                    await session.ws_connect(url)
                else:
                    await session.get(url)
            logging.getLogger("slack_bolt.AsyncApp").exception(
                f"Failed to connect (error: {refused.value}); Retrying..."
            )
        finally:
            await session.close()
    assert (refused.value.status, refused.value.host) == (307, "127.0.0.1")
    assert "307" in log.text and "127.0.0.1" in log.text
    for secret in ("ticket", "ONE-TIME", "app_id", PATH, "elsewhere"):
        assert secret not in log.written
        assert secret not in str(refused.value) and secret not in repr(refused.value)
