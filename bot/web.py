"""The one aiohttp Application. Front ends and pages add their routes through ``RouteAdder``s."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Sequence
from http.client import responses
from typing import Any, NoReturn

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest
from prometheus_client import CONTENT_TYPE_LATEST

from bot import policy_pages
from bot.admission import Admission
from bot.app import Signpost
from bot.config import Settings
from bot.delivery import CHAT_PLATFORMS, deliverers_among
from handlers.operator import audit
from handlers.vocabulary import sentence

log = structlog.get_logger("signpost.web")
RouteAdder = Callable[[web.Application, Signpost, Settings], None]
SIGNPOST_KEY = web.AppKey("signpost", Signpost)
SETTINGS_KEY = web.AppKey("settings", Settings)
ADMISSION_KEY = web.AppKey("admission", Admission)
# Paths whose handlers answer "busy" in the platform's own terms while draining (not a bare 503).
ANSWERS_BUSY_KEY = web.AppKey("answers_busy", set[str])


# bytes: the most one request may send. Slack's own limits, not ours, set it: a view (whose
# submission and clicks carry it back whole) may be 250 KB, and Signpost's messages run to 50 blocks
# of 2,900 characters; URL-encoded as Slack sends an interactive payload, either may reach several
# hundred KB. A slash command's text, a message's (at most 40,000 characters, each at most 12 bytes
# URL-encoded), is under 480,000 bytes. Teams' activities are far smaller (bot.teams.front).
MAX_BODY = 1024 * 1024
BODY_SECONDS = 10.0  # for a whole request body: a client that sends slower holds nothing for long
KEEPALIVE_SECONDS = 75.0  # an idle kept-alive connection is closed after this
READ_CHUNK = 64 * 1024  # a body is read this much at a time, each piece counted before it is kept

# Bodies read before anything vouches for their sender (Slack signs the body, so its signature is
# checked only once the body is in), all requests of the process together. Slack's requests are a
# few KB each: this is thousands at once, or twelve of the largest one may send.
UNVERIFIED_BYTES = 16 * 1024 * 1024
SMALL_BODY = 64 * 1024  # every slash command, and a click or submission on most of Signpost's messages
SMALL_SHARE = 4 * 1024 * 1024  # of UNVERIFIED_BYTES, kept for small bodies: large ones cannot take it


class BodyRefused(Exception):
    """A request body not taken: ``status`` to answer, ``reason`` a fixed code for the one log line."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientGone(Exception):
    """The client closed its connection before its request's body was all read: there is no request
    to act on, and nobody to answer. ``read_body`` raises it; ``let_gone_clients_go`` logs it."""


class BodyBudget:
    """The bytes of request bodies being read before their sender is known, across the process.

    Forged requests read in full before their signature could be checked, with no bound on how
    many at once, took a process from 140 MiB to over 600 MiB (400 bodies of 1 MiB) and a signed
    command's answer near Slack's 3 s deadline. A body takes each piece as it arrives; one that
    would take more than is left is refused (``read_body``: 429). Large bodies (over ``small``) may take only
    ``large_limit``: however many large forged bodies are in flight, small ones (a slash command)
    still have ``small_share``."""

    def __init__(self, limit: int = UNVERIFIED_BYTES, small: int = SMALL_BODY, small_share: int = SMALL_SHARE) -> None:
        self.limit = limit
        self.small = small
        self.large_limit = limit - small_share
        self.held = 0

    def take(self, count: int, size: int) -> bool:
        """Hold ``count`` more bytes for a body that is then ``size`` bytes; False, holding nothing,
        when that would go over."""
        if self.held + count > (self.limit if size <= self.small else self.large_limit):
            return False
        self.held += count
        return True

    def give(self, count: int) -> None:
        self.held -= count


# The content codings aiohttp undoes before a body is read (and none, or ``identity``). Any other
# it passes on as sent: a body that says `x-junk` or `gzip, gzip` was read as plain and answered.
DECODED = frozenset({"", "identity", "gzip", "deflate", "br", "zstd"})


async def read_body(request: web.Request, limit: int = MAX_BODY, budget: BodyBudget | None = None) -> bytes:
    """The whole request body, or BodyRefused: over ``limit`` (at most ``MAX_BODY``) once
    decompressed (413; one that says it is over is not read), not all sent within ``BODY_SECONDS``
    (408), not readable as sent (400: a broken chunked or compressed stream; 415: compressed in a
    way aiohttp does not undo, ``DECODED``), or, its sender not
    yet known, more than ``budget`` has left (429 Too Many Requests, as soon as a piece would go over:
    a request refused for the load, never a server error); ``ClientGone`` when the client hangs up
    before it is all sent. The one home
    for reading a body, so every front end refuses alike. The budget is given back on return: the
    caller verifies the body before it next waits.

    Only bytes received are held, never a length declared: connections that declared 64 KiB each and
    sent nothing had reserved the whole budget between them, at no cost to the sender, and every
    signed command was refused (the diff review). A body is large (``BodyBudget.small``) by what it
    declares or has grown to, so a forged large body never takes the small bodies' share."""
    codings = request.headers.getall("Content-Encoding", [])
    if len(codings) > 1 or (codings and codings[0].strip().lower() not in DECODED):
        # Two header lines too: this reads the first, aiohttp's parser undoes by the last.
        raise BodyRefused(415, "unknown_content_encoding")
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyRefused(413, "too_large")
    held = 0

    def hold(size: int) -> None:
        nonlocal held
        if budget is not None and size > held:
            if not budget.take(size - held, max(size, declared or 0)):
                raise BodyRefused(429, "unverified_bodies_over_budget")
            held = size

    try:
        body = bytearray()
        async with asyncio.timeout(BODY_SECONDS):
            while chunk := await request.content.read(READ_CHUNK):
                if len(body) + len(chunk) > limit:
                    raise BodyRefused(413, "too_large")
                hold(len(body) + len(chunk))
                body += chunk
        return bytes(body)
    except TimeoutError:
        raise BodyRefused(408, "body_too_slow") from None
    except (RequestPayloadError, HttpProcessingError):
        raise BodyRefused(400, "unreadable_body") from None
    except OSError:  # the connection lost: reset (aiohttp's ClientConnectionResetError), or any other
        # error of the transport aiohttp hands to the body's reader; a cancellation passes
        raise ClientGone from None
    finally:
        if budget is not None:
            budget.give(held)


def _no_such_number(name: str) -> NoReturn:
    raise ValueError("not a JSON number")  # NaN, Infinity, -Infinity: Python's reader takes them


def json_document(raw: bytes | str) -> Any:
    """A JSON document as systems exchange it (RFC 8259): UTF-8 with no byte order mark, and no
    NaN or Infinity. ``json.loads`` guessed UTF-16 or UTF-32 from bytes, and took both words as
    numbers. ValueError (UnicodeDecodeError among them) or RecursionError when it is not one. The
    one home for reading a JSON body, so every front end reads alike."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return json.loads(text, parse_constant=_no_such_number)


def _client_caused(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (HttpProcessingError, RequestPayloadError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class HttpClientErrors(logging.Filter):
    """aiohttp's server on a request it cannot parse (a control byte in a header, two lengths, a
    broken compressed body) logs an error with the parser's traceback, and its message quotes the
    bytes it choked on. Such a request is the client's fault: one warning line, the error's type
    only. The rest of a body already refused, met again as aiohttp drains it after the answer, was
    logged by the handler that refused it and is not logged twice. Anything else passes as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        error = exc_info[1] if exc_info else None
        if error is None or not _client_caused(error):
            return record.levelno >= logging.getLogger().getEffectiveLevel()  # as without the logger's DEBUG
        if str(record.msg).startswith("Unhandled exception"):
            return False
        record.msg, record.args, record.exc_info, record.exc_text = "http_request_refused", (), None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.status, record.reason = 400, type(error).__name__
        return True


def quiet_client_errors() -> None:
    """Install ``HttpClientErrors`` on aiohttp's server logger (once). aiohttp logs a request whose
    method is not HTTP's (a TLS handshake on the HTTP port, a made-up verb) at debug only, so the
    logger takes debug records and the filter keeps them to the one warning line, or to the level
    the rest of the log is at."""
    server = logging.getLogger("aiohttp.server")
    server.setLevel(logging.DEBUG)
    if not any(isinstance(f, HttpClientErrors) for f in server.filters):
        server.addFilter(HttpClientErrors())


HEADER_SECONDS = 10.0  # from a connection opening to its first request's headers complete
SWEEP_SECONDS = 1.0


class SlowConnections:
    """Closes a connection that has not completed its first request's headers within
    ``HEADER_SECONDS`` of opening (a client trickling its headers, or sending none, would hold a
    connection, a file descriptor and buffers for ever: aiohttp sets no deadline before the first
    request). Later requests on a kept-alive connection fall under ``KEEPALIVE_SECONDS`` and a body
    under ``BODY_SECONDS``. One log line a sweep that closed any, with the count."""

    def __init__(self, header_seconds: float = HEADER_SECONDS, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self.header_seconds = header_seconds
        self.sweep_seconds = sweep_seconds
        self._opened: dict[RequestHandler, float] = {}
        self._started: set[RequestHandler] = set()
        self.closed = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._started.add(request.protocol)
        return await handler(request)

    def sweep(self, server: web.Server, now: float) -> int:
        """Close the connections past their header deadline; how many were closed."""
        live = server.connections
        self._opened = {conn: self._opened.get(conn, now) for conn in live}
        self._started &= set(live)
        late = [c for c, at in self._opened.items() if c not in self._started and now - at >= self.header_seconds]
        for conn in late:
            conn.force_close()
            del self._opened[conn]
        return len(late)

    async def run(self, runner: web.BaseRunner) -> None:
        """Sweep ``runner``'s connections until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.sweep_seconds)
            if runner.server is None:
                continue
            closed = self.sweep(runner.server, loop.time())
            if closed:
                self.closed += closed
                log.warning("slow_connections_closed", count=closed, limit_seconds=self.header_seconds)


SLOW_KEY = web.AppKey("slow_connections", SlowConnections)
UNVERIFIED_KEY = web.AppKey("unverified_bodies", BodyBudget)


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
    response = web.Response(body=request.app[SIGNPOST_KEY].metrics.exposition(), headers={"Cache-Control": "no-store"})
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def audit_checkpoint(request: web.Request) -> web.Response:
    """A checkpoint of the audit chain signed now, for a monitor off the host to poll and keep
    (public like a transparency log's: a size and a hash, no personal data)."""
    note = await audit.fresh_checkpoint_note(request.app[SIGNPOST_KEY].ctx)
    if note is None:
        signer = request.app[SIGNPOST_KEY].ctx.signer
        status = 410 if signer.destroyed else 503  # gone for good, or only not configured here
        return web.Response(status=status, text=sentence(signer.unavailable) + ".\n")
    return web.Response(text=note, content_type="text/plain", headers={"Cache-Control": "no-store"})


# The router's own refusals: no handler of ours runs, so nobody else logs them.
UNROUTED = {404: "no_such_route", 405: "method_not_allowed"}


@web.middleware
async def log_unrouted(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request the router refuses (no such path, or a method the path does not take: a PUT or
    HEAD to the enrolment page) is one log line, a fixed reason and no path (a path may carry a
    token). Refusals by a route's handler are that handler's to log."""
    refused = getattr(request.match_info, "http_exception", None)
    if isinstance(refused, web.HTTPException):
        log.warning("http_request_refused", status=refused.status, reason=UNROUTED.get(refused.status, "unrouted"))
    return await handler(request)


@web.middleware
async def let_gone_clients_go(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request whose client hung up before its body was read (``ClientGone``) ends here in one
    info line, with nothing of the request: aiohttp logged it as a server error, with a traceback.
    Nothing was done for it; the answer reaches nobody (aiohttp drops it unsent)."""
    try:
        return await handler(request)
    except ClientGone:
        log.info("http_client_gone", reason="closed_before_request_read")
        return web.Response(status=400)


SERVER = "Signpost"  # aiohttp's own names the exact Python and aiohttp versions: a list of holes to try


def name_the_server(response: web.StreamResponse) -> web.StreamResponse:
    """The one ``Server:`` header of every answer, set before its headers are sent (aiohttp adds
    its own only where there is none)."""
    response.headers["Server"] = SERVER
    return response


async def named_server(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer the app gives (the router's refusals and aiohttp's 417 included) as it is prepared;
    the parser's refusals, given before there is a request, are ``FixedErrorText``'s."""
    name_the_server(response)


async def quiet_expectation_failed(request: web.Request, response: web.StreamResponse) -> None:
    """An ``Expect`` other than 100-continue is answered by aiohttp itself before any middleware
    runs (``log_unrouted`` included), its 417 quoting the header back. Seen here, as the answer is
    prepared: fixed text, and the one log line."""
    if isinstance(response, web.HTTPExpectationFailed):
        text = f"{response.status} {response.reason}\n".encode()
        response.body = text
        response.headers["Content-Length"] = str(len(text))  # counted, before this signal, for aiohttp's text
        log.warning("http_request_refused", status=response.status, reason="unknown_expectation")


@web.middleware
async def refuse_while_draining(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Once the server is stopping, a new request is refused with 503 (Retry-After) unless its
    front end answers "busy" itself."""
    app = request.app
    if app[ADMISSION_KEY].draining and request.path != "/healthz" and request.path not in app[ANSWERS_BUSY_KEY]:
        return web.json_response({"status": "draining"}, status=503, headers={"Retry-After": "5"})
    return await handler(request)


class FixedErrorText(RequestHandler):
    """A connection whose own error answers are fixed text, and which reads its socket a piece at
    a time (``connection_made``). aiohttp answers a request its parser refuses (an over-long or
    malformed request line, a bad header) before any handler or middleware runs, and its 400 quoted
    the refused bytes back: a name or a postcode in a path or a header went back to the sender and
    to any proxy that keeps answers. Only the answer's text (and its ``Server:`` header:
    ``name_the_server``) changes; the log line is ``HttpClientErrors``'s."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """At most ``READ_CHUNK`` taken off the socket at a time. asyncio's default, 256 KiB a read,
        is kept by aiohttp until its flow control pauses the connection: 600 connections each
        sending a large body (forged, or to no such path) held over 250 MiB before any handler
        saw one. The rest waits in the kernel's buffers, as flow control means it to."""
        super().connection_made(transport)
        if isinstance(getattr(transport, "max_size", None), int):  # asyncio's socket transport's
            transport.max_size = READ_CHUNK  # type: ignore[attr-defined]

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        answer = super().handle_error(request, status, exc, f"{status} {responses.get(status, 'Error')}\n")
        return name_the_server(answer)


class FixedErrorServer(web.Server):
    """aiohttp's server, its connections ``FixedErrorText``'s (aiohttp offers no setting for either)."""

    def __call__(self) -> RequestHandler:
        return FixedErrorText(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """aiohttp's runner for an app, serving it with ``FixedErrorServer``."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = FixedErrorServer  # the app's own server, made as aiohttp makes it
        return server


def runner(app: web.Application) -> web.AppRunner:
    """The runner ``signpost run`` serves ``app`` with: error answers with no request bytes in them,
    no access log (a path may carry a token), idle kept-alive connections closed after
    ``KEEPALIVE_SECONDS``."""
    return Runner(app, handle_signals=False, access_log=None, keepalive_timeout=KEEPALIVE_SECONDS)


def create_app(signpost: Signpost, settings: Settings, adders: Sequence[RouteAdder] = ()) -> web.Application:
    quiet_client_errors()
    slow = SlowConnections()
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[slow.middleware, let_gone_clients_go, refuse_while_draining, log_unrouted],
    )
    app[SLOW_KEY] = slow
    app[UNVERIFIED_KEY] = BodyBudget()
    app.on_response_prepare.append(named_server)
    app.on_response_prepare.append(quiet_expectation_failed)
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
    # Who can be reached (a relay chooses among them): anyone linked on a chat platform when this
    # server runs one, not only on the ones it serves itself, since replicas on one store may serve
    # different platforms (one Slack, one Teams), and whichever claims a scheduled hand-on decides
    # for all. A link to a platform no replica serves fails at delivery, and its notice, closed
    # unsent after a week, passes the message on. None served: the console's, which reaches everyone.
    if any(True for _ in deliverers_among(app.values())):
        signpost.ctx.reaches = CHAT_PLATFORMS
    return app
