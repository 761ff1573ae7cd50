"""An AAD object id and a tenant id are GUIDs, which are not case-sensitive: whatever case Teams
sends them in, the person is the same one, known (linked, registered, remembered, audited) under
the one lowercase spelling. Real RS256-signed activities posted to the running app on loopback."""

from __future__ import annotations

from dataclasses import replace

import pytest
from alembic import command
from sqlalchemy import Connection, delete, insert, select, text

from bot.app import Signpost
from store.db import alembic_config
from store.people import conversations
from store.tables.people import ChatIdentity, RegistrationRequest, TeamsConversation
from tests.bot.teams.teams_support import (
    BOT_ID,
    BOT_NAME,
    TeamsApp,
    TeamsUser,
    link,
    mention,
    message,
    teams_events,
    texts_of,
)
from tests.bot.teams.teams_tokens import Signer
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

# Synthetic: an AAD object id with letters in it, as Entra ID issues them (lowercase).
NURSE = TeamsUser("29:1nurse", "a3f2c9e1-4b7d-4e8a-9c1f-0d2e3b4a5c6f", "Nurse Example")
SHOUTING_NURSE = replace(NURSE, aad=NURSE.aad.upper())
SHOUTING_TENANT_NURSE = replace(NURSE, tenant=NURSE.tenant.upper())
REMEMBERED = "a:1personal-remembered"  # the nurse's 1:1 chat, as an earlier Signpost kept it
NEWCOMER = TeamsUser("29:1newcomer", "c0ffee00-aaaa-4bbb-8ccc-ddddeeeeffff", "Newcomer Example")


def bearer(signer: Signer, connector: FakeConnector) -> dict[str, str]:
    return {"Authorization": f"Bearer {signer.token(connector.url)}"}


async def nurse_is_p002(signpost: Signpost) -> None:
    """NURSE, in lowercase as linked at registration, is P002's Teams account (in PRIYA's stead)."""
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(ChatIdentity).where(ChatIdentity.practitioner_id == "P002"))
    await link(signpost, NURSE, "P002")


async def test_an_uppercase_aad_object_id_is_answered_as_the_linked_practitioner(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """The linked nurse's id sent in capitals gets her signposts, audited under the lowercase id."""
    await nurse_is_p002(loaded)
    response = await teams_secured.post(message(SHOUTING_NURSE, AMY, connector.url), bearer(signer, connector))
    assert response.status == 202
    [reply] = connector.sent
    assert reply.card is not None and "Sam Carter" in texts_of(reply.card)
    [event] = await teams_events(loaded)
    assert (event.actor_id, event.action, event.outcome) == ("P002", "lookup", "answered")
    assert (event.tenant, event.user_id) == (NURSE.tenant, NURSE.aad)


async def test_an_uppercase_tenant_id_is_the_same_tenant(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """The configured tenant in capitals is that tenant, and the nurse in it is still P002."""
    await nurse_is_p002(loaded)
    response = await teams_secured.post(message(SHOUTING_TENANT_NURSE, AMY, connector.url), bearer(signer, connector))
    assert response.status == 202
    [event] = await teams_events(loaded)
    assert (event.actor_id, event.outcome) == ("P002", "answered")
    assert (event.tenant, event.user_id) == (NURSE.tenant, NURSE.aad)


async def test_the_private_chat_is_remembered_under_the_lowercase_id(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """A chat opened for the capitalised id is the one the lowercase id is answered in later."""
    await nurse_is_p002(loaded)
    await teams_secured.post(mention(SHOUTING_NURSE, "help", connector.url), bearer(signer, connector))
    assert len(connector.creations()) == 1
    async with loaded.ctx.db.read() as session:
        [row] = (await session.execute(select(TeamsConversation))).scalars()
    assert (row.tenant, row.user_id) == (NURSE.tenant, NURSE.aad)
    connector.sent.clear()
    await teams_secured.post(mention(NURSE, "help", connector.url), bearer(signer, connector))
    assert len(connector.creations()) == 0


async def test_a_registration_from_an_uppercase_id_asks_for_the_lowercase_one(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """What a duty manager approves is the lowercase id, so the approved link knows both spellings."""
    shouting = replace(NEWCOMER, aad=NEWCOMER.aad.upper(), tenant=NEWCOMER.tenant.upper())
    response = await teams_secured.post(message(shouting, "register P003", connector.url), bearer(signer, connector))
    assert response.status == 202
    async with loaded.ctx.db.read() as session:
        [row] = (await session.execute(select(RegistrationRequest))).scalars()
    assert (row.platform, row.tenant, row.user_id) == ("teams", NEWCOMER.tenant, NEWCOMER.aad)


async def test_a_refusal_is_audited_under_the_lowercase_id(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """An activity refused at the door (another channel) names the lowercase id it claimed."""
    activity = message(SHOUTING_NURSE, AMY, connector.url)
    activity["channelId"] = "webchat"
    response = await teams_secured.post(activity, bearer(signer, connector))
    assert response.status == 403
    [event] = await teams_events(loaded)
    assert (event.outcome, event.tenant, event.user_id) == ("refused", NURSE.tenant, NURSE.aad)


def _before_lowercase_ids(connection: Connection) -> None:
    """Take the store back to before Teams ids were kept in lowercase (that revision alone)."""
    command.downgrade(alembic_config(connection), "0027_teams_ids_lowercase-1")


async def test_an_account_linked_in_capitals_before_the_upgrade_is_still_the_practitioner(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """A nurse linked, and her 1:1 chat remembered, under a capitalised id by an earlier Signpost
    (which kept ids as sent): after `db upgrade` she is P002 in either spelling, answered in that chat."""
    db = loaded.ctx.db
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(signpost_write=True)
        await conn.run_sync(_before_lowercase_ids)
        await conn.commit()
    async with db.write() as session:
        await session.execute(delete(ChatIdentity).where(ChatIdentity.practitioner_id == "P002"))
    shouting = replace(SHOUTING_NURSE, tenant=NURSE.tenant.upper())
    async with db.write() as session:  # as that Signpost wrote it: the columns its table had
        identity = shouting.principal
        await session.execute(
            insert(ChatIdentity).values(
                platform=identity.platform.value,
                tenant=identity.tenant,
                user_id=identity.user_id,
                practitioner_id="P002",
                linked_at=loaded.ctx.clock.now(),
            )
        )
    remembered = {
        "user": {"id": NURSE.teams_id, "aadObjectId": shouting.aad},
        "agent": {"id": BOT_ID, "name": BOT_NAME},
        "conversation": {"id": REMEMBERED, "conversationType": "personal", "tenantId": shouting.tenant},
        "channelId": "msteams",
        "serviceUrl": connector.url,
    }
    async with db.write() as session:
        await conversations.save(session, shouting.tenant, shouting.aad, remembered, loaded.ctx.clock.now())
    await db.migrate()
    async with db.read() as session:
        linked = await session.execute(text("SELECT tenant, user_id FROM chat_identities WHERE platform = 'teams'"))
        assert (NURSE.tenant, NURSE.aad) in {tuple(row) for row in linked}
    for user in (NURSE, SHOUTING_NURSE):
        connector.sent.clear()
        await teams_secured.post(mention(user, AMY, connector.url), bearer(signer, connector))
        assert connector.creations() == []  # the chat remembered before the upgrade
        [private] = connector.messages_in(REMEMBERED)
        assert private.card is not None and "Sam Carter" in texts_of(private.card)
    assert [(e.actor_id, e.user_id) for e in await teams_events(loaded)] == [("P002", NURSE.aad)] * 2
