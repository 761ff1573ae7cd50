"""Microsoft Teams front end: ``POST /api/messages`` on Signpost's one aiohttp application.

The only module importing the Microsoft 365 Agents SDK (but for its outbound token from Entra ID,
``bot.teams.tokens``, which implements the SDK's token provider). It translates Teams activities into
``Command``s and ``Reply``s into Adaptive Cards (bot/render_teams.py), and nothing else: every
decision is the Dispatcher's. Results are only ever shown in the person's 1:1 chat with the bot,
or in a dialog only the clicker sees. What must not persist in a chat's history (``Spec.transient``:
a relayed message, sealed under the child's key, must die with it) is shown only in a dialog: its
buttons open one, and the command typed in the chat (``relay 7``) is not run there: it is audited
as offered (``Dispatcher.offer``), and answered by a card whose button opens the dialog with that
command (``render.render_in_chat``); each opening is a reading of its own, audited as read.
In a team or group chat the bot answers there only that it has replied privately.

Incoming requests are authenticated by JWT on this route only (the SDK's validator), so the
other routes of the shared application are unaffected. Anonymous mode exists for local
development only, must be asked for explicitly, and is logged loudly.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import stat
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import (
    ClientConnectionError,
    ClientHandlerType,
    ClientMiddlewareType,
    ClientRequest,
    ClientResponse,
    ClientResponseError,
    ClientSSLError,
    web,
)
from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    Attachment,
    ChannelAccount,
    ChannelId,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
    InvokeResponse,
    TurnContextProtocol,
)
from microsoft_agents.activity.teams import TaskModuleContinueResponse, TaskModuleTaskInfo
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import (
    AccessTokenProviderBase,
    ActivityHandler,
    AgentAuthConfiguration,
    AnonymousTokenProvider,
    AuthenticationConstants,
    ClaimsIdentity,
    ConnectionManager,
    ConnectorClientBase,
    JwtTokenValidator,
    RestChannelServiceClientFactory,
    TeamsConnectorClient,
    TurnContext,
    UserTokenClient,
)
from microsoft_agents.hosting.core.authorization import AuthTypes
from pydantic import ValidationError
from yarl import URL

from bot.admission import BUSY_TEXT, Admission, default_limit
from bot.app import Signpost
from bot.config import Settings, SettingsError, is_loopback
from bot.delivery import DeliveryFailed, PersonUnreachable, retry_after
from bot.outbound import RedirectRefused, outbound_session
from bot.teams.keys import SigningKeys
from bot.teams.render import (
    CARD_CONTENT_TYPE,
    CODE_VERB,
    DIALOG_TITLE,
    TASK_FETCH,
    Card,
    CardAction,
    command_text,
    for_dialog,
    missing_input,
    read_action,
    render_in_chat,
    render_launcher,
    render_notice,
    render_reply,
    render_retry,
    render_text,
)
from bot.teams.tokens import EntraTokens, TokenUnavailable
from bot.web import ADMISSION_KEY, ANSWERS_BUSY_KEY, BodyRefused, RouteAdder, json_document, read_body
from handlers.grammar import hides_characters, trim
from handlers.vocabulary import Action, Button, Command, Notice, Outcome, Platform, Principal, Reply
from store.audit.log import AuditWriteFailed
from store.people import conversations

log = structlog.get_logger("signpost.teams")


class _NoInputValues(logging.Filter):
    """Drops the SDK's own lines that quote what an activity carried (a child's name pasted into a
    field would reach the log): pydantic's text of an invalid activity quotes its values, and the
    connector client's line on a refused call quotes the URL it built from the conversation's and
    the activity's ids. We log the problem without them."""

    def __init__(self, *starts: str) -> None:
        super().__init__()
        self._starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._starts)


logging.getLogger("microsoft_agents.activity.activity").addFilter(_NoInputValues("Validation error for Activity"))
# Each client passes its own logger to the SDK's connector/_utils.py:_handle_request_error.
for _client in ("client.connector_client", "client.user_token", "client.agent_sign_in", "mcs.mcs_connector_client"):
    logging.getLogger(f"microsoft_agents.hosting.core.connector.{_client}").addFilter(
        _NoInputValues("Error accessing '", "Bad request for '")
    )

MESSAGES_PATH = "/api/messages"
SENT_PRIVATELY = "I've sent you the answer privately."
NO_PRIVATE_CHAT = (
    "I could not open a private chat with you, so nothing is shown here. Add the Signpost app for"
    " yourself in Teams (Apps, then Signpost, then Add) and ask again."
)
NO_IDENTITY = "Signpost could not identify your Microsoft 365 account, so it cannot answer. Please try again."
NOT_OURS = "That button is no longer available. Send help to see what you can ask."
# The audit's details for an activity answered without being run: it names no AAD object id, or no tenant.
NO_AAD_ID = "no Microsoft 365 account id"
NO_TENANT_ID = "no Microsoft 365 tenant id"
ERROR_TEXT = "Sorry, something went wrong on our side. It has been logged with reference {ref}."
SETTING = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"

TokenSource = Callable[[str, list[str]], Awaitable[str]]


@dataclass(frozen=True)
class TeamsSetup:
    """How Teams is configured: a bot registration, or anonymous local development."""

    auth: AgentAuthConfiguration
    anonymous: bool
    jwks_url: str | None = None
    tenants: frozenset[str] = frozenset()  # empty: any tenant (anonymous development mode only)

    @property
    def client_id(self) -> str:
        return self.auth.CLIENT_ID or ""


def teams_setup(settings: Settings, authority: str | None = None) -> TeamsSetup | None:
    """The Teams configuration, None when Teams is off; fails on half a configuration.
    ``authority``: where Entra ID is asked for the bot's token (default: Entra ID's own address
    for the registration's tenant; tests: a fake on loopback)."""
    secret = settings.teams_client_secret.get_secret_value() if settings.teams_client_secret else None
    if settings.teams_anonymous:
        if settings.teams_given:
            raise SettingsError(
                "SIGNPOST_TEAMS_ANONYMOUS=1 is for local development without a bot registration: "
                f"unset it, or unset the {SETTING}* variables"
            )
        return TeamsSetup(AgentAuthConfiguration(anonymous_allowed=True), anonymous=True, tenants=_tenants(settings))
    if not settings.teams_enabled:
        return None
    missing = [
        name
        for name, ok in (
            ("CLIENTID", settings.teams_client_id),
            ("CLIENTSECRET (or CERTPFXFILE)", secret or settings.teams_cert_file),
            ("TENANTID", settings.teams_tenant_id),
        )
        if not ok
    ]
    if missing:
        raise SettingsError("Teams is only partly configured: set " + ", ".join(SETTING + m for m in missing))
    if not secret and settings.teams_cert_file is not None:
        unreadable = _unreadable(settings.teams_cert_file)
        if unreadable:  # said now, not at the first answer, when the SDK reads it for a token
            raise SettingsError(f"{SETTING}CERTPFXFILE {settings.teams_cert_file} {unreadable}")
    auth = AgentAuthConfiguration(
        auth_type=AuthTypes.client_secret if secret else AuthTypes.certificate,
        client_id=settings.teams_client_id,
        tenant_id=settings.teams_tenant_id,
        client_secret=secret,
        cert_pfx_file=str(settings.teams_cert_file) if settings.teams_cert_file else None,
        authority=authority,
        validate_issuer=True,  # off by default in the SDK; we want the issuer allow-list checked
    )
    tenants = _tenants(settings) or frozenset({(settings.teams_tenant_id or "").strip().lower()})
    return TeamsSetup(auth, anonymous=False, jwks_url=settings.teams_jwks_url, tenants=tenants)


def _unreadable(path: Path) -> str | None:
    """Why the certificate file cannot be read, or None (opened without blocking: a named pipe
    with no writer would hold start-up)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or type(exc).__name__}"
    try:
        return None if stat.S_ISREG(os.fstat(fd).st_mode) else "is not a regular file"
    finally:
        os.close(fd)


def _tenants(settings: Settings) -> frozenset[str]:
    """SIGNPOST_TEAMS_TENANTS: the tenants whose people may use the bot, comma-separated."""
    return frozenset(t.strip().lower() for t in (settings.teams_tenants or "").split(",") if t.strip())


def teams_route_adder(
    settings: Settings, *, token_source: TokenSource | None = None, authority: str | None = None
) -> RouteAdder | None:
    """The RouteAdder serving Teams when it is configured, else None (for bot/serve.py).

    ``token_source`` replaces Entra ID as the source of outbound access tokens (tests: a fake);
    ``authority`` is where Entra ID is asked for them (tests: a fake one on loopback).
    """
    setup = teams_setup(settings, authority)
    if setup is None:
        return None

    def add(app: web.Application, signpost: Signpost, settings: Settings) -> None:
        if setup.anonymous:
            log.warning(
                "teams_anonymous_mode",
                message="Teams requests are NOT authenticated (SIGNPOST_TEAMS_ANONYMOUS=1): local development only",
            )
        front = TeamsFrontEnd(signpost, setup, token_source, admission=app[ADMISSION_KEY])
        app[TEAMS_KEY] = front
        app.router.add_post(MESSAGES_PATH, front.handle)
        app[ANSWERS_BUSY_KEY].add(MESSAGES_PATH)  # while draining, a command is told "busy" in Teams, not 503

    return add


def teams_deliverer(
    signpost: Signpost, settings: Settings, *, token_source: TokenSource | None = None
) -> TeamsDeliverer | None:
    """A Deliverer for notices outside the web application (e.g. an outbox worker), or None."""
    setup = teams_setup(settings)
    return None if setup is None else TeamsFrontEnd(signpost, setup, token_source).deliverer


class _SourcedTokens(AnonymousTokenProvider):
    """Outbound tokens from a given source instead of Entra ID."""

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        return await self._source(resource_url, scopes)


def _connections(setup: TeamsSetup, token_source: TokenSource | None) -> ConnectionManager:
    """Where outbound tokens come from: none (anonymous), a given source (tests), or Entra ID
    (``bot.teams.tokens``, never the SDK's own MSAL provider: it ran MSAL on the event loop, and
    its HTTP followed redirects)."""
    factory: Callable[[AgentAuthConfiguration], AccessTokenProviderBase]
    if setup.anonymous:
        factory = lambda _config: AnonymousTokenProvider()  # noqa: E731
    elif token_source is not None:
        factory = lambda _config: _SourcedTokens(token_source)  # noqa: E731
    else:
        factory = EntraTokens
    return ConnectionManager(provider_factory=factory, connections_configurations={"SERVICE_CONNECTION": setup.auth})


class UnreadableAnswer(ClientResponseError):
    """The connector answered 2xx with a body that is not what its API returns (a JSON object,
    or nothing): the SDK failed reading it inside the turn, with a traceback."""


_ANSWER_IDS = ("id", "activityId", "serviceUrl")  # what the SDK reads from an answer, as strings


def _readable(body: bytes) -> bool:
    if not body.strip():
        return True
    try:
        document = json_document(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(document, dict) and all(isinstance(document.get(k), (str, type(None))) for k in _ANSWER_IDS)


async def _readable_answers(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    """A client middleware: a 2xx the SDK could not read is ``UnreadableAnswer``."""
    response = await handler(request)
    if 200 <= response.status < 300 and not _readable(await response.read()):
        response.release()
        raise UnreadableAnswer(response.request_info, (), status=response.status, message="unreadable answer")
    return response


def _with_token(tokens: AccessTokenProviderBase, audience: str, scopes: list[str]) -> ClientMiddlewareType:
    """A client middleware: each call carries the bot's token, asked for only when a call is made
    (MSAL keeps it between calls). The SDK asked for it before the turn ran, so a token that could
    not be had failed the request (500) with the command neither run nor audited."""

    async def bearer(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        token = await tokens.get_access_token(audience, scopes)
        if len(token) > 1:  # the anonymous provider's is empty: no header, as the SDK's client
            request.headers["Authorization"] = f"Bearer {token}"
        return await handler(request)

    return bearer


class _ConnectorClients(RestChannelServiceClientFactory):
    """The SDK's factory of connector clients, but each client's session refuses redirects
    (``bot.outbound``): the SDK's own follows them, and on a 307 or 308 posted the answer, with the
    bot's token, wherever the connector pointed. Only Teams' client is made: the SDK's other kinds
    (Copilot Studio's, which posts with no token; agentic identities) are not Signpost's. The token
    is asked for by each call (``_with_token``), not before the turn: a command is run and audited
    whether or not its answer can then be sent."""

    def __init__(self, connections: ConnectionManager) -> None:
        super().__init__(connections)
        self._tokens = connections

    async def create_connector_client(
        self,
        context: TurnContext | None,
        claims_identity: ClaimsIdentity,
        service_url: str,
        audience: str,
        scopes: list[str] | None = None,
        use_anonymous: bool = False,
    ) -> ConnectorClientBase:
        if not service_url or not audience:
            raise TypeError("a connector client needs a service URL and an audience")
        provider: AccessTokenProviderBase = (
            AnonymousTokenProvider() if use_anonymous else self._tokens.get_token_provider(claims_identity, service_url)
        )
        bearer = _with_token(provider, audience, scopes or claims_identity.get_token_scope())
        endpoint = service_url if service_url.endswith("/") else service_url + "/"
        return TeamsConnectorClient(
            endpoint=endpoint, token="", session=outbound_session(bearer, _readable_answers, base_url=endpoint)
        )

    async def create_user_token_client(
        self, context: TurnContext, claims_identity: ClaimsIdentity, use_anonymous: bool = False
    ) -> UserTokenClient:
        """A client of the Bot Framework's token service with no token: Signpost signs no one in
        (it answers sign-in invokes as unused), and the SDK's asked Entra ID for a token for it
        before every turn, failing the request when none could be had."""
        return UserTokenClient(app_id=claims_identity.get_app_id(), endpoint=self._token_service_endpoint, token="")


class _Incoming:
    """The request as the SDK's adapter reads it: the body we checked, and the claims we verified."""

    def __init__(self, request: web.Request, identity: ClaimsIdentity, body: dict[str, Any]) -> None:
        self._request = request
        self._identity = identity
        self._body = body
        self.method = request.method
        self.headers = request.headers

    async def json(self) -> Any:
        return self._body

    def get_claims_identity(self) -> ClaimsIdentity:
        return self._identity

    def get_path_param(self, name: str) -> str:
        return self._request.match_info[name]


# Entra ID issues no token that lives longer than a day; the Bot Framework's live about an hour.
MAX_TOKEN_LIFETIME = 24 * 3600.0  # seconds


def _expires_plausibly(exp: Any, now: float) -> bool:
    """The token says when it expires, and it is within a day (PyJWT has refused it if that was
    past, or not a number; it checks ``exp`` only when there is one). A token with none, or one
    for decades, would be a key for good once leaked."""
    return isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp <= now + MAX_TOKEN_LIFETIME


def _bearer(header: str | None) -> str | None:
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and " " not in token else None


MSTEAMS = "msteams"


def _origin(value: Any) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, path) of an absolute URL, normalised; None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        url = URL(value)
        if not url.is_absolute() or not url.host:
            return None
        return url.scheme.lower(), url.host.lower(), url.port, url.path.rstrip("/")
    except (ValueError, TypeError):
        return None


def _is_web_address(value: Any) -> bool:
    """An absolute http(s) URL with a host and no user or password: somewhere the connector's
    answers can be sent. With a bot registration the token's claim pins it further
    (``_is_signed_service_url``); without one (anonymous development mode) "not a url" reached the
    SDK and failed the turn with a 500. The Bot Framework never sends credentials in the URL (every
    answer then failed in the turn: aiohttp will not send them beside the bearer token)."""
    origin = _origin(value)
    if origin is None or origin[0] not in ("http", "https"):
        return False
    url = URL(value)
    return url.user is None and url.password is None


def _is_signed_service_url(claimed: Any, given: Any) -> bool:
    """The activity's serviceUrl is exactly the token's serviceurl claim, and https.

    Scheme, host, port and path must all match (a signed host on another port, or over http,
    would otherwise receive the bot's outbound token). Plain http only to loopback (tests).
    """
    a, b = _origin(claimed), _origin(given)
    return a is not None and a == b and (a[0] == "https" or (a[0] == "http" and is_loopback(a[1])))


def _problems(exc: ValidationError) -> list[str]:
    """Where and how an activity is malformed, never with the offending value.

    Only pydantic's error type and the top-level field name are kept: its messages (and deeper
    locations, which may be the keys of a dictionary someone sent) can carry what was typed.
    """
    fields = {name for name, f in Activity.model_fields.items()} | {
        f.alias for f in Activity.model_fields.values() if f.alias
    }
    found = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        top = err["loc"][0] if err["loc"] else ""
        found.append(f"{top if top in fields else '?'}:{err['type']}")
    return sorted(set(found))[:10]


_NO_TENANT = object()  # channelData names no tenant


def _channel_data_tenant(data: Any) -> Any:
    """``channelData.tenant.id`` as sent (any type), or _NO_TENANT when channelData names none."""
    tenant = data.get("tenant") if isinstance(data, dict) else None
    if tenant is None:
        return _NO_TENANT
    return tenant.get("id") if isinstance(tenant, dict) else tenant


def _invoke_value_well_formed(activity: Activity) -> bool:
    """An invoke carries an object; a card action one the SDK can read (its own error answer for
    a bad one puts an exception object in the JSON, which fails to serialise: a 500)."""
    if activity.type != ActivityTypes.invoke:
        return True
    if not isinstance(activity.value, dict):
        return False
    if activity.name != CARD_ACTION:
        return True
    try:
        value = AdaptiveCardInvokeValue(**activity.value)
    except Exception:
        return False
    return value.action is not None and value.action.type == "Action.Execute"


def _tenant_well_formed(data: Any) -> bool:
    tenant = _channel_data_tenant(data)
    return tenant is _NO_TENANT or isinstance(tenant, str)


# What would change the connector's URL if an id holding it were put into the path as it is (the
# SDK does not quote the ids it puts there): another path, a query, a fragment, an escape.
_URL_SPECIAL = frozenset("/\\?#%")


MAX_ROUTABLE = 1024  # characters: Teams' ids are a few hundred at most; a URL line is ~8 KB anywhere
MAX_KEPT = 128  # characters: the audit's columns for a tenant and a user (as for Slack's ids)
MAX_ECHOED = 256  # characters: Entra ID's longest display name; Teams' names, roles and locales are shorter
# Bytes: Teams' largest message is about 28 KB (text, its HTML and its mentions), a card's click or a
# dialog's submission a few KB; anything larger was never sent by Teams, and is refused unread.
MAX_ACTIVITY = 256 * 1024
# Items in any one list of an activity (its entities, attachments, members added): Teams sends a few,
# and the SDK's model checks each (20,000 mentions, or members added, in 256 KB took a second or two).
MAX_ITEMS = 128


def _echoed_too_long(activity: Activity) -> list[str]:
    """The fields holding text the SDK copies into every answer (the accounts' names and roles, the
    conversation's name, role and type, the locale) that is too long for an answer Teams takes."""
    echoed: list[tuple[str, object]] = [("locale", activity.locale)]
    for field, part in (
        ("from", activity.from_property),
        ("recipient", activity.recipient),
        ("conversation", activity.conversation),
    ):
        for attribute in ("name", "role", "conversation_type"):
            echoed.append((field, getattr(part, attribute, None)))
    return sorted({field for field, text in echoed if isinstance(text, str) and len(text) > MAX_ECHOED})


def _plain_id(value: str | None, longest: int = MAX_ROUTABLE) -> bool:
    """An id as Teams makes them, or none: no control character (PostgreSQL cannot keep a NUL),
    no longer than ``longest``."""
    return value is None or (value.isprintable() and len(value) <= longest)


def _routable(value: str | None) -> bool:
    """An id the SDK can put into the connector's URL as it is: one path segment, or none."""
    return value is None or (_plain_id(value) and value not in (".", "..") and not _URL_SPECIAL & set(value))


def _tenants_keepable(activity: Activity) -> bool:
    """Every tenant the activity names is one the audit can keep (a principal's tenant is either)."""
    named = _channel_data_tenant(activity.channel_data)
    tenants = [activity.conversation.tenant_id if activity.conversation else None]
    tenants.append(named if isinstance(named, str) else None)
    return all(_plain_id(tenant, MAX_KEPT) for tenant in tenants)


def _mentions_readable(activity: Activity) -> bool:
    """Each mention says what to take out of the text: its text, or the name of whom it mentions
    (with neither, the SDK's ``remove_mention_text`` fails inside the turn)."""
    try:
        mentions = activity.get_mentions()
    except Exception:
        return False
    return all(m.text is not None or m.mentioned is None or isinstance(m.mentioned.name, str) for m in mentions)


def _unanswerable(activity: Activity, body: dict[str, Any]) -> list[str]:
    """Why an activity the SDK's model takes cannot be answered (a field and a problem, never a
    value); empty when it can. Each of these failed inside the turn, with a traceback, or sent the
    answer to a URL the connector does not have."""
    conversation, sender, bot = activity.conversation, activity.from_property, activity.recipient
    checks = (
        ("type", "missing", isinstance(activity.type, str) and bool(activity.type)),
        ("conversation", "missing", conversation is not None and bool(conversation.id)),
        ("from", "missing", sender is not None),
        ("recipient", "missing", bot is not None and bool(bot.id)),  # the bot's account, in every answer
        ("serviceUrl", "missing", bool(activity.service_url)),
        ("serviceUrl", "not_an_address", not activity.service_url or _is_web_address(activity.service_url)),
        ("value", "unreadable", _invoke_value_well_formed(activity)),  # UNREADABLE_VALUE
        ("channelData", "unreadable", _tenant_well_formed(body.get("channelData"))),
        ("entities", "unreadable", _mentions_readable(activity)),
        ("id", "unroutable", _routable(activity.id)),
        ("replyToId", "unroutable", _routable(activity.reply_to_id)),
        ("conversation", "unroutable", conversation is None or _routable(conversation.id)),
        ("from", "control_character", sender is None or (_plain_id(sender.id) and _plain_id(sender.aad_object_id))),
        ("from", "unkeepable", sender is None or _plain_id(sender.aad_object_id, MAX_KEPT)),
        ("tenant", "unkeepable", _tenants_keepable(activity)),
        ("recipient", "control_character", bot is None or _plain_id(bot.id)),
    )
    too_long = [f"{name}:{TOO_LONG_TO_ANSWER}" for name in _echoed_too_long(activity)]
    return [f"{name}:{problem}" for name, problem, ok in checks if not ok] + too_long


# What a message carries for Signpost to read, as against who sent it and where to answer.
MESSAGE_CONTENT = frozenset({"text", "textFormat", "entities", "attachments", "value", "speak", "summary"})


# What the SDK's model reads of an activity, by either name it takes: a problem may name one of
# these (nothing else a body holds is named in a log line).
_MODEL_FIELDS = frozenset(
    name for key, spec in Activity.model_fields.items() for name in (key, spec.alias) if name is not None
)


def _activity_problems(body: dict[str, Any]) -> list[str]:
    """Why this activity cannot be run (a field and a problem, never a value): the SDK's model does
    not take it, or it cannot be answered (``_unanswerable``); empty when it can. A list of more
    than ``MAX_ITEMS`` is a problem, found before any item of it is checked."""
    too_many = [name for name, value in body.items() if isinstance(value, list) and len(value) > MAX_ITEMS]
    if named := [f"{name}:too_many" for name in too_many if name in _MODEL_FIELDS]:  # no other is read
        return named
    try:
        activity = Activity.model_validate(body)
    except ValidationError as exc:
        return _problems(exc)
    except Exception as exc:  # pydantic validators may raise anything; never a 500
        return [f"?:{type(exc).__name__}"]
    return _unanswerable(activity, body)


UNREADABLE_VALUE = "value:unreadable"
TOO_LONG_TO_ANSWER = "too_long_to_answer"
# The audit detail of a signed activity no answer can reach (``Unanswerable``): fixed text.
UNANSWERABLE = "unanswerable activity: a text too long to answer"


class Unanswerable(Exception):
    """A well-formed activity that names its sender, but that no answer can reach: the SDK copies a
    text of it too long for Teams into every answer (``_echoed_too_long``). Not run; refused 400 in
    one line, and audited under its sender once its token, serviceUrl, channel and tenant are
    trusted (``TeamsFrontEnd.handle``), as Slack audits a signed request it cannot read."""

    def __init__(self, body: dict[str, Any], problems: list[str]) -> None:
        super().__init__("unanswerable activity")
        self.body = body
        self.problems = problems


# What a click on no button of Signpost's carries, by the invoke's name: read as one it does not know.
_NO_BUTTON: dict[str, dict[str, Any]] = {
    "adaptiveCard/action": {"action": {"type": "Action.Execute", "verb": "", "data": {}}},
    "task/fetch": {},
    "task/submit": {},
}


def _as_unknown_click(body: dict[str, Any]) -> dict[str, Any] | None:
    """A card action or dialog invoke whose value cannot be read, with that value replaced by one
    naming no button, when it names who clicked (an account in 'from'); else None."""
    name = body.get("name")
    value = _NO_BUTTON.get(name) if isinstance(name, str) else None
    sender = body.get("from")
    ids = (sender.get("id"), sender.get("aadObjectId")) if isinstance(sender, dict) else ()
    named = any(isinstance(given, str) and given for given in ids)
    return None if value is None or not named else {**body, "value": value}


AAD_OBJECT_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
"""What an AAD object id is: a GUID, bare (nothing around it, no other character in it)."""


def _without_untrusted_aad_id(body: dict[str, Any]) -> dict[str, Any]:
    """The activity with an AAD object id that is not a bare GUID taken out: it names nobody
    (empty, blank, padded, an invisible character such as U+2800 or U+3164, too long, not a string),
    so it is then one with no AAD object id, refused kindly and audited once under the Teams account
    (``audit_unidentified``), never taken as a person nor written in the audit. The SDK's model
    refused an empty one with a 400, unaudited, and took any other string as a person's id."""
    sender = body.get("from")
    if not isinstance(sender, dict) or "aadObjectId" not in sender:
        return body
    given = sender["aadObjectId"]
    if given is None or (isinstance(given, str) and AAD_OBJECT_ID.fullmatch(given)):
        return body
    return {**body, "from": {key: value for key, value in sender.items() if key != "aadObjectId"}}


def canonical_id(given: Any) -> Any:
    """A GUID in lowercase, anything else as given. An AAD object id and a tenant id are GUIDs, and
    a GUID is not case-sensitive: one person must be one principal whatever case Teams sends."""
    return given.lower() if isinstance(given, str) and AAD_OBJECT_ID.fullmatch(given) else given


def _with_canonical_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The activity as every later step reads it (the tenant gate, the audit of a refusal, the SDK,
    ``Asker``): no untrusted AAD object id (``_without_untrusted_aad_id``), and the sender's AAD
    object id and the tenants it names in lowercase (``canonical_id``)."""
    body = _without_untrusted_aad_id(body)
    sender, conversation, data = body.get("from"), body.get("conversation"), body.get("channelData")
    if isinstance(sender, dict) and "aadObjectId" in sender:
        body = {**body, "from": {**sender, "aadObjectId": canonical_id(sender["aadObjectId"])}}
    if isinstance(conversation, dict) and "tenantId" in conversation:
        body = {**body, "conversation": {**conversation, "tenantId": canonical_id(conversation["tenantId"])}}
    if isinstance(data, dict) and "tenant" in data:  # {"id": ...}, or (read all the same) the id alone
        tenant = data["tenant"]
        named = {**tenant, "id": canonical_id(tenant["id"])} if isinstance(tenant, dict) and "id" in tenant else tenant
        body = {**body, "channelData": {**data, "tenant": canonical_id(named)}}
    return body


def claimed(body: dict[str, Any]) -> Principal:
    """Who an activity says sent it, as far as it says: the AAD object id, else the Teams account
    id, and the conversation's tenant, else channelData's ("" for what it does not name). For the
    audit of a refusal only: never an identity anything is authorised by."""
    sender, conversation = body.get("from"), body.get("conversation")
    user = (sender.get("aadObjectId") or sender.get("id")) if isinstance(sender, dict) else None
    tenant = conversation.get("tenantId") if isinstance(conversation, dict) else None
    named = _channel_data_tenant(body.get("channelData"))
    tenant = tenant or named
    return Principal(
        Platform.TEAMS,
        (tenant if isinstance(tenant, str) else "")[:MAX_KEPT],
        (user if isinstance(user, str) else "")[:MAX_KEPT],
    )


def _activity_tenants(body: dict[str, Any]) -> set[str | None]:
    """Every tenant an activity names (conversation and channel data); {None} when it names none."""
    conversation = body.get("conversation")
    named = {
        conversation.get("tenantId") if isinstance(conversation, dict) else None,
        _channel_data_tenant(body.get("channelData")),
    } - {None, _NO_TENANT}
    return {t.strip().lower() if isinstance(t, str) else None for t in named} or {None}


SHARED_THREAD = "19:"
"""How a team channel's, a group chat's and a meeting's conversation id begins in Teams (a 1:1 chat
with a bot is ``a:…``)."""


def is_personal(conversation: ConversationAccount) -> bool:
    """Whether a conversation is a person's 1:1 chat with the bot: said so, and not a shared
    thread's id. The type alone is what the sender says; an activity calling a channel "personal"
    (anonymous development mode, or a forged one) must not have results posted, or a person's
    private chat remembered, there."""
    kind, conversation_id = conversation.conversation_type, conversation.id
    return kind == "personal" and isinstance(conversation_id, str) and not conversation_id.startswith(SHARED_THREAD)


@dataclass(frozen=True)
class Asker:
    """Who sent an activity, and where from: stable ids (the principal) for everything, plus the
    display name Teams reports, carried only to show a duty manager deciding a registration."""

    principal: Principal
    teams_user_id: str
    personal: bool
    channel_id: str
    service_url: str
    bot: ChannelAccount
    display_name: str | None = None  # as Teams reports it; never used to authorize, never logged

    @classmethod
    def reaching(cls, principal: Principal, reference: ConversationReference) -> Asker:
        """The person a stored 1:1 chat reaches, to ask Teams for their chat again."""
        return cls(
            principal=principal,
            teams_user_id=reference.user.id if reference.user is not None else "",
            personal=True,
            channel_id=str(reference.channel_id or MSTEAMS),
            service_url=reference.service_url or "",
            bot=reference.agent if reference.agent is not None else ChannelAccount(id=""),
        )

    @classmethod
    def of(cls, activity: Activity) -> Asker | None:
        sender, conversation = activity.from_property, activity.conversation
        if sender is None or not sender.aad_object_id or not sender.id or conversation is None:
            return None
        named = _channel_data_tenant(activity.channel_data)
        tenant = conversation.tenant_id or (named if isinstance(named, str) else None)
        bot = activity.recipient
        if not tenant or not activity.service_url or bot is None or not bot.id:
            return None
        return cls(
            principal=Principal(Platform.TEAMS, tenant, sender.aad_object_id),
            teams_user_id=sender.id,
            # Anything not known to be the 1:1 chat is treated as shared: results never go there.
            personal=is_personal(conversation),
            channel_id=str(activity.channel_id or "msteams"),
            service_url=activity.service_url,
            # Its name is optional in an activity, but None is not a name: give none rather than None.
            bot=ChannelAccount(id=bot.id) if bot.name is None else ChannelAccount(id=bot.id, name=bot.name),
            display_name=sender.name if isinstance(sender.name, str) else None,
        )

    def reference(self, conversation_id: str) -> ConversationReference:
        """The person's 1:1 conversation, with ids only (their display name is not kept)."""
        return ConversationReference(
            user=ChannelAccount(id=self.teams_user_id, aad_object_id=self.principal.user_id),
            agent=self.bot,
            conversation=ConversationAccount(
                id=conversation_id, conversation_type="personal", tenant_id=self.principal.tenant
            ),
            channel_id=ChannelId(self.channel_id),
            service_url=self.service_url,
        )


def card_activity(card: Card) -> Activity:
    return Activity(type=ActivityTypes.message, attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=card)])


def card_response(card: Card) -> AdaptiveCardInvokeResponse:
    """An invoke answer that replaces the clicked card with this one."""
    return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=card)


TASK_SUBMIT = "task/submit"  # a Submit inside a dialog
DIALOG_INVOKES = frozenset({TASK_FETCH, TASK_SUBMIT})
CARD_ACTION = "adaptiveCard/action"  # Action.Execute
# Invokes Teams may send that Signpost has no use for (no tab, configuration page, message
# extension or sign-in): logged by name. Any other name is logged as "other", never as sent.
UNUSED_INVOKES = frozenset(
    {
        "config/fetch",
        "config/submit",
        "composeExtension/query",
        "composeExtension/queryLink",
        "composeExtension/anonymousQueryLink",
        "composeExtension/querySettingUrl",
        "composeExtension/setting",
        "composeExtension/selectItem",
        "composeExtension/submitAction",
        "composeExtension/fetchTask",
        "composeExtension/onCardButtonClicked",
        "signin/verifyState",
        "signin/tokenExchange",
        "signin/failure",
        "healthCheck",
        "tab/fetch",
        "tab/submit",
        "fileConsent/invoke",
        "actionableMessage/executeAction",
        "message/submitAction",
        "handoff/action",
        "application/search",
    }
)


def dialog_response(card: Card) -> InvokeResponse:
    """An invoke answer that shows this card in a Teams dialog (the clicked card is left as it was)."""
    attachment = Attachment(content_type=CARD_CONTENT_TYPE, content=for_dialog(card))
    task = TaskModuleContinueResponse(type="continue", value=TaskModuleTaskInfo(title=DIALOG_TITLE, card=attachment))
    # {"task": {"type": "continue", "value": TaskInfo}}; the SDK's TaskModuleResponse types its task
    # as the base class, which would drop the value.
    return InvokeResponse(status=200, body={"task": task.model_dump(mode="json", by_alias=True, exclude_none=True)})


def _text_of(activity: Activity) -> str:
    """The message text without the bot's @mention (Teams puts it in the text). A character that
    does not show as itself anywhere in what was sent stays in the text, so that the grammar answers
    it with help (``handlers.grammar.hides_characters``): the SDK strips the text after removing the
    mention, and would drop one at either end."""
    sent = html.unescape(activity.text or "")
    activity.remove_recipient_mention()
    text = trim(html.unescape(activity.text or ""))
    if hides_characters(sent) and not hides_characters(text):
        return sent
    return text


class TeamsFrontEnd:
    """The adapter, the authentication of incoming requests, and private delivery."""

    def __init__(
        self,
        signpost: Signpost,
        setup: TeamsSetup,
        token_source: TokenSource | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.signpost = signpost
        self.setup = setup
        # The server's one bound on work in flight (bot/admission.py), shared with Slack.
        self.admission = admission or Admission(default_limit())
        self.clients = _ConnectorClients(_connections(setup, token_source))
        self.adapter = CloudAdapter(channel_service_client_factory=self.clients)
        self.adapter.on_turn_error = self._on_turn_error  # the SDK's default sends the exception text
        self.bot = SignpostTeamsBot(self)
        self.deliverer = TeamsDeliverer(self)
        self.keys = SigningKeys(setup.jwks_url) if setup.jwks_url else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """POST /api/messages: authenticate, check the activity, then let the SDK run the turn.

        401: no valid token, or a serviceUrl other than the signed one. 400: not a well-formed
        activity (logged without any of its values), except a person's message whose content alone
        cannot be read: run as a message with nothing in it (help, audited); one no answer can reach
        (``Unanswerable``) is audited under its sender, then refused. 403: a channel other than Teams or a tenant
        not configured (audited). Nothing is processed in any of these cases.
        """
        identity = await self.authenticate(request)
        if identity is None:
            return web.json_response({"error": "unauthorized"}, status=401)
        unanswerable: list[str] = []
        try:
            body = await self._activity_body(request)
        except BodyRefused as unread:
            log.warning("teams_activity_invalid", problems=[f"body:{unread.reason}"])
            return web.json_response({"error": "bad activity"}, status=unread.status)
        except Unanswerable as refused_400:
            body, unanswerable = refused_400.body, refused_400.problems
        if body is None:
            return web.json_response({"error": "bad activity"}, status=400)
        if not self.setup.anonymous:
            claimed = identity.get_claim_value(AuthenticationConstants.SERVICE_URL_CLAIM)
            if not _is_signed_service_url(claimed, body.get("serviceUrl")):
                log.warning("teams_request_rejected", reason="serviceUrl not the signed one")
                return web.json_response({"error": "unauthorized"}, status=401)
        refused = self._untrusted(body)
        if refused is not None:
            await self._audit_refusal(body, refused)
            return web.json_response({"error": "forbidden"}, status=403)
        if unanswerable:
            log.warning("teams_activity_invalid", problems=unanswerable)
            await self._audit_unanswerable(body)
            return web.json_response({"error": "bad activity"}, status=400)
        result = await self.adapter.process_request(_Incoming(request, identity, body), self.bot)
        if result.body is not None:
            return web.json_response(result.body, status=result.status_code, headers=result.headers)
        return web.Response(status=result.status_code, headers=result.headers)

    async def _activity_body(self, request: web.Request) -> dict[str, Any] | None:
        """The body if it is a well-formed activity the SDK can run, else None (logged, no values).
        The Bot Framework sends JSON: any other body is refused unread (415), as Slack's front end does."""
        if request.content_type != "application/json":
            raise BodyRefused(415, "unsupported_content_type")
        raw = await read_body(request, MAX_ACTIVITY)  # BodyRefused: the caller answers with its status
        try:
            document = json_document(raw)
        except (ValueError, RecursionError):  # bad JSON or UTF-8 (UnicodeDecodeError is a ValueError)
            log.warning("teams_activity_invalid", problems=["body:json_invalid"])
            return None
        if not isinstance(document, dict):
            log.warning("teams_activity_invalid", problems=["body:not_an_object"])
            return None
        body = _with_canonical_ids(document)
        kind = body.get("type")
        if isinstance(kind, str) and kind != ActivityTypes.message and kind.lower() == ActivityTypes.message:
            body = {**body, "type": ActivityTypes.message}  # Bot Framework's types are not case-sensitive
        problems = _activity_problems(body)
        if problems == [UNREADABLE_VALUE] and body.get("type") == ActivityTypes.invoke:
            # A click whose value cannot be read, from someone the activity names: read as a click
            # on no button of Signpost's (its value dropped), so that it is audited and answered
            # kindly as one Signpost does not know is, in one line.
            click = _as_unknown_click(body)
            if click is not None and not _activity_problems(click):
                return click
        if problems and body.get("type") == ActivityTypes.message:
            # A person's message whose content cannot be read, from someone who can be answered: read
            # as a message with nothing in it, so that they are shown help and the help is audited.
            bare = {key: value for key, value in body.items() if key not in MESSAGE_CONTENT}
            if not _activity_problems(bare):
                log.warning("teams_message_unreadable", problems=problems)
                return bare
        if problems and all(problem.endswith(f":{TOO_LONG_TO_ANSWER}") for problem in problems):
            raise Unanswerable(body, problems)  # the caller logs it, and audits it once it trusts it
        if problems:
            log.warning("teams_activity_invalid", problems=problems)
            return None
        return body

    def _untrusted(self, body: dict[str, Any]) -> str | None:
        """Why this activity's unsigned origin is not accepted, or None.

        The token proves the Bot Framework sent the activity, not which channel or tenant it came
        from: another channel (Web Chat, Direct Line, the Emulator, Slack) can carry any AAD id.
        """
        if body.get("channelId") != MSTEAMS:
            return "channel not msteams"
        if self.setup.tenants and not _activity_tenants(body) <= self.setup.tenants:
            return "tenant not configured"
        return None

    async def _audit_unanswerable(self, body: dict[str, Any]) -> None:
        """A signed activity from a trusted channel and tenant that no answer can reach
        (``Unanswerable``): audited once, as ``usage``, invalid, with none of what it carried, under
        the practitioner linked to the sender it names, if any (its token was verified). Logged by
        the caller; a failed write is logged here, and the activity refused all the same."""
        command = Command(claimed(body), "", uuid.uuid4().hex, channel="refused")
        try:
            await self.signpost.dispatcher.refuse_unheard(
                command, UNANSWERABLE, action=Action.USAGE, outcome=Outcome.INVALID, logged=False, verified=True
            )
        except AuditWriteFailed:
            log.error("audit_write_failed", action=Action.USAGE.value, kind="teams_unanswerable")

    async def _audit_refusal(self, body: dict[str, Any], detail: str, *, logged: bool = True) -> None:
        """One audit event for a refused activity, under the identity it claimed (``claimed``),
        naming no practitioner: unverified, or no identity a practitioner is linked by."""
        command = Command(claimed(body), "", uuid.uuid4().hex, channel="refused")
        await self.signpost.dispatcher.refuse_unheard(command, detail, logged=logged)

    async def audit_unidentified(self, activity: Activity) -> None:
        """An activity answered without being run, because it names no one Signpost could act for
        (no AAD object id, or no tenant): audited all the same, once, as a refusal under the Teams
        account and tenant it does carry, so that no command goes unaudited. Logged by the caller."""
        sender = activity.from_property
        detail = NO_AAD_ID if sender is None or not sender.aad_object_id else NO_TENANT_ID
        body = activity.model_dump(mode="json", by_alias=True, exclude_none=True)
        await self._audit_refusal(body, detail, logged=False)

    async def authenticate(self, request: web.Request) -> ClaimsIdentity | None:
        """The caller's verified claims, or None (answered 401, nothing processed). Fails closed."""
        if self.setup.anonymous:
            return ClaimsIdentity()
        given = request.headers.getall("Authorization", [])
        if len(given) > 1:  # which one is meant is not ours to guess (aiohttp would take the first)
            log.warning("teams_request_rejected", reason="repeated_authorization_header")
            return None
        token = _bearer(given[0] if given else None)
        if token is None:
            log.warning("teams_request_rejected", reason="no bearer token")
            return None
        validator = JwtTokenValidator(self.setup.auth)
        if self.keys is not None:
            validator._jwk_client_manager = self.keys  # type: ignore[assignment]  # the SDK has no URL option
        try:
            identity = await validator.validate_token(token)
        except Exception as exc:  # any failure to verify is a rejection, never a 500
            log.warning("teams_request_rejected", reason=type(exc).__name__)
            return None
        if not _expires_plausibly(identity.get_claim_value("exp"), time.time()):
            log.warning("teams_request_rejected", reason="implausible_expiry")
            return None
        return identity

    def _outbound_identity(self) -> ClaimsIdentity:
        return ClaimsIdentity() if self.setup.anonymous else self.adapter.create_claims_identity(self.setup.client_id)

    async def send_to(self, reference: ConversationReference, activity: Activity) -> None:
        """Post one activity into a stored conversation (proactively, through the connector)."""
        activity.apply_conversation_reference(reference)
        identity = self._outbound_identity()
        client = await self.clients.create_connector_client(
            None,
            identity,
            reference.service_url,
            AuthenticationConstants.AGENTS_SDK_SCOPE,
            use_anonymous=identity.allow_anonymous,
        )
        try:
            await client.conversations.send_to_conversation(reference.conversation.id, activity)
        finally:
            await client.close()

    async def open_personal(self, asker: Asker) -> ConversationReference:
        """Create (or fetch: Teams returns the existing one) the 1:1 chat with this person."""
        identity = self._outbound_identity()
        client = await self.clients.create_connector_client(
            None,
            identity,
            asker.service_url,
            AuthenticationConstants.AGENTS_SDK_SCOPE,
            use_anonymous=identity.allow_anonymous,
        )
        params = ConversationParameters(
            is_group=False,
            bot=asker.bot,
            members=[ChannelAccount(id=asker.teams_user_id)],
            tenant_id=asker.principal.tenant,
            channel_data={"tenant": {"id": asker.principal.tenant}},
        )
        try:
            created = await client.conversations.create_conversation(params)
        finally:
            await client.close()
        reference = asker.reference(created.id)
        await self.remember(asker.principal, reference)
        return reference

    async def reference_for(self, principal: Principal) -> ConversationReference | None:
        async with self.signpost.ctx.db.read() as session:
            stored = await conversations.load(session, principal.tenant, principal.user_id)
        return None if stored is None else ConversationReference.model_validate(stored)

    async def remember(self, principal: Principal, reference: ConversationReference) -> None:
        """Store the person's 1:1 conversation; written only when it changed."""
        doc = reference.model_dump(mode="json", by_alias=True, exclude_none=True)
        async with self.signpost.ctx.db.read() as session:
            stored = await conversations.load(session, principal.tenant, principal.user_id)
        if stored is not None and conversations.encode(stored) == conversations.encode(doc):
            return
        async with self.signpost.ctx.db.write() as session:
            await conversations.save(session, principal.tenant, principal.user_id, doc, self.signpost.ctx.clock.now())

    async def remember_quietly(self, principal: Principal, reference: ConversationReference) -> None:
        """``remember``, whose failure (a busy store) is logged and does not stop the command: the
        command is what must be answered and audited; the chat is stored at the next message."""
        try:
            await self.remember(principal, reference)
        except Exception as exc:
            log.warning("teams_conversation_not_stored", error=type(exc).__name__)

    async def forget(self, principal: Principal) -> None:
        async with self.signpost.ctx.db.write() as session:
            await conversations.forget(session, principal.tenant, principal.user_id)

    async def send_private(self, asker: Asker, card: Card) -> None:
        """Into the person's 1:1 chat: the stored one, or a newly opened one (``send_personal``)."""
        reference = await self.reference_for(asker.principal)
        if reference is None:
            try:
                reference = await self.open_personal(asker)
            except Exception as exc:
                if not _refused_by_connector(exc):
                    raise
                log.warning("teams_chat_gone", **_connector_status(exc))
                raise ChatGone from None
            await self.send_to(reference, card_activity(card))
            return
        await self.send_personal(asker.principal, reference, card, asker)

    async def send_personal(
        self, principal: Principal, reference: ConversationReference, card: Card, asker: Asker | None = None
    ) -> None:
        """Into the person's stored 1:1 chat. A chat the connector no longer knows (404) or no
        longer lets the bot into (403) is asked for once more (Teams gives the person's chat while
        the app is installed for them; a moved chat or service URL is stored anew). Refused again:
        the stored chat is forgotten and ``ChatGone`` raised, so nothing retries into it, and the
        person is reachable again when they next message the bot or add the app."""
        try:
            await self.send_to(reference, card_activity(card))
            return
        except Exception as exc:
            if not _refused_by_connector(exc):
                raise
            first = _connector_status(exc)
        try:
            reopened = await self.open_personal(asker or Asker.reaching(principal, reference))
            await self.send_to(reopened, card_activity(card))
        except Exception as exc:
            if not _refused_by_connector(exc):
                raise
            await self.forget(principal)
            log.warning("teams_chat_gone", status=first.get("status"), again=_connector_status(exc).get("status"))
            raise ChatGone from None
        log.info("teams_chat_reopened", status=first.get("status"))

    async def dispatch(self, command: Command, *, typed: bool = False) -> Reply:
        """The command's answer; above the bound on work in flight, "busy, try again" instead (in
        the same private place an answer would go), and nothing is run or audited for it.
        ``typed``: sent as a message into a chat, which keeps what the bot posts there: a transient
        command (``relay 7``) is then only offered, and read when its dialog opens (``Dispatcher.offer``)."""
        if not self.admission.admit("teams"):
            return BUSY
        self.admission.hold()
        dispatcher = self.signpost.dispatcher
        try:
            return await (dispatcher.offer(command) if typed else dispatcher.handle(command))
        finally:
            self.admission.release()

    def reading(self, action: CardAction | None) -> Button | None:
        """The button, when a click in the chat asks for what must not stay there (a relayed
        message's Read, ``Spec.transient``): shown in a dialog, never in a card in the chat."""
        button = action.button if action is not None else None
        if button is None or button.input is not None or not self.signpost.dispatcher.transient(button.command):
            return None
        return button

    async def not_shown(self, reply: Reply | None, error: BaseException) -> None:
        """The answer in ``reply`` did not reach the person (the connector refused or failed it, or
        Teams gave no private chat): the audit says so (``Dispatcher.not_shown``), with the status
        or the error's type only. The failure itself is logged where it is handled, as before."""
        if reply is None:
            return
        status = _connector_status(error).get("status")
        if isinstance(error, ChatGone):
            reason = "chat_gone"
        elif isinstance(error, UnreadableAnswer):
            reason = "unreadable_answer"
        elif isinstance(error, TokenUnavailable):
            reason = "no_token"
        else:
            reason = f"http_{status}" if status else type(error).__name__
        await self.signpost.dispatcher.not_shown(reply, f"teams:{reason}")

    async def act(
        self, asker: Asker, action: CardAction | None, click_id: str | None, *, dialog: bool
    ) -> tuple[Card, Reply | None]:
        """A click on one of our cards → its command → the card that answers it (and the reply it
        shows, None when no command ran): in a dialog, or for the chat (where a transient answer
        becomes a launcher, ``render.render_in_chat``)."""
        if action is None:
            log.warning("teams_unknown_button")
            await self._audit_unreadable(asker.principal)
            return render_text(NOT_OURS), None
        correlation = uuid.uuid4().hex
        if action.verb == CODE_VERB:
            command = Command(
                asker.principal,
                "code",
                correlation,
                channel="modal",
                code=action.code,
                challenge_id=action.challenge_id,
                idempotency_key=click_id,  # one delivery of this code (``click_key``): run and counted once
            )
        else:
            problem = missing_input(action)
            if problem is not None:  # the click reached Signpost: audited, logged once, its form asked again
                log.info("teams_input_missing", correlation_id=correlation)  # none of what was typed
                await self._audit_unreadable(asker.principal, "input missing or too long", correlation)
                return render_retry(action, problem), None
            command = Command(
                asker.principal, command_text(action), correlation, channel="button", idempotency_key=click_id
            )
        reply = await self.dispatch(command)
        return (render_reply(reply) if dialog else render_in_chat(reply)), reply

    async def _audit_unreadable(
        self, principal: Principal, detail: str = "unreadable button", correlation: str | None = None
    ) -> None:
        """A click from an identified person whose action data Signpost cannot read (not its own,
        or no longer understood), or whose form came without its required input, is still
        audited, as Slack's is: ``usage``, invalid, with none of what it carried, under the
        practitioner linked to the identity if any (its token and tenant were checked). Logged by
        the caller, once (under ``correlation``, the event's request id, when it gives one)."""
        command = Command(principal, "", correlation or uuid.uuid4().hex, channel="button")
        await self.signpost.dispatcher.refuse_unheard(
            command, detail, action=Action.USAGE, outcome=Outcome.INVALID, logged=False, verified=True
        )

    async def _on_turn_error(self, context: TurnContext, error: Exception) -> None:
        """Log with a reference; the person gets a generic line, never the exception.

        What the connector answered is not a fault of Signpost's, and is one warning line naming its
        status, with no traceback (the SDK's own line, which quoted the URL, is dropped):
        - a refusal (``teams_reply_refused``): a redirect, not followed (the host that answered is
          named, nothing else of the URL), or a conversation it does not know or the bot is not in
          (404, 403): no apology is sent where the answer was just refused (an invoke's goes back
          in the response); any other 4xx (400, 413): the apology is tried once;
        - a failure (``teams_reply_failed``): 429 or 5xx, or a 2xx whose body cannot be read. The
          answer is not sent again (the person may ask again; Teams itself sends a message again
          when its answer is slow, and that is answered once, "Already received"); the apology is
          tried once, but after an unreadable 2xx (the answer was most likely shown);
        a connector that cannot be reached (``teams_connector_unreachable``, a fixed reason, no
        apology the same unreachable way); no token from Entra ID to call it with
        (``teams_token_unavailable``, a fixed reason, ``bot.teams.tokens``; no apology, which would
        need one too). A failed apology after any of these adds no line.
        Anything else is unexpected, and keeps its traceback."""
        ref = uuid.uuid4().hex[:8]
        invoke = context.activity.type == ActivityTypes.invoke
        status = _connector_status(error)
        if isinstance(error, TokenUnavailable):
            log.warning(
                "teams_token_unavailable", ref=ref, reason=error.reason, **({"host": error.host} if error.host else {})
            )
            apologise = invoke
        elif isinstance(error, RedirectRefused):
            log.warning("teams_reply_refused", ref=ref, host=error.host, **status)
            apologise = invoke
        elif _refused_by_connector(error):
            log.warning("teams_reply_refused", ref=ref, **status)
            apologise = invoke
        elif isinstance(error, UnreadableAnswer):
            log.warning("teams_reply_failed", ref=ref, reason="unreadable_answer", **status)
            apologise = invoke
        elif isinstance(error, ClientResponseError) and 400 <= error.status < 600:
            failed = error.status == 429 or error.status >= 500
            log.warning("teams_reply_failed" if failed else "teams_reply_refused", ref=ref, **status)
            apologise = True
        elif _connector_unreachable(error):
            log.warning("teams_connector_unreachable", ref=ref, reason=_unreachable_reason(error))
            apologise = invoke
        else:
            log.error("teams_turn_failed", ref=ref, error=type(error).__name__, **status, exc_info=error)
            if not await self._apologise(context, ref):
                log.warning("teams_error_reply_failed", ref=ref)
            return
        if apologise:
            await self._apologise(context, ref)

    async def _apologise(self, context: TurnContext, ref: str) -> bool:
        """The generic line with its reference, where the person asked; whether it was sent."""
        card = render_text(ERROR_TEXT.format(ref=ref))
        try:
            if context.activity.type == ActivityTypes.invoke:
                if context.activity.name in DIALOG_INVOKES:
                    answer = dialog_response(card)
                else:
                    body = card_response(card).model_dump(mode="json", by_alias=True, exclude_none=True)
                    answer = InvokeResponse(status=200, body=body)
                await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=answer))
            else:
                await context.send_activity(card_activity(card))
        except Exception:
            return False
        return True


# What the connector answers for a conversation it does not know (404) or that the bot is not in
# (403): the chat is asked for again before a notice is given up (``send_personal``).
CONVERSATION_REFUSED = frozenset({403, 404})


class ChatGone(Exception):
    """Teams refused the person's 1:1 chat with the bot, stored or asked for afresh: the app is not
    installed for them (removed, or blocked by their admin). Logged where it is found."""


def _refused_by_connector(error: BaseException) -> bool:
    return isinstance(error, ClientResponseError) and error.status in CONVERSATION_REFUSED


def _connector_unreachable(error: BaseException) -> bool:
    """The connection to the connector failed (refused, reset, no such host, a TLS failure, or
    timed out): the connector never answered, whatever Signpost asked of it."""
    return isinstance(error, (ClientConnectionError, TimeoutError))


def _unreachable_reason(error: BaseException) -> str:
    """A fixed word for the log, by the failure's kind only."""
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ClientSSLError):  # a certificate refused, or the handshake failed
        return "tls_failed"
    return "connection_failed"


def _connector_status(error: BaseException) -> dict[str, int]:
    """The status the connector answered, for our log line (the SDK's own line, which quoted the
    ids in the URL, is dropped: ``_NoInputValues``); nothing for any other error."""
    return {"status": error.status} if isinstance(error, ClientResponseError) else {}


def _key(kind: str, *parts: str) -> str:
    """A delivery key of fixed length: Teams' conversation ids are long, and a parked command keeps
    its key in a column of 128 characters."""
    return f"teams:{kind}:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def delivery_key(asker: Asker, activity: Activity) -> str | None:
    """One delivery of one activity (Teams sends it again when the answer is slow): its id, which
    is unique within its conversation."""
    if not activity.id or activity.conversation is None:
        return None
    return _key("activity", asker.principal.tenant, activity.conversation.id, activity.id)


def click_key(asker: Asker, activity: Activity, action: CardAction | None) -> str | None:
    """The same button on the same card clicked by the same person is one action, however often
    it is clicked (each click is an activity of its own, so its id would count every click); as
    Slack's ``click_key``. Without the card's id, each delivery is its own; and a code sent from a
    code card is an attempt of its own each time (the card stays, asking again after a wrong code),
    one however often Teams delivers it."""
    if action is None or action.verb == CODE_VERB or not activity.reply_to_id or activity.conversation is None:
        return delivery_key(asker, activity)
    button = action.button.command if action.button is not None else ""
    who = asker.principal
    return _key("click", who.tenant, who.user_id, activity.conversation.id, activity.reply_to_id, action.verb, button)


# The activities Signpost acts on: messages, invokes (clicks, dialogs), and conversation updates
# (the app installed opens the 1:1 chat). Every other type is ignored (``SignpostTeamsBot.on_turn``).
HANDLED_ACTIVITIES = frozenset({ActivityTypes.message, ActivityTypes.invoke, ActivityTypes.conversation_update})
# The Bot Framework's own types, by their lowercase (its types are not case-sensitive): only these
# are named in a log line; any other type is the sender's text.
KNOWN_ACTIVITIES = {kind.value.lower(): kind.value for kind in ActivityTypes}


class SignpostTeamsBot(ActivityHandler):
    """Activity → Command → Reply → card. Translation only."""

    def __init__(self, front: TeamsFrontEnd) -> None:
        self.front = front

    async def on_turn(self, turn_context: TurnContextProtocol[Activity]) -> None:
        """An activity of a type Signpost does not act on (a reaction, typing, an install's event,
        a type the Bot Framework does not have) is ignored: 202, nothing run or audited, one log
        line naming its type when the Bot Framework has it ("unknown" when not). Routine types
        at debug; an unknown one at info, since no Teams client sends it."""
        kind = turn_context.activity.type
        if kind in HANDLED_ACTIVITIES:
            await super().on_turn(turn_context)
            return
        known = KNOWN_ACTIVITIES.get(kind.lower()) if isinstance(kind, str) else None
        if known is None:
            log.info("teams_activity_ignored", type="unknown")
        else:
            log.debug("teams_activity_ignored", type=known)

    async def on_message_activity(self, turn_context: TurnContextProtocol[Activity]) -> None:
        activity = turn_context.activity
        asker = Asker.of(activity)
        if asker is None:
            log.warning("teams_unidentified_message")
            await self.front.audit_unidentified(activity)
            await turn_context.send_activity(card_activity(render_text(NO_IDENTITY)))
            return
        if asker.personal:
            await self.front.remember_quietly(asker.principal, asker.reference(activity.conversation.id))
        text = _text_of(activity)
        if isinstance(activity.value, dict) and not text:
            await self._submitted(turn_context, asker, activity.value)
            return
        channel = "direct" if asker.personal else "channel"
        command = Command(
            asker.principal,
            text,
            uuid.uuid4().hex,
            channel=channel,
            display_name=asker.display_name,
            idempotency_key=delivery_key(asker, activity),  # Teams sends a message again when answered slowly
        )
        reply = await self.front.dispatch(command, typed=True)
        await self._answer(turn_context, asker, render_in_chat(reply), reply)

    async def _submitted(
        self, turn_context: TurnContextProtocol[Activity], asker: Asker, value: dict[str, Any]
    ) -> None:
        """Action.Submit from an older client: the same action; the card is updated in place.

        A reading's button on a card sent before readings opened dialogs is replaced by one that
        opens the dialog: what is read never goes into a card in the chat.
        """
        activity = turn_context.activity
        action = read_action(value)
        reading = self.front.reading(action)
        reply = None
        if reading is not None:
            card = render_launcher(reading)
        else:
            card, reply = await self.front.act(asker, action, click_key(asker, activity, action), dialog=False)
        if asker.personal and activity.reply_to_id:
            update = card_activity(card)
            update.id = activity.reply_to_id
            try:
                await turn_context.update_activity(update)
            except Exception as exc:  # logged at the turn's error boundary
                await self.front.not_shown(reply, exc)
                raise
            return
        await self._answer(turn_context, asker, card, reply)

    async def _answer(
        self, turn_context: TurnContextProtocol[Activity], asker: Asker, card: Card, reply: Reply | None
    ) -> None:
        """The answer into the 1:1 chat: sent there, or (asked elsewhere) privately, the place asked
        in told so. An answer the connector did not take is recorded as not shown."""
        try:
            if asker.personal:
                await turn_context.send_activity(card_activity(card))
            else:
                await self.front.send_private(asker, card)
        except ChatGone as gone:
            await self.front.not_shown(reply, gone)
            await turn_context.send_activity(card_activity(render_text(NO_PRIVATE_CHAT)))
            return
        except Exception as exc:  # logged at the turn's error boundary
            await self.front.not_shown(reply, exc)
            raise
        if not asker.personal:
            try:
                await turn_context.send_activity(SENT_PRIVATELY)
            except Exception as exc:
                # The answer reached the 1:1 chat: an apology here would say it failed, and the
                # person would search again (a second lookup). One line; the status only.
                log.warning("teams_note_not_sent", reason=type(exc).__name__, **_connector_status(exc))

    async def on_adaptive_card_invoke(
        self, turn_context: TurnContextProtocol[Activity], invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        asker = Asker.of(turn_context.activity)
        if asker is None:
            log.warning("teams_unidentified_click")
            await self.front.audit_unidentified(turn_context.activity)
            return card_response(render_text(NO_IDENTITY))
        action = read_action(invoke_value.action.data)
        reading = self.front.reading(action)
        if reading is not None:  # a reading's button on a card sent before readings opened dialogs
            return card_response(render_launcher(reading))
        card, reply = await self.front.act(asker, action, click_key(asker, turn_context.activity, action), dialog=False)
        if asker.personal:
            return card_response(card)
        try:
            await self.front.send_private(asker, card)
        except ChatGone as gone:
            await self.front.not_shown(reply, gone)
            return card_response(render_text(NO_PRIVATE_CHAT))
        except Exception as exc:  # logged at the turn's error boundary
            await self.front.not_shown(reply, exc)
            raise
        return card_response(render_text(SENT_PRIVATELY))

    async def on_invoke_activity(self, turn_context: TurnContextProtocol[Activity]) -> InvokeResponse | None:
        """Dialogs (``task/fetch`` from a reading's button, ``task/submit`` from a Submit inside the
        dialog) are answered in the dialog, card actions as the SDK routes them
        (``on_adaptive_card_invoke``). Any other invoke is answered 200 with nothing in it, in one
        log line: the SDK's answer is 501, a server error for a well-formed request."""
        activity = turn_context.activity
        if activity.name == CARD_ACTION:
            return await super().on_invoke_activity(turn_context)
        if activity.name not in DIALOG_INVOKES:
            name = activity.name if activity.name in UNUSED_INVOKES else "other"
            log.warning("teams_invoke_unused", name=name)
            return InvokeResponse(status=200)
        asker = Asker.of(activity)
        if asker is None:
            log.warning("teams_unidentified_click")
            await self.front.audit_unidentified(activity)
            return dialog_response(render_text(NO_IDENTITY))
        data = activity.value.get("data") if isinstance(activity.value, dict) else None
        # Shown only to the person who clicked, in the dialog, whatever the conversation.
        card, _ = await self.front.act(asker, read_action(data), delivery_key(asker, activity), dialog=True)
        return dialog_response(card)

    async def on_conversation_update_activity(self, turn_context: TurnContextProtocol[Activity]) -> None:
        """Installing the app in personal scope opens the 1:1 chat: remember it for notices."""
        asker = Asker.of(turn_context.activity)
        if asker is not None and asker.personal:
            await self.front.remember_quietly(asker.principal, asker.reference(turn_context.activity.conversation.id))


class TeamsDeliverer:
    """Notices to a person's 1:1 Teams chat, from the conversation reference in the database."""

    platform = Platform.TEAMS

    def __init__(self, front: TeamsFrontEnd) -> None:
        self.front = front

    async def deliver(self, to: Principal, notice: Notice) -> None:
        if to.platform is not Platform.TEAMS:
            raise PersonUnreachable("not a Teams identity")
        reference = await self.front.reference_for(to)
        if reference is None:
            raise PersonUnreachable("this person has not talked to the Signpost bot in Teams yet")
        try:
            notice_card = render_notice(notice, self.front.signpost.dispatcher.transient)
            await self.front.send_personal(to, reference, notice_card)
        except ChatGone:
            raise PersonUnreachable("Teams refused this person's chat with the bot (the app removed?)") from None
        except Exception as exc:
            where = {"host": exc.host} if isinstance(exc, RedirectRefused) else {}
            if isinstance(exc, TokenUnavailable):
                where = {"reason": exc.reason, **({"host": exc.host} if exc.host else {})}
            log.warning(
                "teams_notice_failed", kind=notice.kind, error=type(exc).__name__, **_connector_status(exc), **where
            )
            # A 429 says how long the bot is throttled for (Bot Framework's limits are per chat and
            # per app per tenant, which its answer does not tell apart): nothing more to the tenant before then.
            wait = None
            if isinstance(exc, ClientResponseError) and exc.status == 429:
                wait = retry_after(exc.headers)
            raise DeliveryFailed(f"Teams did not take the notice ({type(exc).__name__})", wait=wait) from None


BUSY = Reply(Outcome.INFO, BUSY_TEXT)
TEAMS_KEY = web.AppKey("teams", TeamsFrontEnd)
