"""A loopback server standing for somewhere Signpost must never send anything: it records every
request that reaches it (a redirect followed would land here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


class Elsewhere:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        self.server = TestServer(app, host="127.0.0.1")

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.received.append({"method": request.method, "auth": request.headers.get("Authorization"), "body": body})
        return web.json_response({"ok": True, "id": "stolen"})

    def url(self, path: str = "/") -> str:
        return str(self.server.make_url(path))


@asynccontextmanager
async def running_elsewhere() -> AsyncIterator[Elsewhere]:
    found = Elsewhere()
    await found.server.start_server()
    try:
        yield found
    finally:
        await found.server.close()
