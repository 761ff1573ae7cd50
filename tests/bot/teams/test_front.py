"""Teams front end: real Activity JSON posted to the running app; replies seen by a fake connector."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.teams.front import ERROR_TEXT, NO_AAD_ID, NO_PRIVATE_CHAT, TEAMS_KEY
from store.tables.people import TeamsConversation
from tests.access_helpers import notices
from tests.bot.log_stream import LogStream, logged_at
from tests.bot.teams.teams_support import (
    BOT_ID,
    CHANNEL_CONVERSATION,
    PRIYA,
    STRANGER,
    TeamsApp,
    actions_of,
    invoke,
    mention,
    message,
    teams_events,
    texts_of,
)
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


async def test_signposts_are_answered_as_a_card_in_the_personal_chat(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A reference sent in the 1:1 chat comes back there as one card, a container per practitioner."""
    response = await teams.post(message(PRIYA, AMY, connector.url))
    assert response.status == 202
    [reply] = connector.sent
    assert reply.conversation_id == PRIYA.personal_conversation
    card = reply.card
    assert card is not None and card["type"] == "AdaptiveCard"
    containers = [e for e in card["body"] if e["type"] == "Container"]
    assert len(containers) == 3
    text = texts_of(card)
    for name in ("Sam Carter", "Priya Shah", "Tom Reed"):
        assert name in text
    assert "999 000 0018" in text
    [event] = await teams_events(loaded)
    assert (event.platform, event.tenant, event.user_id) == ("teams", PRIYA.tenant, PRIYA.aad)
    assert (event.actor_id, event.channel, event.action, event.outcome) == (
        "P002",
        "direct",
        "lookup",
        "answered",
    )


async def test_channel_mention_is_answered_privately_in_a_new_personal_chat(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """In a channel the bot only says it replied privately; the signposts go to a 1:1 chat it opens."""
    response = await teams.post(mention(PRIYA, AMY, connector.url))
    assert response.status == 202
    [created] = connector.creations()
    assert created.body["members"] == [{"id": PRIYA.teams_id}]
    assert created.body["tenantId"] == PRIYA.tenant and created.body["isGroup"] is False
    assert created.body["bot"]["id"] == BOT_ID
    in_channel = connector.messages_in(CHANNEL_CONVERSATION)
    assert [m.text for m in in_channel] == ["I've sent you the answer privately."]
    assert in_channel[0].card is None and not in_channel[0].body.get("attachments")
    private = [s for s in connector.sent if s.conversation_id.startswith("a:personal-")]
    assert len(private) == 1 and private[0].card is not None
    assert "Sam Carter" in texts_of(private[0].card)
    [event] = await teams_events(loaded)
    assert (event.channel, event.action, event.actor_id) == ("channel", "lookup", "P002")
    # The opened chat is remembered for later answers and notices.
    async with loaded.ctx.db.read() as session:
        [row] = (await session.execute(select(TeamsConversation))).scalars()
    assert (row.tenant, row.user_id) == (PRIYA.tenant, PRIYA.aad)
    assert created.body and row.reference.count(private[0].conversation_id) == 1


async def test_a_note_the_channel_refuses_after_a_private_answer_brings_no_apology(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The answer reached the 1:1 chat; the channel's "sent privately" note is throttled (429). The
    channel is not told "something went wrong" (the person would search again, a second lookup): one
    warning line, and the lookup stays audited as answered."""
    connector.throttled_conversations.add(CHANNEL_CONVERSATION)
    with logged_at("info") as log:
        response = await teams.post(mention(PRIYA, AMY, connector.url))
    assert response.status == 202
    private = [s for s in connector.sent if s.conversation_id.startswith("a:personal-")]
    assert len(private) == 1 and private[0].card is not None and "Sam Carter" in texts_of(private[0].card)
    in_channel = connector.messages_in(CHANNEL_CONVERSATION)
    assert [m.text for m in in_channel] == ["I've sent you the answer privately."], "only the one throttled note"
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome) == ("lookup", "answered")
    assert [e for e in log.events() if e.startswith("teams_")] == ["teams_note_not_sent"]
    [line] = [entry for entry in log.lines() if entry.get("event") == "teams_note_not_sent"]
    assert line["status"] == 429 and line["level"] == "warning"


async def test_a_channel_thread_called_personal_gets_no_signposts_and_is_not_remembered_as_the_private_chat(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The conversation type is what the activity says: one calling a team channel's thread
    "personal" (a forged activity, or anonymous development mode) is answered as a channel is,
    the signposts going to a 1:1 chat, and the thread is never kept as the person's private chat."""
    thread = {"id": "19:general@thread.tacv2", "conversationType": "personal"}
    response = await teams.post(message(PRIYA, AMY, connector.url, thread))
    assert response.status == 202
    in_thread = connector.messages_in("19:general@thread.tacv2")
    assert [m.text for m in in_thread] == ["I've sent you the answer privately."]
    assert all(m.card is None or "Sam Carter" not in texts_of(m.card) for m in in_thread)
    private = [s for s in connector.sent if s.conversation_id.startswith("a:personal-")]
    assert len(private) == 1 and private[0].card is not None and "Sam Carter" in texts_of(private[0].card)
    async with loaded.ctx.db.read() as session:
        references = [row.reference for row in (await session.execute(select(TeamsConversation))).scalars()]
    assert all("19:general" not in reference for reference in references), references


async def test_channel_mention_uses_the_remembered_personal_chat(teams: TeamsApp, connector: FakeConnector) -> None:
    """Someone who has talked to the bot 1:1 gets channel answers in that chat; none is created."""
    await teams.post(message(PRIYA, "help", connector.url))
    connector.sent.clear()
    await teams.post(mention(PRIYA, "help", connector.url))
    assert connector.creations() == []
    [private] = connector.messages_in(PRIYA.personal_conversation)
    assert private.card is not None and "contact details only" in texts_of(private.card)
    assert [m.text for m in connector.messages_in(CHANNEL_CONVERSATION)] == ["I've sent you the answer privately."]


async def test_mention_is_stripped_before_the_grammar_sees_the_text(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """'<at>Signpost</at> help' in a channel runs help, not the usage answer."""
    await teams.post(mention(PRIYA, "help", connector.url))
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome) == ("help", "info")


async def test_identity_is_tenant_and_aad_object_id_never_the_display_name(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A stranger with a registered practitioner's display name is not that practitioner."""
    await teams.post(message(STRANGER, AMY, connector.url))
    [reply] = connector.sent
    assert reply.card is not None
    text = texts_of(reply.card)
    assert "not registered" in text and "Sam Carter" not in text
    [event] = await teams_events(loaded)
    assert (event.actor_id, event.user_id, event.outcome) == (None, STRANGER.aad, "refused")


async def test_stored_reference_keeps_ids_only(teams: TeamsApp, connector: FakeConnector, loaded: Signpost) -> None:
    """The conversation reference in the database holds no display name."""
    await teams.post(message(PRIYA, "help", connector.url))
    async with loaded.ctx.db.read() as session:
        [row] = (await session.execute(select(TeamsConversation))).scalars()
    assert PRIYA.name not in row.reference
    assert PRIYA.teams_id in row.reference and PRIYA.personal_conversation in row.reference


async def test_help_card_lists_what_can_be_asked(teams: TeamsApp, connector: FakeConnector) -> None:
    """Usage help renders as a card with one line per thing that can be asked."""
    await teams.post(message(PRIYA, "what is this", connector.url))
    [reply] = connector.sent
    assert reply.card is not None
    text = texts_of(reply.card)
    assert (
        "didn't understand" in text
        and "REFERENCE (a child's reference number)" in text
        and actions_of(reply.card) == []
    )


async def test_a_message_without_an_aad_identity_is_not_dispatched_but_is_audited(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """No AAD object id, no command: the person is told kindly. It was answered with no event;
    now its one event is a refusal under the Teams account and tenant it carries (as a refusal of
    an untrusted channel is), naming no practitioner and none of what was typed."""
    activity = message(PRIYA, AMY, connector.url)
    del activity["from"]["aadObjectId"]
    with logged_at("info") as log:
        await teams.post(activity)
    [reply] = connector.sent
    assert reply.card is not None and "could not identify" in texts_of(reply.card)
    # Signpost's own lines (the SDK's warns that anonymous mode has no App ID)
    assert [e for e in log.events() if e.startswith("teams_")] == ["teams_unidentified_message"]
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.detail) == ("untrusted_source", "refused", NO_AAD_ID)
    assert (event.tenant, event.user_id, event.actor_id) == (PRIYA.tenant, PRIYA.teams_id, None)
    assert AMY not in str(event.subject_refs) and event.terms is None


async def test_a_card_click_without_an_aad_identity_is_answered_and_audited(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The same for a click on a card: told kindly in the invoke's answer, one refusal event."""
    activity = invoke(PRIYA, {"verb": "approve", "data": {"x": 1}}, connector.url)
    del activity["from"]["aadObjectId"]
    with logged_at("info") as log:
        response = await teams.post(activity)
    assert response.status == 200
    assert "could not identify" in texts_of((await response.json())["value"])
    # Signpost's own lines (the SDK's warns that anonymous mode has no App ID)
    assert [e for e in log.events() if e.startswith("teams_")] == ["teams_unidentified_click"]
    [event] = await teams_events(loaded)
    assert (event.action, event.outcome, event.detail) == ("untrusted_source", "refused", NO_AAD_ID)
    assert (event.tenant, event.user_id, event.actor_id) == (PRIYA.tenant, PRIYA.teams_id, None)
    assert connector.sent == []


async def test_turn_errors_reach_the_user_only_as_a_generic_line(teams: TeamsApp, connector: FakeConnector) -> None:
    """When sending the answer fails, the person gets a reference, never the exception text."""
    connector.fail_next = 1
    response = await teams.post(message(PRIYA, AMY, connector.url))
    assert response.status in (200, 202)
    failed, apology = connector.sent
    assert failed.card is not None  # the answer Teams refused
    assert apology.card is not None
    text = texts_of(apology.card)
    # Exactly the generic line and its reference (random hex, which may itself hold "503" by chance):
    # neither the connector's status nor any exception text reaches the person.
    assert re.fullmatch(re.escape(ERROR_TEXT).replace(re.escape("{ref}"), "[0-9a-f]{8}"), text), text
    assert "Error" not in text and "Sam Carter" not in text


async def test_a_registration_shows_the_duty_manager_the_name_teams_reports(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The Teams display name reaches the duty manager's decision notice beside the register's
    record, as information only: the account is still unlinked and acts as nobody."""
    await teams.post(message(STRANGER, "register P002", connector.url))
    [notice] = await notices(loaded, "DM01")
    assert notice.kind == "registration_request"
    assert "Teams reports this account as: Priya Shah, email not reported" in notice.text
    assert "The register records P002 as: Priya Shah, School nurse, Northshire School Health" in notice.text
    [event] = [e for e in await teams_events(loaded) if e.action == "register"]
    assert (event.actor_id, event.user_id) == (None, STRANGER.aad)


async def test_a_bot_account_without_a_display_name_is_answered_and_audited_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The recipient's name is optional in an activity: copying it as None into the bot's account
    failed the turn (a pydantic ValidationError), so the command was never run nor audited."""
    activity = message(PRIYA, AMY, connector.url)
    activity["recipient"] = {"id": BOT_ID}
    response = await teams.post(activity)
    assert response.status == 202
    [reply] = connector.sent
    assert reply.conversation_id == PRIYA.personal_conversation and reply.card is not None
    assert "something went wrong" not in texts_of(reply.card)
    assert [(e.action, e.user_id) for e in await teams_events(loaded)] == [("lookup", PRIYA.aad)]


def refusals(log: LogStream) -> list[dict[str, Any]]:
    """The connector's refusals logged, once no line is an error or holds a traceback."""
    lines = log.lines()
    assert not [line for line in lines if line["level"] == "error" or "exception" in line], log.text
    return [line for line in lines if line["event"] == "teams_reply_refused"]


async def test_a_reply_the_connector_refuses_is_one_warning_with_its_status(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Teams' connector answering 4xx for a conversation it does not know is not Signpost's fault:
    the command is audited once (and its answer recorded as not shown), the refusal is one warning
    with the status and no traceback, no apology is sent into the conversation that refused, and no
    id of the activity is logged (the SDK's own line quoted the conversation and the activity)."""
    connector.unknown_conversations.add(PRIYA.personal_conversation)
    activity = message(PRIYA, AMY, connector.url)
    with logged_at("info") as log:
        response = await teams.post(activity)
    assert response.status == 202
    assert len(connector.sent) == 1  # the refused answer, and nothing after it
    assert [e.action for e in await teams_events(loaded)] == ["lookup", "answer_not_shown"]
    [line] = refusals(log)
    assert line["status"] == 404
    assert PRIYA.personal_conversation not in log.text and activity["id"] not in log.text


async def test_a_click_in_a_channel_whose_private_chat_teams_refuses_is_told_so_in_its_answer(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """An invoke's answer goes back in the HTTP response, not through the connector: when the
    stored 1:1 chat is refused (404) and so is a new one (403), the click's answer says how to get
    answers privately, the stored chat is forgotten, and the log has one warning without ids."""
    await teams.post(message(PRIYA, "help", connector.url))  # the 1:1 chat is stored
    connector.unknown_conversations.add(PRIYA.personal_conversation)
    connector.refuse_creations = True
    body = invoke(PRIYA, {"verb": "approve", "data": {"x": 1}}, connector.url)
    body["conversation"] = {"id": CHANNEL_CONVERSATION, "conversationType": "channel", "tenantId": PRIYA.tenant}
    with logged_at("info") as log:
        response = await teams.post(body)
    assert response.status == 200
    doc = await response.json()
    assert texts_of(doc["value"]) == NO_PRIVATE_CHAT
    [line] = [line for line in log.lines() if line["event"] == "teams_chat_gone"]
    assert (line["status"], line["again"]) == (404, 403)
    assert refusals(log) == [] and PRIYA.personal_conversation not in log.text
    assert await teams.web[TEAMS_KEY].reference_for(PRIYA.principal) is None


async def test_a_channel_question_from_someone_teams_will_not_chat_with_privately_is_told_so_in_the_channel(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Teams refuses a 1:1 chat with a person who has not added the app: the channel is told how to
    get answers privately, and nothing of the answer is shown there. The question is still audited,
    and its answer recorded as not shown."""
    connector.refuse_creations = True
    with logged_at("info") as log:
        response = await teams.post(mention(PRIYA, AMY, connector.url))
    assert response.status == 202
    [said] = connector.messages_in(CHANNEL_CONVERSATION)
    assert said.card is not None and texts_of(said.card) == NO_PRIVATE_CHAT
    assert len(connector.creations()) == 1  # asked for, refused
    assert [s for s in connector.sent if s.conversation_id not in ("", CHANNEL_CONVERSATION)] == []
    assert [e.action for e in await teams_events(loaded)] == ["lookup", "answer_not_shown"]
    ours = [line for line in log.lines() if str(line.get("logger", "")).startswith("signpost")]
    assert [line["event"] for line in ours if line["level"] != "info"] == ["teams_chat_gone"]
    assert "Sam Carter" not in log.text


async def test_a_channel_question_whose_stored_chat_is_refused_goes_to_the_chat_teams_gives_again(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A channel question from someone whose stored 1:1 chat Teams no longer knows goes to the
    chat Teams gives again, and the channel hears that it was sent privately."""
    await teams.post(message(PRIYA, "help", connector.url))
    connector.unknown_conversations.add(PRIYA.personal_conversation)
    connector.sent.clear()
    await teams.post(mention(PRIYA, AMY, connector.url))
    [private] = [s for s in connector.sent if s.conversation_id.startswith("a:personal-")]
    assert private.card is not None and "Sam Carter" in texts_of(private.card)
    assert [m.text for m in connector.messages_in(CHANNEL_CONVERSATION)] == ["I've sent you the answer privately."]


async def test_an_activity_whose_service_url_is_not_a_url_is_a_400_not_a_500(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Without a bot registration (anonymous development mode) nothing checks the serviceUrl
    against a token: "not a url" reached the SDK, which failed the turn with a 500 and left a
    session unclosed. A serviceUrl that is not an absolute http(s) address is a bad activity."""
    with logged_at("info") as stream:
        for bad in ("not a url", "ftp://127.0.0.1/x", "/relative/path"):
            response = await teams.post(message(PRIYA, AMY, bad))
            assert response.status == 400, bad
    assert connector.sent == []
    assert [line["problems"] for line in stream.lines() if line["event"] == "teams_activity_invalid"] == [
        ["serviceUrl:not_an_address"]
    ] * 3
