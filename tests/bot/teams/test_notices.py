"""Proactive notices in Teams: conversation references live in the database, so a restarted (or
another) Signpost process can still reach the person privately."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from bot.app import Signpost, build
from bot.delivery import DeliveryFailed, PersonUnreachable
from bot.teams.front import TEAMS_KEY, teams_deliverer
from handlers.clock import FakeClock
from handlers.vocabulary import Button, Notice
from store.db import Database
from store.keys.crypto import KeyRing
from tests.bot.log_stream import logged_at
from tests.bot.teams.teams_support import BOT_ID, DANA, PRIYA, TeamsApp, TeamsUser, message, settings, texts_of
from tests.bot.teams.teams_tokens import OUTBOUND_TOKEN, Signer, credentials, fake_entra
from tests.fakes.teams_connector import FakeConnector

NOTICE = Notice(
    recipient_id="DM01",
    kind="access_request",
    text="P002 asks for access to 999 000 0050 (request 42).",
    buttons=(
        Button("approve", "Approve", "approve 42", "primary"),
        Button("deny", "Deny", "deny 42", "danger"),
    ),
    dedupe_key="access_request:42",
)


async def test_notice_reaches_the_personal_chat_after_a_restart(
    loaded: Signpost, connector: FakeConnector, db_url: str, keys: KeyRing, clock: FakeClock
) -> None:
    """Dana messages the bot; the process stops; a fresh one on the same database delivers a notice."""
    signer = Signer()
    connector.jwks = signer.jwks()
    secured = settings(**credentials(connector.jwks_url))
    first = await TeamsApp.start(loaded, secured, token_source=fake_entra)
    token = {"Authorization": f"Bearer {signer.token(connector.url)}"}
    response = await first.post(message(DANA, "help", connector.url), token)
    assert response.status == 202
    await first.close()
    connector.sent.clear()

    fresh = build(await Database.open(db_url), keys, clock)  # nothing shared with the first process
    try:
        deliverer = teams_deliverer(fresh, secured, token_source=fake_entra)
        assert deliverer is not None
        await deliverer.deliver(DANA.principal, NOTICE)
    finally:
        await fresh.close()
    [sent] = connector.sent
    assert sent.method == "POST" and sent.path == f"/v3/conversations/{DANA.personal_conversation}/activities"
    assert sent.authorization == f"Bearer {OUTBOUND_TOKEN}"
    assert sent.body["recipient"]["id"] == DANA.teams_id and "replyToId" not in sent.body
    assert sent.card is not None
    assert NOTICE.text in texts_of(sent.card)
    assert [a["verb"] for a in sent.card["actions"]] == ["approve", "deny"]


async def test_notice_to_someone_who_never_talked_to_the_bot_fails_and_sends_nothing(
    teams: TeamsApp, connector: FakeConnector
) -> None:
    """Without a stored conversation there is nowhere private to send: DeliveryFailed, nothing sent."""
    deliverer = teams.web[TEAMS_KEY].deliverer
    with pytest.raises(DeliveryFailed, match="not talked to the Signpost bot"):
        await deliverer.deliver(DANA.principal, NOTICE)
    assert connector.sent == []


async def test_notice_refused_by_teams_is_a_delivery_failure(teams: TeamsApp, connector: FakeConnector) -> None:
    """A connector error becomes DeliveryFailed (the outbox keeps the notice), without details."""
    await teams.post(message(PRIYA, "help", connector.url))
    connector.fail_sends = True
    deliverer = teams.web[TEAMS_KEY].deliverer
    with pytest.raises(DeliveryFailed) as failure:
        await deliverer.deliver(PRIYA.principal, NOTICE)
    assert "999" not in str(failure.value)


async def test_teams_deliverer_is_none_when_teams_is_off(loaded: Signpost) -> None:
    """No Teams configuration, no Teams deliverer."""
    assert teams_deliverer(loaded, settings(SIGNPOST_TEAMS_ANONYMOUS=False)) is None


async def test_a_notice_into_a_chat_teams_no_longer_knows_goes_into_the_chat_teams_gives_again(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A stored 1:1 chat the connector answers 404 for (moved, or the app added again) is asked for
    afresh once; the notice goes there, and that chat is stored for the next notice."""
    await teams.post(message(DANA, "help", connector.url))
    connector.unknown_conversations.add(DANA.personal_conversation)
    connector.sent.clear()
    deliverer = teams.web[TEAMS_KEY].deliverer
    await deliverer.deliver(DANA.principal, NOTICE)
    [created] = connector.creations()
    assert created.body["members"] == [{"id": DANA.teams_id}] and created.body["tenantId"] == DANA.tenant
    [delivered] = [s for s in connector.sent if s.conversation_id.startswith("a:personal-")]
    assert delivered.card is not None and NOTICE.text in texts_of(delivered.card)
    front = teams.web[TEAMS_KEY]
    stored = await front.reference_for(DANA.principal)
    assert stored is not None and stored.conversation.id == delivered.conversation_id
    connector.sent.clear()
    await deliverer.deliver(DANA.principal, NOTICE)
    assert [s.conversation_id for s in connector.sent] == [delivered.conversation_id]


async def test_a_person_whose_chat_teams_refuses_outright_is_unreachable_and_not_retried_there(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The stored chat refused and a new one refused too (the app removed for them): the notice is
    PersonUnreachable (not a failure of Teams, so not counted against it), the stored chat is
    forgotten, the log says so once without an id, and the next notice calls nobody."""
    await teams.post(message(DANA, "help", connector.url))
    connector.unknown_conversations.add(DANA.personal_conversation)
    connector.refuse_creations = True
    connector.sent.clear()
    deliverer = teams.web[TEAMS_KEY].deliverer
    with logged_at("info") as log, pytest.raises(PersonUnreachable, match="app removed"):
        await deliverer.deliver(DANA.principal, NOTICE)
    [gone] = [line for line in log.lines() if line["event"] == "teams_chat_gone"]
    assert (gone["status"], gone["again"]) == (404, 403)
    assert DANA.personal_conversation not in log.text and DANA.aad not in log.text and NOTICE.text not in log.text
    assert await teams.web[TEAMS_KEY].reference_for(DANA.principal) is None
    connector.sent.clear()
    with pytest.raises(PersonUnreachable):
        await deliverer.deliver(DANA.principal, NOTICE)
    assert connector.sent == []
    await teams.post(message(DANA, "help", connector.url))  # she adds the app again and says hello
    assert await teams.web[TEAMS_KEY].reference_for(DANA.principal) is not None


def installed(user: TeamsUser, service_url: str) -> dict[str, Any]:
    """What Teams sends when someone adds the app for themselves: the bot joins their 1:1 chat."""
    doc = message(user, "", service_url)
    del doc["text"]
    doc.update(type="conversationUpdate", membersAdded=[{"id": BOT_ID}])
    return doc


async def test_adding_the_app_stores_the_chat_so_notices_reach_someone_who_never_wrote(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Installing the app in personal scope is enough: the chat is stored, nothing is said into it,
    and a notice then goes there."""
    response = await teams.post(installed(DANA, connector.url))
    assert response.status in (200, 202)
    assert connector.sent == []
    await teams.web[TEAMS_KEY].deliverer.deliver(DANA.principal, NOTICE)
    [sent] = connector.sent
    assert sent.conversation_id == DANA.personal_conversation


async def test_a_chat_the_store_cannot_keep_is_one_warning_and_the_person_is_still_answered(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Storing the chat is a side matter: when the store will not take it, the installation is not
    answered with an apology and a message is still answered (and audited); each is one warning."""
    async with loaded.ctx.db.write() as session:
        await session.execute(text("DROP TABLE teams_conversations"))
    with logged_at("info") as log:
        added = await teams.post(installed(DANA, connector.url))
        asked = await teams.post(message(PRIYA, "help", connector.url))
    assert added.status in (200, 202) and asked.status == 202
    [answer] = connector.sent
    assert answer.conversation_id == PRIYA.personal_conversation and answer.card is not None
    assert "contact details only" in texts_of(answer.card)
    lines = [line for line in log.lines() if str(line.get("logger", "")).startswith("signpost")]
    assert [line["event"] for line in lines if line["level"] != "info"] == ["teams_conversation_not_stored"] * 2
    assert not [line for line in lines if "exception" in line]
