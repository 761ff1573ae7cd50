"""Signpost's outbound HTTP (Teams' connector, Slack's Web API and response URLs): every session
comes from ``outbound_session``, whose requests never follow a redirect.

aiohttp follows up to ten redirects to any host, and on a 307 or 308 posts the same body again: a
connector (or anything posing as Slack) answering one would have had a child's signposts, and the
bot's own token, sent wherever it pointed. A redirect is a refused delivery instead
(``RedirectRefused``), which each front end logs in its one line for a refusal, naming the host
that answered and nothing else of the URL, and none of the body. The Bot Framework's signing keys are
fetched by PyJWT, which follows no redirect either (``jwt.jwks_client``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import ClientHandlerType, ClientMiddlewareType, ClientRequest, ClientResponse

REDIRECTS = frozenset({301, 302, 303, 307, 308})  # what aiohttp would follow


class RedirectRefused(aiohttp.ClientResponseError):
    """A server answered a redirect, which was not followed. ``host``: the host that answered.

    Its text names the status and that host only: aiohttp's names the whole URL, and libraries log
    an exception's text (slack_sdk: ``Failed to connect (error: {e})``), which bot.logging keeps
    for Signpost's own; a Socket Mode URL's query is a one-time ticket to the app's connection."""

    def __init__(self, response: ClientResponse, host: str) -> None:
        super().__init__(response.request_info, (), status=response.status, message="redirect not followed")
        self.host = host
        self.args = (str(self),)

    def __str__(self) -> str:
        return f"{self.status}, redirect from {self.host or 'an unnamed host'} not followed"

    def __repr__(self) -> str:
        return f"RedirectRefused({str(self)!r})"


async def refuse_redirects(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    """An aiohttp client middleware: a redirect's answer is released unread, and refused."""
    response = await handler(request)
    if response.status in REDIRECTS:
        response.release()
        raise RedirectRefused(response, request.url.host or "")
    return response


def outbound_session(*checks: ClientMiddlewareType, **options: Any) -> aiohttp.ClientSession:
    """A client session (``options`` as aiohttp's) that refuses redirects, and applies ``checks``
    (client middlewares) to every answer besides."""
    return aiohttp.ClientSession(middlewares=(refuse_redirects, *checks), **options)
