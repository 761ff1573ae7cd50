"""The Slack front end: the only module importing slack_bolt. It translates and nothing more.

HTTP mode: Bolt's ``AsyncApp`` answers ``POST /slack/events`` on the project's one aiohttp
application, with request verification always on (HMAC signature and the 5-minute window).
Socket Mode: when ``SLACK_APP_TOKEN`` is set, the same ``AsyncApp`` also takes requests over
Slack's WebSocket. Answers are private: an ephemeral message (in the ack itself, or through
``response_url``) or a modal. Direct messages carry notices only (``SlackDeliverer``).

A search (a slash command that may need a step-up code) is answered in the slash command's own
ack, as an ephemeral message with no Web API call at all, when its audit event is durable within
``SIGNPOST_SLACK_ANSWER_BUDGET`` (1.5 s; Slack waits 3 s). When it needs a code, the code modal is
opened with the trigger id; when it is late, the ack is empty and the answer goes on into a modal
(a placeholder, then ``views.update``). Any other command is acknowledged empty at once and
answered through ``response_url``.

Admission control (bot/admission.py): above ``SIGNPOST_MAX_IN_FLIGHT`` requests in flight, or once
the server is stopping, a slash command is answered in its ack with a private "busy, try again"
and nothing is started; a click gets the same message, a modal submission shows it inline. Commands
and submissions are refused straight after the signature check, before Bolt, so that a refusal
costs next to nothing under a flood. Every acknowledged request is held until its answer is sent,
so a SIGTERM drains it.

A view submission is answered within Slack's window, so that a wrong code shows inline
(``response_action: errors``).

Over Socket Mode each frame is read as an HTTP body is (``inbound.check_envelope``) before Bolt sees
it. A frame not taken is acked if it has an envelope id (else Slack delivers it again), a slash
command's ack telling its sender kindly that it could not be read, and logged as one line with a
reason: never a traceback, never what it carried. A person's envelope among them (a command, a click,
a submission) whose payload still names its user and team is audited once first, as an unreadable
button is (``audit_unread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any, Generic, TypeVar

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.admission import BUSY_TEXT, Admission
from bot.app import Signpost
from bot.config import Settings, SettingsError
from bot.delivery import DeliveryFailed, PersonUnreachable, retry_after
from bot.outbound import RedirectRefused, outbound_session
from bot.slack import inbound, render
from bot.web import ADMISSION_KEY, ANSWERS_BUSY_KEY, UNVERIFIED_KEY, BodyRefused, read_body
from handlers.dispatch.dispatcher import DUPLICATE
from handlers.grammar import trim
from handlers.vocabulary import Action, Audited, Challenge, Command, Notice, Outcome, Platform, Principal, Reply
from store.audit.log import AuditWriteFailed

log = structlog.get_logger("signpost.slack")

EVENTS_PATH = "/slack/events"
SLASH_COMMAND = "/signpost"
EVENTS = frozenset({"app_home_opened"})
# Every action id a Signpost button can carry (the model's Buttons, plus the code fallback). The
# manifest test compares this set with the buttons the handlers build.
ACTION_IDS = frozenset(
    {"request_access", "approve", "deny", "relay_message", "relay_read", "relay_reply", render.ENTER_CODE}
)
VIEW_CALLBACKS = frozenset({render.CODE_CALLBACK, render.INPUT_CALLBACK})
SUBMIT_DEADLINE = 2.0  # seconds; Slack waits 3 s for the answer to a view submission
RATE_LIMIT_RETRIES = 3
CODE_PROMPT = "Enter the 6-digit code from your authenticator app."
INPUT_PREFIX = "input:"  # follow-ups of input modals, beside those of challenges
HOME_PREFIX = "home:"  # challenges of decisions clicked on the Home tab, to publish it again after
UNKNOWN_BUTTON = "Sorry, I don't recognise that button. Please type the command instead, e.g. `/signpost help`."
UNKNOWN_FORM = (
    "Sorry, I can't read that form (it may be from before Signpost was updated), so nothing was sent. "
    "Please type the command instead, e.g. `/signpost help`."
)

UNREADABLE_COMMAND = (
    "Sorry, I couldn't read that command, so nothing was done. Please try again, e.g. `/signpost help`."
)
SLACK_UNREACHABLE = (
    "Sorry, Signpost cannot reach Slack right now, so it cannot finish this here. Please try again in a few minutes."
)
NO_WAY_BACK = (
    "Sorry, Signpost could not answer this in time, and Slack gave it nowhere else to show the answer. "
    "Please try again, e.g. `/signpost help`."
)
OUTAGE_HOLD = 30.0  # seconds: after a failed call, Slack is taken as down this long (answers go in the ack)
AUTH_TEST_TIMEOUT = 1.0  # seconds: Bolt's look-up of the bot's own ids never eats Slack's 3 s
# Slack's own error codes for its trouble (as opposed to ours: a bad trigger, a missing scope).
_OUTAGE_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


RETRY_AFTER_MOST = 5  # seconds: a longer Retry-After fails the call now (a notice is retried later)


class ShortRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Waits out a rate limit as Slack asks only when the wait is short: a longer ``Retry-After``
    fails the call at once, so no notice send outlasts its claim waiting (the outbox backs off)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        waits = [v for k, vs in response.headers.items() if k.lower() == "retry-after" for v in vs]
        # Only whole seconds are waited out here (slack_sdk reads no other form); an HTTP date
        # fails the call now, and the outbox waits it out (``bot.delivery.retry_after`` reads both).
        # ASCII digits only: "²".isdigit() is true and int("²") raises.
        return all(v.strip().isascii() and v.strip().isdigit() and int(v) <= RETRY_AFTER_MOST for v in waits)


def retry_handlers() -> list[AsyncRetryHandler]:
    """Retry dropped connections once, and short rate limits as Slack asks (``Retry-After``)."""
    return [
        AsyncConnectionErrorRetryHandler(),
        ShortRateLimitRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
    ]


def web_api_session(client: AsyncWebClient) -> aiohttp.ClientSession:
    """The session for ``client``'s calls (and response URLs): it refuses redirects (bot.outbound),
    and ends a call after the client's ``timeout``. slack_sdk hands that timeout to aiohttp only on
    a session it makes itself; on one supplied it passes none, and aiohttp's 300 s applied."""
    return outbound_session(timeout=aiohttp.ClientTimeout(total=client.timeout))


def web_client(settings: Settings) -> AsyncWebClient:
    """The Web API client; ``SIGNPOST_SLACK_API_URL`` points it elsewhere (a proxy, a local fake)."""
    if settings.slack_bot_token is None:
        raise SettingsError("SLACK_BOT_TOKEN is needed for the Slack Web API")
    kwargs: dict[str, Any] = {}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url.rstrip("/") + "/"
    return AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), retry_handlers=retry_handlers(), **kwargs)


def principal_of(context: AsyncBoltContext) -> Principal | None:
    """The asker by Slack's stable ids: (slack, enterprise or team, user). Never a display name."""
    tenant = context.enterprise_id or context.team_id
    if not tenant or not context.user_id or not inbound.is_id(tenant) or not inbound.is_id(context.user_id):
        return None  # over HTTP refused before this (inbound.check_identity); Socket Mode is not
    return Principal(Platform.SLACK, tenant, context.user_id)


_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")  # what Slack's error codes look like ("invalid_auth")


def failure_reason(exc: BaseException) -> str:
    """Slack's error code or the exception's type: never a payload or a message body. An "error"
    that is not shaped like one of Slack's codes (a proxy's page, anything echoed) is not repeated."""
    if isinstance(exc, RedirectRefused):  # the host that answered is Slack's (or the configured API URL)
        return f"redirect_{exc.status}"
    if isinstance(exc, SlackApiError):
        data = exc.response.data
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, str) and _ERROR_CODE.fullmatch(error):
            return error
        return "unrecognised_error" if error else f"http_{exc.response.status_code}"
    return type(exc).__name__


def is_outage(exc: BaseException) -> bool:
    """A failure that says Slack (or the way to it) is down, not that one call was wrong."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        return status >= 500 or failure_reason(exc) in _OUTAGE_ERRORS
    return isinstance(exc, (aiohttp.ClientError, TimeoutError))


class SlackHealth:
    """Whether Slack's Web API answered lately. A failed call marks it down for ``OUTAGE_HOLD``
    seconds (then it is tried again); a call that succeeds marks it up at once."""

    def __init__(self, hold: float = OUTAGE_HOLD) -> None:
        self._hold = hold
        self._down_until = 0.0

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def failed(self, exc: BaseException) -> None:
        if is_outage(exc):
            self._down_until = time.monotonic() + self._hold

    def answered(self) -> None:
        self._down_until = 0.0


class BotAuthorize(AsyncAuthorize):
    """Bolt's single-workspace authorization without its failure modes. Bolt asks Slack
    (``auth.test``) for the bot's own ids before any listener runs; while Slack cannot be reached
    it answered every command with HTTP 500 (a connection error) or a wrong "reinstall this app"
    text (an error status), and nothing was audited. The request's signature has already proved it
    came from Slack for this app: the ids are a convenience, looked up once it answers (within
    ``AUTH_TEST_TIMEOUT``), and the request goes on without them until then."""

    def __init__(self, client: AsyncWebClient, health: SlackHealth) -> None:
        self.client = client
        # Asked once, without the client's retries: a refused connection is known at once (and
        # marks Slack down), so the only failure the time limit is left to catch is slowness.
        self._asker = AsyncWebClient(
            token=client.token, base_url=client.base_url, session=client.session, retry_handlers=[]
        )
        self.health = health
        self._me: dict[str, Any] | None = None

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        me = self._me if self._me is not None or self.health.down else await self._ask()
        me = me or {}
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            bot_id=me.get("bot_id"),
            bot_user_id=me.get("user_id"),
            bot_token=self.client.token,
        )

    async def _ask(self) -> dict[str, Any] | None:
        try:
            # The client's session (made at start-up, after this): the SDK's own, made when there
            # is none, would follow redirects (bot.outbound).
            self._asker.session = self.client.session
            async with asyncio.timeout(AUTH_TEST_TIMEOUT):
                found = await self._asker.auth_test()
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            # Slow is not down: a look-up that outran its second (a loaded host, a slow moment) is
            # asked again with the next request, and marks nothing. A refused connection or
            # Slack's own error status does mark Slack down.
            if not isinstance(exc, TimeoutError):
                self.health.failed(exc)
            log.warning("slack_api_failed", method="auth.test", error=failure_reason(exc))
            return None
        self.health.answered()
        self._me = dict(found.data) if isinstance(found.data, dict) else {}
        return self._me


def new_id() -> str:
    return uuid.uuid4().hex


def unescape(text: str) -> str:
    """Slack sends &, < and > in slash command text as entities."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


READ_AGAIN_AFTER = 10  # seconds: clicks on a reading's button within one such window are one reading


def click_key(principal: Principal, body: dict[str, Any], action: dict[str, Any], *, reading: bool = False) -> str:
    """The same button in the same message (or modal) clicked by the same person is one action,
    however often it is clicked. A message's ts is unique in its channel only, and one button (the
    relay's Read) goes to two people, so the channel and the clicker are part of the key.

    A reading's button stays on its message, so it is one action per click window
    (``READ_AGAIN_AFTER``, from the click's ``action_ts``): a double click reads once, a press a
    minute later reads again. Without a usable ``action_ts`` each click is its own."""
    container = body.get("container") or {}
    where = container.get("message_ts") or container.get("view_id") or body.get("trigger_id", "")
    channel = container.get("channel_id") or ""
    value = hashlib.sha256(str(action.get("value", "")).encode()).hexdigest()[:16]
    key = (
        f"slack:click:{principal.tenant}:{principal.user_id}:{channel}:{where}:"
        f"{action.get('block_id', '')}:{action.get('action_id', '')}:{value}"
    )
    if not reading:
        return key
    try:
        window = f"w{int(float(str(action.get('action_ts'))) // READ_AGAIN_AFTER)}"
    except ValueError:
        window = "t" + hashlib.sha256(str(body.get("trigger_id", "")).encode()).hexdigest()[:16]
    return f"{key}:{window}"


def state_value(view: dict[str, Any], block_id: str, action_id: str) -> str:
    """One text input's value from a submitted view ('' when left empty)."""
    entry: Any = view.get("state")
    for key in ("values", block_id, action_id, "value"):
        entry = entry.get(key) if isinstance(entry, dict) else None
    return entry if isinstance(entry, str) else ""


def modal_of(body: dict[str, Any]) -> str | None:
    """The id of the modal a click came from, to answer in (views.update, views.push); None for a
    click in a message, or on the Home tab, which is a view but not a modal: Slack takes a Home tab
    only whole, from views.publish, and an answer over it was a modal where the tab should be."""
    view = body.get("view") or {}
    if (body.get("container") or {}).get("type") != "view" or view.get("type") != "modal":
        return None
    return view.get("id")


def replaceable(body: dict[str, Any], context: AsyncBoltContext) -> bool:
    """Whether the clicked message may be replaced by its answer: only where the clicker alone sees
    it. Slack shows a replaced message to everyone who can see the original, whatever the
    ``response_type``, so a Signpost message forwarded or shared into a channel, a group DM or a DM
    between people is never replaced (its answer goes to the modal, or in a new ephemeral message).
    The clicker alone sees an ephemeral message, and a message of this bot's own in a DM: the bot
    writes only to the DM it opened with one person (``SlackDeliverer``). The bot's own: by its bot
    id, or, while that is not known (auth.test not yet answered), by the app id Slack puts on the
    message and on the click. Not known (a payload without the message): not replaced."""
    container = body.get("container")
    if not isinstance(container, dict) or container.get("type") != "message":
        return False
    if container.get("is_ephemeral") is True:
        return True
    message, channel = body.get("message"), container.get("channel_id")
    if not isinstance(message, dict) or not isinstance(channel, str) or not channel.startswith("D"):
        return False
    bot, app = context.bot_id, body.get("api_app_id")
    if isinstance(bot, str) and bot:
        return bool(message.get("bot_id") == bot)
    return isinstance(app, str) and bool(app) and message.get("app_id") == app


def on_home(body: dict[str, Any]) -> bool:
    """Whether a click came from the App Home tab (a view of type ``home``)."""
    return (body.get("container") or {}).get("type") == "view" and (body.get("view") or {}).get("type") == "home"


FollowupKey = tuple[str, str, str]  # (team or enterprise, user, challenge id or input token)


class _UnhandledWithoutBody(logging.Filter):
    """Bolt's warning for a request no listener takes copies fields of the body (callback ids,
    button values, what was typed into a suggestion box) and a page of listener code: one fixed
    line instead. Its start-up warnings that the client's token wins over SLACK_BOT_TOKEN, or that
    ``authorize`` does (the same token: both are built from it) are dropped: they said nothing at
    every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Unhandled request"):
            record.msg, record.args = "slack_request_unhandled", ()
        return not message.startswith(("As you gave `client` as well", "As `installation_store` or `authorize`"))


# Bolt's logger, and the app name it names each listener's logger after ("<name>:<function>"):
# under ``slack_bolt``, so bot/logging.py's cap on libraries holds them all at warning. At debug
# Bolt logs every answer's whole body ("Responding with status: 200 body: …"), a search's result
# with the child's name and date of birth in it; under our own ``signpost.`` it was not capped.
BOLT_LOGGER = "slack_bolt.signpost"


def bolt_logger() -> logging.Logger:
    """The logger Bolt is given, with its "unhandled request" warning made safe (installed once)."""
    logger = logging.getLogger(BOLT_LOGGER)
    if not any(isinstance(f, _UnhandledWithoutBody) for f in logger.filters):
        logger.addFilter(_UnhandledWithoutBody())
    return logger


_V = TypeVar("_V")

# Why Slack delivers a request again (X-Slack-Retry-Reason): its own codes, kept; anything else is
# "other" (the header is not signed, so what it says is never written as it came).
RETRY_REASONS = frozenset(
    {"http_timeout", "too_many_redirects", "connection_failed", "ssl_error", "http_error", "unknown_error"}
)


def retry_of(request: AsyncBoltRequest) -> str | None:
    """Why Slack delivers this request again (``RETRY_REASONS``, or "other"); None for a first delivery."""
    if not request.headers.get("x-slack-retry-num"):
        return None
    given = request.headers.get("x-slack-retry-reason") or [""]
    reason = given[0] if isinstance(given, list | tuple) else str(given)
    return reason if reason in RETRY_REASONS else "other"


class Followups(Generic[_V]):
    """Where to show a click's final answer (the clicked message): a response_url, kept for the
    Slack user and team who clicked, under the challenge id (or an input modal's token). Or any
    other short-lived thing kept for one person's request (``SlackFrontEnd.acked``).

    Keyed by who it belongs to, so someone else's click or submission naming the same challenge id
    can neither redirect nor read another person's follow-up. Kept in memory for a short while
    only: modal metadata holds nothing but the challenge id (or the token). If the answer arrives
    at another replica, the modal still shows it.
    """

    def __init__(self, ttl: float = 900.0, limit: int = 1000) -> None:
        self._items: OrderedDict[FollowupKey, tuple[_V, float]] = OrderedDict()
        self._ttl = ttl
        self._limit = limit

    @staticmethod
    def key(principal: Principal, item_id: str) -> FollowupKey:
        return (principal.tenant, principal.user_id, item_id)

    def put(self, principal: Principal, item_id: str, value: _V) -> None:
        key = self.key(principal, item_id)
        self._items[key] = (value, time.monotonic() + self._ttl)
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, principal: Principal, item_id: str) -> _V | None:
        key = self.key(principal, item_id)
        item = self._items.get(key)
        if item is None or item[1] < time.monotonic():
            self._items.pop(key, None)
            return None
        return item[0]

    def pop(self, principal: Principal, item_id: str) -> _V | None:
        value = self.get(principal, item_id)
        self._items.pop(self.key(principal, item_id), None)
        return value


class SlackDeliverer:
    """Notices as direct messages from the bot: the notice's text and buttons, nothing else.

    A person's direct-message channel with the bot does not change, so it is remembered (the most
    recent ``channels_kept`` people): a notice to someone already written to is one Web API call,
    not two (``conversations.open`` then ``chat.postMessage``). A channel Slack no longer knows is
    forgotten and opened again, once.
    """

    platform = Platform.SLACK
    channels_kept = 10_000
    _GONE = frozenset({"channel_not_found", "is_archived"})
    # Slack answered about this one person (the platform itself is up: bot/notify.py tells them apart).
    _PERSON = frozenset({"user_not_found", "user_not_visible", "user_disabled", "cannot_dm_bot", *_GONE})

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._channels: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def deliver(self, to: Principal, notice: Notice) -> None:
        message = render.notice_message(notice)
        person = (to.tenant, to.user_id)
        try:
            known = self._channels.get(person)
            if known is not None and await self._post_to_known(person, known, message):
                return
            opened = await self.client.conversations_open(users=to.user_id)
            channel = opened["channel"]["id"]
            await self.client.chat_postMessage(channel=channel, **message)
            self._remember(person, channel)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack_notice_failed", kind=notice.kind, error=failure_reason(exc))
            if failure_reason(exc) in self._PERSON:
                raise PersonUnreachable(f"Slack did not take the notice ({failure_reason(exc)})") from None
            # A 429 says how long the app is limited for in this workspace (Slack's limits are per
            # app per workspace): the outbox sends nothing more there before then.
            wait = None
            if isinstance(exc, SlackApiError) and exc.response.status_code == 429:
                wait = retry_after(exc.response.headers)
            raise DeliveryFailed(f"Slack did not take the notice ({failure_reason(exc)})", wait=wait) from None

    async def _post_to_known(self, person: tuple[str, str], channel: str, message: dict[str, Any]) -> bool:
        """Post to a remembered channel; False (and forgotten) when Slack no longer knows it."""
        try:
            await self.client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            if exc.response.get("error") not in self._GONE:
                raise
            self._channels.pop(person, None)
            return False
        self._channels.move_to_end(person)
        return True

    def _remember(self, person: tuple[str, str], channel: str) -> None:
        self._channels[person] = channel
        self._channels.move_to_end(person)
        while len(self._channels) > self.channels_kept:
            self._channels.popitem(last=False)


async def refuse_envelope(
    client: AsyncBaseSocketModeClient, reason: str, envelope_id: str | None, *, command: bool
) -> None:
    """A Socket Mode envelope not taken: acked when it has an id (a slash command's ack answers its
    sender kindly, privately), so that Slack does not deliver it again; one log line, the reason."""
    acked = envelope_id is not None and await acknowledge(client, envelope_id, command=command)
    log.warning("slack_envelope_refused", reason=reason, acked=acked)


async def acknowledge(client: AsyncBaseSocketModeClient, envelope_id: str, *, command: bool) -> bool:
    """Ack an envelope nothing else will answer (a command with a kind private line); False when
    the connection went (Slack will deliver it again, to be refused again)."""
    ack: dict[str, Any] = {"envelope_id": envelope_id}
    if command:
        ack["payload"] = {"response_type": "ephemeral", "text": UNREADABLE_COMMAND}
    try:
        await client.send_socket_mode_response(ack)
    except (aiohttp.ClientError, ConnectionError):
        return False
    return True


def note_rate_limit(body: dict[str, Any]) -> None:
    """Slack's notice that it is holding back this app's events (an Events API body with no inner
    event, so no Bolt listener can take it), over HTTP or Socket Mode: one warning naming the
    workspace and the minute it began, as Slack's ids and a number; never its token. The caller
    acknowledges it (over HTTP a 200: answers other than 200 to 5 % of deliveries get the app's
    events disabled)."""
    team, minute = body.get("team_id"), body.get("minute_rate_limited")
    log.warning(
        "slack_events_rate_limited",
        team=team if isinstance(team, str) and inbound.is_id(team) else None,
        minute=minute if isinstance(minute, int) and not isinstance(minute, bool) else None,
    )


# A person's request refused unread, to be audited when it names who sent it: (the payload, as
# sent, and whether it was a slash command). ``SlackFrontEnd.audit_unread``.
UnreadEnvelope = Callable[[object, bool], Awaitable[object]]
# The envelopes a person sends (a command, a click, a submission); events are Slack's news, not requests.
PERSONS_ENVELOPES = frozenset({"slash_commands", "interactive"})


class SocketFrames(aiohttp.ClientWebSocketResponse):
    """Socket Mode's WebSocket, as aiohttp's, but a binary frame is logged as slack_sdk drops it
    (it reads text frames only, and has no hook for any other): one line, nothing of the frame."""

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        message = await super().receive(timeout)
        if message.type == aiohttp.WSMsgType.BINARY:
            log.warning("slack_envelope_refused", reason="binary_frame", acked=False)
        return message


async def link_failed(message: aiohttp.WSMessage) -> None:
    """slack_sdk's hook for a WebSocket error (a frame over aiohttp's 4 MiB, which closes the link
    with 1009; a broken frame): one line, the error's type and close code, never its text. The SDK
    then connects again, as for any lost link."""
    code = getattr(message.data, "code", None)
    log.warning("slack_link_closed", reason=type(message.data).__name__, code=code if isinstance(code, int) else None)


class SocketModeLink(SocketModeClient):
    """slack_sdk's aiohttp Socket Mode client, reading each frame as ``inbound`` reads an HTTP body.

    The SDK's own reading logged a traceback for a frame that was not JSON, dropped a frame without
    an envelope id or payload without a word, and never acked an envelope of an unknown type or whose
    payload was not an object (so Slack delivered it again), and dropped a binary frame, or lost the
    link to one too large, without a word (``SocketFrames``, ``link_failed``). A person's envelope
    refused unread is audited when its payload still names its sender (``unread``)."""

    def __init__(
        self,
        app_token: str,
        logger: logging.Logger,
        web_client: AsyncWebClient,
        unread: UnreadEnvelope | None = None,
        api_base: str | None = None,
    ) -> None:
        super().__init__(app_token=app_token, logger=logger, web_client=web_client, ping_interval=10)  # as Bolt sets it
        # The WebSocket's session refuses redirects (bot.outbound), as every outbound session does;
        # the SDK's, unused, is closed.
        unused, self.aiohttp_client_session = (
            self.aiohttp_client_session,
            outbound_session(ws_response_class=SocketFrames),
        )
        self.on_error_listeners.append(link_failed)
        self._closing = asyncio.ensure_future(unused.close())
        self._listening: set[asyncio.Future[None]] = set()
        self.unread = unread
        self.api_base = api_base  # SIGNPOST_SLACK_API_URL, whose host may give response URLs too

    async def process_message(self) -> None:
        raw = await self.message_queue.get()
        if raw is None:
            return
        try:
            frame = inbound.read_frame(raw)
        except inbound.Refused as refused:
            log.warning("slack_envelope_refused", reason=refused.reason, acked=False)
            return
        try:
            inbound.check_envelope(frame, self.api_base)
        except inbound.Refused as refused:
            kind = frame.get("type")
            # Only an envelope (with an id, acked once): a frame without one is not Slack's request.
            envelope = isinstance(kind, str) and kind in PERSONS_ENVELOPES and inbound.envelope_id(frame) is not None
            if self.unread is not None and envelope:  # audited before its ack answers it
                await self.unread(frame.get("payload"), kind == "slash_commands")
            command = kind == "slash_commands" and frame.get("accepts_response_payload") is True
            await refuse_envelope(self, refused.reason, inbound.envelope_id(frame), command=command)
            return
        # Each envelope in its own task, as the SDK does, held until done (the loop keeps weak references).
        listening = asyncio.ensure_future(self.run_message_listeners(frame, raw))
        self._listening.add(listening)
        listening.add_done_callback(self._listening.discard)


class SocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler on a ``SocketModeLink``; an envelope whose reading fails in Bolt
    (a shape the checks did not foresee) is refused as one the link would not take."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        web_client: AsyncWebClient,
        unread: UnreadEnvelope | None = None,
        api_base: str | None = None,
    ) -> None:
        # Not Bolt's __init__: it opens an aiohttp session for an SDK client this one replaces.
        self.app = app
        self.app_token = app_token
        self.client = SocketModeLink(
            app_token=app_token, logger=app.logger, web_client=web_client, unread=unread, api_base=api_base
        )
        self.unread = unread
        self.client.socket_mode_request_listeners.append(self.handle)

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        if req.type == "events_api" and inbound.kind_of(req.payload) == inbound.RATE_LIMITED:
            note_rate_limit(req.payload)
            await acknowledge(client, req.envelope_id, command=False)
            return
        start = time.time()
        try:
            answer = await run_async_bolt_app(self.app, req)
        except Exception as exc:  # Bolt's reading of an envelope we took for well formed
            if self.unread is not None and req.type in PERSONS_ENVELOPES:  # audited before its ack
                await self.unread(req.payload, req.type == "slash_commands")
            command = req.type == "slash_commands" and req.accepts_response_payload
            await refuse_envelope(client, type(exc).__name__, req.envelope_id, command=command)
            return
        if answer.status != 200:
            await self._not_answered(client, req, answer.status)
            return
        await send_async_response(client, req, answer, start)

    async def _not_answered(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest, status: int) -> None:
        """An envelope Bolt did not answer (404: no listener takes it; Bolt has logged
        ``slack_request_unhandled``) is acked all the same: over Socket Mode an envelope not acked is
        delivered again, and a command's sender would wait for nothing. Bolt's own handler logged it
        at info with the body it answered and left it unacked. A person's (a command, a click, a
        submission) is audited before its ack, as one refused unread is; an event is not."""
        command = req.type == "slash_commands" and req.accepts_response_payload
        if status == 404 and self.unread is not None and req.type in PERSONS_ENVELOPES:
            await self.unread(req.payload, req.type == "slash_commands")
        if status == 404:
            await acknowledge(client, req.envelope_id, command=command)
        else:
            await refuse_envelope(client, f"status_{status}", req.envelope_id, command=command)


class SlackFrontEnd:
    """Bolt listeners that turn Slack requests into Commands and Replies into Block Kit."""

    # Socket Mode, while Slack cannot be reached: wait 1 s, 2 s, 4 s … at most a minute between tries.
    socket_retry_first = 1.0
    socket_retry_max = 60.0
    socket_attempt_timeout = 10.0

    def __init__(
        self,
        signpost: Signpost,
        settings: Settings,
        client: AsyncWebClient | None = None,
        admission: Admission | None = None,
    ) -> None:
        if settings.slack_signing_secret is None:
            raise SettingsError("SLACK_SIGNING_SECRET is needed: every Slack request is verified with it")
        self.signpost = signpost
        self.dispatcher = signpost.dispatcher
        self.settings = settings
        self._signing_secret = settings.slack_signing_secret.get_secret_value()
        self.client = client or web_client(settings)
        self.health = SlackHealth()
        self.deliverer = SlackDeliverer(self.client)
        self.followups: Followups[str] = Followups()
        # The answers given in a slash command's own ack, by its delivery (trigger id): a delivery
        # of it again (an X-Slack-Retry-Num header) says Slack never had the ack (``_answer_in_ack``).
        # Ten minutes of a busy morning's answers, their audit references only.
        self.acked: Followups[Audited] = Followups(ttl=600.0, limit=20_000)
        self.admission = admission or Admission(settings.max_in_flight)
        self.answer_budget = settings.slack_answer_budget
        self.socket_mode: SocketModeHandler | None = None
        self._socket_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.bolt = AsyncApp(
            name=BOLT_LOGGER,
            signing_secret=self._signing_secret,
            client=self.client,
            authorize=BotAuthorize(self.client, self.health),
            # Listeners ack first and hand the work to a task; Bolt answers as soon as they return.
            process_before_response=True,
            logger=bolt_logger(),
        )
        self._register()

    # ---- wiring -------------------------------------------------------------------------------

    def _register(self) -> None:
        self.bolt.command(SLASH_COMMAND)(self._on_command)
        for action_id in sorted(ACTION_IDS):
            self.bolt.action(action_id)(self._on_action)
        # A link button opens its page in the browser; Slack still sends the click, which is only acked.
        self.bolt.action(re.compile(f"^{render.OPEN_LINK}"))(self._on_link)
        self.bolt.view(render.CODE_CALLBACK)(self._on_code)
        self.bolt.view(render.INPUT_CALLBACK)(self._on_input)
        # Last, so each takes only what no listener above does (Bolt runs the first that matches):
        # a button or a form of Signpost's it no longer knows (an older version's) is a person's
        # request all the same, audited and answered as one whose value cannot be read.
        self.bolt.action(re.compile(".*"))(self._on_stray_action)
        self.bolt.view(re.compile(".*"))(self._on_stray_view)
        listeners = {"app_home_opened": self._on_home}
        for event_type in sorted(EVENTS):
            self.bolt.event(event_type)(listeners[event_type])
        self.bolt.error(self._on_error)

    async def handle_http(self, request: web.Request) -> web.Response:
        """POST /slack/events: the signature headers, then the body and its signature, then Bolt routes.

        Every refusal is a 4xx with one short log line (a fixed reason, never a header value or
        any of the body), but for a signed slash command that names who sent it: told kindly in its
        ack (Slack shows its own error for a 4xx). A signed request refused unread that names its
        sender is audited once (``audit_unread``). Bolt verifies the signature again; its own body
        parsing (which guesses from the text) is replaced by ours (which goes by the content type).
        """
        try:
            inbound.check_headers(request.headers, time.time())  # before the body: unsigned, nothing is read
            # Read within the process's budget for bodies not yet verified (the bytes received), and
            # verified before anything else waits: once a flood of forged bodies has spent it, a body
            # is refused at the piece that would go over, the rest of it unread.
            raw = await read_body(request, budget=request.app[UNVERIFIED_KEY])
            inbound.verify(request.headers, raw, self._signing_secret, time.time())
            text, body = inbound.parse(raw, request.content_type, self.settings.slack_api_url)
        except BodyRefused as refused:
            log.warning("slack_request_refused", status=refused.status, reason=refused.reason)
            if refused.status == 429:  # a forged flood, or more real requests at once than ever seen
                return web.json_response({"error": "busy"}, status=429, headers={"Retry-After": "1"})
            return web.json_response({"error": "invalid request"}, status=refused.status)
        except inbound.Refused as refused:  # its payload is set only once the signature is verified
            return await self._refuse_signed(refused.status, refused.reason, refused.payload, refused.slash_command)
        if inbound.kind_of(body) == inbound.RATE_LIMITED:
            note_rate_limit(body)
            return web.Response(status=200)
        busy = self.busy_answer(body)  # before anything of Bolt's is built
        if busy is not None:
            return busy
        try:
            # Built without the body, which Bolt would parse a second time (its guess, then ours
            # replaces it: a third of Bolt's request, issue 15); the text is what Bolt verifies.
            bolt_request = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
            bolt_request.raw_body = text
            bolt_request.body = body
            bolt_request.context = build_async_context(AsyncBoltContext({}), body)
        except Exception as exc:  # Bolt's reading of a verified body we took for well formed
            return await self._refuse_signed(400, type(exc).__name__, body, "command" in body)
        try:
            answer = await self.bolt.async_dispatch(bolt_request)
        except Exception as exc:  # Bolt's routing on a verified body whose shape we did not foresee
            return await self._refuse_signed(400, type(exc).__name__, body, "command" in body)
        if answer.status == 404 and not inbound.is_event(body):
            # A person's request no listener takes (another slash command, a shortcut, a payload of
            # a kind Signpost does not use): Bolt has logged it (``slack_request_unhandled``, one
            # line); audited as any signed request refused unread is. Still a 404: Slack does not
            # deliver a command or an interactive payload again.
            await self.audit_unread(body, "command" in body)
        response = await to_aiohttp_response(answer)
        if answer.status == 404 and body.get("type") == "event_callback":
            # An event nothing listens for (Bolt has logged it, in one line): Slack delivers an
            # event answered other than 2xx three more times, each another 404 and another line.
            response.headers["X-Slack-No-Retry"] = "1"
        return response

    async def _refuse_signed(self, status: int, reason: str, payload: object, slash_command: bool) -> web.Response:
        """A request refused (``status``, one log line with ``reason``). ``payload``: what of its
        verified body was read (None when it was not signed, or not read): when it names its user
        and team, the refusal is audited once, and a slash command's form (``slash_command``) is
        answered in its ack. Only a slash command or an interactive payload is someone's request, as
        in Socket Mode: an Events API body is not audited (Slack delivers a refused event three more
        times, each another event), and is answered ``X-Slack-No-Retry: 1``."""
        command = isinstance(payload, dict) and "command" in payload
        event = inbound.is_event(payload)
        audited = payload is not None and not event and await self.audit_unread(payload, command)
        if audited and slash_command:
            status = 200
        log.warning("slack_request_refused", status=status, reason=reason)
        if status == 200:
            return web.json_response({"response_type": "ephemeral", "text": UNREADABLE_COMMAND})
        response = web.json_response({"error": "invalid request"}, status=status)
        if event:
            response.headers["X-Slack-No-Retry"] = "1"
        return response

    def busy_answer(self, body: dict[str, Any]) -> web.Response | None:
        """Slack's "busy" answer for a verified slash command or modal submission above the
        in-flight bound (or while draining), given here without Bolt's pipeline (its second
        signature check, authorisation, routing, ack plumbing): under a flood almost every request
        is refused, and a refusal must cost next to nothing, or the refusals starve the work that
        was admitted. None when the request may go on to Bolt (whose listeners ask again, so a
        request admitted here and refused there still gets the same answer). Clicks and events
        go on to Bolt: their busy answers need its context, and they do not come in floods."""
        if body.get("command") == SLASH_COMMAND:
            if self.admission.admit("slack_command"):
                return None
            return web.json_response(BUSY_ACK)
        view = body.get("view")
        if body.get("type") == "view_submission" and isinstance(view, dict):
            block = BUSY_BLOCKS.get(str(view.get("callback_id")))
            if block is None or self.admission.admit("slack_view"):
                return None
            return web.json_response({"response_action": "errors", "errors": {block: BUSY_TEXT}})
        return None

    async def on_startup(self, app: web.Application) -> None:
        self._session = web_api_session(self.client)
        self.client.session = self._session
        if self.settings.slack_app_token is not None:
            self.socket_mode = SocketModeHandler(
                self.bolt,
                self.settings.slack_app_token.get_secret_value(),
                self.client,
                self.audit_unread,
                self.settings.slack_api_url,
            )
            # Connected in the background: start-up (and so /healthz) never waits for Slack, and a
            # signal stops the server even while Slack cannot be reached.
            self._socket_task = asyncio.create_task(self._connect_socket_mode(), name="slack-socket-mode")

    async def _connect_socket_mode(self) -> None:
        """Ask Slack for a WebSocket URL until it answers, backing off (one log line per failed
        attempt, no traceback), then connect. The SDK's own connect would retry forever, logging a
        traceback every few seconds, so it is only called once Slack has answered."""
        assert self.socket_mode is not None and self.settings.slack_app_token is not None
        token = self.settings.slack_app_token.get_secret_value()
        delay = self.socket_retry_first
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(self.socket_attempt_timeout):
                    opened = await self.client.apps_connections_open(app_token=token)
                url = opened.get("url")
                if not isinstance(url, str):
                    raise ValueError("no url in apps.connections.open")
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # unreachable, refused, rate limited, a bad token: try again later
                log.warning(
                    "slack_socket_mode_unreachable",
                    attempt=attempt,
                    error=failure_reason(exc),  # Slack's code, never what else came back
                    retry_in_s=round(delay, 1),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.socket_retry_max)
        self.socket_mode.client.wss_uri = url
        await self.socket_mode.connect_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
        log.info("slack_socket_mode_connected", attempts=attempt)

    async def on_cleanup(self, app: web.Application) -> None:
        if self._socket_task is not None:
            self._socket_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._socket_task
        if self.socket_mode is not None:
            await self.socket_mode.close_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
        # `signpost run` has drained already (SIGNPOST_DRAIN_SECONDS); this is for embedded use.
        await self.admission.drain(self.settings.drain_seconds)
        if self._tasks:
            # Said as it is: these requests were acknowledged and will not be answered.
            log.error("slack_tasks_unfinished", count=len(self._tasks))
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work after the ack; held (and referenced) until done, so shutdown drains it."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        self.admission.hold()
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.admission.release()
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            log.error("slack_task_failed", error=type(exc).__name__, exc_info=exc)

    async def idle(self) -> None:
        """Wait until every acknowledged request has finished its work."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _on_error(self, error: Exception) -> None:
        log.error("slack_listener_failed", error=type(error).__name__)

    # ---- the slash command ----------------------------------------------------------------------

    async def _on_command(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, request: AsyncBoltRequest
    ) -> None:
        if not self.admission.admit("slack_command"):
            await ack(text=BUSY_TEXT, response_type="ephemeral")  # nothing acknowledged that cannot be done
            return
        principal = principal_of(context)
        if principal is None:
            await ack()
            log.warning("slack_request_without_identity", kind="command")
            return
        retry = retry_of(request)
        retried = retry is not None
        text = unescape(str(body.get("text") or ""))
        # While Slack's Web API is down, a modal or a response_url post would reach no one: every
        # command is answered in its ack (which needs no Web API), or told kindly to try again. So
        # is one that names no response_url to answer through later.
        outage = self.health.down
        if not outage and body.get("response_url") and not self.dispatcher.steps_up(text):
            await ack()
            self.spawn(self._slash(principal, body, text, retried))
            return
        # A search (a malformed one too, told how to write it): answered in the ack when its audit
        # event is durable within the budget.
        self.admission.hold()
        try:
            await self._answer_in_ack(ack, principal, body, text, retry, outage=outage)
        finally:
            self.admission.release()

    async def _command(self, principal: Principal, body: dict[str, Any], text: str) -> Command:
        trigger = body.get("trigger_id")
        name, email = await self.profile(principal) if self.dispatcher.wants_profile(text) else (None, None)
        return Command(
            principal,
            text,
            new_id(),
            channel="direct" if body.get("channel_name") == "directmessage" else "channel",
            idempotency_key=f"slack:command:{trigger}" if trigger else None,
            display_name=name,
            email=email,
        )

    async def _answer_in_ack(
        self,
        ack: AsyncAck,
        principal: Principal,
        body: dict[str, Any],
        text: str,
        retry: str | None,
        *,
        outage: bool = False,
    ) -> None:
        """The answer in the slash command's own HTTP response (an ephemeral message, no Web API
        call at all) when it is ready, its audit event durable, within ``SIGNPOST_SLACK_ANSWER_BUDGET``.

        A code prompt opens the code modal with the trigger id (a modal is the only private place
        for a code); an answer that is late goes on in the background into a modal, as before.
        During an outage neither can reach anyone: the ack says so (the command is audited as ever),
        as it does for a late answer with no response_url to go to and no modal to open.

        ``retry``: why Slack delivers this command again (``retry_of``), None for a first delivery.
        A delivery made again is one that had no answer in time (as Slack retries its Events API):
        an answer the first delivery gave in its ack never reached anyone. The retry runs nothing
        again (``DUPLICATE``); it says so in its own ack and the audit records the first answer as
        not shown, once (``Dispatcher.not_shown``).
        """
        retried = retry is not None
        command = await self._command(principal, body, text)
        work = asyncio.ensure_future(self.dispatcher.handle(command))
        done: set[asyncio.Future[Reply]] = set()
        if self.answer_budget > 0:
            done, _ = await asyncio.wait({work}, timeout=self.answer_budget)
        if not done and (outage or not (body.get("response_url") or self._opens_modal(body, text, retried))):
            await ack(text=SLACK_UNREACHABLE if outage else NO_WAY_BACK, response_type="ephemeral")
            self.spawn(self._finish_unshown(work, "slack_unreachable" if outage else "response_url:none"))
            return
        if not done:
            await ack()
            self.spawn(self._answer_later(command, body, retried, work))
            return
        reply = work.result()
        if reply is DUPLICATE:
            first = self.acked.pop(principal, command.idempotency_key or "") if retry is not None else None
            if first is None:
                await ack()  # a redelivery: the first delivery's answer stands, nothing new is shown
                return
            # The first delivery's answer went in its ack, which Slack never had: shown to no one.
            await ack(response_type="ephemeral", **render.message(NOT_SHOWN))
            await self.dispatcher.not_shown(replace(NOT_SHOWN, audited=first), f"slack_retry:{retry}")
            return
        if reply.challenge is None:
            await ack(response_type="ephemeral", **render.message(reply))
            if reply.audited is not None and command.idempotency_key:
                self.acked.put(principal, command.idempotency_key, reply.audited)
            return
        if outage:
            await ack(text=SLACK_UNREACHABLE, response_type="ephemeral")
            return
        await ack()
        self.spawn(self._ask_for_code(body, reply, retried))

    async def _finish_unshown(self, work: Awaitable[Reply], why: str) -> None:
        """A late answer with nowhere to go (an outage, no response_url): finished (and audited),
        shown to no one, and recorded so (the ack told the person to try again)."""
        await self.dispatcher.not_shown(await work, why)

    async def _ask_for_code(self, body: dict[str, Any], reply: Reply, retried: bool) -> None:
        """The code modal, opened straight away with the trigger id (or, when that cannot be, the
        ephemeral message with its Enter code button)."""
        assert reply.challenge is not None
        trigger = body.get("trigger_id")
        if trigger and not retried and await self.open_view(str(trigger), render.challenge_modal(reply.challenge)):
            return
        await self.show_in_message(str(body.get("response_url", "")), reply, replace=False)

    async def _slash(self, principal: Principal, body: dict[str, Any], text: str, retried: bool) -> None:
        await self._answer_later(await self._command(principal, body, text), body, retried, None)

    async def _answer_later(
        self, command: Command, body: dict[str, Any], retried: bool, work: Awaitable[Reply] | None
    ) -> None:
        """After an empty ack: a command that may need a code in a modal (a placeholder first,
        opened with the trigger id before any database work), anything else in a private message."""

        async def reply() -> Reply:
            return await work if work is not None else await self.dispatcher.handle(command)

        if self._opens_modal(body, command.text, retried):
            view_id = await self.open_view(str(body["trigger_id"]), render.placeholder_modal())
            if view_id is not None:
                await self.show_in_view(view_id, await reply(), placeholder=True)
                return
        await self.show_in_message(str(body.get("response_url", "")), await reply(), replace=False)

    def _opens_modal(self, body: dict[str, Any], text: str, retried: bool) -> bool:
        """Whether a late answer to this command goes into a modal opened with its trigger id. A
        redelivery's trigger id has expired; it may only ever repeat nothing or answer in a message."""
        return bool(body.get("trigger_id")) and not retried and self.dispatcher.may_need_code(text)

    async def profile(self, principal: Principal) -> tuple[str | None, str | None]:
        """The account's display name and email as Slack reports them (users.info), or (None, None).

        Shown to the duty manager deciding a registration; never logged, never used to authorize.
        Not asked while Slack is down: the registration goes on without them.
        """
        if self.health.down:
            return None, None
        found = await self._call("users.info", self.client.users_info(user=principal.user_id))
        user = found.get("user") if found else None
        if not isinstance(user, dict):
            return None, None
        profile = user.get("profile")
        profile = profile if isinstance(profile, dict) else {}
        name = profile.get("real_name") or profile.get("display_name") or user.get("real_name")
        email = profile.get("email")
        return (str(name)[:200] if name else None), (str(email)[:254] if email else None)

    # ---- buttons --------------------------------------------------------------------------------

    async def _on_link(self, ack: AsyncAck) -> None:
        await ack()

    async def _on_action(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        principal = self._clicker(body, context)
        if principal is not None:
            self.spawn(self._click(principal, body, action, replaceable(body, context)))

    async def _on_stray_action(self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        """A click on a button whose action id Signpost does not know: audited once (``usage``,
        invalid) and answered as an unreadable button is."""
        await ack()
        principal = self._clicker(body, context)
        if principal is not None:
            log.warning("slack_unknown_button", action_id="other")
            self.spawn(self._stray_click(principal, body))

    def _clicker(self, body: dict[str, Any], context: AsyncBoltContext) -> Principal | None:
        """Who clicked, once the click is admitted: None when it was answered "busy" (above the
        in-flight bound) or names nobody (logged), so that no click goes further."""
        if not self.admission.admit("slack_action"):
            self.spawn(self._busy(body))
            return None
        principal = principal_of(context)
        if principal is None:
            log.warning("slack_request_without_identity", kind="action")
        return principal

    async def _stray_click(self, principal: Principal, body: dict[str, Any]) -> None:
        await self._unknown_button(principal, body, "unknown button")

    async def _on_stray_view(self, ack: AsyncAck, context: AsyncBoltContext) -> None:
        """A form submitted under a callback id Signpost does not know: audited once and answered
        as a form it cannot read is (``_on_input``)."""
        principal = principal_of(context)
        if principal is None:
            log.warning("slack_request_without_identity", kind="view")
            await ack()
            return
        if not self.admission.admit("slack_view"):
            await ack()  # a form of no known block to show "busy" under: closed, nothing done
            return
        await self._unknown_form(ack, principal, "unknown form")

    async def _unknown_form(self, ack: AsyncAck, principal: Principal, detail: str) -> None:
        """A submitted form Signpost cannot run (one it did not make, or cannot read): audited once
        (``usage``, invalid, ``detail``) while it is held in flight, then answered in the ack."""
        log.warning("slack_unknown_form")
        self.admission.hold()
        try:
            await self._audit_unreadable(principal, detail)
        finally:
            self.admission.release()
        await ack(response_action="update", view=render.result_modal(Reply(Outcome.INVALID, UNKNOWN_FORM)))

    async def _busy(self, body: dict[str, Any]) -> None:
        """ "Busy, try again" for a click not taken: in its message, else (a click in a modal, or on
        the Home tab, has no response_url) in a modal over its modal, or of its own."""
        trigger = str(body.get("trigger_id", ""))
        if body.get("response_url"):
            await self.show_in_message(str(body["response_url"]), BUSY, replace=False)
        elif modal_of(body) is not None:
            await self._call("views.push", self.client.views_push(trigger_id=trigger, view=render.result_modal(BUSY)))
        elif trigger:
            await self.open_view(trigger, render.result_modal(BUSY))

    async def _click(self, principal: Principal, body: dict[str, Any], action: dict[str, Any], in_place: bool) -> None:
        """``in_place``: the clicked message may be replaced by its answer (``replaceable``); else
        its response_url only ever posts new ephemeral messages, and is never kept to settle it."""
        trigger = str(body.get("trigger_id", ""))
        response_url = body.get("response_url")
        settle_url = response_url if in_place and isinstance(response_url, str) else None
        view_id = modal_of(body)
        if action.get("action_id") == render.ENTER_CODE:
            await self._open_code_modal(principal, body, str(action.get("value", "")), settle_url)
            return
        try:
            value = render.decode_button(str(action.get("value", "")))
        except ValueError:
            log.warning("slack_unknown_button", action_id=str(action.get("action_id"))[:40])
            await self._unknown_button(principal, body, "unreadable button")
            return
        if value.input is not None:
            await self._collect_input(principal, trigger, value, view_id, settle_url)
            return
        # A change (Approve, Deny) replaces the clicked message; a reading (a relayed message's Read)
        # leaves it, buttons and all, and is shown only in the modal or an ephemeral message, so the
        # text never stays in the DM's history. Its button stays, so pressing it again later reads
        # again (see click_key), where a change is made once however often it is clicked.
        changes = self.dispatcher.writes(value.command)
        command = Command(
            principal,
            value.command,
            new_id(),
            channel="button",
            idempotency_key=click_key(principal, body, action, reading=not changes),
        )
        if view_id is not None:
            await self.show_in_view(view_id, await self.dispatcher.handle(command))
            return
        # Without a message to answer in (a click on the Home tab has no response_url), the answer
        # goes into a modal opened with the trigger id, as one that may need a code does.
        if self.dispatcher.may_need_code(value.command) or not response_url:
            opened = await self.open_view(trigger, render.placeholder_modal())
            if opened is not None:
                reply = await self.dispatcher.handle(command)
                await self.show_in_view(opened, reply, placeholder=True)
                if changes:
                    await self._settle_message(principal, settle_url, reply)
                if changes and on_home(body) and reply is not DUPLICATE:
                    await self._republish_home(principal, reply)
                return
        reply = await self.dispatcher.handle(command)
        replace = in_place and changes and reply.challenge is None
        await self.show_in_message(response_url or "", reply, replace=replace)

    async def audit_unread(self, payload: object, command: bool) -> bool:
        """A person's request refused unread (a Socket Mode envelope, ``SocketModeLink``, or a
        signed HTTP body, ``handle_http``): audited once, as an unreadable button is, under the user
        and tenant its payload names, when both can be read (else it names no one to record, and
        its refusal is only logged). Whether it was audited. Never raises: a failed write is logged
        here."""
        sender = inbound.sender_of(payload)
        if sender is None:
            return False
        principal = Principal(Platform.SLACK, *sender)
        detail, channel = ("unreadable command", "channel") if command else ("unreadable request", "button")
        self.admission.hold()
        try:
            await self._audit_unreadable(principal, detail, channel)
        except AuditWriteFailed:
            log.error("audit_write_failed", action=Action.USAGE.value, kind="slack_unread")
            return False
        finally:
            self.admission.release()
        return True

    async def _audit_unreadable(self, principal: Principal, detail: str, channel: str = "button") -> None:
        """A signed click from a known person whose button cannot be read is still audited (as
        ``usage``, invalid), with none of what it carried, under the practitioner linked to the
        identity if any (verified: Bolt checked the signature, or it came over the Socket Mode link)."""
        command = Command(principal, "", uuid.uuid4().hex, channel=channel)
        await self.dispatcher.refuse_unheard(
            command, detail, action=Action.USAGE, outcome=Outcome.INVALID, logged=False, verified=True
        )

    async def _unknown_button(self, principal: Principal, body: dict[str, Any], detail: str) -> None:
        """A click on a button Signpost did not make, or cannot read (an unknown action id, a value
        it cannot decode, an Enter code naming no challenge): audited once (``detail``, none of
        what it carried), and the clicker told so, kindly, privately, where they clicked: in its
        modal, through its message's response_url, or (the Home tab) in a modal of its own. The
        one home for that answer; each caller has logged why, in its one line."""
        await self._audit_unreadable(principal, detail)
        reply = Reply(Outcome.INVALID, UNKNOWN_BUTTON)
        view_id, response_url = modal_of(body), body.get("response_url")
        if view_id is not None:
            await self.show_in_view(view_id, reply)
        elif response_url and isinstance(response_url, str):
            await self.show_in_message(response_url, reply, replace=False)
        else:
            await self.open_view(str(body.get("trigger_id", "")), render.result_modal(reply))

    async def _settle_message(self, principal: Principal, response_url: str | None, reply: Reply) -> None:
        """After a click answered in a modal: replace the clicked message, now or once the code is in."""
        if not response_url or reply is DUPLICATE:
            return
        if reply.challenge is not None:
            self.followups.put(principal, reply.challenge.challenge_id, response_url)
        else:
            await self.show_in_message(response_url, reply, replace=True, settles=True)

    async def _open_code_modal(
        self, principal: Principal, body: dict[str, Any], value: str, response_url: str | None
    ) -> None:
        try:
            doc = json.loads(value)
            challenge = Challenge(str(doc["id"]), str(doc.get("prompt") or CODE_PROMPT))
        except (ValueError, KeyError, TypeError, RecursionError):
            log.warning("slack_bad_code_button")
            await self._unknown_button(principal, body, "unreadable code button")
            return
        if response_url:  # the clicker's own: a code submitted by anyone else never finds it
            self.followups.put(principal, challenge.challenge_id, response_url)
        await self.open_view(str(body.get("trigger_id", "")), render.challenge_modal(challenge))

    async def _collect_input(
        self,
        principal: Principal,
        trigger: str,
        value: render.ButtonValue,
        view_id: str | None,
        response_url: str | None,
    ) -> None:
        """Ask for the button's input in a modal first (pushed over a modal, else opened).

        The clicked message's response_url stays here, kept for the clicker under a fresh token;
        the modal carries only the command and the token, never a URL to post to.
        """
        token = None
        if view_id is None and response_url:
            token = new_id()
            self.followups.put(principal, INPUT_PREFIX + token, response_url)
        metadata = json.dumps({"c": value.command, "f": token})
        modal = render.input_modal(value, metadata)
        if view_id is not None:
            await self._call("views.push", self.client.views_push(trigger_id=trigger, view=modal))
        else:
            await self.open_view(trigger, modal)

    # ---- view submissions -----------------------------------------------------------------------

    async def _on_code(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        principal = principal_of(context)
        if principal is None:
            log.warning("slack_request_without_identity", kind="view")
            await ack()
            return
        challenge_id = str(view.get("private_metadata") or "")
        code = "".join(state_value(view, render.CODE_BLOCK, render.CODE_ACTION).split())
        if not self.admission.admit("slack_view"):
            await ack(response_action="errors", errors={render.CODE_BLOCK: BUSY_TEXT})
            return
        command = Command(principal, "code", new_id(), channel="modal", code=code, challenge_id=challenge_id)
        await self._submit(ack, command, view, self.followups.get(principal, challenge_id), challenge_id)

    async def _on_input(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        principal = principal_of(context)
        try:
            metadata = json.loads(str(view.get("private_metadata") or ""))
            base = metadata["c"] if isinstance(metadata["c"], str) else ""  # never str(None) or a list's text
            token = metadata.get("f")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            base, token = "", None
        if principal is None:
            log.warning("slack_request_without_identity", kind="view")
            await ack()
            return
        if not self.admission.admit("slack_view"):
            await ack(response_action="errors", errors={render.INPUT_BLOCK: BUSY_TEXT})
            return
        if not base:  # a form Signpost did not make (or an older version made): audited, answered
            await self._unknown_form(ack, principal, "unreadable form")
            return
        text = trim(f"{base} {state_value(view, render.INPUT_BLOCK, render.INPUT_ACTION)}")
        command = Command(principal, text, new_id(), channel="modal", idempotency_key=f"slack:view:{view.get('id')}")
        message_url = self.followups.pop(principal, INPUT_PREFIX + token) if isinstance(token, str) else None
        await self._submit(ack, command, view, message_url, None)

    async def _submit(
        self,
        ack: AsyncAck,
        command: Command,
        view: dict[str, Any],
        message_url: str | None,
        challenge_id: str | None,
    ) -> None:
        """Answer a submission in Slack's window: inline errors, the next modal, or the result."""
        self.admission.hold()
        try:
            await self._answer_submission(ack, command, view, message_url, challenge_id)
        finally:
            self.admission.release()

    async def _answer_submission(
        self,
        ack: AsyncAck,
        command: Command,
        view: dict[str, Any],
        message_url: str | None,
        challenge_id: str | None,
    ) -> None:
        work = asyncio.ensure_future(self.dispatcher.handle(command))
        done, _ = await asyncio.wait({work}, timeout=SUBMIT_DEADLINE)
        if not done:
            await ack(response_action="update", view=render.placeholder_modal())
            self.spawn(self._finish_late(command.principal, work, str(view.get("id")), message_url, challenge_id))
            return
        reply = work.result()
        if reply is DUPLICATE:
            await ack()  # closes the modal; the first submission's answer stands
            return
        challenge = reply.challenge
        if challenge is not None and challenge.error and view.get("callback_id") == render.CODE_CALLBACK:
            await ack(response_action="errors", errors=render.challenge_errors(challenge))
            return
        if challenge is not None:
            if message_url:
                self.followups.put(command.principal, challenge.challenge_id, message_url)
            await ack(response_action="update", view=render.challenge_modal(challenge))
            return
        await ack(response_action="update", view=render.result_modal(reply))
        if challenge_id is not None:
            self.followups.pop(command.principal, challenge_id)
            self.spawn(self._home_after_code(command.principal, challenge_id))
        if message_url:
            self.spawn(self.show_in_message(message_url, reply, replace=True, settles=True))

    async def _finish_late(
        self,
        principal: Principal,
        work: Awaitable[Reply],
        view_id: str,
        message_url: str | None,
        challenge_id: str | None,
    ) -> None:
        reply = await work
        await self.show_in_view(view_id, reply, placeholder=True)
        await self._settle_message(principal, message_url, reply)
        if challenge_id is not None and reply is not DUPLICATE and reply.challenge is None:
            await self._home_after_code(principal, challenge_id)

    # ---- App Home -------------------------------------------------------------------------------

    async def _on_home(
        self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        principal = principal_of(context)
        if event.get("tab") != "home" or principal is None or not self.admission.admit("slack_home"):
            return  # when busy, the Home tab keeps its last view until it is next opened
        event_id = body.get("event_id")
        self.spawn(self._home(principal, f"slack:event:{event_id}" if event_id else None))

    async def _republish_home(self, principal: Principal, reply: Reply) -> None:
        """After a decision clicked on the Home tab: Slack keeps showing the tab last published (the
        decided request, buttons and all) until it is next opened, so publish it again, as it now
        is. When a code is asked first, once the code is in (remembered under the challenge id)."""
        if reply.challenge is not None:
            self.followups.put(principal, HOME_PREFIX + reply.challenge.challenge_id, "")
        else:
            await self._home(principal, None)

    async def _home_after_code(self, principal: Principal, challenge_id: str) -> None:
        if self.followups.pop(principal, HOME_PREFIX + challenge_id) is not None:
            await self._home(principal, None)

    async def _home(self, principal: Principal, key: str | None) -> None:
        command = Command(principal, "home", new_id(), channel="direct", idempotency_key=key)
        reply = await self.dispatcher.handle(command)
        if reply is DUPLICATE:
            return
        view = render.home_view(reply)
        await self._call("views.publish", self.client.views_publish(user_id=principal.user_id, view=view))

    # ---- output ---------------------------------------------------------------------------------

    async def open_view(self, trigger: str, view: render.View) -> str | None:
        """views.open with the trigger id; the new view's id, or None when Slack refused."""
        data = await self._call("views.open", self.client.views_open(trigger_id=trigger, view=view))
        return None if data is None else str(data["view"]["id"])

    async def show_in_view(self, view_id: str, reply: Reply, *, placeholder: bool = False) -> None:
        """Replace an open modal with the answer (or with the code input it asks for).

        A repeat (DUPLICATE) leaves a modal showing the first answer as it is; but a placeholder
        opened for the repeat itself says so, rather than showing "Checking…" for ever.
        """
        if reply is DUPLICATE and not placeholder:
            return
        view = render.challenge_modal(reply.challenge) if reply.challenge else render.result_modal(reply)
        shown, error = await self._try("views.update", self.client.views_update(view_id=view_id, view=view))
        if shown is not None:
            return
        # Refused (a view Slack will not take) or lost: the person would be left on "Checking…" for
        # ever. Say so in the same modal, once; the command's audit event stands, and another says
        # that its answer was not shown.
        fallback = render.result_modal(NOT_SHOWN)
        await self._call("views.update", self.client.views_update(view_id=view_id, view=fallback))
        await self.dispatcher.not_shown(reply, f"views.update:{error}")

    async def show_in_message(self, response_url: str, reply: Reply, *, replace: bool, settles: bool = False) -> None:
        """A private message through the request's response_url: ephemeral, never in_channel.

        A transient reply (``Reply.transient``: a relayed message) never replaces the message it
        answers, which may be a notice kept in the DM's history: it is a new ephemeral message.
        When the message is not posted, the answer was not shown, and the audit says so
        (``Dispatcher.not_shown``), unless it ``settles`` a clicked message whose answer was
        shown in a modal already.
        """
        if reply is DUPLICATE:
            return
        why = await self._post_message(response_url, reply, replace=replace)
        if why is not None and not settles:
            await self.dispatcher.not_shown(reply, why)

    async def _post_message(self, response_url: str, reply: Reply, *, replace: bool) -> str | None:
        """Post to response_url; None when Slack took it, else why not (a short code, logged once)."""
        if not response_url:
            return "response_url:none"
        replace = replace and reply.transient is None
        if not inbound.is_slack_hook(response_url, self.settings.slack_api_url):
            log.warning("slack_response_url_refused")  # not Slack's: never posted to, never logged
            return "response_url:refused"
        if reply.challenge is not None:
            body = render.challenge_fallback(reply.challenge, reply)
        else:
            body = render.message(reply)
        body.update(response_type="ephemeral", replace_original=replace)
        hook = AsyncWebhookClient(response_url, session=self._session, retry_handlers=retry_handlers())
        try:
            result = await hook.send_dict(body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.health.failed(exc)
            log.warning("slack_response_failed", error=failure_reason(exc))
            return f"response_url:{failure_reason(exc)}"
        if result.status_code >= 500:
            self.health.failed(TimeoutError())  # Slack's trouble, not this message's
        if result.status_code != 200:
            log.warning("slack_response_failed", status=result.status_code)
            return f"response_url:http_{result.status_code}"
        return None

    async def _call(self, method: str, call: Awaitable[Any]) -> dict[str, Any] | None:
        """One Web API call; failures are logged (method and Slack's error code only), never raised."""
        data, _ = await self._try(method, call)
        return data

    async def _try(self, method: str, call: Awaitable[Any]) -> tuple[dict[str, Any] | None, str]:
        """``_call``, with why it failed ("" when it did not): Slack's error code or the exception's type."""
        try:
            response = await call
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            self.health.failed(exc)
            log.warning("slack_api_failed", method=method, error=failure_reason(exc))
            return None, failure_reason(exc)
        self.health.answered()
        data: dict[str, Any] = response.data
        return data, ""


BUSY = Reply(Outcome.INFO, BUSY_TEXT)
NOT_SHOWN = Reply(
    Outcome.FAILED,
    "Signpost has your answer but Slack would not show it in this window. Please ask again; if this "
    "happens again, tell your service desk.",
)
BUSY_ACK = {"text": BUSY_TEXT, "response_type": "ephemeral"}  # a slash command's private "busy" ack
BUSY_BLOCKS = {render.CODE_CALLBACK: render.CODE_BLOCK, render.INPUT_CALLBACK: render.INPUT_BLOCK}

SLACK_KEY = web.AppKey("slack", SlackFrontEnd)


def add_slack(app: web.Application, signpost: Signpost, settings: Settings) -> None:
    """RouteAdder: the Slack front end on the one aiohttp application (and Socket Mode if configured)."""
    front = SlackFrontEnd(signpost, settings, admission=app[ADMISSION_KEY])
    app[SLACK_KEY] = front
    app[ANSWERS_BUSY_KEY].add(EVENTS_PATH)  # while draining, commands are told "busy" in Slack's terms
    app.router.add_post(EVENTS_PATH, front.handle_http)
    app.on_startup.append(front.on_startup)
    app.on_cleanup.append(front.on_cleanup)
