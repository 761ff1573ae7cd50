"""The one aiohttp Application. Front ends and pages add their routes through ``RouteAdder``s."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.admission import Admission
from bot.app import Signpost
from bot.config import Settings
from handlers.operator import audit

RouteAdder = Callable[[web.Application, Signpost, Settings], None]
SIGNPOST_KEY = web.AppKey("signpost", Signpost)
SETTINGS_KEY = web.AppKey("settings", Settings)
ADMISSION_KEY = web.AppKey("admission", Admission)
# Paths whose handlers answer "busy" in the platform's own terms while draining (not a bare 503).
ANSWERS_BUSY_KEY = web.AppKey("answers_busy", set[str])


async def healthz(request: web.Request) -> web.Response:
    """200 while serving; 503 once draining, so a load balancer sends new requests elsewhere."""
    if request.app[ADMISSION_KEY].draining:
        return web.json_response({"status": "draining"}, status=503)
    return web.json_response({"status": "ok"})


async def audit_checkpoint(request: web.Request) -> web.Response:
    """A checkpoint of the audit chain signed now, for a monitor off the host to poll and keep
    (public like a transparency log's: a size and a hash, no personal data)."""
    note = await audit.fresh_checkpoint_note(request.app[SIGNPOST_KEY].ctx)
    if note is None:
        return web.Response(status=410, text="The signing key has been destroyed (decommissioned).\n")
    return web.Response(text=note, content_type="text/plain", headers={"Cache-Control": "no-store"})


@web.middleware
async def refuse_while_draining(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Once the server is stopping, a new request is refused with 503 (Retry-After) unless its
    front end answers "busy" itself."""
    app = request.app
    if app[ADMISSION_KEY].draining and request.path != "/healthz" and request.path not in app[ANSWERS_BUSY_KEY]:
        return web.json_response({"status": "draining"}, status=503, headers={"Retry-After": "5"})
    return await handler(request)


def create_app(signpost: Signpost, settings: Settings, adders: Sequence[RouteAdder] = ()) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024, middlewares=[refuse_while_draining])
    app[SIGNPOST_KEY] = signpost
    app[SETTINGS_KEY] = settings
    app[ADMISSION_KEY] = Admission(settings.max_in_flight)
    app[ANSWERS_BUSY_KEY] = set()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/audit/checkpoint", audit_checkpoint)
    for add in adders:
        add(app, signpost, settings)
    return app
