"""Hostile input over Slack's HTTP endpoint (issue 14, defects 1, 2, 7 and 10): the real app on
loopback, real signed (and badly signed) requests, what Slack and the logs see.

Every malformed or unauthenticated request gets a 4xx, one short log line (no header value, no
body) and no traceback; any slash command is answered and audited whatever its words; follow-ups
go only to the clicker's own Slack response_url.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlparse

import pytest
import structlog

from bot.slack.front import UNREADABLE_COMMAND
from bot.slack.inbound import is_slack_hook
from handlers.vocabulary import Button, Input, Notice, Platform, Principal
from tests.access_helpers import load_access, notices, request_access
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import (
    SIGNING_SECRET,
    SlackUser,
    buttons_in,
    code_for,
    later,
    link_identity,
    link_with_authenticator,
    rate_limited_notice,
    signed_headers,
    slack_events,
)
from tests.factories import load_standard
from tests.fakes.slack_api import Call, FakeSlackApi, running_fake_slack
from tests.spread import spread

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")
DUTY = SlackUser("U0DUTY")
MALLORY = SlackUser("U0MALLORY")  # any Slack user who can click and submit
FORM = "application/x-www-form-urlencoded"


@contextmanager
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[list[MutableMapping[str, Any]]]:
    """structlog events (as emitted) and stdlib records (aiohttp's, Bolt's) for the block."""
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        yield logs


def assert_no_traceback(logs: list[MutableMapping[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    assert not [e for e in logs if e.get("exc_info")], logs
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert "Traceback" not in caplog.text


def refusals(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "slack_request_refused"]


def signed_bytes(raw: bytes, content_type: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers signing exactly these bytes (which need not be text at all)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


async def post_raw(app: SlackHarness, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
    response = await app.slack.client.post("/slack/events", data=raw, headers=headers)
    return response.status, await response.text()


# ---- 1: unauthenticated or malformed requests ----------------------------------------------------

BAD_TIMESTAMPS = [
    "abc",
    "",
    "1.7e9",
    "NaN",
    "99999999999999999999999",
    "-1",
    " 1700000000",
    "\uff11\uff17\uff10\uff10",
    "17\u00b2",
]


@spread("timestamp", BAD_TIMESTAMPS)
async def test_malformed_timestamp_is_refused_401_with_one_log_line_and_no_traceback(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, timestamp: str
) -> None:
    """Non-numeric, empty, float, NaN, huge or non-ASCII timestamps: 401, nothing parsed or done."""
    raw = urlencode(slack_app.slack.command_body(NURSE, "help")).encode()
    headers = {**signed_bytes(raw, FORM), "X-Slack-Request-Timestamp": timestamp}
    with captured(caplog) as logs:
        status, _ = await post_raw(slack_app, raw, headers)
        await slack_app.front.idle()
    assert status == 401
    assert_no_traceback(logs, caplog)
    [line] = refusals(logs)
    assert line["status"] == 401 and timestamp not in {str(v) for v in line.values()} - {""}
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


@pytest.mark.parametrize(
    "signature",
    ["v0=" + "é" * 64, "v0=" + "A" * 64, "v1=" + "0" * 64, "v0=" + "0" * 63, "v0=" + "0" * 64 + "\t", "sha256=x"],
)
async def test_malformed_signature_is_refused_401_without_a_traceback(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, signature: str
) -> None:
    """A non-ASCII, upper-case, wrong-version or wrong-length signature: 401, one line."""
    raw = urlencode(slack_app.slack.command_body(NURSE, "help")).encode()
    headers = {**signed_bytes(raw, FORM), "X-Slack-Signature": signature}
    with captured(caplog) as logs:
        status, _ = await post_raw(slack_app, raw, headers)
        await slack_app.front.idle()
    assert status == 401
    assert_no_traceback(logs, caplog)
    assert len(refusals(logs)) == 1
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


UNSIGNED_BODIES = [
    (b"payload=%5B%5D", FORM),
    (b"payload=null", FORM),
    (b"payload=%7Bbroken", FORM),
    (b'{"type": "event_callback", "event": ', "application/json"),
    (b"[" * 50_000 + b"]" * 50_000, "application/json"),
    (b"token=x&command=%2Fsignpost&text=help", "application/json"),
    (b"\xff\xfe\xfd", FORM),
]


@spread("raw, content_type", UNSIGNED_BODIES)
async def test_malformed_unsigned_bodies_are_refused_401_before_parsing(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, raw: bytes, content_type: str
) -> None:
    """Broken, deeply nested or non-UTF-8 bodies with a wrong signature: 401, never parsed."""
    headers = signed_headers("something else", content_type=content_type)
    with captured(caplog) as logs:
        status, _ = await post_raw(slack_app, raw, headers)
    assert status == 401
    assert_no_traceback(logs, caplog)
    [line] = refusals(logs)
    assert line["reason"] == "bad_signature"


SIGNED_MALFORMED = [
    (b"payload=%5B%5D", FORM),
    (b"payload=null", FORM),
    (b"payload=%7Bbroken", FORM),
    (b"payload=1&payload=2", FORM),
    (b'{"type": "event_callback", "event": ', "application/json"),
    (b"[" * 50_000 + b"]" * 50_000, "application/json"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
    (b"token=x&command=%2Fsignpost&text=help", "application/json"),
    (b"\xff\xfe\xfd", FORM),
    (b"text=%ff%fe", FORM),
    # Invalid UTF-8 in the user's id: it names no one, and stays a 400 (nothing to audit it under).
    (b"team_id=T0001&user_id=U%FF1&command=%2Fsignpost&text=help", FORM),
    (b"[1, 2]", "application/json"),
    (b'{"type": "event_callback", "event": "x"}', "application/json"),
    (b'{"type": "event_callback", "event": {"type": 5}}', "application/json"),
    (b'{"type": "event_callback", "authorizations": "x", "event": {"type": "app_home_opened"}}', "application/json"),
    (b"payload=" + json.dumps({"type": "block_actions", "actions": "x"}).encode(), FORM),
    (b"payload=" + json.dumps({"type": "block_actions", "actions": [], "user": {"id": "U1"}}).encode(), FORM),
    (b"payload=" + json.dumps({"type": "view_submission", "view": 5}).encode(), FORM),
    (b"payload=" + json.dumps({"type": "block_actions", "user": ["U1"], "actions": [{}]}).encode(), FORM),
    # Slack's URL verification always carries a challenge, a string: anything else was echoed, 200.
    (b'{"type": "url_verification", "token": "t"}', "application/json"),
    (b'{"type": "url_verification", "challenge": null}', "application/json"),
    (b'{"type": "url_verification", "challenge": {"name": "Amy Jones"}}', "application/json"),
    (b'{"type": "url_verification", "challenge": ["x", 1]}', "application/json"),
    (b"hello", "text/plain"),
]


@spread("raw, content_type", SIGNED_MALFORMED)
async def test_correctly_signed_malformed_bodies_get_a_4xx_never_a_500(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, raw: bytes, content_type: str
) -> None:
    """Even with the right signature, a body Slack would never send is a 4xx and one log line."""
    with captured(caplog) as logs:
        status, text = await post_raw(slack_app, raw, signed_bytes(raw, content_type))
        await slack_app.front.idle()
    assert 400 <= status < 500, (status, text)
    assert_no_traceback(logs, caplog)
    [line] = refusals(logs)
    assert set(line) <= {"event", "log_level", "status", "reason"}
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


async def test_slacks_url_verification_is_answered_with_its_challenge(slack_app: SlackHarness) -> None:
    raw = json.dumps(
        {"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}
    )
    status, text = await post_raw(slack_app, raw.encode(), signed_bytes(raw.encode(), "application/json"))
    assert (status, json.loads(text)) == (200, {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})


# Slack sends its Events API envelopes (the URL verification among them) only as JSON, to the
# events URL; clicks and submissions only as a form's one ``payload``. Signed but sent the other
# way, the URL verification was answered 200 with its challenge, and an interactive payload was run.
CROSSED_TRANSPORTS = [
    (b"type=url_verification&challenge=Amy%20Jones", FORM),
    (b"payload=" + json.dumps({"type": "url_verification", "challenge": "Amy Jones"}).encode(), FORM),
    (b"payload=" + json.dumps({"type": "app_rate_limited", "team_id": "T0001"}).encode(), FORM),
    (b"type=event_callback&token=t", FORM),
    (
        json.dumps(
            {
                "type": "block_actions",
                "user": {"id": "U0NURSE"},
                "team": {"id": "T0001"},
                "actions": [{"action_id": "approve", "value": "x"}],
            }
        ).encode(),
        "application/json",
    ),
    (
        json.dumps(
            {
                "type": "view_submission",
                "user": {"id": "U0NURSE"},
                "team": {"id": "T0001"},
                "view": {"id": "V1", "callback_id": "signpost_code", "type": "modal"},
            }
        ).encode(),
        "application/json",
    ),
    (b"{}", "application/json"),
    (b'{"ssl_check": "1"}', "application/json"),
]


@spread("raw, content_type", CROSSED_TRANSPORTS)
async def test_a_payload_sent_the_way_slack_never_sends_it_is_refused_400(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, raw: bytes, content_type: str
) -> None:
    """A signed URL verification or event as a form, or a click, a submission or anything but an
    Events API envelope as JSON: 400, one log line, its challenge never echoed, nothing done."""
    with captured(caplog) as logs:
        status, text = await post_raw(slack_app, raw, signed_bytes(raw, content_type))
        await slack_app.front.idle()
    assert status == 400, (status, text)
    assert "Amy" not in text
    assert_no_traceback(logs, caplog)
    [line] = refusals(logs)
    assert line["reason"] == "wrong_transport"
    assert slack_app.fake.calls == []
    # Signed, a click or a submission naming its user and team is that person's request: audited once.
    named = b'"U0NURSE"' in raw
    assert [(e.action, e.outcome, e.user_id) for e in await slack_app.audit()] == (
        [("usage", "invalid", "U0NURSE")] if named else []
    )


async def test_a_signed_empty_form_is_refused_400_in_one_line(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid signature over an empty form is no request Slack sends: it reached Bolt, which
    answered 404 (a request nothing listens for). Now 400, one line, nothing done."""
    with captured(caplog) as logs:
        status, _ = await post_raw(slack_app, b"", signed_bytes(b"", FORM))
        await slack_app.front.idle()
    assert status == 400
    assert_no_traceback(logs, caplog)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    [line] = refusals(logs)
    assert line["reason"] == "empty_form"
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


def _command_form(*extra: tuple[str, str]) -> bytes:
    """A slash command from NURSE, as Slack's form, with ``extra`` fields after its own."""
    fields = [
        ("team_id", NURSE.team_id),
        ("user_id", NURSE.user_id),
        ("command", "/signpost"),
        ("text", "Amy Jones 03/04/2014"),
        ("response_url", "https://hooks.slack.com/commands/T0001/1/x"),
        ("trigger_id", "1.2.t"),
    ]
    return urlencode([*fields, *extra]).encode()


def _payload(doc: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(doc)}).encode()


NURSE_USER = {"id": NURSE.user_id, "team_id": NURSE.team_id}
NURSE_TEAM = {"id": NURSE.team_id}
# Signed, read as a form or JSON, naming the user and team who sent it, and still refused: a slash
# command (answered in its ack), a click and a submission (Slack shows its own error for a 4xx).
SIGNED_UNREADABLE_FROM_SOMEONE = {
    "command with a field twice": (_command_form(("text", "Amelia")), "unreadable command", 200),
    "command with a payload too": (_command_form(("payload", "{}")), "unreadable command", 200),
    "command with an event field": (_command_form(("event", "Amy Jones")), "unreadable command", 200),
    # README: "audited once and answered 'Sorry, I couldn't read that command'"; it was a 400, unaudited.
    "command with invalid UTF-8 in its text": (
        _command_form().replace(b"&text=Amy+Jones+03%2F04%2F2014&", b"&text=%FF%FEAmy+Jones&"),
        "unreadable command",
        200,
    ),
    "click with no actions": (
        _payload({"type": "block_actions", "user": NURSE_USER, "team": NURSE_TEAM, "actions": []}),
        "unreadable request",
        400,
    ),
    "submission with no callback id": (
        _payload({"type": "view_submission", "user": NURSE_USER, "team": NURSE_TEAM, "view": {"id": "V1"}}),
        "unreadable request",
        400,
    ),
}


@pytest.mark.parametrize(
    ("raw", "detail", "status"), SIGNED_UNREADABLE_FROM_SOMEONE.values(), ids=SIGNED_UNREADABLE_FROM_SOMEONE.keys()
)
async def test_a_signed_body_that_cannot_be_read_but_names_its_sender_is_audited_once(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, raw: bytes, detail: str, status: int
) -> None:
    """A verified signature says Slack sent it, from the user and team it names: refused unread, it
    was a 400 with no event. Now audited once (usage, invalid) under the practitioner linked to
    them, as Socket Mode's unreadable envelopes are; a slash command is told kindly in its ack.
    One log line, nothing of what it carried in the log, the answer or the event."""
    await load_standard(slack_app.signpost)
    await slack_app.link("P002", NURSE)
    with captured(caplog) as logs:
        response = await slack_app.slack.client.post("/slack/events", data=raw, headers=signed_bytes(raw, FORM))
        text = await response.text()
        await slack_app.front.idle()
    assert response.status == status, text
    assert_no_traceback(logs, caplog)
    assert [e["event"] for e in logs if e.get("log_level") in ("warning", "error")] == ["slack_request_refused"]
    if status == 200:
        assert json.loads(text) == {"response_type": "ephemeral", "text": UNREADABLE_COMMAND}
    assert "Amy" not in text and "Amy" not in caplog.text and "Amy" not in repr(logs)
    assert slack_app.fake.calls == []
    [event] = await slack_events(slack_app.signpost)
    assert (event.action, event.outcome, event.detail) == ("usage", "invalid", detail)
    assert (event.tenant, event.user_id, event.actor_id) == (NURSE.team_id, NURSE.user_id, "P002")


async def test_a_signed_event_that_cannot_be_read_is_not_audited_and_not_delivered_again(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """An Events API body (the Home tab opened, a field of the wrong type) names its sender, but is
    no one's request: Slack delivers an event answered other than 2xx three more times, and each
    delivery was audited again, as a "button". Now: a 4xx and one log line each, no audit event,
    and ``X-Slack-No-Retry: 1`` so that Slack stops (Socket Mode audits only slash commands and
    interactive envelopes)."""
    await load_standard(slack_app.signpost)
    await slack_app.link("P002", NURSE)
    event = {"type": "app_home_opened", "user": NURSE.user_id, "channel": "D0001", "tab": 5}
    with captured(caplog) as logs:
        responses = [
            await slack_app.slack.event(NURSE, event, event_id="Ev0HOME", retry=retry) for retry in (None, 1, 2, 3)
        ]
        await slack_app.front.idle()
    assert [r.status for r in responses] == [400] * 4
    assert [r.headers.get("X-Slack-No-Retry") for r in responses] == ["1"] * 4
    assert_no_traceback(logs, caplog)
    assert [e["event"] for e in logs if e.get("log_level") in ("warning", "error")] == ["slack_request_refused"] * 4
    assert slack_app.fake.calls == [] and await slack_events(slack_app.signpost) == []


async def test_slacks_ssl_check_is_still_answered_200(slack_app: SlackHarness) -> None:
    """Slack's SSL check is a form to the command URL: answered, nothing done."""
    raw = b"ssl_check=1&token=deprecated-verification-token"
    status, _ = await post_raw(slack_app, raw, signed_bytes(raw, FORM))
    assert status == 200
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


async def test_an_oversized_body_is_refused_413_without_a_traceback(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the app's 1 MB limit (signed or not): 413, one line, nothing done."""
    raw = b"text=" + b"a" * (2 * 1024 * 1024)
    with captured(caplog) as logs:
        status, _ = await post_raw(slack_app, raw, signed_bytes(raw, FORM))
    assert status == 413
    assert_no_traceback(logs, caplog)
    [line] = refusals(logs)
    assert line["reason"] == "too_large"
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


async def test_a_well_formed_signed_command_still_works_with_a_charset_in_the_content_type(
    slack_app: SlackHarness,
) -> None:
    """The strict reading is by media type: `; charset=utf-8` is fine."""
    await load_standard(slack_app.signpost)
    await link_identity(slack_app.signpost, "P002", NURSE)
    raw = urlencode(slack_app.slack.command_body(NURSE, "help")).encode()
    status, _ = await post_raw(slack_app, raw, signed_bytes(raw, FORM + "; charset=utf-8"))
    await slack_app.front.idle()
    assert status == 200
    assert len(slack_app.fake.of("response_url")) == 1


# ---- 2: the word "payload" -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["request 999 000 2231 check the payload of the referral", "help payload", "payload=x&payload"]
)
async def test_a_slash_command_mentioning_payload_is_answered_and_audited(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    """Bolt guessed "interactive payload" from the word and dropped the command (404, no reply,
    no audit event); the body is read by its content type now."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    with captured(caplog) as logs:
        response = await slack_app.slack.command(user, text)
        await slack_app.front.idle()
    assert response.status == 200
    assert_no_traceback(logs, caplog)
    in_ack = [await response.text()] if await response.text() else []  # a request is answered in its ack
    answers = slack_app.fake.of("response_url") + slack_app.fake.of("views.update")
    assert len(answers) + len(in_ack) == 1
    events = await slack_events(slack_app.signpost)
    assert len(events) == 1 and events[0].user_id == "U0NURSE"


# ---- 7: follow-ups belong to whoever created them ------------------------------------------------


@pytest.fixture
async def elsewhere() -> AsyncIterator[FakeSlackApi]:
    """Another server on loopback: somewhere Signpost must never post."""
    async with running_fake_slack() as fake:
        yield fake


async def test_a_third_partys_enter_code_click_cannot_redirect_someone_elses_approval_result(
    slack_app: SlackHarness,
) -> None:
    """DUTY clicks a code-gated Approve; MALLORY sends an enter_code click naming DUTY's challenge
    id; DUTY then enters the code. The decision replaces DUTY's own message, and nothing goes to
    MALLORY's response_url."""
    await load_access(slack_app.signpost)
    totp = await link_with_authenticator(slack_app.signpost, "DM02", DUTY)
    await request_access(slack_app.signpost, "P001", "999 000 0050")
    [notice] = [n for n in await notices(slack_app.signpost, "DM02") if n.kind == "access_request"]
    posted = await deliver(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    later(slack_app.signpost, minutes=6)
    click = slack_app.slack.block_action_from_message(DUTY, approve, block_id)
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    [code_view] = slack_app.fake.of("views.update")
    challenge_id = code_view.body["view"]["private_metadata"]

    enter = {
        "action_id": "enter_code",
        "text": {"type": "plain_text", "text": "Enter code"},
        "value": json.dumps({"id": challenge_id}),
    }
    hijack = slack_app.slack.block_action_from_message(MALLORY, enter, "b1")
    hijack["response_url"] = slack_app.fake.response_url("mallory")
    assert (await slack_app.slack.interactive(hijack)).status == 200
    await slack_app.front.idle()

    code = code_for(slack_app.signpost, totp)
    submission = slack_app.slack.view_submission(DUTY, code_view.body["view"], "V1", {"code": {"code": code}})
    assert (await slack_app.slack.interactive(submission)).status == 200
    await slack_app.front.idle()
    [replaced] = slack_app.fake.of("response_url")
    assert replaced.path == urlparse(click["response_url"]).path
    assert replaced.body["text"].startswith("Request 1 approved")
    assert not [c for c in slack_app.fake.calls if c.path.endswith("/mallory")]


async def deliver(app: SlackHarness, user: SlackUser, notice: Notice) -> dict[str, Any]:
    await app.front.deliverer.deliver(Principal(Platform.SLACK, user.team_id, user.user_id), notice)
    return app.fake.of("chat.postMessage")[-1].body


async def test_an_input_modal_posts_only_to_the_clickers_own_message(scripted_app: SlackHarness) -> None:
    """DUTY clicks a button that asks for a reason; MALLORY submits that same modal first. Her
    answer goes to her modal only, never over DUTY's message; DUTY's answer replaces DUTY's."""
    app = scripted_app
    await load_standard(app.signpost)
    await link_identity(app.signpost, "DM01", DUTY)
    reason = Input("reason", "Reason", True, 200)
    notice = Notice(
        "DM01", "access_request", "Request 7 is waiting.", (Button("deny", "Deny", "deny 7", None, reason),)
    )
    posted = await deliver(app, DUTY, notice)
    [(block_id, deny)] = buttons_in(posted["blocks"])
    click = app.slack.block_action_from_message(DUTY, deny, block_id)
    await app.slack.interactive(click)
    await app.front.idle()
    [opened] = app.fake.of("views.open")
    modal = opened.body["view"]
    assert "http" not in modal["private_metadata"]  # no URL travels through Slack's client

    theirs = app.slack.view_submission(MALLORY, modal, "V901", {"input": {"value": "not mine"}})
    assert (await app.slack.interactive(theirs)).status == 200
    await app.front.idle()
    assert app.fake.of("response_url") == []

    own = app.slack.view_submission(DUTY, modal, "V902", {"input": {"value": "duplicate"}})
    assert (await app.slack.interactive(own)).status == 200
    await app.front.idle()
    [replaced] = app.fake.of("response_url")
    assert replaced.path == urlparse(click["response_url"]).path
    assert replaced.body["text"] == "Denied request 7 duplicate."


async def test_an_input_modals_metadata_cannot_name_a_url_to_post_to(
    slack_app: SlackHarness, elsewhere: FakeSlackApi, caplog: pytest.LogCaptureFixture
) -> None:
    """A submitted input modal whose private_metadata carries `r`: a loopback URL: never posted."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    modal = {
        "type": "modal",
        "callback_id": "signpost_input",
        "private_metadata": json.dumps({"c": "help", "r": elsewhere.response_url("steal")}),
        "blocks": [],
    }
    submission = slack_app.slack.view_submission(user, modal, "V903", {"input": {"value": ""}})
    with captured(caplog) as logs:
        response = await slack_app.slack.interactive(submission)
        await slack_app.front.idle()
    assert response.status == 200
    assert_no_traceback(logs, caplog)
    assert elsewhere.calls == []


async def test_a_response_url_that_is_not_slacks_is_never_posted_to(
    slack_app: SlackHarness, elsewhere: FakeSlackApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Even a signed command's response_url must be Slack's (or the configured API's origin): one
    that is not is refused unread, answered only in the command's ack, and never posted to."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    body = slack_app.slack.command_body(user, "help")
    body["response_url"] = elsewhere.response_url("steal")
    with captured(caplog) as logs:
        response = await slack_app.slack.post(urlencode(body), FORM)
        await slack_app.front.idle()
    assert response.status == 200
    assert elsewhere.calls == []
    [line] = [e for e in logs if e["event"] == "slack_request_refused"]
    assert line["reason"] == "foreign_response_url" and "steal" not in json.dumps(line)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.slack.com/commands/T0001/123/abc", True),
        ("https://hooks.slack.com/actions/T0001/123/abc", True),
        ("https://hooks.slack.com:443/actions/T0001/1/a", True),
        ("http://hooks.slack.com/actions/T0001/1/a", False),
        ("https://hooks.slack.com:8443/actions/T0001/1/a", False),
        ("https://hooks.slack.com.example.org/actions/1", False),
        ("https://example.org/hooks.slack.com/actions/1", False),
        ("https://user@hooks.slack.com/actions/1", False),
        ("https://hooks.slack.com", False),
        ("javascript:alert(1)", False),
        ("", False),
        ("https://hooks.slack.com/a b", False),
        ("https://[::1/", False),
    ],
)
def test_only_slack_hook_urls_are_follow_up_targets(url: str, ok: bool) -> None:
    assert is_slack_hook(url) is ok


def test_the_configured_api_origin_is_a_follow_up_target_and_nothing_else_on_loopback() -> None:
    base = "http://127.0.0.1:8123/api/"
    assert is_slack_hook("http://127.0.0.1:8123/response/r1", base)
    assert not is_slack_hook("http://127.0.0.1:8124/response/r1", base)
    assert not is_slack_hook("https://127.0.0.1:8123/response/r1", base)
    assert not is_slack_hook("http://localhost:8123/response/r1", base)


def test_govslacks_hooks_host_is_a_follow_up_target_when_the_api_url_is_govslacks() -> None:
    """GovSlack's API is https://slack-gov.com/api/ and its response URLs are on hooks.slack-gov.com:
    every command was refused as carrying a foreign response_url (found by review)."""
    gov = "https://slack-gov.com/api/"
    assert is_slack_hook("https://hooks.slack-gov.com/commands/T0001/123/abc", gov)
    assert is_slack_hook("https://hooks.slack-gov.com:443/actions/T0001/1/a", gov)
    assert not is_slack_hook("http://hooks.slack-gov.com/actions/T0001/1/a", gov)
    assert not is_slack_hook("https://hooks.slack-gov.com:8443/actions/T0001/1/a", gov)
    assert not is_slack_hook("https://hooks.slack-gov.com.example.org/actions/1", gov)
    assert not is_slack_hook("https://hooks.slack-gov.com/commands/T0001/1/a")  # not configured: Slack's only
    assert not is_slack_hook("https://hooks.127.0.0.1/response/r1", "http://127.0.0.1:8123/api/")


# ---- 10: a button Signpost did not make -----------------------------------------------------------


async def _click(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, action_id: str, text: str, value: str
) -> tuple[list[MutableMapping[str, Any]], Call]:
    """A duty manager's signed click on a button ``action_id`` carrying ``value``: answered 200 with
    no traceback; the log lines it wrote, and the one answer posted to its response_url."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("DM01", DUTY)
    button = {"action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": value}
    click = slack_app.slack.block_action_from_message(user, button, "b1")
    with captured(caplog) as logs:
        response = await slack_app.slack.interactive(click)
        await slack_app.front.idle()
    assert response.status == 200
    assert_no_traceback(logs, caplog)
    [answer] = slack_app.fake.of("response_url")
    return logs, answer


@pytest.mark.parametrize(
    "value",
    [
        '{"c":"deny 7","i":{"name":"r","label":"R","required":true,"max_length":5,"evil":1}}',
        '{"c":"deny 7","i":{"name":"r"}}',
        '{"c":"deny 7","i":{"name":1,"label":"R","required":true,"max_length":5}}',
        '{"c":"deny 7","x":1}',
        '{"c":5}',
        "[" * 10_000,
        "not json",
    ],
)
async def test_a_button_with_an_unknown_value_is_answered_kindly_without_a_traceback(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    logs, answer = await _click(slack_app, caplog, "deny", "Deny", value)
    assert [e["event"] for e in logs if e.get("log_level") in ("warning", "error")] == ["slack_unknown_button"]
    assert answer.body["response_type"] == "ephemeral" and answer.body["replace_original"] is False
    assert "don't recognise that button" in answer.body["text"]
    # A signed click by a known person is audited, as usage and invalid, with none of what it carried.
    [event] = await slack_events(slack_app.signpost)
    assert (event.action, event.outcome, event.detail) == ("usage", "invalid", "unreadable button")


@pytest.mark.parametrize("value", ["zzz", '{"prompt": "x"}', "[]", "null"])
async def test_an_enter_code_button_with_an_unreadable_value_is_answered_as_any_unreadable_button(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    """An Enter code button whose value names no challenge was audited and logged, and its clicker
    shown nothing at all; another unreadable button is told kindly it is not recognised."""
    logs, answer = await _click(slack_app, caplog, "enter_code", "Enter code", value)
    assert [e["event"] for e in logs if e.get("log_level") in ("warning", "error")] == ["slack_bad_code_button"]
    assert answer.body["response_type"] == "ephemeral" and answer.body["replace_original"] is False
    assert "don't recognise that button" in answer.body["text"] and value not in answer.body["text"]
    assert not slack_app.fake.of("views.open")
    [event] = await slack_events(slack_app.signpost)
    assert (event.action, event.outcome, event.detail) == ("usage", "invalid", "unreadable code button")


async def test_an_event_nothing_listens_for_is_refused_once_and_not_delivered_again(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """An Events API event of a type Signpost has no listener for (a message in the bot's DM, an
    @mention) is a 404 in one line; Slack delivers an event answered other than 2xx three more
    times (each another 404 and another line) unless the answer says ``X-Slack-No-Retry: 1``."""
    user = SlackUser("U0ANY")
    message = {"type": "message", "channel_type": "im", "user": user.user_id, "text": "Amy Jones", "ts": "1.2"}
    with captured(caplog) as logs:
        response = await slack_app.slack.event(user, message, event_id="Ev0MSG1")
        await slack_app.front.idle()
    assert response.status == 404
    assert response.headers.get("X-Slack-No-Retry") == "1"
    assert_no_traceback(logs, caplog)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == ["slack_request_unhandled"]
    assert "Amy" not in caplog.text
    assert slack_app.fake.outbound() == [] and await slack_app.audit() == []


async def test_slacks_rate_limit_notice_is_acknowledged_200_in_one_warning(
    slack_app: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack's ``app_rate_limited`` callback (an Events API body with no inner event) is answered
    200, as Slack expects of every delivery (answers other than 200 to 5 % of them get the app's
    events disabled), and logged once as a warning naming the workspace and the minute, never its
    token; nothing is audited or sent."""
    notice = rate_limited_notice()
    with captured(caplog) as logs:
        response = await slack_app.slack.post(json.dumps(notice), "application/json")
        await slack_app.front.idle()
    assert response.status == 200
    assert_no_traceback(logs, caplog)
    warnings = [e for e in logs if e.get("log_level") in ("warning", "error")]
    assert warnings == [
        {"event": "slack_events_rate_limited", "log_level": "warning", "team": "T0001", "minute": 1518467820}
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "deprecated-verification-token" not in caplog.text + repr(logs)
    assert slack_app.fake.calls == [] and await slack_app.audit() == []
