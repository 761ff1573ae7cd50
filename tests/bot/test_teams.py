"""Teams front end: real Activity JSON posted to the running app; replies seen by a fake connector."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Signpost
from store.conversations import TeamsConversation
from tests.bot.teams_support import (
    CHANNEL_CONVERSATION,
    PRIYA,
    STRANGER,
    TeamsApp,
    actions_of,
    audit_events,
    mention,
    message,
    texts_of,
)
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector


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
    [event] = await audit_events(loaded)
    assert (event.platform, event.tenant, event.user_id) == ("teams", PRIYA.tenant, PRIYA.aad)
    assert (event.actor_id, event.channel, event.action, event.outcome) == ("P002", "direct", "lookup", "answered")
