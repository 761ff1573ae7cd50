"""Signpost's outbound HTTP (Teams' connector, Slack's Web API and response URLs): every session
comes from ``outbound_session``, whose requests never follow a redirect; the one that is not
aiohttp's, MSAL's for Teams' tokens from Entra ID (the requests library's), from ``token_session``,
which follows none either.

aiohttp follows up to ten redirects to any host, and on a 307 or 308 posts the same body again: a
connector (or anything posing as Slack) answering one would have had a child's signposts, and the
bot's own token, sent wherever it pointed. A redirect is a refused delivery instead
(``RedirectRefused``), which each front end logs in its one line for a refusal, naming the host
that answered and nothing else of the URL, and none of the body. The Bot Framework's signing keys are
fetched by PyJWT, which follows no redirect either (``jwt.jwks_client``).
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import requests
from aiohttp import ClientHandlerType, ClientMiddlewareType, ClientRequest, ClientResponse
from requests.adapters import HTTPAdapter

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


class TokenRedirectRefused(Exception):
    """The token service (Entra ID, through MSAL) answered a redirect, which was not followed: the
    request carried the bot's client secret (or its certificate's assertion). ``host``: the host
    that answered. Its text names the status and that host only."""

    def __init__(self, status: int, host: str) -> None:
        super().__init__(f"{status}, redirect from {host or 'an unnamed host'} not followed (fetching a token)")
        self.status = status
        self.host = host


TOKEN_TIMEOUT = 30.0  # seconds, to connect and for each read: MSAL's own session has none, and waits for ever


def token_session(timeout: float = TOKEN_TIMEOUT) -> requests.Session:
    """A requests session for MSAL (its ``http_client``) that refuses redirects: requests follows
    them, and on a 307 or 308 posts the same body again, the bot's client secret in it. A redirect
    is ``TokenRedirectRefused`` instead, before anything is sent on. Otherwise as MSAL makes its
    own, with a timeout besides, and no retry: urllib3 logs each retry in a warning line of its own
    quoting the URL (the caller logs the failure once), and a retry would spend the caller's bound
    (``bot.teams.tokens.TIMEOUT``) on a connection that just failed."""
    session = requests.Session()
    session.hooks["response"].append(_refuse_token_redirect)  # runs before requests would follow it
    adapter = HTTPAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # requests has no session-wide timeout: MSAL's own session is given one the same way
    session.request = functools.partial(session.request, timeout=timeout)  # type: ignore[method-assign]
    return session


def _refuse_token_redirect(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if response.status_code in REDIRECTS:
        response.close()
        raise TokenRedirectRefused(response.status_code, urlsplit(response.url).hostname or "")
