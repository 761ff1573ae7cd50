"""The one aiohttp Application. Front ends and pages add their routes through ``RouteAdder``s."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web

from bot import policy_pages
from bot.app import Signpost
from bot.config import Settings
from handlers.operator import audit

RouteAdder = Callable[[web.Application, Signpost, Settings], None]
SIGNPOST_KEY = web.AppKey("signpost", Signpost)
SETTINGS_KEY = web.AppKey("settings", Settings)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def audit_checkpoint(request: web.Request) -> web.Response:
    """A checkpoint of the audit chain signed now, for a monitor off the host to poll and keep
    (public like a transparency log's: a size and a hash, no personal data)."""
    note = await audit.fresh_checkpoint_note(request.app[SIGNPOST_KEY].ctx)
    if note is None:
        return web.Response(status=410, text="The signing key has been destroyed (decommissioned).\n")
    return web.Response(text=note, content_type="text/plain", headers={"Cache-Control": "no-store"})


def create_app(signpost: Signpost, settings: Settings, adders: Sequence[RouteAdder] = ()) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[SIGNPOST_KEY] = signpost
    app[SETTINGS_KEY] = settings
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/audit/checkpoint", audit_checkpoint)
    policy_pages.add_routes(app, signpost, settings)  # the privacy and terms links every app package names
    for add in adders:
        add(app, signpost, settings)
    return app
