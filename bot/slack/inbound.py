"""What comes in over HTTP from Slack, checked before Bolt sees it: the signature, then the body.

Slack signs ``v0:<timestamp>:<raw body>`` with the app's signing secret (HMAC-SHA256). The
headers must be well formed (the timestamp ASCII digits within five minutes of now, the signature
``v0=`` and 64 lowercase hex digits) before the body is read at all (``check_headers``), and the
signature must match, in constant time, before a single byte of it is decoded or parsed. Only then
is the body read as Slack meant it: strict UTF-8, a form
(a slash command, an interactive ``payload=<json>``, Slack's SSL check) or JSON (an Events API
envelope, the URL verification among them: ``EVENT_ENVELOPES``), by the declared content type, never
by what the text happens to contain (Bolt's ``"payload" in body`` guess dropped any slash command
mentioning the word); a kind sent the way Slack never sends it is refused. The shapes Bolt's
routing and our listeners read are checked too, so a signed but malformed body is a 400, never a crash,
and so is its response_url (``check_response_url``): Slack gives only its own.

What comes in over Socket Mode's WebSocket is read the same way (``read_frame``, ``check_envelope``):
a frame that is not a JSON object, an envelope without an id, of a type Slack does not send, or whose
payload fails the checks a body over HTTP must pass, is refused before Bolt sees it.

Nothing here logs, and no refusal reason carries a header value or any of the body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.web import json_document

MAX_AGE = 300  # seconds: Slack's replay window
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SLACK_HOOKS = "hooks.slack.com"
# What Slack posts to the events URL, each as a JSON body and never as a form: the URL verification
# (Bolt answers it with its challenge), an event, and the notice that events are being rate limited.
RATE_LIMITED = "app_rate_limited"
EVENT_ENVELOPES = frozenset({"url_verification", "event_callback", RATE_LIMITED})


class Refused(Exception):
    """A request not taken: ``status`` to answer, ``reason`` a short fixed code for the log.
    ``payload``: the verified body as far as it was read (a dict), when it was read at all, so that
    a request refused unread can still be audited under the sender it names (``sender_of``);
    ``slash_command``: it is a slash command's form, as Slack sends one (whose ack Slack shows)."""

    def __init__(self, status: int, reason: str, payload: object = None, *, slash_command: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.payload = payload
        self.slash_command = slash_command


def check_headers(headers: Mapping[str, str], now: float) -> tuple[str, str]:
    """The timestamp and signature, or Refused(401) unless they are there once each, well formed,
    and the timestamp within the window: all known before the body, so nobody without them has a
    body read (up to 1 MiB, for up to 10 s)."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if timestamp is None or signature is None:
        raise Refused(401, "unsigned")
    getall = getattr(headers, "getall", None)  # a multidict: one of each, or which one was checked?
    if getall is not None and any(len(getall(name)) > 1 for name in ("X-Slack-Request-Timestamp", "X-Slack-Signature")):
        raise Refused(401, "repeated_signature_headers")
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        raise Refused(401, "malformed_signature_headers")
    if abs(now - int(timestamp)) > MAX_AGE:
        raise Refused(401, "stale_timestamp")
    return timestamp, signature


def verify(headers: Mapping[str, str], raw: bytes, secret: str, now: float) -> None:
    """Refused(401) unless the headers pass ``check_headers`` and sign ``raw`` within the window."""
    timestamp, signature = check_headers(headers, now)
    base = b"v0:" + timestamp.encode("ascii") + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise Refused(401, "bad_signature")


def parse(raw: bytes, content_type: str, api_base: str | None = None) -> tuple[str, dict[str, Any]]:
    """The verified body as text (for Bolt's own second check) and as Slack meant it: a dict.
    ``api_base``: SIGNPOST_SLACK_API_URL, whose host may give response URLs too (``is_slack_hook``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "not_utf8") from None
    if content_type == JSON:
        body = _json(text)
    elif content_type == FORM:
        body = _form(text)
    else:
        raise Refused(415, "unsupported_content_type")
    try:
        _check_transport(body, content_type)
        check_shape(body)
        check_identity(body)
        check_response_url(body, api_base)
    except Refused as refused:
        refused.payload = body
        # A form's own fields (a payload naming a command was refused in _form, ambiguous).
        refused.slash_command = content_type == FORM and "command" in body
        raise
    return text, body


def kind_of(doc: object) -> str | None:
    """A body's (or an event's) ``type`` when it is a string, else None: the one way its kind is
    asked of a set. A list or an object there, sent signed, raised in the look-up (unhashable):
    a 500 with a traceback, where it is a malformed body like any other."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    return kind if isinstance(kind, str) else None


def is_event(doc: object) -> bool:
    """Whether ``doc`` is an Events API envelope by its type (``EVENT_ENVELOPES``)."""
    return kind_of(doc) in EVENT_ENVELOPES


def _check_transport(body: dict[str, Any], content_type: str) -> None:
    """Refused(400) for a kind of request sent the way Slack never sends it."""
    if content_type == JSON:
        # Only the Events API's envelopes come as JSON; a slash command (a form of strings), a
        # click or a submission (a form's one ``payload``) never does.
        if kind_of(body) not in EVENT_ENVELOPES or "command" in body:
            raise Refused(400, "wrong_transport")
    elif kind_of(body) in EVENT_ENVELOPES:  # Bolt answered a URL verification in a form, challenge and all
        raise Refused(400, "wrong_transport")


def _json(text: str) -> dict[str, Any]:
    try:
        doc = json_document(text)
    except (ValueError, RecursionError):
        raise Refused(400, "bad_json") from None
    if not isinstance(doc, dict):
        raise Refused(400, "not_an_object")
    return doc


def _form(text: str) -> dict[str, Any]:
    if not text:  # Slack sends no empty form: it reached Bolt, and was answered 404
        raise Refused(400, "empty_form")
    try:
        # An escape that is not UTF-8 is kept as a lone surrogate, so that the fields around it can
        # still be read (``_undecodable``); strict otherwise (a field without "=" is no form).
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="surrogateescape")
    except ValueError:
        raise Refused(400, "bad_form") from None
    keys = [key for key, _ in pairs]
    # Who sent it is still known when none of the fields naming them came twice (which one would
    # it be?), whatever else is wrong with the form.
    repeated = {key for key, times in Counter(keys).items() if times > 1}
    named = not any(key in repeated for key in (*_ID_FIELDS, *_ID_HOLDERS))
    undecodable = [key for key, value in pairs if _undecodable(key) or _undecodable(value)]
    if undecodable:
        # ... and when it names them in fields that read: a slash command is then audited and
        # answered kindly, as one with a repeated field is; never with the fields that did not
        # read (they are left out, whatever they were).
        readable = {key: value for key, value in pairs if key not in undecodable}
        named = named and not any(key in undecodable for key in (*_ID_FIELDS, *_ID_HOLDERS))
        raise Refused(400, "bad_form", readable if named else None, slash_command="command" in readable)
    form = dict(pairs)
    if repeated:
        raise Refused(400, "repeated_form_field", form if named else None, slash_command="command" in form)
    if "command" in form:  # a slash command: its text may say anything, "payload" included
        if "payload" in form:
            raise Refused(400, "ambiguous_form", form, slash_command=True)
        return form
    if "payload" in form:  # an interactive request: the form holds one JSON payload, never a slash command
        if len(form) != 1:
            raise Refused(400, "ambiguous_form")
        payload = _json(form["payload"])
        if "command" in payload:
            raise Refused(400, "ambiguous_form", payload)
        return payload
    return form  # e.g. Slack's ssl_check


def _undecodable(text: str) -> bool:
    """A form field's text held a %-escape that is not UTF-8 (``surrogateescape`` kept it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# What Bolt's routing and our listeners dereference, and the types they may be.
_TOP: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "event": (dict,),
    "actions": (list,),
    "view": (dict,),
    "user": (dict, str),
    "team": (dict, str, type(None)),
    "enterprise": (dict, str, type(None)),
    "container": (dict,),
    "channel": (dict, str),
    "authorizations": (list,),
    "response_url": (str,),
    "trigger_id": (str,),
    "callback_id": (str,),
    "action_id": (str,),
    "event_id": (str,),
    "challenge": (str,),  # Slack's URL verification, answered with it (Bolt echoed whatever it was)
}
_ACTION: dict[str, tuple[type, ...]] = {"action_id": (str,), "block_id": (str,), "value": (str,), "type": (str,)}
_VIEW: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "callback_id": (str,),
    "private_metadata": (str,),
    "state": (dict,),
    "type": (str,),
    "team_id": (str, type(None)),
}
_EVENT: dict[str, tuple[type, ...]] = {"type": (str,), "tab": (str,), "user": (str, dict), "channel": (str, dict)}
_IDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "team_id": (str, type(None)),
    "enterprise_id": (str, type(None)),
    "user_id": (str, type(None)),
}


# What each kind of payload must hold, because Bolt's routing reads it without asking first
# (``body["view"]["type"]`` for every view submission, ``action["action_id"]`` for every click).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "block_actions": ("actions",),
    "view_submission": ("view",),
    "view_closed": ("view",),
    "event_callback": ("event",),
    "shortcut": ("callback_id",),
    "message_action": ("callback_id",),
    "interactive_message": ("callback_id",),
    "dialog_submission": ("callback_id",),
    "dialog_cancellation": ("callback_id",),
    "workflow_step_edit": ("callback_id",),
    "block_suggestion": ("action_id",),
    "url_verification": ("challenge",),
}
_REQUIRED_VIEW = ("id", "callback_id", "type")
_REQUIRED_ACTION = ("action_id",)
_REQUIRED_EVENT = ("type",)


def check_shape(body: dict[str, Any]) -> None:
    """Refused(400) when a field Bolt or Signpost reads has the wrong type, or a field Bolt's
    routing reads for this kind of payload is missing."""
    _fields(body, _TOP)
    _present(body, _REQUIRED.get(kind_of(body) or "", ()))
    for key in ("user", "team", "enterprise", "channel", "container"):
        if isinstance(body.get(key), dict):
            _fields(body[key], _IDS)
    actions = body.get("actions")
    if actions is not None:
        if not actions or not all(isinstance(a, dict) for a in actions):
            raise Refused(400, "bad_shape")
        for action in actions:
            _fields(action, _ACTION)
            _present(action, _REQUIRED_ACTION)
    if "view" in body:
        _fields(body["view"], _VIEW)
        _present(body["view"], _REQUIRED_VIEW)
    if "event" in body:
        _fields(body["event"], _EVENT)
        _present(body["event"], _REQUIRED_EVENT)
    for authorization in body.get("authorizations") or ():
        if not isinstance(authorization, dict):
            raise Refused(400, "bad_shape")
        _fields(authorization, _IDS)


def check_response_url(body: dict[str, Any], api_base: str | None = None) -> None:
    """Refused(400) when a response_url is given that is not Slack's (``is_slack_hook``). Slack
    sends only its own; another was taken, its command run (a decision made), and every answer
    posted after the ack then refused, unseen, in a second log line."""
    if "response_url" in body and not is_slack_hook(body["response_url"], api_base):
        raise Refused(400, "foreign_response_url")


# Where Bolt finds who is asking (slack_bolt/request/internals.py's extract_*_id) and Signpost
# takes the principal from: the form's or envelope's ids, and the user, team and enterprise (as a
# string, or an object with ids), the view's team, the event's user and each authorization.
_ID_FIELDS = ("user_id", "team_id", "enterprise_id")
_ID_HOLDERS = ("user", "team", "enterprise")
MAX_ID = 128  # the audit log's column for a tenant or user id


def check_identity(body: dict[str, Any]) -> None:
    """Refused(400) when an id Slack sets (a user, team or enterprise) is empty, overlong, or holds
    a space or a control character (a NUL, a newline): ids are Slack's, never text a person
    typed, so a malformed one is a malformed request, refused before anything is dispatched. A
    slash command, a click, a submission and the Home tab opened must name their user and team
    (or enterprise)."""
    if "command" in body and not all(isinstance(body.get(key), str) for key in ("user_id", "team_id")):
        raise Refused(400, "missing_identity")
    if _asked_by_someone(body) and not (isinstance(_asker(body), str) and isinstance(_tenant(body), str)):
        raise Refused(400, "missing_identity")
    for name, value in _identities(body):
        if value is None or (value == "" and "enterprise" in name):
            continue  # an enterprise is named only on Enterprise Grid
        if not isinstance(value, str) or not is_id(value):
            raise Refused(400, "bad_identity")


# What Signpost answers as someone's request (a click, a submission, the Home tab opened): Slack
# names the user and the team (or enterprise) in each; without the user it was acknowledged and
# dropped, without the team acknowledged 200 with nothing run: both are a malformed request.
_ASKED = frozenset({"block_actions", "view_submission"})
_ASKED_EVENTS = frozenset({"app_home_opened"})


def _asked_by_someone(body: dict[str, Any]) -> bool:
    event = body.get("event")
    return kind_of(body) in _ASKED or kind_of(event) in _ASKED_EVENTS


def _asker(body: dict[str, Any]) -> object:
    """The user id where Bolt reads it (the event's user for an event), as sent."""
    event = body.get("event")
    holder = event.get("user") if isinstance(event, dict) else body.get("user")
    return holder.get("id") if isinstance(holder, dict) else holder


def _tenant(body: dict[str, Any]) -> object:
    """The enterprise, else the team, where Bolt reads them (its ``extract_enterprise_id`` and
    ``extract_team_id``, followed step by step): the tenant a principal is taken under."""
    return _enterprise_of(body) or _team_of(body)


def _enterprise_of(payload: dict[str, Any]) -> object:
    org = payload.get("enterprise")
    if org is not None:
        return org if isinstance(org, str) else org.get("id")
    authorizations = payload.get("authorizations")
    if authorizations:
        return _enterprise_of(authorizations[0])
    if "enterprise_id" in payload:
        return payload["enterprise_id"]
    team = payload.get("team")
    if isinstance(team, dict) and "enterprise_id" in team:
        return team["enterprise_id"]
    event = payload.get("event")
    return _enterprise_of(event) if isinstance(event, dict) else None


def _team_of(payload: dict[str, Any]) -> object:
    view = payload.get("view")
    if isinstance(view, dict) and view.get("app_installed_team_id") is not None:
        return view["app_installed_team_id"]
    team = payload.get("team")
    if isinstance(team, str):
        return team
    if isinstance(team, dict) and "id" in team:
        return team["id"]
    authorizations = payload.get("authorizations")
    if authorizations:
        return _team_of(authorizations[0])
    if "team_id" in payload:
        return payload["team_id"]
    event, user = payload.get("event"), payload.get("user")
    if isinstance(event, dict):
        return _team_of(event)
    if isinstance(user, dict):
        return user.get("team_id")
    return view.get("team_id") if isinstance(view, dict) else None


def sender_of(payload: object) -> tuple[str, str] | None:
    """The tenant (enterprise, else team) and user of a payload that may fail every other check,
    where Bolt reads them (a slash command's ``user_id``, else its ``user``), when both read as
    Slack's ids; else None. For a request refused unread that still names who sent it."""
    if not isinstance(payload, dict):
        return None
    try:
        user = payload["user_id"] if "user_id" in payload else _asker(payload)
        tenant = _tenant(payload)
    except (AttributeError, TypeError, KeyError, IndexError, RecursionError):
        return None
    if isinstance(user, str) and isinstance(tenant, str) and is_id(user) and is_id(tenant):
        return tenant, user
    return None


def is_id(value: str) -> bool:
    """A Slack id as Slack sets one: some printable text, no space, no longer than we keep."""
    return 0 < len(value) <= MAX_ID and value.isprintable() and not any(c.isspace() for c in value)


def _identities(body: dict[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [(key, body.get(key)) for key in _ID_FIELDS]
    holders: list[tuple[str, Any]] = [(key, body.get(key)) for key in _ID_HOLDERS]
    event = body.get("event")
    if isinstance(event, dict):
        holders.append(("user", event.get("user")))
    for name, holder in holders:
        if isinstance(holder, str):
            found.append((name, holder))
        elif isinstance(holder, dict):
            found.append((f"{name}.id", holder.get("id")))
            found.extend((key, holder.get(key)) for key in _ID_FIELDS)
    view = body.get("view")
    if isinstance(view, dict):
        found.extend((key, view.get(key)) for key in ("team_id", "app_installed_team_id"))
    for authorization in body.get("authorizations") or ():
        found.extend((key, authorization.get(key)) for key in _ID_FIELDS)
    return found


def _present(doc: dict[str, Any], keys: tuple[str, ...]) -> None:
    if any(key not in doc for key in keys):
        raise Refused(400, "missing_field")


def _fields(doc: dict[str, Any], types: dict[str, tuple[type, ...]]) -> None:
    for key, allowed in types.items():
        if key in doc and not isinstance(doc[key], allowed):
            raise Refused(400, "bad_shape")


# Socket Mode: the connection's own messages carry no envelope id and are the SDK's to act on;
# every other frame is an envelope of one of these types, to be acked by its id.
LINK_MESSAGES = frozenset({"hello", "disconnect"})
ENVELOPE_TYPES = frozenset({"slash_commands", "interactive", "events_api"})
# A slash command's fields are strings in Slack's form over HTTP; over Socket Mode they are JSON.
_COMMAND: dict[str, tuple[type, ...]] = {
    key: (str,) for key in ("command", "text", "channel_id", "channel_name", "response_url", "trigger_id")
}


def read_frame(text: str) -> dict[str, Any]:
    """A Socket Mode frame as Slack sends one: a JSON object (Refused 400 otherwise)."""
    return _json(text)


def check_envelope(frame: dict[str, Any], api_base: str | None = None) -> None:
    """Refused(400) unless the frame is the connection's own message, or an envelope with an id, of a
    type Slack sends, whose payload passes what a body over HTTP must (a slash command's fields
    strings, a response_url Slack's: ``api_base`` as for ``parse``)."""
    kind = frame.get("type")
    kind = kind if isinstance(kind, str) else None  # a list or an object cannot be looked up in a set
    if kind in LINK_MESSAGES:
        return
    if envelope_id(frame) is None:
        raise Refused(400, "bad_envelope_id")
    if kind not in ENVELOPE_TYPES:
        raise Refused(400, "unknown_envelope_type")
    payload = frame.get("payload")
    if not isinstance(payload, dict):
        raise Refused(400, "payload_not_an_object")
    if kind == "slash_commands":
        _present(payload, ("command",))
        _fields(payload, _COMMAND)
    check_shape(payload)
    check_identity(payload)
    check_response_url(payload, api_base)


def envelope_id(frame: dict[str, Any]) -> str | None:
    """The id to ack an envelope by, when it has one that reads as Slack's."""
    value = frame.get("envelope_id")
    return value if isinstance(value, str) and is_id(value) else None


def is_slack_hook(url: object, api_base: str | None = None) -> bool:
    """A response_url Signpost may post to: https://hooks.slack.com/…; the hooks host of the Slack
    SIGNPOST_SLACK_API_URL names (GovSlack's API is https://slack-gov.com/api/, its response URLs
    https://hooks.slack-gov.com/…); or (a local fake, a proxy) the scheme, host and port of that
    URL itself. Nothing else, ever."""
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or not parts.path.startswith("/"):
        return False
    if parts.scheme == "https" and parts.hostname == SLACK_HOOKS and port in (None, 443):
        return True
    if api_base:
        base = urlsplit(api_base)
        hooks = f"hooks.{base.hostname}" if base.scheme == "https" and base.hostname else None
        if parts.scheme == "https" and port in (None, 443) and hooks is not None and parts.hostname == hooks:
            return True
        return (parts.scheme, parts.hostname, port) == (base.scheme, base.hostname, base.port)
    return False
