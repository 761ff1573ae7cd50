"""What the log holds for Teams requests Signpost does not act on: one line each, whatever the
reason, through the real log path (bot.logging.configure) with real signed activities.

Unused invokes are answered 200 (the SDK answered 501), an unreadable card action is audited as
Slack's is, ignored activity types write a line at most, and a forged token is one line (the
SDK's validator said it too)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bot.app import Signpost
from tests.bot.log_stream import logged_at
from tests.bot.teams.teams_support import (
    PRIYA,
    STRANGER,
    TeamsApp,
    _base,
    invoke,
    message,
    personal,
    teams_events,
    texts_of,
)
from tests.bot.teams.teams_tokens import Signer
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unused_invoke(name: str, value: dict[str, Any], service_url: str) -> dict[str, Any]:
    doc = _base(PRIYA, service_url, personal(PRIYA))
    doc.update(type="invoke", name=name, value=value)
    return doc


UNUSED: dict[str, dict[str, Any]] = {
    "config/fetch": {"data": {}, "context": {"theme": "default"}},
    "composeExtension/query": {"commandId": "search", "parameters": [{"name": "q", "value": "Amy Jones"}]},
    "signin/verifyState": {"state": "123456"},
    "healthCheck": {},
    "someone/elses": {"x": "Amy Jones 03/04/2014"},
}


@pytest.mark.parametrize("name", list(UNUSED))
async def test_an_invoke_signpost_does_not_use_is_answered_200_in_one_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, name: str
) -> None:
    """The SDK answered these 501 with nothing logged: a server error for a well-formed,
    authenticated request. Nothing is sent, run or audited; the line names the invoke only when
    it is one Teams defines, and none of what it carried."""
    body = unused_invoke(name, UNUSED[name], connector.url)
    with logged_at("info") as log:
        response = await teams_secured.post(body, bearer(signer.token(connector.url)))
    assert response.status == 200
    [line] = log.lines()
    assert line["event"] == "teams_invoke_unused"
    assert line["name"] == (name if name != "someone/elses" else "other")
    assert "Amy" not in log.written and "123456" not in log.written
    assert connector.sent == [] and await teams_events(loaded) == []


@pytest.mark.parametrize(
    "action",
    [{"verb": "junk", "data": {}}, {"verb": "approve", "data": {"x": 1}}],
    ids=["junk", "foreign data"],
)
async def test_an_unreadable_card_action_is_answered_audited_and_logged_once(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, action: dict[str, Any]
) -> None:
    """As Slack's unreadable button: a ``usage`` event, invalid, for the person who clicked (their
    practitioner id too: the activity's token was verified), with none of what the action carried;
    one log line."""
    with logged_at("info") as log:
        response = await teams_secured.post(invoke(PRIYA, action, connector.url), bearer(signer.token(connector.url)))
    assert response.status == 200
    card = (await response.json())["value"]
    assert "no longer available" in texts_of(card)
    assert log.events() == ["teams_unknown_button"]
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.user_id, event.channel) == ("usage", "invalid", PRIYA.aad, "button")
    assert event.actor_id == "P002"


async def test_an_unreadable_action_from_someone_not_linked_is_audited_too(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """Identified by Teams but not registered: still one audit event and one line."""
    with logged_at("info") as log:
        junk = invoke(STRANGER, {"verb": "junk", "data": {}}, connector.url)
        response = await teams_secured.post(junk, bearer(signer.token(connector.url)))
    assert response.status == 200
    assert log.events() == ["teams_unknown_button"]
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.user_id, event.actor_id) == ("usage", "invalid", STRANGER.aad, None)


IGNORED = {
    "typing": "typing",
    "event": "event",
    "messageReaction": "messageReaction",
    "TYPING": "typing",  # the Bot Framework's types are not case-sensitive
    "somethingNew": "unknown",
    "Amy Jones 03/04/2014": "unknown",  # a made-up type is the sender's text: never logged
}


@pytest.mark.parametrize("kind", list(IGNORED))
async def test_an_activity_type_signpost_ignores_is_2xx_in_one_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, kind: str
) -> None:
    """Nothing was logged at all, so an activity of a made-up type left no trace. One line says it
    was ignored, naming its type only when it is one the Bot Framework has; nothing run or audited."""
    doc = {**_base(PRIYA, connector.url, personal(PRIYA)), "type": kind, "id": uuid.uuid4().hex}
    if kind == "event":
        doc["name"] = "application/vnd.microsoft.meetingStart"
    with logged_at("debug") as log:
        response = await teams_secured.post(doc, bearer(signer.token(connector.url)))
    assert 200 <= response.status < 300
    [line] = log.lines()
    assert (line["event"], line["type"]) == ("teams_activity_ignored", IGNORED[kind]), log.text
    assert "Amy" not in log.written and "something" not in log.written
    assert connector.sent == [] and await teams_events(loaded) == []


async def test_an_activity_of_a_type_the_bot_framework_does_not_have_is_seen_at_info(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """At the log's usual level: a reaction or typing is routine (debug), a type nobody defines is not."""
    doc = {**_base(PRIYA, connector.url, personal(PRIYA)), "type": "somethingNew", "id": uuid.uuid4().hex}
    with logged_at("info") as log:
        response = await teams_secured.post(doc, bearer(signer.token(connector.url)))
    assert response.status == 202
    assert [(line["event"], line["level"], line["type"]) for line in log.lines()] == [
        ("teams_activity_ignored", "info", "unknown")
    ]


REQUEST = {
    "verb": "request_access",
    "data": {
        "signpost": 1,
        "verb": "request_access",
        "button": {
            "action_id": "request_access",
            "label": "Request access",
            "command": "request 9990000050",
            "style": "primary",
            "input": {"name": "purpose", "label": "Purpose", "required": True, "max_length": 500},
        },
    },
}


@pytest.mark.parametrize(
    "typed",
    [None, ["Amy Jones 03/04/2014"], "  ", "Amy Jones M1 2AB " * 40],
    ids=["missing", "a list", "blank", "too long"],
)
async def test_a_form_sent_without_its_input_is_audited_and_logged_once(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    typed: object,
) -> None:
    """A request's form whose purpose is missing, not text, blank or too long is asked again and
    audited (``usage``, invalid) as Slack's is, and is one log line like every other request,
    naming none of what was typed nor the record the button was for."""
    with logged_at("info") as log:
        click = invoke(PRIYA, REQUEST, connector.url)
        if typed is not None:
            click["value"]["action"]["data"]["purpose"] = typed
        response = await teams_secured.post(click, bearer(signer.token(connector.url)))
    assert response.status == 200
    assert "Request access" in str((await response.json())["value"])  # the form, asked again
    [line] = log.lines()
    assert line["event"] == "teams_input_missing"
    for private in ("Amy", "03/04/2014", "M1 2AB", "9990000050", "999 000 0050"):
        assert private not in log.written, private
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.detail, event.actor_id) == (
        "usage",
        "invalid",
        "input missing or too long",
        "P002",
    )


async def test_a_message_in_anonymous_mode_adds_no_library_warning_to_its_line(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Without an app id (anonymous development mode) the Agents SDK warned "App ID is not
    provided" with every activity: a second line per request, saying what Signpost says once at
    start. A message is its command's one line."""
    with logged_at("info") as log:
        response = await teams.post(message(PRIYA, "help", connector.url))
    assert response.status == 202
    assert log.events() == ["command"], log.lines()
