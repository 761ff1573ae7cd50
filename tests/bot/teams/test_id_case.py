"""An AAD object id and a tenant id are GUIDs, which are not case-sensitive: whatever case Teams
sends them in, the person is the same one, known (linked, registered, remembered, audited) under
the one lowercase spelling. Real RS256-signed activities posted to the running app on loopback."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import delete, select

from bot.app import Signpost
from store.tables.people import ChatIdentity, RegistrationRequest, TeamsConversation
from tests.bot.teams.teams_support import TeamsApp, TeamsUser, link, mention, message, teams_events, texts_of
from tests.bot.teams.teams_tokens import Signer
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector

# Synthetic: an AAD object id with letters in it, as Entra ID issues them (lowercase).
NURSE = TeamsUser("29:1nurse", "a3f2c9e1-4b7d-4e8a-9c1f-0d2e3b4a5c6f", "Nurse Example")
SHOUTING_NURSE = replace(NURSE, aad=NURSE.aad.upper())
SHOUTING_TENANT_NURSE = replace(NURSE, tenant=NURSE.tenant.upper())
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
