"""Socket Mode over a real WebSocket: Signpost asks the fake Slack for a URL (``apps.connections.open``),
connects to it on 127.0.0.1 and reads the frames sent down it, as it would Slack's.

Whatever a frame holds, Signpost does not crash, log a traceback or log what the frame carried (it may
hold a child's name and date of birth): one log line with a reason. An envelope with an id is acked, so
Slack does not deliver it again, and a slash command that cannot be read is answered kindly in its ack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import Signpost
from bot.slack import inbound
from bot.slack.front import UNREADABLE_COMMAND
from tests.bot.conftest import SlackHarness, serving
from tests.bot.log_stream import LogStream, logged_at
from tests.bot.slack.slack_requests import SlackUser, slack_events
from tests.factories import load_standard
from tests.fakes.slack_api import FakeSlackApi
from tests.hostile.strategies import json_junk

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

APP_TOKEN = "xapp-1-test-not-a-real-one"
NURSE = SlackUser("U0NURSE")
# What a malformed frame carries in these tests: none of it may reach a log line.
CARRIED = ("Amy", "Jones", "03/04/2014", "M1 2AB", APP_TOKEN)


@asynccontextmanager
async def linked(signpost: Signpost, fake: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    """The app with Socket Mode on, connected to the fake's WebSocket."""
    async with serving(signpost, fake, SLACK_APP_TOKEN=APP_TOKEN) as app:
        await fake.wait_until(lambda: bool(fake.sockets))
        yield app


async def settle(ready: Callable[[], bool], app: SlackHarness) -> None:
    """Wait (at most 5 s) until ``ready()`` holds, then for the work it started."""
    for _ in range(500):
        if ready():
            break
        await asyncio.sleep(0.01)
    await app.front.idle()


def command(app: SlackHarness, text: str, **changes: Any) -> dict[str, Any]:
    """A slash command payload as Slack sends it over Socket Mode; ``None`` in ``changes`` drops a field."""
    payload: dict[str, Any] = {**app.slack.command_body(NURSE, text), **changes}
    return {k: v for k, v in payload.items() if v is not None}


def envelope(payload: Any, envelope_id: str = "env-1", kind: str = "slash_commands") -> str:
    return json.dumps({"envelope_id": envelope_id, "type": kind, "accepts_response_payload": True, "payload": payload})


ACK = {"envelope_id": "env-1"}
ANSWERED = {"envelope_id": "env-1", "payload": {"response_type": "ephemeral", "text": UNREADABLE_COMMAND}}

# (what is sent, what Slack gets back, the one log line's reason)
MALFORMED: dict[str, tuple[Callable[[SlackHarness], str], list[dict[str, Any]], str]] = {
    "not-json": (lambda app: '{"envelope_id": "env-1", "payload": Amy Jones 03/04/2014', [], "bad_json"),
    "plain-text": (lambda app: "Amy Jones 03/04/2014 M1 2AB", [], "bad_json"),
    "json-not-an-object": (lambda app: '["env-1", "Amy Jones 03/04/2014"]', [], "not_an_object"),
    "no-envelope-id": (
        lambda app: json.dumps({"type": "slash_commands", "payload": command(app, "Amy Jones 03/04/2014")}),
        [],
        "bad_envelope_id",
    ),
    "payload-a-list": (lambda app: envelope(["Amy Jones", "03/04/2014"]), [ANSWERED], "payload_not_an_object"),
    "payload-missing": (
        lambda app: json.dumps({"envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True}),
        [ANSWERED],
        "payload_not_an_object",
    ),
    "unknown-type": (
        lambda app: envelope({"text": "Amy Jones 03/04/2014"}, kind="mystery"),
        [ACK],
        "unknown_envelope_type",
    ),
    "type-a-list": (
        lambda app: json.dumps({"envelope_id": "env-1", "type": ["slash_commands"], "payload": {"text": "Amy"}}),
        [ACK],
        "unknown_envelope_type",
    ),
    "command-without-user": (
        lambda app: envelope(command(app, "Amy Jones 03/04/2014", user_id=None)),
        [ANSWERED],
        "missing_identity",
    ),
    "command-without-command": (
        lambda app: envelope(command(app, "Amy Jones 03/04/2014", command=None)),
        [ANSWERED],
        "missing_field",
    ),
    "command-text-a-list": (
        lambda app: envelope(command(app, ["Amy Jones", "03/04/2014"])),  # type: ignore[arg-type]
        [ANSWERED],
        "bad_shape",
    ),
    "command-user-a-number": (
        lambda app: envelope(command(app, "Amy Jones 03/04/2014", user_id=5)),
        [ANSWERED],
        "missing_identity",
    ),
    # Slack gives only its own response_url: an answer posted to another would be posted nowhere.
    "command-response-url-not-slacks": (
        lambda app: envelope(command(app, "history", response_url="https://hooks.slack.com.example.net/x")),
        [ANSWERED],
        "foreign_response_url",
    ),
    "event-without-event": (
        lambda app: envelope({"type": "event_callback", "team_id": "T0001", "text": "Amy"}, kind="events_api"),
        [ACK],
        "missing_field",
    ),
    # Passes the checks a body over HTTP must pass, but Bolt cannot build its request from it.
    "bolt-cannot-read": (
        lambda app: envelope(
            {
                "type": "block_actions",
                "actions": [{"action_id": "approve", "value": "Amy Jones 03/04/2014"}],
                "user": {"id": NURSE.user_id},
                "team": {"id": NURSE.team_id},
                "response_urls": 5,
            },
            kind="interactive",
        ),
        [ACK],
        "TypeError",
    ),
}


async def sent_and_logged(
    app: SlackHarness, fake_slack: FakeSlackApi, frame: str, acks: int
) -> tuple[list[dict[str, Any]], str]:
    """Send one frame down the link; once ``acks`` frames came back and a line was logged, the
    lines logged at info and above and their text."""
    with logged_at("info") as log:
        await fake_slack.send_frame(frame)
        await settle(lambda: len(fake_slack.frames_back) >= acks and bool(_about_the_frame(log.lines())), app)
        return _about_the_frame(log.lines()), log.text


def _about_the_frame(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines the frame caused: not the one Bolt's look-up of the bot's own ids writes when the
    fake answered it later than its second (``AUTH_TEST_TIMEOUT``), which only a loaded host makes
    happen and which is asked again, unmarked, with the next request (tests/bot/slack/test_outage.py
    holds that behaviour itself)."""
    return [
        line
        for line in lines
        if not (
            line["event"] == "slack_api_failed"
            and line.get("method") == "auth.test"
            and line.get("error") == "TimeoutError"
        )
    ]


def refusals(log: LogStream) -> list[dict[str, Any]]:
    return [line for line in log.lines() if line["event"] == "slack_envelope_refused"]


# The malformed envelopes a person sent whose user and team (or enterprise) can still be read: each
# is audited once (usage, invalid), under that person, with nothing it carried. The others name no
# one Signpost could record, and are only logged.
ATTRIBUTABLE = frozenset(
    {"command-without-command", "command-text-a-list", "command-response-url-not-slacks", "bolt-cannot-read"}
)


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_socket_mode_frame_is_acked_when_it_can_be_with_one_log_line_and_nothing_it_carried(
    signpost: Signpost, fake_slack: FakeSlackApi, case: str
) -> None:
    """Each malformed frame: acked if it has an envelope id (a command it could not read answered
    kindly, in the ack), exactly one log line with a reason and no traceback, nothing of what it
    carried logged, nothing dispatched, audited once when it names its sender (``ATTRIBUTABLE``),
    and the link still serves the next envelope."""
    await load_standard(signpost)
    frame, answer, reason = MALFORMED[case]
    async with linked(signpost, fake_slack) as app:
        lines, text = await sent_and_logged(app, fake_slack, frame(app), len(answer))
        assert fake_slack.frames_back == answer
        assert [(line["event"], line.get("reason")) for line in lines] == [("slack_envelope_refused", reason)], text
        assert "Traceback" not in text and "exception" not in text
        for carried in CARRIED:
            assert carried not in text, carried
        assert [c.method for c in fake_slack.outbound()] == ["apps.connections.open"]
        audited = await slack_events(signpost)
        if case in ATTRIBUTABLE:
            [event] = audited
            assert (event.action, event.outcome, event.actor_id) == ("usage", "invalid", None)
            assert (event.tenant, event.user_id) == (NURSE.team_id, NURSE.user_id)
            clear = " ".join(str(getattr(event, name) or "") for name in ("detail", "channel", "subject_refs"))
            for carried in CARRIED:
                assert carried not in clear, carried
        else:
            assert audited == []
        # The connection is still read: a well-formed command after it is answered as usual.
        await app.link("P002", NURSE)
        await fake_slack.send_frame(envelope(command(app, "help"), envelope_id="env-2"))
        await settle(lambda: len(fake_slack.frames_back) > len(answer), app)
        assert fake_slack.frames_back[len(answer) :] == [{"envelope_id": "env-2"}]
        assert [e.action for e in await slack_events(signpost)][len(audited) :] == ["help"]


async def test_an_unreadable_envelope_from_a_linked_practitioner_is_audited_under_their_practitioner_id(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """The Socket Mode link is the app's own authenticated connection: an envelope refused unread
    that names a linked identity is recorded with that practitioner as its actor, so a query by
    practitioner finds it (an unlinked identity's has none: see the test above)."""
    await load_standard(signpost)
    async with linked(signpost, fake_slack) as app:
        await app.link("P002", NURSE)
        frame, answer, _ = MALFORMED["command-text-a-list"]
        await sent_and_logged(app, fake_slack, frame(app), len(answer))
        [event] = await slack_events(signpost)
        assert (event.action, event.outcome, event.user_id, event.actor_id) == (
            "usage",
            "invalid",
            NURSE.user_id,
            "P002",
        )


async def test_slacks_hello_and_a_well_formed_command_over_the_link_log_no_refusal(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """The frames Slack sends without an envelope id (``hello``) are not refusals, and a command is
    acked on its envelope and answered privately, as over HTTP."""
    await load_standard(signpost)
    async with linked(signpost, fake_slack) as app:
        await app.link("P002", NURSE)
        with logged_at("info") as log:
            await fake_slack.send_frame(json.dumps({"type": "hello", "num_connections": 1}))
            await fake_slack.send_frame(envelope(command(app, "help")))
            await settle(lambda: bool(fake_slack.frames_back) and bool(fake_slack.of("response_url")), app)
        assert fake_slack.frames_back == [ACK]
        [posted] = fake_slack.of("response_url")
        assert posted.body["response_type"] == "ephemeral" and "who else is working" in posted.body["text"]
        assert refusals(log) == [] and "Traceback" not in log.text


# Well formed, but nothing in Signpost listens for them: (the envelope, what Slack gets back).
UNHANDLED: dict[str, tuple[Callable[[SlackHarness], str], list[dict[str, Any]]]] = {
    "another-command": (lambda app: envelope(command(app, "Amy Jones 03/04/2014", command="/elsewhere")), [ANSWERED]),
    "an-event-not-subscribed": (
        lambda app: envelope(
            {
                "type": "event_callback",
                "team_id": NURSE.team_id,
                "event": {"type": "reaction_added", "user": NURSE.user_id, "reaction": "Amy"},
            },
            kind="events_api",
        ),
        [ACK],
    ),
}


@pytest.mark.parametrize("case", sorted(UNHANDLED))
async def test_a_well_formed_envelope_no_listener_takes_is_acked_with_one_log_line(
    signpost: Signpost, fake_slack: FakeSlackApi, case: str
) -> None:
    """Bolt answers an envelope no listener takes with a 404, and its own Socket Mode handler then
    never acked it (Slack delivered it again, and a command's sender waited for nothing). It is
    acked, a command kindly and privately; one log line (Bolt's, without the body); a person's
    request (here another slash command) audited once, as one refused unread is, an event not."""
    await load_standard(signpost)
    frame, answer = UNHANDLED[case]
    async with linked(signpost, fake_slack) as app:
        lines, text = await sent_and_logged(app, fake_slack, frame(app), len(answer))
        assert fake_slack.frames_back == answer
        assert [line["event"] for line in lines] == ["slack_request_unhandled"], text
        assert "Traceback" not in text
        for carried in CARRIED:
            assert carried not in text, carried
        audited = [(e.action, e.outcome, e.detail, e.user_id, e.actor_id) for e in await slack_events(signpost)]
        if case == "another-command":
            assert audited == [("usage", "invalid", "unreadable command", NURSE.user_id, None)]
        else:
            assert audited == []


KINDS = st.sampled_from(["slash_commands", "interactive", "events_api", "hello", "disconnect"])
FIELDS = st.sampled_from(["type", "command", "text", "user_id", "team_id", "user", "team", "event", "actions", "view"])


# Pure parsing with no clock in it: a loaded machine must not fail it (Hypothesis' deadline and
# too-slow check measure the machine, not the code, when it runs outside the hostile profile).
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=st.fixed_dictionaries(
        {},
        optional={
            "envelope_id": st.one_of(st.just("env-1"), json_junk),
            "type": st.one_of(KINDS, json_junk),
            "accepts_response_payload": json_junk,
            "payload": st.one_of(json_junk, st.dictionaries(FIELDS, json_junk)),
        },
    )
)
def test_reading_any_json_envelope_takes_it_or_refuses_it_and_never_raises_anything_else(frame: dict[str, Any]) -> None:
    """An exception other than a refusal would escape into the SDK's loop, which logs it with a traceback."""
    with suppress(inbound.Refused):
        inbound.check_envelope(inbound.read_frame(json.dumps(frame)))


async def test_a_refused_socket_mode_connection_logs_no_ticket(signpost: Signpost, fake_slack: FakeSlackApi) -> None:
    """Slack's Socket Mode URL carries a one-time ticket, a credential for the app's connection.
    When the connection to it is refused (an expired ticket, a proxy in the way), the SDK logs
    "Failed to connect (error: …)" with the aiohttp error's text, which quotes the whole URL: the
    ticket reached the log. The line is still there (an operator must see the link is down), without
    the URL."""
    fake_slack.ticket = "TICKET-7f3c2a9e-secret"
    fake_slack.refuse_links = 1
    with logged_at("info") as log:
        async with serving(signpost, fake_slack, SLACK_APP_TOKEN=APP_TOKEN):
            await fake_slack.wait_until(lambda: fake_slack.links_refused == 1)
            for _ in range(500):  # the SDK logs just after the refusal (then waits 10 s to try again)
                if any(line.get("level") == "error" for line in log.lines()):
                    break
                await asyncio.sleep(0.01)
    failed = [line for line in log.lines() if line.get("level") == "error"]
    assert [line["event"].split(" (")[0] for line in failed] == ["Failed to connect"], log.text
    assert "TICKET-7f3c2a9e-secret" not in log.text, failed
    assert APP_TOKEN not in log.text


async def test_a_refused_request_for_the_socket_mode_url_logs_slacks_code_not_what_came_back(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """``apps.connections.open`` answered ``ok: false`` with an "error" that is no Slack code (an
    egress proxy's text, anything echoed back): the retry's warning repeated it whole. It says
    ``unrecognised_error`` as every other Web API failure does; a code of Slack's shape is kept."""
    echoed = f"Amy Jones 03/04/2014 M1 2AB refused for {APP_TOKEN}"
    fake_slack.fail("apps.connections.open", error=echoed)
    fake_slack.fail("apps.connections.open", error="invalid_auth")
    with logged_at("info") as log:
        async with serving(signpost, fake_slack, SLACK_APP_TOKEN=APP_TOKEN) as app:
            app.front.socket_retry_first = app.front.socket_retry_max = 0.01
            await fake_slack.wait_until(lambda: bool(fake_slack.sockets))
    said = [line["error"] for line in log.lines() if line["event"] == "slack_socket_mode_unreachable"]
    assert said == ["unrecognised_error", "invalid_auth"], log.text
    for carried in CARRIED:
        assert carried not in log.text, carried


async def test_a_reconnection_refused_logs_nothing_the_refusal_carried(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """Slack closes a Socket Mode link now and then; the SDK asks for a new URL itself, and when
    ``apps.connections.open`` refuses it logged "Failed to retrieve WSS URL: {e}" (no traceback:
    the SlackApiError's text, the whole answer, inside the line), then the same again as it failed
    to receive. Whatever came back in the answer (an egress proxy's text, anything echoed) was in
    the log. The lines are still there, without the error's text."""
    echoed = f"Amy Jones 03/04/2014 M1 2AB refused for {APP_TOKEN}"
    async with linked(signpost, fake_slack):
        fake_slack.fail("apps.connections.open", error=echoed, times=5)
        with logged_at("info") as log:
            await fake_slack.sockets[-1].close()
            for _ in range(500):
                if any(line.get("level") == "error" for line in log.lines()):
                    break
                await asyncio.sleep(0.01)
    failed = [line["event"] for line in log.lines() if line.get("level") == "error"]
    assert failed and failed[0].startswith("Failed to retrieve WSS URL: "), log.text
    for carried in CARRIED:
        assert carried not in log.text, carried
