"""Hostile activities with a valid Bot Framework token (issue 14, defects 4, 5 and 6).

A valid token proves the Bot Framework sent an activity, not what is inside it. Malformed
activities are answered 400 and logged without any of their values; activities from another
channel or an unconfigured tenant are refused 403 and audited; the bot's outbound token goes only
to the exact, signed serviceUrl. Nothing is processed or sent in any of these cases.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.app import Signpost
from store.delivery.notices import pending
from tests.bot.teams.teams_support import (
    BOT_ID,
    PRIYA,
    TeamsApp,
    TeamsUser,
    invoke,
    message,
    teams_events,
    texts_of,
)
from tests.bot.teams.teams_tokens import Signer
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector
from tests.spread import spread

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

# Amy's identity from tests/factories.py, as someone might paste it into a field.
IDENTITY = "Amy Jones 03/04/2014 M1 2AB"
IDENTITY_PARTS = ("Amy", "Jones", "03/04/2014", "2014", "M1 2AB")
RANDOM_ID = re.compile(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b")
OTHER_TENANT = "0f0f0f0f-1111-2222-3333-444444444444"
OUTSIDER = TeamsUser("29:1outsider", "00000000-0000-4000-8000-000000007777", "Olu Outsider", tenant=OTHER_TENANT)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda doc: {**doc, key: value}


# A person's message whose content cannot be read, from someone who can be answered: shown help,
# and the help audited (once), with none of what it carried logged.
UNREADABLE_MESSAGES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "text is a list": _set("text", [IDENTITY]),
    "attachments is a string": _set("attachments", IDENTITY),
    "a mention of the bot with no text or name": _set(
        "entities", [{"type": "mention", "mentioned": {"id": BOT_ID}, "x": IDENTITY}]
    ),
}
MALFORMED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "from is null": _set("from", None),
    "from is a string": _set("from", IDENTITY),
    "type is a number": _set("type", 5),
    "timestamp is not a time": _set("timestamp", IDENTITY),
    "conversation is missing": lambda doc: {k: v for k, v in doc.items() if k != "conversation"},
    "channelData tenant is a list": _set("channelData", {"tenant": [IDENTITY]}),
    # Past the SDK's model, but not an activity Signpost can answer: these failed inside the turn
    # (a traceback, and the connector's refusal quoting the id in the SDK's log line).
    "recipient without an id": _set("recipient", {"x": IDENTITY}),
    "id that is a URL path": _set("id", IDENTITY),
    "id that climbs the URL": _set("id", "../../a:1other/activities/x"),
    "replyToId with a query": _set("replyToId", "x?" + IDENTITY),
    "conversation id that is a URL path": lambda doc: {**doc, "conversation": {**doc["conversation"], "id": IDENTITY}},
    # Ids the audit cannot keep (PostgreSQL refuses a NUL, and an id past its 128 characters): the
    # command failed inside the turn with a traceback, or its audit write failed and it went unanswered.
    # (An AAD object id that is no GUID, a NUL in it or too long among them, is no AAD object id:
    # tests/bot/teams/test_unidentified.py.)
    "conversation tenant with a NUL": lambda doc: {
        **doc,
        "conversation": {**doc["conversation"], "tenantId": doc["conversation"]["tenantId"] + "\x00"},
    },
    "channelData tenant with a NUL": _set("channelData", {"tenant": {"id": "\x00" + IDENTITY}}),
    "conversation tenant longer than the audit keeps": lambda doc: {
        **doc,
        "conversation": {**doc["conversation"], "tenantId": doc["conversation"]["tenantId"] + "a" * 129},
    },
    # The SDK puts these ids in the connector's URL: past any server's request line, the reply failed.
    "an activity id longer than a URL takes": _set("id", "f" * 20_000),
    "a conversation id longer than a URL takes": lambda doc: {
        **doc,
        "conversation": {**doc["conversation"], "id": "a:" + "x" * 20_000},
    },
}


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event and stdlib record (with tracebacks) of the test, for leak checks."""
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        yield events


def assert_clean_logs(events: list[MutableMapping[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    text = repr(events) + caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "Traceback" not in text and not any(r.exc_info for r in caplog.records)
    # A random id (a correlation id's 32 hex digits) holds "2014" about once in 2,000 runs: not a year.
    text = RANDOM_ID.sub("<id>", text)
    for part in IDENTITY_PARTS:
        assert part not in text, f"{part!r} reached a log line"


async def nothing_sent_or_audited(signpost: Signpost, connector: FakeConnector) -> None:
    assert connector.sent == []
    assert await teams_events(signpost) == []


@spread("break_it", MALFORMED)
async def test_a_malformed_activity_with_a_valid_token_is_400_and_no_value_is_logged(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logged: list[MutableMapping[str, Any]],
    caplog: pytest.LogCaptureFixture,
    break_it: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    activity = break_it(message(PRIYA, "history", connector.url))
    response = await teams_secured.post(activity, bearer(signer.token(connector.url)))
    assert response.status == 400
    assert IDENTITY not in await response.text()
    assert any(e["event"] == "teams_activity_invalid" for e in logged)
    assert_clean_logs(logged, caplog)
    await nothing_sent_or_audited(loaded, connector)


@spread("break_it", UNREADABLE_MESSAGES)
async def test_a_message_whose_content_cannot_be_read_is_answered_with_help_and_audited_once(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logged: list[MutableMapping[str, Any]],
    caplog: pytest.LogCaptureFixture,
    break_it: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """Answered 400 with nothing sent or audited, though its sender can be answered: read as a
    message with nothing in it, they are shown help in their 1:1 chat and the help is audited."""
    activity = break_it(message(PRIYA, "history", connector.url))
    response = await teams_secured.post(activity, bearer(signer.token(connector.url)))
    assert response.status in (200, 202)
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == ["teams_message_unreadable"]
    assert_clean_logs(logged, caplog)
    [event] = await teams_events(loaded)
    assert (event.action, event.user_id, event.actor_id) == ("help", PRIYA.aad, "P002")
    [reply] = connector.sent
    assert reply.conversation_id == PRIYA.personal_conversation
    assert reply.card is not None and IDENTITY not in json.dumps(reply.body)


BAD_INVOKE_VALUES: dict[str, Any] = {
    "no value": None,
    "an empty value": {},
    "an action that is a string": {"action": IDENTITY},
    "an action of the wrong types": {"action": {"type": "Action.Execute", "verb": 5, "data": IDENTITY}},
    "a Submit action": {"action": {"type": "Action.Submit", "verb": "approve", "data": {}}},
}


@spread("value", BAD_INVOKE_VALUES)
async def test_a_card_invoke_whose_value_cannot_be_read_is_answered_kindly_and_audited_once(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logged: list[MutableMapping[str, Any]],
    caplog: pytest.LogCaptureFixture,
    value: Any,
) -> None:
    """It failed serialising an exception into the invoke response (a 500 and a traceback), then was
    a 400 with no event, though its token, channel and tenant were checked and it names who clicked.
    Now it is a click on a button Signpost does not know: the card replaced by a kind line, one
    event (usage, invalid) under the practitioner, one log line, none of what it carried."""
    activity = invoke(PRIYA, {"verb": "approve", "data": {}}, connector.url)
    if value is None:
        del activity["value"]
    else:
        activity["value"] = value
    response = await teams_secured.post(activity, bearer(signer.token(connector.url)))
    assert response.status == 200
    doc = await response.json()
    assert "no longer available" in texts_of(doc["value"]) and IDENTITY not in json.dumps(doc)
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == ["teams_unknown_button"]
    assert_clean_logs(logged, caplog)
    assert connector.sent == []
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.detail) == ("usage", "invalid", "unreadable button")
    assert (event.user_id, event.actor_id) == (PRIYA.aad, "P002")


@pytest.mark.parametrize("name", ["task/fetch", "task/submit"])
async def test_a_dialog_invoke_whose_value_is_not_an_object_gets_a_kind_dialog_and_one_event(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logged: list[MutableMapping[str, Any]],
    caplog: pytest.LogCaptureFixture,
    name: str,
) -> None:
    """A dialog's value that is no object was a 400 with no event: answered in the dialog now, as a
    dialog with foreign data is, and audited once."""
    activity = invoke(PRIYA, {"verb": "relay_read", "data": {}}, connector.url)
    activity.update(name=name, value=[IDENTITY])
    response = await teams_secured.post(activity, bearer(signer.token(connector.url)))
    assert response.status == 200
    card = (await response.json())["task"]["value"]["card"]["content"]
    assert "no longer available" in texts_of(card) and IDENTITY not in json.dumps(card)
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == ["teams_unknown_button"]
    assert_clean_logs(logged, caplog)
    assert connector.sent == []
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.user_id, event.actor_id) == ("usage", "invalid", PRIYA.aad, "P002")


async def test_a_card_invoke_whose_value_cannot_be_read_and_names_no_one_is_400_in_one_line(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logged: list[MutableMapping[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no account in 'from' there is no one to record or answer: 400, one line, nothing done."""
    activity = {**invoke(PRIYA, {"verb": "approve", "data": {}}, connector.url), "from": {}, "value": IDENTITY}
    response = await teams_secured.post(activity, bearer(signer.token(connector.url)))
    assert response.status == 400
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == ["teams_activity_invalid"]
    assert_clean_logs(logged, caplog)
    await nothing_sent_or_audited(loaded, connector)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"text": "\xff\xfe"}', b"[]", b"null", b"[" * 100_000 + b"]" * 100_000],
    ids=["broken", "invalid utf-8", "a list", "null", "deeply nested"],
)
async def test_a_body_that_is_not_an_activity_is_400(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    logged: list[MutableMapping[str, Any]],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
) -> None:
    headers = {**bearer(signer.token(connector.url)), "Content-Type": "application/json"}
    response = await teams_secured.client.post("/api/messages", data=body, headers=headers)
    assert response.status == 400
    assert_clean_logs(logged, caplog)
    await nothing_sent_or_audited(loaded, connector)


@spread("channel", ["webchat", "directline", "emulator", "slack", "MSTEAMS", None])
async def test_another_channel_carrying_a_practitioners_identity_is_refused_and_audited(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, channel: str | None
) -> None:
    """Web Chat or Direct Line can put any AAD id in 'from': Priya's history must not be shown."""
    activity = {**message(PRIYA, "history", connector.url), "channelId": channel}
    response = await teams_secured.post(activity, bearer(signer.token(connector.url)))
    assert response.status == 403
    assert connector.sent == []
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.detail) == ("untrusted_source", "refused", "channel not msteams")
    assert (event.tenant, event.user_id, event.actor_id) == (PRIYA.tenant, PRIYA.aad, None)


async def test_a_tenant_that_is_not_configured_cannot_register_or_notify(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """Someone in another organisation's tenant is refused before 'register' reaches a handler."""
    async with loaded.ctx.db.read() as session:
        before = len(await pending(session, loaded.ctx.keys, loaded.ctx.clock.now()))
    response = await teams_secured.post(
        message(OUTSIDER, "register P003", connector.url), bearer(signer.token(connector.url))
    )
    assert response.status == 403
    assert connector.sent == []
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.detail) == ("untrusted_source", "refused", "tenant not configured")
    assert (event.tenant, event.user_id) == (OTHER_TENANT, OUTSIDER.aad)
    async with loaded.ctx.db.read() as session:
        assert len(await pending(session, loaded.ctx.keys, loaded.ctx.clock.now())) == before  # no duty manager told


async def test_a_configured_tenant_in_one_field_and_another_in_the_other_is_refused(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """Every tenant an activity names must be configured, not just the one the bot would use."""
    activity = message(PRIYA, AMY, connector.url)
    activity["channelData"] = {"tenant": {"id": OTHER_TENANT}}
    response = await teams_secured.post(activity, bearer(signer.token(connector.url)))
    assert response.status == 403
    assert connector.sent == []
    assert [e.detail for e in await teams_events(loaded)] == ["tenant not configured"]


# A refused activity is audited under the identity it claims; what it claims is the sender's word.
TYPED_NAME = "Xanthippe Quorlby 22/07/2013 QX9 8ZZ"
TYPED_PARTS = ("Amy", "Jones", "03/04/2014", "M1 2AB", "Xanthippe", "Quorlby", "22/07/2013", "QX9")
REAL_TEAMS_ID = "29:1GcS4EyB_oSI8A88XmWBN7NbFnRHNQxFRsJBaqfQH-pkHENqTD3BuWg4w3GMeVWcxX_a1SdVB8Pd7WnYmFPn3Jw"


def _other_channel(url: str) -> dict[str, Any]:
    activity = {**message(PRIYA, "hello", url), "channelId": "directline"}
    activity["from"] = {"id": TYPED_NAME, "name": TYPED_NAME, "aadObjectId": IDENTITY}
    return activity


def _other_tenant(url: str) -> dict[str, Any]:
    activity = message(PRIYA, "hello", url)
    activity["conversation"]["tenantId"] = "Amy Jones 03/04/2014"
    activity["channelData"] = {"tenant": {"id": "Amy Jones 03/04/2014"}}
    return activity


def _no_aad(teams_id: str) -> Callable[[str], dict[str, Any]]:
    def build(url: str) -> dict[str, Any]:
        activity = message(PRIYA, "hello", url)
        activity["from"] = {"id": teams_id, "name": "x"}
        return activity

    return build


# (activity, status, the (tenant, user_id) its event is stored under)
CLAIMED: dict[str, tuple[Callable[[str], dict[str, Any]], int, tuple[str, str]]] = {
    "another channel, a name as from.id and aadObjectId": (_other_channel, 403, (PRIYA.tenant, "unrecognised")),
    "a name as the tenant": (_other_tenant, 403, ("unrecognised", PRIYA.aad)),
    "no AAD object id, a name after 29:": (_no_aad("29:Amy Jones 03/04/2014"), 202, (PRIYA.tenant, "unrecognised")),
    "no AAD object id, a real Teams account id": (_no_aad(REAL_TEAMS_ID), 202, (PRIYA.tenant, REAL_TEAMS_ID)),
}


@spread("case", list(CLAIMED))
async def test_a_refused_activity_is_audited_under_no_identity_its_sender_typed(
    case: str, teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """Another channel (403), a tenant not configured (403), no Microsoft 365 id (202): the claimed
    from.id, aadObjectId or tenant was written in the append-only audit as sent. A value not shaped
    like an id is stored as "unrecognised"; a genuine one (a GUID, a Teams account id) exactly."""
    build, status, under = CLAIMED[case]
    response = await teams_secured.post(build(connector.url), bearer(signer.token(connector.url)))
    assert response.status == status
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.actor_id) == ("untrusted_source", "refused", None)
    assert (event.tenant, event.user_id) == under
    stored = repr({k: v for k, v in vars(event).items() if not k.startswith("_")})
    assert [part for part in TYPED_PARTS if part in stored] == []


async def test_the_signed_host_on_another_port_gets_nothing(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """Same host, other port: our outbound token must not be sent there."""
    other = await FakeConnector().start()
    try:
        assert other.url != connector.url
        response = await teams_secured.post(message(PRIYA, AMY, other.url), bearer(signer.token(connector.url)))
        assert response.status == 401
        assert other.sent == []
    finally:
        await other.close()
    await nothing_sent_or_audited(loaded, connector)


async def test_the_signed_url_over_another_scheme_gets_nothing(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """The token says https; the activity's http (same host and port) is not the signed URL."""
    signed = connector.url.replace("http://", "https://", 1)
    response = await teams_secured.post(message(PRIYA, AMY, connector.url), bearer(signer.token(signed)))
    assert response.status == 401
    await nothing_sent_or_audited(loaded, connector)


async def test_a_plain_http_service_url_is_refused_even_when_signed(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """Outside loopback (tests), the serviceUrl must be https even if the claim matches."""
    url = "http://smba.trafficmanager.net/uk/"
    response = await teams_secured.post(message(PRIYA, AMY, url), bearer(signer.token(url)))
    assert response.status == 401
    await nothing_sent_or_audited(loaded, connector)


def test_service_url_comparison_is_exact() -> None:
    """Scheme, host, port and path; case of the host and a trailing slash do not matter."""
    from bot.teams.front import _is_signed_service_url as same

    signed = "https://smba.trafficmanager.net/uk/"
    assert same(signed, "https://SMBA.trafficmanager.net/uk")
    assert same(signed, "https://smba.trafficmanager.net:443/uk/")
    assert not same(signed, "https://smba.trafficmanager.net:8443/uk/")
    assert not same(signed, "http://smba.trafficmanager.net/uk/")
    assert not same(signed, "https://smba.trafficmanager.net/amer/")
    assert not same(signed, "https://smba.trafficmanager.net.attacker.example/uk/")
    assert not same(signed, None) and not same(None, signed) and not same(signed, json.dumps([signed]))


FOREIGN_DIALOG_DATA: dict[str, Any] = {
    "no data": {},
    "data not an object": {"data": "relay 1"},
    "not ours": {"data": {"msteams": {"type": "task/fetch"}, "verb": "relay_read"}},
    "no such message": {
        "data": {"signpost": 1, "verb": "relay_read", "button": {"action_id": "relay_read", "command": "relay 9999"}}
    },
    "garbled command": {
        "data": {"signpost": 1, "verb": "relay_read", "button": {"action_id": "relay_read", "command": IDENTITY}}
    },
}


@pytest.mark.parametrize("name", ["task/fetch", "task/submit"])
@spread("value", FOREIGN_DIALOG_DATA)
async def test_a_dialog_invoke_with_foreign_data_gets_a_kind_dialog_and_nothing_in_the_chat(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    logged: list[MutableMapping[str, Any]],
    caplog: pytest.LogCaptureFixture,
    name: str,
    value: dict[str, Any],
) -> None:
    """A dialog is answered in the dialog, whatever its data: never a 5xx, never a card in the chat."""
    activity = invoke(PRIYA, {"verb": "relay_read", "data": {}}, connector.url)
    activity.update(name=name, value=value)
    response = await teams_secured.post(activity, bearer(signer.token(connector.url)))
    assert response.status == 200
    doc = await response.json()
    assert doc["task"]["type"] == "continue"
    card = doc["task"]["value"]["card"]["content"]
    assert card["type"] == "AdaptiveCard" and "Sorry, something went wrong" not in json.dumps(card)
    assert connector.sent == []
    assert_clean_logs(logged, caplog)
