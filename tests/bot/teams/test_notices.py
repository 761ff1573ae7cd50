"""Proactive notices in Teams: conversation references live in the database, so a restarted (or
another) Signpost process can still reach the person privately."""

from __future__ import annotations

import pytest

from bot.app import Signpost, build
from bot.delivery import DeliveryFailed
from bot.teams.front import TEAMS_KEY, teams_deliverer
from handlers.clock import FakeClock
from handlers.vocabulary import Button, Notice
from store.db import Database
from store.keys.crypto import KeyRing
from tests.bot.teams.teams_support import DANA, PRIYA, TeamsApp, message, settings, texts_of
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
