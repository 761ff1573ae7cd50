"""A recording fake of Slack's Web API (and of response_url webhooks): a real aiohttp server on
127.0.0.1. Each call's method and body are recorded; every call is answered ``ok`` (with the few
fields Bolt and Signpost read), unless a test asks for a rate limit or an error first, or puts the
whole fake ``down`` (an outage: every call and webhook post answered HTTP 500). A test can
also hold every call of a method at the door (``hold``) until it lets them through (``release``):
held calls are listed in ``waiting`` and are recorded in ``calls`` only once answered.

Socket Mode too: ``apps.connections.open`` answers with the fake's own WebSocket URL, where the app
connects as it would to Slack's; a test sends frames down it (``send_frame``) and reads what the app
sent back (``frames_back``: the envelope acks)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_USER = "UBOT0001"
TEAM = "T0001"


@dataclass
class Call:
    method: str  # a Web API method ("views.open"), or "response_url" for webhook posts
    body: dict[str, Any]
    path: str = ""
    answer: dict[str, Any] = field(default_factory=dict)  # what the fake answered

    @property
    def raw(self) -> str:
        return json.dumps(self.body, sort_keys=True)


@dataclass
class FakeSlackApi:
    calls: list[Call] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    _failures: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Condition | None = None
    waiting: list[Call] = field(default_factory=list)
    _held: dict[str, asyncio.Event] = field(default_factory=dict)
    # users.info answers by user id: what Slack would report for that account (synthetic only).
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Socket Mode: the app's WebSocket connections, and every frame it sent back (parsed).
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    frames_back: list[dict[str, Any]] = field(default_factory=list)
    # An outage: every call and response_url post is answered HTTP 500 (recorded, answer {"status": 500}).
    down: bool = False
    # Socket Mode as Slack hands it out: the URL carries a one-time ticket, a credential for the app's
    # connection. ``refuse_links``: that many connection attempts are refused (HTTP 403, no upgrade).
    ticket: str = "fake-ticket"
    refuse_links: int = 0
    links_refused: int = 0
    # A method (or "response_url") answered with a redirect: (status, where to); the call is
    # recorded, its answer {"redirect": status}.
    redirects: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://{self.host}:{self.port}/response/{name}"

    @property
    def socket_url(self) -> str:
        return f"ws://{self.host}:{self.port}/link?ticket={self.ticket}&app_id=A0001"

    def outbound(self) -> list[Call]:
        """Every call but Bolt's own ``auth.test`` (its check of the bot token: no user data)."""
        return [c for c in self.calls if c.method != "auth.test"]

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def rate_limit(self, method: str, retry_after: int | str = 0, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and Retry-After (seconds, or
        as given: an HTTP date)."""
        for _ in range(times):
            self._failures.setdefault(method, []).append(
                (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
            )

    def fail(self, method: str, error: str = "internal_error", times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``ok: false``."""
        for _ in range(times):
            self._failures.setdefault(method, []).append((200, {"ok": False, "error": error}, {}))

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until at least ``count`` calls of ``method`` were recorded."""
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.of(method)) >= count), timeout)
        return self.of(method)

    async def wait_until(self, ready: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``ready()`` holds (checked whenever a call, a connection or a frame comes in)."""
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), timeout)

    async def send_frame(self, text: str) -> None:
        """One text frame to the app, down its (latest) Socket Mode connection."""
        await self.wait_until(lambda: bool(self.sockets))
        await self.sockets[-1].send_str(text)

    def hold(self, method: str) -> None:
        """Keep calls of ``method`` waiting (unanswered) until ``release``."""
        self._held.setdefault(method, asyncio.Event())

    def release(self, method: str) -> None:
        self._held.pop(method).set()

    async def wait_for_waiting(self, method: str, count: int, timeout: float = 30.0) -> None:
        """Wait until at least ``count`` calls of ``method`` are held at the door."""
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: sum(c.method == method for c in self.waiting) >= count), timeout
            )

    async def _door(self, call: Call) -> None:
        gate = self._held.get(call.method)
        if gate is None:
            return
        assert self._changed is not None
        async with self._changed:
            self.waiting.append(call)
            self._changed.notify_all()
        await gate.wait()

    async def _record(self, call: Call) -> None:
        assert self._changed is not None
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await _body(request)
        await self._door(Call(method, body, request.path))
        if self.down:
            return await self._outage(Call(method, body, request.path))
        if method in self.redirects:
            return await self._redirect(Call(method, body, request.path))
        queued = self._failures.get(method)
        status, doc, headers = queued.pop(0) if queued else (200, {"ok": True, **self._answer(method, body)}, {})
        await self._record(Call(method, body, request.path, doc))
        return web.json_response(doc, status=status, headers=headers)

    async def _redirect(self, call: Call) -> web.Response:
        status, where = self.redirects[call.method]
        call.answer = {"redirect": status}
        await self._record(call)
        return web.Response(status=status, headers={"Location": where})

    async def _outage(self, call: Call) -> web.Response:
        call.answer = {"status": 500}
        await self._record(call)
        return web.Response(status=500, text="Internal Server Error")

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        n = next(self._ids)
        if method == "auth.test":
            return {
                "user_id": BOT_USER,
                "bot_id": "B0001",
                "team_id": TEAM,
                "team": "Test",
                "url": "https://test.example/",
            }
        if method in ("views.open", "views.update", "views.push", "views.publish"):
            return {"view": {"id": f"V{n:05d}", "hash": f"h{n}"}}
        if method == "apps.connections.open":
            return {"url": self.socket_url}
        if method == "users.info":
            user = str(body.get("user", ""))
            return {"user": self.profiles.get(user, {"id": user, "profile": {}})}
        if method == "conversations.open":
            return {"channel": {"id": f"D{n:05d}"}}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            return {"channel": "D00000", "ts": f"1700000000.{n:06d}", "message_ts": f"1700000000.{n:06d}"}
        return {}

    async def _response_url(self, request: web.Request) -> web.Response:
        call = Call("response_url", await _body(request), request.path)
        await self._door(call)
        if self.down:
            return await self._outage(call)
        if "response_url" in self.redirects:
            return await self._redirect(call)
        await self._record(call)
        return web.Response(text="ok")

    async def _link(self, request: web.Request) -> web.StreamResponse:
        """Slack's end of a Socket Mode connection: frames the app sends back are recorded."""
        if self.refuse_links > 0:
            self.refuse_links -= 1
            assert self._changed is not None
            async with self._changed:
                self.links_refused += 1
                self._changed.notify_all()
            return web.Response(status=403, text="ticket refused")
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await self._note(self.sockets, socket)
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                await self._note(self.frames_back, json.loads(frame.data))
        return socket

    async def _note(self, into: list[Any], item: Any) -> None:
        assert self._changed is not None
        async with self._changed:
            into.append(item)
            self._changed.notify_all()

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # users.info and other reads are GETs
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/link", self._link)
        return app


async def _body(request: web.Request) -> dict[str, Any]:
    """The call's arguments: JSON, form fields, or (as slack_sdk sends some) the query string."""
    if request.content_type == "application/json":
        doc = await request.json()
        return doc if isinstance(doc, dict) else {"_": doc}
    form = await request.post()
    body: dict[str, Any] = {}
    for key, value in [*request.query.items(), *form.items()]:
        text = str(value)
        # slack_sdk sends blocks and views inside forms as JSON strings; decode them for assertions.
        try:
            body[key] = json.loads(text) if text[:1] in "[{" else text
        except ValueError:
            body[key] = text
    return body


@asynccontextmanager
async def running_fake_slack() -> AsyncIterator[FakeSlackApi]:
    """Start the fake on a free loopback port; stop it afterwards."""
    fake = FakeSlackApi()
    fake._changed = asyncio.Condition()
    runner = web.AppRunner(fake.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, fake.host, 0)
    await site.start()
    fake.port = runner.addresses[0][1]  # port 0: the kernel chose a free one
    try:
        yield fake
    finally:
        for gate in fake._held.values():  # a test that ends holding calls must not wait out aiohttp's 60 s
            gate.set()
        for socket in fake.sockets:
            await socket.close()
        await runner.cleanup()
