"""Requests that break at the edges of HTTP and of Slack's and Teams' payloads, found by a hostile
review: a signed payload missing a field Bolt's routing reads, a body that cannot be decompressed,
bytes aiohttp's parser refuses, a client that never finishes its headers or its body, a Teams click
carrying a button of the wrong types, and a Slack payload no listener takes.

Each gets a 4xx (or, for a click, a kind answer) and exactly one log line, never a 500, never a
traceback, and never a value from the request in the log.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from multidict import CIMultiDict

from bot import web as signpost_web
from bot.app import Signpost
from bot.config import Settings, load_settings
from bot.slack.front import add_slack
from bot.slack.render import CODE_ACTION, CODE_BLOCK, CODE_CALLBACK
from bot.teams.front import teams_route_adder
from bot.web import SLOW_KEY, RouteAdder, create_app
from handlers.vocabulary import Platform, Principal
from store.people import practitioners
from tests.bot.conftest import SlackHarness, slack_settings
from tests.bot.slack.slack_requests import SlackUser, signed_headers
from tests.bot.teams.teams_support import DANA, TeamsApp, audit_events, invoke, later, message
from tests.bot.teams.teams_tokens import Signer, fake_entra
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.teams_connector import FakeConnector
from tests.hostile.observe import LogTap, identity_in
from tests.hostile.slack_world import MANAGER, outbound, populate, send_raw
from tests.spread import BACKENDS, spread
from tests.stepup_helpers import code_now, enrol_and_step_up

# HTTP's and the platforms' edges: each request is refused or answered by the server or the front end,
# the store keeping at most the refusal's one event: one store shows it, a matrix half on each
# (tests/spread.py). An id the store keeps or looks up as a key (a challenge, delivery or view id, a
# user of another team) runs on both.
pytestmark = pytest.mark.one_store
FORM = "application/x-www-form-urlencoded"
CHILD = "Amy Jones 03/04/2014 M1 2AB"  # in requests, to show that none of it is logged


@pytest.fixture
async def world(slack_app: SlackHarness) -> AsyncIterator[SlackHarness]:
    yield await populate(slack_app)


def json_lines(log: str) -> list[str]:
    """Production's log lines (the tap also copies each stdlib record as plain text)."""
    return [line for line in log.splitlines() if line.startswith("{")]


def one_quiet_line(log: str, event: str) -> None:
    lines = json_lines(log)
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["event"] == event
    assert '"exception"' not in log and "Traceback" not in log
    assert identity_in(log) is None


def unread_once(events: list[Any], detail: str) -> None:
    """One event for a signed request refused unread that names who sent it (MANAGER, linked)."""
    [event] = events
    assert (event.action, event.outcome, event.detail, event.user_id) == ("usage", "invalid", detail, MANAGER.user_id)


async def send_payload(world: SlackHarness, logs: LogTap, payload: dict[str, Any]) -> Any:
    body = urlencode({"payload": json.dumps(payload)})
    return await send_raw(world, logs, body.encode(), signed_headers(body, content_type=FORM))


async def test_a_signed_view_submission_without_its_view_type_is_refused_in_one_line(
    world: SlackHarness, logs: LogTap
) -> None:
    """Bolt reads ``view["type"]`` of every submission: without it Bolt raised, twice, and answered 500.
    Signed and naming its sender, it is audited once (``unread_once``)."""
    payload = {
        "type": "view_submission",
        "user": {"id": MANAGER.user_id, "team_id": MANAGER.team_id},
        "team": {"id": MANAGER.team_id},
        "view": {"id": "V1", "callback_id": "signpost_code", "private_metadata": CHILD},
    }
    sent = await send_payload(world, logs, payload)
    assert sent.status == 400 and not sent.calls
    unread_once(sent.events, "unreadable request")
    one_quiet_line(sent.log, "slack_request_refused")


async def test_a_signed_click_without_an_action_id_is_refused_in_one_line(world: SlackHarness, logs: LogTap) -> None:
    button = {"action_id": "approve", "text": {"type": "plain_text", "text": "x"}, "value": json.dumps({"c": CHILD})}
    payload = world.slack.block_action_from_message(MANAGER, button, "b1")
    del payload["actions"][0]["action_id"]
    sent = await send_payload(world, logs, payload)
    assert sent.status == 400 and not sent.calls
    unread_once(sent.events, "unreadable request")
    one_quiet_line(sent.log, "slack_request_refused")


def unhandled_payload(kind: str) -> dict[str, Any]:
    """A signed interactive payload of a kind no listener of Signpost's takes, from MANAGER."""
    return {
        "type": kind,
        "callback_id": CHILD,
        "action_id": "signpost_other",
        "block_id": "b1",
        "value": CHILD,
        "trigger_id": "1.2.3",
        "user": {"id": MANAGER.user_id, "team_id": MANAGER.team_id},
        "team": {"id": MANAGER.team_id},
        "view": {"id": "V1", "type": "modal", "callback_id": CHILD},
        "message": {"text": CHILD, "ts": "1.2"},
    }


def unhandled_form(world: SlackHarness, shape: str) -> str:
    """A signed form no listener takes: another slash command, or a command's fields without one."""
    fields = {**world.slack.command_body(MANAGER, CHILD)}
    if shape == "another command":
        fields["command"] = "/other"
    else:
        del fields["command"]
    return urlencode(fields)


UNHANDLED_PAYLOADS = ["shortcut", "message_action", "view_closed", "block_suggestion", "something_new"]
UNHANDLED_FORMS = ["another command", "a form with no command"]


@spread("kind", UNHANDLED_PAYLOADS + UNHANDLED_FORMS)
async def test_a_request_no_listener_takes_is_audited_once_and_logged_without_its_values(
    world: SlackHarness, logs: LogTap, kind: str
) -> None:
    """Bolt's own warning copied the callback id (here a child's identity) and a page of code. A
    signed request from a person that no listener takes is still their request: audited once, as
    any other signed request refused unread is (``unread_once``), with none of what it carried;
    still a 404 (Slack does not deliver an interactive payload or a command again) in one line."""
    if kind in UNHANDLED_FORMS:
        body = unhandled_form(world, kind)
        sent = await send_raw(world, logs, body.encode(), signed_headers(body, content_type=FORM))
    else:
        sent = await send_payload(world, logs, unhandled_payload(kind))
    assert sent.status == 404 and not sent.calls
    unread_once(sent.events, "unreadable command" if kind == "another command" else "unreadable request")
    one_quiet_line(sent.log, "slack_request_unhandled")
    assert "Amy" not in sent.log
    [event] = sent.events
    assert event.actor_id is not None  # MANAGER is linked: a query by practitioner finds it
    clear = " ".join(str(getattr(event, name) or "") for name in ("detail", "channel", "subject_refs"))
    assert "Amy" not in clear and "M1 2AB" not in clear


async def test_an_unsigned_request_no_listener_would_take_is_refused_unaudited(
    world: SlackHarness, logs: LogTap
) -> None:
    """Forged (a signature that does not verify): 401 in one line, nothing audited, under no one."""
    body = urlencode({"payload": json.dumps(unhandled_payload("shortcut"))})
    headers = signed_headers(body, content_type=FORM, secret="not-the-signing-secret")
    sent = await send_raw(world, logs, body.encode(), headers)
    assert sent.status == 401 and not sent.events and not sent.calls
    one_quiet_line(sent.log, "slack_request_refused")


@spread("sent_as", {"a JSON body": "json", "an interactive payload": "payload"})
async def test_a_slash_command_not_sent_as_a_form_is_refused_in_one_line(
    world: SlackHarness, logs: LogTap, sent_as: str
) -> None:
    """Slack sends a slash command as a form of strings, never as JSON: a signed command in a JSON
    body or inside an interactive ``payload=`` was run (its fields unchecked: the text here a list,
    read as its Python spelling) and audited, with no log line."""
    command: dict[str, Any] = {**world.slack.command_body(MANAGER, "history"), "text": [CHILD]}
    if sent_as == "json":
        body = json.dumps(command)
        sent = await send_raw(world, logs, body.encode(), signed_headers(body, content_type="application/json"))
    else:
        sent = await send_payload(world, logs, command)
    assert sent.status == 400 and not sent.calls  # not a slash command's form: its ack is not shown
    unread_once(sent.events, "unreadable command")
    one_quiet_line(sent.log, "slack_request_refused")


@spread("encoding", ["deflate", "gzip"])
async def test_a_body_that_cannot_be_decompressed_is_refused_in_one_line(
    world: SlackHarness, logs: LogTap, encoding: str
) -> None:
    """aiohttp raised reading it, and raised again draining it after the answer, with tracebacks."""
    body = b"\x1f\x8b\x08\x00" + CHILD.encode() if encoding == "gzip" else CHILD.encode()
    headers = {**signed_headers(body.decode("latin-1"), content_type=FORM), "Content-Encoding": encoding}
    sent = await send_raw(world, logs, body, headers)
    await asyncio.sleep(0.05)  # aiohttp drains the rest of the body after the answer
    sent_log = sent.log + logs.new()
    assert sent.status == 400 and not sent.events
    one_quiet_line(sent_log, "slack_request_refused")


@spread("encoding", ["x-junk", "gzip, gzip"])
async def test_a_body_in_a_content_coding_nothing_undoes_is_refused_unread_in_one_line(
    world: SlackHarness, logs: LogTap, encoding: str
) -> None:
    """aiohttp undoes gzip, deflate, br and zstd and passes any other coding on as sent: a signed
    command that said `x-junk` was read as plain text and answered (a hostile tester)."""
    command = world.slack.command_body(MANAGER, "help")
    body = "&".join(f"{name}={value}" for name, value in command.items())
    headers = {**signed_headers(body, content_type=FORM), "Content-Encoding": encoding}
    sent = await send_raw(world, logs, body.encode(), headers)
    assert sent.status == 415 and not sent.events and not sent.calls
    one_quiet_line(sent.log, "slack_request_refused")


async def test_a_body_said_twice_to_be_in_a_content_coding_is_refused_unread(world: SlackHarness, logs: LogTap) -> None:
    """Two Content-Encoding lines, `identity` then `x-junk`: a check of the first alone let it in,
    and aiohttp's parser acts on the last (a reviewer). Refused unread too."""
    command = world.slack.command_body(MANAGER, "help")
    body = "&".join(f"{name}={value}" for name, value in command.items())
    headers = CIMultiDict(signed_headers(body, content_type=FORM))
    headers.add("Content-Encoding", "identity")
    headers.add("Content-Encoding", "x-junk")
    logs.new()
    response = await world.slack.client.post("/slack/events", data=body.encode(), headers=headers)
    await world.front.idle()
    assert response.status == 415 and not outbound(world, 0)
    one_quiet_line(logs.new(), "slack_request_refused")


def port_of(world: SlackHarness) -> int:
    port = world.slack.client.port
    assert port is not None
    return port


async def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Bytes written on a fresh connection; what came back before the server closed it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


UNPARSABLE = {
    "a control byte in a header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Child: Amy\x01Jones 03/04/2014\r\n\r\n",
    "a length and chunked": b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two lengths": b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    "a request line over 8 KB": b"GET /enrol/" + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    # aiohttp logs these two at debug only (noise from scanners, it says): no line at all was written.
    "a TLS handshake on the HTTP port": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 32,
    "a method HTTP does not have": b"BREW /transparency HTTP/1.1\r\nHost: x\r\nX-Child: Amy Jones\r\n\r\n",
}


@spread("name", sorted(UNPARSABLE))
async def test_bytes_the_http_parser_refuses_get_400_and_one_warning(
    world: SlackHarness, logs: LogTap, name: str
) -> None:
    """aiohttp logged each as an error with the parser's traceback (its message quoting the bytes)."""
    logs.new()
    answer = await raw_exchange(port_of(world), UNPARSABLE[name])
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    await asyncio.sleep(0.05)
    one_quiet_line(logs.new(), "http_request_refused")


@pytest.fixture
async def served(signpost: Signpost) -> AsyncIterator[int]:
    """Signpost's app behind the runner ``signpost run`` uses, no chat front end; its port on loopback."""
    async with serving_for_real(signpost, load_settings()) as port:
        yield port


# The child's identity, in a request line or a header that aiohttp's parser refuses before any
# handler or middleware of ours runs.
ECHOED = {
    "a request line over 8 KB": b"GET /enrol/Amy-Jones-M1-2AB" + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "a space in the path": b"GET /enrol/Amy Jones 03/04/2014 M1 2AB HTTP/1.1\r\nHost: x\r\n\r\n",
    "a NUL in the path": b"GET /enrol/\x00Amy-Jones HTTP/1.1\r\nHost: x\r\n\r\n",
    "a bad HTTP version": b"GET /Amy-Jones HTTP/1.Amy\r\nHost: x\r\n\r\n",
    "a header over 8 KB": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Child: Amy Jones M1 2AB" + b"A" * 9000 + b"\r\n\r\n",
    "a header without a colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nAmy Jones 03/04/2014 M1 2AB\r\n\r\n",
    "a control byte in a header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Child: Amy\x01Jones M1 2AB\r\n\r\n",
    "a length that is not a number": b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12 Amy Jones\r\n\r\n",
    "a method HTTP does not have": b"AMY(JONES /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
}


@spread("name", sorted(ECHOED))
async def test_what_the_http_parser_refuses_is_not_repeated_back(served: int, logs: LogTap, name: str) -> None:
    """aiohttp's own 400 quoted the bytes it choked on (here a name, a date of birth, a postcode) in
    the response body, to whoever sent them or any proxy logging answers. The answer is fixed text."""
    logs.new()
    answer = await raw_exchange(served, ECHOED[name])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    assert body == b"400 Bad Request\n"
    await asyncio.sleep(0.05)
    one_quiet_line(logs.new(), "http_request_refused")


@spread("path", {"a route": "/healthz", "no route": "/no-such-page"})
async def test_an_expectation_aiohttp_does_not_know_is_refused_without_repeating_it(
    served: int, logs: LogTap, path: str
) -> None:
    """aiohttp answers an ``Expect`` other than 100-continue itself, before any middleware: its 417
    quoted the header back ("Unknown Expect: …") and nothing was logged."""
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-{CHILD}\r\nConnection: close\r\n\r\n"
    logs.new()
    answer = await raw_exchange(served, request.encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n", 1)[0].endswith(b" 417 Expectation Failed")
    assert body == b"417 Expectation Failed\n" and f"Content-Length: {len(body)}".encode() in head
    one_quiet_line(logs.new(), "http_request_refused")


async def test_a_client_that_never_finishes_its_headers_is_disconnected(world: SlackHarness, logs: LogTap) -> None:
    """aiohttp sets no deadline before a connection's first request: 200 such connections were all
    still open after 110 s. The server's sweep closes them (a short deadline here)."""
    slow = world.slack.client.app[SLOW_KEY]
    slow.header_seconds, slow.sweep_seconds = 0.5, 0.05
    runner = world.slack.client.server.runner
    sweeper = asyncio.create_task(slow.run(runner))
    try:
        logs.new()
        port = port_of(world)
        trickle = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        answers = await asyncio.gather(*(raw_exchange(port, trickle, 30) for _ in range(3)))
        assert answers == [b"", b"", b""]  # closed, without an answer
        # A prompt request on the same server is answered as usual.
        healthy = await raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert healthy.startswith(b"HTTP/1.1 200")
    finally:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
    lines = [json.loads(line) for line in json_lines(logs.new())]
    assert {line["event"] for line in lines} == {"slow_connections_closed"}
    assert sum(line["count"] for line in lines) == 3


async def _status_of_a_body_cut_short(world: SlackHarness, headers: bytes) -> bytes:
    """The status line Signpost answers a Slack request with whose body stops after 19 of its 1,000
    bytes: aiohttp then lingers up to 10 s for the rest before it closes, so only the line is read."""
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        + headers
        + b"Content-Length: 1000\r\n\r\ncommand=%2Fsignpost"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(world))
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 15)
    finally:
        writer.close()


async def test_a_body_not_sent_in_time_gets_408_in_one_line(
    world: SlackHarness, logs: LogTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signpost_web, "BODY_SECONDS", 0.3)
    # Signature headers as Slack's (only the whole body can show whether they sign it).
    signed = signed_headers("command=%2Fsignpost", content_type=FORM)
    headers = "".join(f"{k}: {signed[k]}\r\n" for k in ("X-Slack-Request-Timestamp", "X-Slack-Signature"))
    logs.new()
    status = await _status_of_a_body_cut_short(world, headers.encode())
    assert status.rstrip(b"\r\n").endswith(b" 408 Request Timeout"), status
    one_quiet_line(logs.new(), "slack_request_refused")


@spread(
    "headers, reason",
    {
        "unsigned": (b"", "unsigned"),
        "stale": (
            b"X-Slack-Request-Timestamp: 1700000000\r\nX-Slack-Signature: v0=" + b"0" * 64 + b"\r\n",
            "stale_timestamp",
        ),
        "malformed": (b"X-Slack-Request-Timestamp: Amy\r\nX-Slack-Signature: v0=x\r\n", "malformed_signature_headers"),
    },
)
async def test_a_request_slack_did_not_sign_is_refused_before_its_body_is_read(
    world: SlackHarness, logs: LogTap, monkeypatch: pytest.MonkeyPatch, headers: bytes, reason: str
) -> None:
    """Signature headers that are missing, malformed or stale are known before the body: the body
    was read first (up to 1 MiB, for up to 10 s, from anyone), and one never sent in full was a 408."""
    monkeypatch.setattr(signpost_web, "BODY_SECONDS", 0.3)
    logs.new()
    status = await _status_of_a_body_cut_short(world, headers)
    assert status.rstrip(b"\r\n").endswith(b" 401 Unauthorized"), status
    one_quiet_line(logs.new(), "slack_request_refused")


@spread(
    "spec",
    [
        {"name": "reason", "label": "Reason", "required": False, "max_length": "x"},
        {"name": "reason", "label": "Reason", "max_length": None},
        {"name": "reason", "label": "Reason", "max_length": True},
        {"name": "reason", "label": "Reason", "max_length": 10**30},
        {"name": ["reason"], "label": "Reason"},
    ],
)
async def test_a_teams_click_whose_button_has_the_wrong_types_is_answered_kindly(
    teams: TeamsApp, connector: FakeConnector, logs: LogTap, spec: dict[str, Any]
) -> None:
    """The button rides back in the click from the Teams client: a modified client's max_length
    "x" failed the turn with a traceback ("Sorry, something went wrong")."""
    button = {"action_id": "deny", "label": "Deny", "command": "deny 1", "input": copy.deepcopy(spec)}
    data = {"signpost": 1, "verb": "deny", "button": button, "reason": CHILD}
    logs.new()
    response = await teams.post(invoke(DANA, {"verb": "deny", "data": data}, connector.url))
    shown = await response.text()
    log = logs.new()
    assert response.status == 200
    assert "went wrong" not in shown and "teams_turn_failed" not in log
    assert '"exception"' not in log and identity_in(log) is None


@spread("encoding", ["deflate", "gzip"])
async def test_a_teams_activity_that_cannot_be_decompressed_is_refused_in_one_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, logs: LogTap, encoding: str
) -> None:
    """With a valid token, a deflate body that would not inflate was a 500 with two tracebacks."""
    body = b"\x1f\x8b\x08\x00" + CHILD.encode() if encoding == "gzip" else CHILD.encode()
    headers = {
        "Authorization": f"Bearer {signer.token(connector.url)}",
        "Content-Type": "application/json",
        "Content-Encoding": encoding,
    }
    logs.new()
    response = await teams_secured.client.post("/api/messages", data=body, headers=headers)
    await asyncio.sleep(0.05)  # aiohttp drains the rest of the body after the answer
    assert response.status == 400
    one_quiet_line(logs.new(), "teams_activity_invalid")


async def test_a_teams_activity_in_a_content_coding_nothing_undoes_is_refused_unread_in_one_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, logs: LogTap
) -> None:
    """As Slack's: an activity that said `x-junk` was read as plain JSON and run."""
    body = json.dumps(message(DANA, "help", connector.url)).encode()
    headers = {
        "Authorization": f"Bearer {signer.token(connector.url)}",
        "Content-Type": "application/json",
        "Content-Encoding": "x-junk",
    }
    logs.new()
    response = await teams_secured.client.post("/api/messages", data=body, headers=headers)
    assert response.status == 415 and not connector.sent
    one_quiet_line(logs.new(), "teams_activity_invalid")


@spread("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_teams_activity_that_is_not_sent_as_json_is_refused_unread_in_one_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, logs: LogTap, content_type: str | None
) -> None:
    """The Bot Framework sends JSON; a well-formed activity under another content type was run as
    one (Slack's front end refuses such a body with 415)."""
    activity = json.dumps(message(DANA, "help", connector.url))
    headers = {"Authorization": f"Bearer {signer.token(connector.url)}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    logs.new()
    response = await teams_secured.client.post("/api/messages", data=activity.encode(), headers=headers)
    assert response.status == 415
    one_quiet_line(logs.new(), "teams_activity_invalid")
    assert connector.sent == []


NOT_JSON_AS_SENT = {
    "UTF-16": lambda text: text.encode("utf-16"),
    "UTF-16 without a byte order mark": lambda text: text.encode("utf-16-le"),
    "UTF-32": lambda text: text.encode("utf-32"),
    "a UTF-8 byte order mark": lambda text: b"\xef\xbb\xbf" + text.encode(),
    "NaN": lambda text: text[:-1].encode() + b', "x": NaN}',
    "-Infinity": lambda text: text[:-1].encode() + b', "x": -Infinity}',
}


@spread("name", sorted(NOT_JSON_AS_SENT))
async def test_a_teams_activity_not_in_json_as_the_bot_framework_sends_it_is_refused_in_one_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, logs: LogTap, name: str
) -> None:
    """JSON between systems is UTF-8, without a byte order mark or NaN (RFC 8259), as the Bot
    Framework sends it and Slack's front end reads it; ``json.loads`` on bytes guessed UTF-16 or
    UTF-32, and took NaN and Infinity: the activity was run and answered."""
    activity = json.dumps(message(DANA, "help", connector.url))
    headers = {"Authorization": f"Bearer {signer.token(connector.url)}", "Content-Type": "application/json"}
    logs.new()
    response = await teams_secured.client.post("/api/messages", data=NOT_JSON_AS_SENT[name](activity), headers=headers)
    assert response.status == 400
    one_quiet_line(logs.new(), "teams_activity_invalid")
    assert connector.sent == []


@spread("constant", ["NaN", "Infinity", "-Infinity"])
async def test_a_signed_slack_body_with_a_number_json_does_not_have_is_refused_in_one_line(
    world: SlackHarness, logs: LogTap, constant: str
) -> None:
    """Slack's JSON has no NaN or Infinity (Python's reader took them, as a float)."""
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": MANAGER.team_id,
            "event_id": "Ev0NAN",
            "event": {"type": "app_home_opened", "tab": "home", "user": MANAGER.user_id, "channel": "D0001"},
        }
    )
    body = body[:-1] + f', "event_time": {constant}}}'
    sent = await send_raw(world, logs, body.encode(), signed_headers(body, content_type="application/json"))
    assert sent.status == 400 and not sent.events and not sent.calls
    one_quiet_line(sent.log, "slack_request_refused")


@spread(
    "metadata",
    {
        "not json": CHILD,
        "empty command": json.dumps({"c": ""}),
        "no command": json.dumps({"f": "x"}),
        "a list": "[]",
        "null command": json.dumps({"c": None}),
        "none": "",
    },
)
async def test_a_signed_form_signpost_cannot_read_is_audited_answered_and_logged_once(
    world: SlackHarness, logs: LogTap, metadata: str
) -> None:
    """A submitted input modal whose private_metadata Signpost cannot read (a form it did not make,
    or one an older version made before an upgrade) was acknowledged with nothing: the modal shut,
    what was typed was lost without a word, and there was no audit event and no log line."""
    payload = {
        "type": "view_submission",
        "user": {"id": MANAGER.user_id, "team_id": MANAGER.team_id},
        "team": {"id": MANAGER.team_id},
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "signpost_input",
            "private_metadata": metadata,
            "state": {"values": {"input": {"value": {"type": "plain_text_input", "value": CHILD}}}},
        },
    }
    sent = await send_payload(world, logs, payload)
    assert sent.status == 200 and not sent.calls
    assert "can't read that form" in json.loads(sent.ack)["view"]["blocks"][0]["text"]["text"]
    [event] = sent.events
    assert (event.action, event.outcome, event.user_id) == ("usage", "invalid", MANAGER.user_id)
    one_quiet_line(sent.log, "slack_unknown_form")
    assert "Amy" not in sent.log


CLICK = {
    "type": "block_actions",
    "team": {"id": MANAGER.team_id},
    "trigger_id": "1.2.3",
    "container": {"type": "message", "message_ts": "1.2", "channel_id": "D1"},
    "actions": [{"action_id": "approve", "block_id": "b", "value": CHILD, "type": "button"}],
}
SUBMISSION = {
    "type": "view_submission",
    "team": {"id": MANAGER.team_id},
    "view": {"id": "V1", "type": "modal", "callback_id": "signpost_code", "private_metadata": CHILD},
}
HOME = {
    "type": "event_callback",
    "team_id": MANAGER.team_id,
    "event_id": "Ev1",
    "event": {"type": "app_home_opened", "tab": "home", "channel": CHILD},
}


async def refused_as_missing_identity(
    world: SlackHarness, logs: LogTap, payload: dict[str, Any], *, home: bool
) -> None:
    """``payload`` sent signed (a Home tab event as JSON, anything else as a form): refused 400,
    nothing audited or sent, one quiet log line saying whose identity was missing."""
    if home:
        body = json.dumps(payload)
        sent = await send_raw(world, logs, body.encode(), signed_headers(body, content_type="application/json"))
    else:
        sent = await send_payload(world, logs, payload)
    assert sent.status == 400 and not sent.events and not sent.calls
    one_quiet_line(sent.log, "slack_request_refused")
    assert json.loads(json_lines(sent.log)[0])["reason"] == "missing_identity"


PAYLOADS = {"click": CLICK, "submission": SUBMISSION, "home tab": HOME}


@spread(
    "payload, user",
    {
        f"{user_id}-{payload_id}": (payload, user)
        for user_id, user in {"no user": None, "a user without an id": {"name": CHILD}}.items()
        for payload_id, payload in PAYLOADS.items()
    },
)
async def test_a_signed_request_naming_no_user_is_refused_in_one_line(
    world: SlackHarness, logs: LogTap, payload: dict[str, Any], user: dict[str, Any] | None
) -> None:
    """Slack names the user in every click, submission and Home tab event. Without one these were
    acknowledged 200 and dropped (the Home tab's without any log line at all)."""
    sent_payload = copy.deepcopy(payload)
    if user is not None:
        sent_payload.get("event", sent_payload)["user"] = user
    await refused_as_missing_identity(world, logs, sent_payload, home=payload is HOME)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)  # the id reaches each store's lookup
@pytest.mark.parametrize("challenge_id", ["no-such-challenge", "c\x00" + CHILD], ids=["unknown", "with a NUL"])
async def test_a_good_code_for_a_challenge_id_no_database_can_hold_is_answered_as_for_an_unknown_one(
    world: SlackHarness, logs: LogTap, challenge_id: str
) -> None:
    """A code modal's challenge id is Signpost's (its private_metadata), but the submission carries it
    back: holding a NUL, it reached PostgreSQL with a good code, and the command failed ("something
    went wrong", a traceback) where an unknown id is answered."""
    teacher = SlackUser("U0HTEACHER")
    signpost = world.signpost
    async with signpost.ctx.db.write() as session:
        principal = Principal(Platform.SLACK, teacher.team_id, teacher.user_id)
        await practitioners.link_identity(session, principal, "P003", signpost.ctx.clock.now())
    totp = await enrol_and_step_up(signpost, "P003")
    later(signpost, seconds=31)  # a code of the next step
    payload = {
        "type": "view_submission",
        "user": {"id": teacher.user_id, "team_id": teacher.team_id},
        "team": {"id": teacher.team_id},
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": CODE_CALLBACK,
            "private_metadata": challenge_id,
            "state": {
                "values": {CODE_BLOCK: {CODE_ACTION: {"type": "plain_text_input", "value": code_now(signpost, totp)}}}
            },
        },
    }
    sent = await send_payload(world, logs, payload)
    assert sent.status == 200
    assert "went wrong" not in sent.ack
    [event] = [e for e in sent.events if e.user_id == teacher.user_id]
    assert event.outcome != "failed"
    assert "command_failed" not in sent.log and '"exception"' not in sent.log and "Traceback" not in sent.log


def _search_with_trigger(world: SlackHarness, user: SlackUser, trigger: str) -> str:
    fields = world.slack.command_body(user, "999 000 0018")
    fields["trigger_id"] = trigger
    return urlencode(fields)


DELIVERY_IDS = {
    "a trigger id with a NUL": "1.2.\x00x",
    "a trigger id past the parked command's column": "1." + "7" * 200,
}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)  # the redelivery key each store keeps
@pytest.mark.parametrize("trigger", DELIVERY_IDS.values(), ids=DELIVERY_IDS.keys())
@pytest.mark.parametrize("stepped_up", [True, False], ids=["stepped up", "asked for a code"])
async def test_a_delivery_id_no_database_can_keep_still_gets_its_answer(
    world: SlackHarness, logs: LogTap, trigger: str, stepped_up: bool
) -> None:
    """Signpost keys a request on Slack's delivery id (the trigger id here; an event id, a view id, a
    clicked message's place alike), so that a redelivery acts once. Holding a NUL, the key failed the
    command on PostgreSQL ("something went wrong", a traceback); past 128 characters it failed the
    parked command of a search that asks for a code."""
    teacher = SlackUser("U0HTEACHER")
    signpost = world.signpost
    async with signpost.ctx.db.write() as session:
        principal = Principal(Platform.SLACK, teacher.team_id, teacher.user_id)
        await practitioners.link_identity(session, principal, "P003", signpost.ctx.clock.now())
    await enrol_and_step_up(signpost, "P003")
    if not stepped_up:
        later(signpost, hours=13)  # past the step-up's longest life: the search asks for a code
    body = _search_with_trigger(world, teacher, trigger)
    sent = await send_raw(world, logs, body.encode(), signed_headers(body, content_type=FORM))
    answers = sent.ack + json.dumps([c.raw for c in sent.calls], default=str)
    assert sent.status == 200 and "went wrong" not in answers
    [event] = [e for e in sent.events if e.user_id == teacher.user_id]
    assert event.outcome == ("answered" if stepped_up else "challenged")
    assert "command_failed" not in sent.log and '"exception"' not in sent.log


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)  # the redelivery key each store keeps
@pytest.mark.parametrize("view_id", ["V\x00", "V\ud800"], ids=["a NUL", "half a character"])
async def test_a_submission_whose_view_id_no_database_can_keep_still_gets_its_answer(
    world: SlackHarness, logs: LogTap, view_id: str
) -> None:
    """A submitted form is keyed on its view id (JSON may carry half a character, which no database
    can encode): the command failed ("something went wrong", a traceback) instead of being answered."""
    payload = {
        "type": "view_submission",
        "user": {"id": MANAGER.user_id, "team_id": MANAGER.team_id},
        "team": {"id": MANAGER.team_id},
        "view": {
            "id": view_id,
            "type": "modal",
            "callback_id": "signpost_input",
            "private_metadata": json.dumps({"c": "history"}),
            "state": {"values": {"input": {"value": {"type": "plain_text_input", "value": ""}}}},
        },
    }
    sent = await send_payload(world, logs, payload)
    assert sent.status == 200 and "went wrong" not in sent.ack
    [event] = sent.events
    assert (event.action, event.outcome) == ("history", "info")
    assert "command_failed" not in sent.log and '"exception"' not in sent.log


@spread(
    "payload, team",
    {
        f"{team_id}-{payload_id}": (payload, team)
        for team_id, team in {"no team": "absent", "a null team": None, "a team without an id": {"name": CHILD}}.items()
        for payload_id, payload in PAYLOADS.items()
    },
)
async def test_a_signed_request_naming_a_user_but_no_team_is_refused_in_one_line(
    world: SlackHarness, logs: LogTap, payload: dict[str, Any], team: Any
) -> None:
    """A click or submission naming its user but no team (nor an enterprise) was acknowledged 200
    with one line: Signpost cannot say whose request it is, so it is as malformed as one naming no
    user, and nothing is run or audited as anyone."""
    sent_payload = copy.deepcopy(payload)
    sent_payload.pop("team", None)
    sent_payload.pop("team_id", None)
    if team != "absent":
        sent_payload["team"] = team
    sent_payload.get("event", sent_payload)["user"] = MANAGER.user_id if payload is HOME else {"id": MANAGER.user_id}
    await refused_as_missing_identity(world, logs, sent_payload, home=payload is HOME)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)  # whom a request is from: each store's look-up
async def test_a_signed_command_from_another_workspace_is_not_its_namesakes(world: SlackHarness, logs: LogTap) -> None:
    """Signpost serves one workspace, but Slack signs what comes from elsewhere too (a Slack Connect
    channel's people from another organisation, each workspace of an Enterprise Grid org), so a
    request is not refused for its team. Whom it is from is the team (or enterprise) and the user
    together: the duty manager's user id from another team is a stranger, refused as one."""
    body = urlencode(world.slack.command_body(SlackUser(MANAGER.user_id, "T0ELSEWHERE"), "history"))
    sent = await send_raw(world, logs, body.encode(), signed_headers(body, content_type=FORM))
    assert sent.status == 200
    [event] = sent.events
    assert (event.tenant, event.user_id, event.action, event.outcome) == (
        "T0ELSEWHERE",
        MANAGER.user_id,
        "history",
        "refused",
    )


SERVER_ASKED = {
    "a page": b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "no such page": b"GET /no-such-page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "a method the page does not take": b"DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "an expectation aiohttp does not know": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-x\r\nConnection: close\r\n\r\n"
    ),
    "what the parser refuses": ECHOED["a space in the path"],
}


@spread("name", sorted(SERVER_ASKED))
async def test_every_answer_names_the_server_as_signpost_and_no_versions(served: int, name: str) -> None:
    """aiohttp's ``Server:`` header named the exact Python and aiohttp versions in every answer, its
    own error answers included: a scanner's list of known holes to try. It is ``Signpost``, once."""
    answer = await raw_exchange(served, SERVER_ASKED[name])
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower().split("\r\n")
    assert [line for line in head if line.startswith("server:")] == ["server: signpost"]
    assert not any("python" in line or "aiohttp" in line for line in head)


# What a response_url may be instead of Slack's own: another host (one ending in Slack's name too),
# Slack's host over plain http, something that is no URL at all.
FOREIGN_RESPONSE_URLS = {
    "another host": "https://hooks.slack.com.example.net/commands/T1/1/x",
    "Slack's host over http": "http://hooks.slack.com/commands/T1/1/x",
    "no URL": "http://[::1",
}


@spread("url", FOREIGN_RESPONSE_URLS)
async def test_a_signed_click_whose_response_url_is_not_slacks_is_refused_unread_in_one_line(
    world: SlackHarness, logs: LogTap, url: str
) -> None:
    """Slack's response_url is always its own (https://hooks.slack.com/…). A click carrying another
    was run (a decision, here Deny) and its answer then posted nowhere: answered 200, in two log
    lines, the decision made and never shown to whoever made it."""
    deny = {"action_id": "deny", "text": {"type": "plain_text", "text": "Deny"}, "value": '{"c":"deny R1"}'}
    payload = world.slack.block_action_from_message(MANAGER, deny, "b1")
    payload["response_url"] = url
    sent = await send_payload(world, logs, payload)
    assert sent.status == 400 and not sent.calls
    unread_once(sent.events, "unreadable request")
    one_quiet_line(sent.log, "slack_request_refused")
    assert json.loads(json_lines(sent.log)[0])["reason"] == "foreign_response_url"


@spread("url", FOREIGN_RESPONSE_URLS)
async def test_a_signed_command_whose_response_url_is_not_slacks_is_refused_unread_in_its_ack(
    world: SlackHarness, logs: LogTap, url: str
) -> None:
    """The same for a slash command: it was run, and anything answered after its ack (a notice of a
    code to enter, a late answer) went nowhere. It is refused unread, kindly in its ack."""
    body = urlencode({**world.slack.command_body(MANAGER, "history"), "response_url": url})
    sent = await send_raw(world, logs, body.encode(), signed_headers(body, content_type=FORM))
    assert sent.status == 200 and not sent.calls
    assert "couldn't read that command" in json.loads(sent.ack)["text"]
    unread_once(sent.events, "unreadable command")
    one_quiet_line(sent.log, "slack_request_refused")


@spread(
    "kind, sent_as",
    {
        f"{sent_id}-{kind_id}": (kind, sent_as)
        for sent_id, sent_as in {"an interactive payload": "payload", "a JSON body": "json"}.items()
        for kind_id, kind in {"a list": [CHILD], "an object": {"type": CHILD}}.items()
    },
)
async def test_a_signed_body_whose_type_is_not_a_string_is_refused_in_one_line(
    world: SlackHarness, logs: LogTap, kind: Any, sent_as: str
) -> None:
    """Whether a body is an Events API envelope was asked of its ``type`` as sent: a list or an
    object there (unhashable) raised in the look-up, a 500 with aiohttp's traceback (make fuzz found it)."""
    payload: dict[str, Any] = copy.deepcopy(CLICK if sent_as == "payload" else HOME)
    payload["type"] = kind
    payload.get("event", payload)["user"] = MANAGER.user_id if sent_as == "json" else {"id": MANAGER.user_id}
    if sent_as == "payload":
        sent = await send_payload(world, logs, payload)
    else:
        body = json.dumps(payload)
        sent = await send_raw(world, logs, body.encode(), signed_headers(body, content_type="application/json"))
    assert sent.status == 400 and not sent.calls
    unread_once(sent.events, "unreadable request")  # not an event by its type, and it names its sender
    one_quiet_line(sent.log, "slack_request_refused")


@asynccontextmanager
async def serving_for_real(signpost: Signpost, settings: Settings, *adders: RouteAdder) -> AsyncIterator[int]:
    """``adders``' front ends behind the runner ``signpost run`` uses (aiohttp's test server cancels
    a handler whose client has gone, which production's does not); its port on loopback."""
    runner = signpost_web.runner(create_app(signpost, settings, adders))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def hang_up_mid_body(port: int, path: str, headers: str, logs: LogTap) -> str:
    """A request that declares 1,000 bytes, sends a few once its handler has begun (it asks for
    ``100 Continue``, which aiohttp sends as the handler is called) and closes its connection; what
    was logged once the server met the lost connection (waited for, never timed)."""
    logs.new()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"text=abc")
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    seen = ""
    async with asyncio.timeout(30):
        while not seen:
            await asyncio.sleep(0.02)
            seen += logs.new()
    # Anything more would come with the handler's end: a request after it is answered as usual.
    healthy = await raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert healthy.startswith(b"HTTP/1.1 200")
    return seen + logs.new()


def gone_quietly(log: str) -> None:
    """One info line that the client went away, no error, no traceback, nothing of the request."""
    one_quiet_line(log, "http_client_gone")
    [line] = json_lines(log)
    assert json.loads(line)["level"] == "info", line
    assert "ERROR" not in log and "abc" not in log


async def test_a_slack_client_that_hangs_up_mid_body_is_one_info_line(
    signpost: Signpost, fake_slack: FakeSlackApi, logs: LogTap
) -> None:
    """aiohttp logged an error with a traceback (ConnectionResetError reading the body): nothing was
    wrong with the server. Nothing is processed, sent or audited: there was no command."""
    before = len(await audit_events(signpost))
    headers = f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0={'0' * 64}\r\n"
    async with serving_for_real(signpost, slack_settings(fake_slack), add_slack) as port:
        gone_quietly(await hang_up_mid_body(port, "/slack/events", headers + f"Content-Type: {FORM}\r\n", logs))
    assert len(await audit_events(signpost)) == before and fake_slack.calls == []


async def test_a_teams_client_that_hangs_up_mid_body_is_one_info_line(
    loaded: Signpost, secured: Settings, connector: FakeConnector, signer: Signer, logs: LogTap
) -> None:
    """The same with a valid Bot Framework token: aiohttp's error line and traceback."""
    before = len(await audit_events(loaded))
    headers = f"Authorization: Bearer {signer.token(connector.url)}\r\nContent-Type: application/json\r\n"
    adder = teams_route_adder(secured, token_source=fake_entra)
    assert adder is not None
    async with serving_for_real(loaded, secured, adder) as port:
        gone_quietly(await hang_up_mid_body(port, "/api/messages", headers, logs))
    assert connector.sent == [] and len(await audit_events(loaded)) == before
