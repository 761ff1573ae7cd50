"""The one aiohttp Application. Front ends and pages add their routes through ``RouteAdder``s."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web

from bot.app import Signpost
from bot.config import Settings

RouteAdder = Callable[[web.Application, Signpost, Settings], None]
SIGNPOST_KEY = web.AppKey("signpost", Signpost)
SETTINGS_KEY = web.AppKey("settings", Settings)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(signpost: Signpost, settings: Settings, adders: Sequence[RouteAdder] = ()) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[SIGNPOST_KEY] = signpost
    app[SETTINGS_KEY] = settings
    app.router.add_get("/healthz", healthz)
    for add in adders:
        add(app, signpost, settings)
    return app
