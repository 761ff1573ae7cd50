"""A fake Bot Framework connector service on loopback that records what the bot sends.

Incoming test activities carry ``serviceUrl`` pointing here, so the real SDK connector client
posts its replies, proactive messages, card updates and conversation creations to this server.
Also serves a JWKS document, standing in for the Bot Framework's OpenID signing keys.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Sent:
    """One call the bot made to the connector."""

    method: str
    path: str
    conversation_id: str
    authorization: str | None
    body: dict[str, Any]

    @property
    def text(self) -> str | None:
        value = self.body.get("text")
        return value if isinstance(value, str) else None

    @property
    def card(self) -> dict[str, Any] | None:
        """The Adaptive Card attached to an activity, if any."""
        for attachment in self.body.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content: dict[str, Any] = attachment["content"]
                return content
        return None


@dataclass
class FakeConnector:
    """Start with ``await FakeConnector().start()``; ``url`` goes into activities' serviceUrl."""

    sent: list[Sent] = field(default_factory=list)
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    fail_sends: bool = False  # every activity post is refused (503)
    fail_next: int = 0  # this many posts (activities or creations) are refused, then they succeed
    # Conversations this connector does not know: a post or update into one is answered 404, as
    # Bot Framework answers a conversation the bot is not in (or that no longer exists).
    unknown_conversations: set[str] = field(default_factory=set)
    # Conversations whose posts are throttled (429), as Bot Framework answers a bot posting too fast.
    throttled_conversations: set[str] = field(default_factory=set)
    # Opening a 1:1 chat is refused (403), as Teams refuses it for a person who has not added the
    # app (or has removed it, or whose admin blocked it).
    refuse_creations: bool = False
    # Bot Framework refuses an activity larger than this (Teams' message limit, about 28 KB) with
    # 413 MessageSizeTooBig; measured as the bytes the bot sent.
    max_activity_bytes: int = 28 * 1024
    # The next activity posts answered with these (status, headers), in order, before anything else
    # (``refuse``): a 429 with its Retry-After, a 5xx, a 403 or 404.
    refusals: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    # While set (``hold``), activity posts wait at the door unanswered, and are recorded only once
    # answered (``release``, or when the fake closes): a connector that does not answer.
    held: asyncio.Event | None = None
    _gates: list[asyncio.Event] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: TestServer | None = None

    async def start(self) -> FakeConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._send)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._send)
        app.router.add_get("/keys", self._keys)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        for gate in self._gates:  # a test that ends holding posts must not wait for them
            gate.set()
        if self._server is not None:
            await self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/"))

    @property
    def jwks_url(self) -> str:
        return self.url + "keys"

    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        self.sent.append(
            Sent(
                request.method,
                request.path,
                request.match_info.get("cid", ""),
                request.headers.get("Authorization"),
                body,
            )
        )

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        if self.refuse_creations:
            return web.json_response({"error": {"code": "Forbidden", "message": "not installed"}}, status=403)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": {"code": "ServiceError"}}, status=503)
        return web.json_response({"id": f"a:personal-{next(self._ids)}"})

    def refuse(self, status: int, times: int = 1, retry_after: int | str | None = None) -> None:
        """Answer the next ``times`` activity posts with ``status`` (and ``Retry-After``, if given:
        seconds, or as given, an HTTP date)."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.refusals.extend([(status, headers)] * times)

    def hold(self) -> None:
        self.held = asyncio.Event()
        self._gates.append(self.held)

    def release(self) -> None:
        """Answer the posts held, and those to come."""
        if self.held is not None:
            self.held.set()
            self.held = None

    def stop_holding(self) -> None:
        """Answer the posts to come; those held stay unanswered (abandoned) until the fake closes."""
        self.held = None

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.held is not None:
            await self.held.wait()
        self._record(request, body)
        if self.refusals:
            status, headers = self.refusals.pop(0)
            return web.json_response({"error": {"code": f"Status{status}"}}, status=status, headers=headers)
        if request.match_info["cid"] in self.unknown_conversations:
            return web.json_response({"error": {"code": "ConversationNotFound"}}, status=404)
        if request.match_info["cid"] in self.throttled_conversations:
            return web.json_response({"error": {"code": "Throttled"}}, status=429, headers={"Retry-After": "1"})
        if len(await request.read()) > self.max_activity_bytes:
            return web.json_response({"error": {"code": "MessageSizeTooBig"}}, status=413)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": {"code": "ServiceError"}}, status=503)
        if self.fail_sends:
            return web.json_response({"error": {"code": "ServiceError"}}, status=503)
        return web.json_response({"id": f"activity-{next(self._ids)}"})

    async def _keys(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwks)

    # What tests look at.
    def creations(self) -> list[Sent]:
        return [s for s in self.sent if s.path == "/v3/conversations"]

    def messages_in(self, conversation_id: str) -> list[Sent]:
        return [s for s in self.sent if s.conversation_id == conversation_id and s.method == "POST"]

    def updates(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "PUT"]
