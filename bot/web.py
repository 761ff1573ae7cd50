"""The one aiohttp Application. Front ends and pages add their routes through ``RouteAdder``s."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

from bot import policy_pages
from bot.admission import Admission
from bot.app import Signpost
from bot.config import Settings
from bot.metrics import metrics_page
from handlers.operator import audit

RouteAdder = Callable[[web.Application, Signpost, Settings], None]
SIGNPOST_KEY = web.AppKey("signpost", Signpost)
SETTINGS_KEY = web.AppKey("settings", Settings)
ADMISSION_KEY = web.AppKey("admission", Admission)
# Paths whose handlers answer "busy" in the platform's own terms while draining (not a bare 503).
ANSWERS_BUSY_KEY = web.AppKey("answers_busy", set[str])


async def healthz(request: web.Request) -> web.Response:
    """200 while serving; 503 once draining, so a load balancer sends new requests elsewhere.
    The process id says which worker of `signpost run --workers N` answered."""
    if request.app[ADMISSION_KEY].draining:
        return web.json_response({"status": "draining", "pid": os.getpid()}, status=503)
    return web.json_response({"status": "ok", "pid": os.getpid()})


READY_TIMEOUT = 2.0  # seconds for the database to answer /readyz


async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: the database answers and the audit writer is not failing (no answer
    is given without its audit event, so a failing writer means nothing can be answered)."""
    ctx = request.app[SIGNPOST_KEY].ctx
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await ctx.db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the type only, never a message with data
        checks["database"] = f"unreachable ({type(exc).__name__})"
    checks["audit"] = ctx.audit.problem or "ok"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return web.json_response(body, status=200 if ready else 503, headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text for this process (no personal data in any label)."""
    return await metrics_page(request.app[SIGNPOST_KEY].metrics)


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
    signpost.metrics.watch(app[ADMISSION_KEY])
    app[ANSWERS_BUSY_KEY] = set()
    app.router.add_get("/healthz", healthz)  # cheap: the process answers
    app.router.add_get("/readyz", readyz)  # the database and the audit writer
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/audit/checkpoint", audit_checkpoint)
    policy_pages.add_routes(app, signpost, settings)  # the privacy and terms links every app package names
    for add in adders:
        add(app, signpost, settings)
    return app
