"""`signpost run`: the configured front ends on one aiohttp application, or the console.

With SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN set, Slack is served at /slack/events (and over Socket
Mode too when SLACK_APP_TOKEN is set). The server listens on SIGNPOST_HOST:SIGNPOST_PORT (or
--host/--port) and answers /healthz. With no chat front end configured, the console runs instead.

On SIGTERM (or SIGINT) the server stops admitting work (Slack is told "busy", other requests get
503, /healthz turns 503) and starts no scheduled run (nor a further notice of a delivery pass), and
drains what it acknowledged and the scheduled runs going on, for up to SIGNPOST_DRAIN_SECONDS in
all; then it says how many requests were left unanswered and exits 1 if any were, 0 if none (a
scheduled run still going at the limit is cancelled and said in one line: a notice it was sending
stays due).

`--workers N` (bot/supervise.py) runs N such servers on one port, on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal

import structlog
from aiohttp import web

from bot import enrol_page, heap, supervise, transparency_page
from bot.cli.common import CommandFailed, opened, serving_with_keys
from bot.config import Settings, load_settings
from bot.console import console
from bot.scheduler import SCHEDULER_KEY, Scheduler, add_scheduler
from bot.web import ADMISSION_KEY, SLOW_KEY, RouteAdder, create_app
from bot.web import runner as web_runner

log = structlog.get_logger("signpost.serve")


def front_ends(settings: Settings) -> list[RouteAdder]:
    """The RouteAdders of every chat front end whose settings are present (a partial one is refused)."""
    settings.check_slack()
    adders: list[RouteAdder] = []
    if settings.slack_enabled:
        from bot.slack.front import add_slack

        adders.append(add_slack)
    from bot.teams.front import teams_route_adder

    teams = teams_route_adder(settings)
    if teams is not None:
        adders.append(teams)
    return adders


def warn_without_public_url(settings: Settings) -> None:
    """A chat front end without ``SIGNPOST_PUBLIC_URL`` sends enrolment links to this server's own
    listening address, which people's browsers cannot open: say so once, at start."""
    if settings.public_url is None:
        log.warning(
            "public_url_unset",
            message=(
                f"SIGNPOST_PUBLIC_URL is not set: enrolment links will point at {settings.base_url}, "
                "which only this machine can open; set it to the https address people reach Signpost at"
            ),
        )


def settings_for(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "host", None):
        overrides["SIGNPOST_HOST"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["SIGNPOST_PORT"] = args.port
    return load_settings(**overrides)


def refuse_address_for_console(args: argparse.Namespace) -> None:
    """CommandFailed (one line, exit 2) for --host or --port when `run` opens the console: it
    listens nowhere, and they were dropped without a word (`run --port 3917`, and nothing listened)."""
    given = [name for name in ("host", "port") if getattr(args, name, None) is not None]
    if given:
        options, them = " and ".join(f"--{name}" for name in given), "them" if len(given) > 1 else "it"
        raise CommandFailed(
            f"{options}: only for serving Slack or Teams over HTTP, and neither is configured (so `run` opens "
            f"the console, which listens on no port): leave {them} out, or configure Slack or Teams"
        )


async def run_command(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    adders = front_ends(settings)
    workers: int = getattr(args, "workers", 1)
    supervise.refuse(settings, workers, has_front_ends=bool(adders))
    if not adders:
        refuse_address_for_console(args)
        return await console.console_command(args)
    worker_index = getattr(args, "worker_index", None)
    if worker_index is None:  # once, from the process the operator started
        warn_without_public_url(settings)
    if workers > 1:
        return await supervise.supervise(settings, workers)
    if worker_index is not None:
        structlog.contextvars.bind_contextvars(worker=worker_index)
    # The enrolment page and the transparency report are served with the chat front ends;
    # the scheduler last: it uses their deliverers.
    adders = [*adders, enrol_page.add_routes, transparency_page.add_routes, add_scheduler]
    return await serve(settings, adders, reuse_port=worker_index is not None)


async def serve(settings: Settings, adders: list[RouteAdder], *, reuse_port: bool = False) -> int:
    """Serve until SIGINT or SIGTERM, then drain in-flight work and close the store.

    ``reuse_port``: listen with SO_REUSEPORT, beside the other workers of `signpost run --workers N`.

    Returns 0 when every acknowledged request was answered, 1 when the drain limit left some undone.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # A worker outlives no supervisor: if it is gone (killed outright), drain and stop as on SIGTERM.
    orphaned = asyncio.create_task(_supervisor_gone(os.getppid(), stop)) if reuse_port else None
    try:
        return await _serve(settings, adders, stop, reuse_port=reuse_port)
    finally:
        if orphaned is not None:
            orphaned.cancel()
            await asyncio.gather(orphaned, return_exceptions=True)


SUPERVISOR_CHECK_SECONDS = 1.0


async def _supervisor_gone(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once this worker's supervisor has exited (the worker was re-parented)."""
    while os.getppid() == parent:
        await asyncio.sleep(SUPERVISOR_CHECK_SECONDS)
    log.warning("supervisor_gone")
    stop.set()


async def _finish_scheduler(scheduler: Scheduler, seconds: float, limit_seconds: float) -> None:
    """Wait up to ``seconds`` for the scheduled runs going on (a notice being sent arrives once, and
    is recorded so); those still going then are cancelled, as before, and said in one line (a notice
    then in flight stays due, and may arrive twice, never not at all)."""
    going = scheduler.going()
    if going:
        log.info("scheduler_draining", tasks=going)
    cut = await scheduler.finish(seconds)
    if cut:
        log.warning("scheduler_passes_cancelled", tasks=cut, limit_seconds=limit_seconds)


async def _serve(settings: Settings, adders: list[RouteAdder], stop: asyncio.Event, *, reuse_port: bool) -> int:
    with serving_with_keys(settings):  # for as long as it serves: `keys rotate` is refused meanwhile
        return await _serve_opened(settings, adders, stop, reuse_port=reuse_port)


async def _serve_opened(settings: Settings, adders: list[RouteAdder], stop: asyncio.Event, *, reuse_port: bool) -> int:
    loop = asyncio.get_running_loop()
    async with opened(settings, create=True) as signpost:
        app = create_app(signpost, settings, adders)
        runner = web_runner(app)
        unfinished = 0
        sweeper: asyncio.Task[None] | None = None
        await runner.setup()
        # Everything start-up made lives as long as the process: frozen out of the cycle collector's
        # full collections, which would otherwise hold every request while they walk it (bot/heap.py).
        signpost.metrics.gc.frozen = heap.freeze_start_up()
        try:
            site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
            try:
                await site.start()
            except OSError as exc:
                where = f"{settings.host}:{settings.port}"
                if exc.errno == errno.EADDRINUSE:  # most often a second `signpost run` beside the first
                    raise CommandFailed(
                        f"cannot listen on {where}: the address is already in use (another Signpost, or another "
                        "program, listens there): stop it, or listen elsewhere with --port or SIGNPOST_PORT"
                    ) from None
                raise CommandFailed(f"cannot listen on {where}: {exc.strerror or type(exc).__name__}") from None
            log.info(
                "listening",
                host=settings.host,
                port=settings.port,
                front_ends=len(adders),
                frozen_objects=signpost.metrics.gc.frozen,
            )
            sweeper = asyncio.create_task(app[SLOW_KEY].run(runner), name="slow-connections")
            with heap.pauses_measured(signpost.metrics.gc.record):
                await stop.wait()
                log.info("stopping")
                ends = loop.time() + settings.drain_seconds  # one budget: requests and scheduled runs
                scheduler = app.get(SCHEDULER_KEY)
                if scheduler is not None:
                    scheduler.stopping.set()  # no task run starts, no further notice is begun
                # Still listening while draining: new requests are answered "busy" (or 503), not dropped.
                unfinished = await app[ADMISSION_KEY].drain(settings.drain_seconds)
                if scheduler is not None:
                    await _finish_scheduler(scheduler, max(ends - loop.time(), 0.0), settings.drain_seconds)
            if unfinished:
                log.error("drain_incomplete", unfinished=unfinished, limit_seconds=settings.drain_seconds)
            else:
                log.info("drained", refused=app[ADMISSION_KEY].refused)
        finally:
            if sweeper is not None:
                sweeper.cancel()
                await asyncio.gather(sweeper, return_exceptions=True)
            await runner.cleanup()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, RuntimeError):
                    loop.remove_signal_handler(sig)
    return 1 if unfinished else 0
