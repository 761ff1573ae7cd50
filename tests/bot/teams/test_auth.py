"""With a bot registration configured, /api/messages accepts only Bot Framework-signed requests.

Tokens are real RS256 JWTs; the signing keys are served by the fake connector's JWKS endpoint on
loopback (SIGNPOST_TEAMS_JWKS_URL). Rejected requests must leave no trace: no audit event, nothing
sent to Teams, no conversation stored.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from multidict import CIMultiDict
from sqlalchemy import func, select
from structlog.testing import capture_logs

from bot.app import Signpost
from store.tables.people import TeamsConversation
from tests.bot.log_stream import logged_at
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message, teams_events
from tests.bot.teams.teams_tokens import OUTBOUND_TOKEN, Signer
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


async def nothing_happened(signpost: Signpost, connector: FakeConnector) -> None:
    assert await teams_events(signpost) == []
    assert connector.sent == []
    async with signpost.ctx.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(TeamsConversation))).scalar_one() == 0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_signed_request_is_processed_and_replies_carry_the_bot_token(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """The control case: a properly signed activity is answered, with our token on the reply."""
    response = await teams_secured.post(message(PRIYA, AMY, connector.url), bearer(signer.token(connector.url)))
    assert response.status == 202
    [reply] = connector.sent
    assert reply.authorization == f"Bearer {OUTBOUND_TOKEN}"
    assert reply.card is not None
    [event] = await teams_events(loaded)
    assert event.actor_id == "P002"


async def test_no_token_is_401_and_nothing_is_processed(
    teams_secured: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    response = await teams_secured.post(message(PRIYA, AMY, connector.url))
    assert response.status == 401
    await nothing_happened(loaded, connector)


@pytest.mark.parametrize(
    "header",
    ["Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "bearer " + "x" * 40],
)
async def test_garbage_authorization_is_401_and_nothing_is_processed(
    teams_secured: TeamsApp, connector: FakeConnector, loaded: Signpost, header: str
) -> None:
    response = await teams_secured.post(message(PRIYA, AMY, connector.url), {"Authorization": header})
    assert response.status == 401
    await nothing_happened(loaded, connector)


async def test_a_token_forged_with_another_key_is_401(
    teams_secured: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Same key id, same claims, wrong key: the signature check fails."""
    forger = Signer()
    with capture_logs() as logs:
        response = await teams_secured.post(message(PRIYA, AMY, connector.url), bearer(forger.token(connector.url)))
    assert response.status == 401
    assert {
        "event": "teams_request_rejected",
        "reason": "InvalidSignatureError",
        "log_level": "warning",
    } in logs
    await nothing_happened(loaded, connector)


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "another-bot-entirely"},
        {"iss": "https://issuer.attacker.example"},
        {"exp": 1_000_000_000, "nbf": 999_999_000, "iat": 999_999_000},
    ],
    ids=["audience", "issuer", "expired"],
)
async def test_a_signed_token_with_wrong_claims_is_401(
    teams_secured: TeamsApp,
    connector: FakeConnector,
    signer: Signer,
    loaded: Signpost,
    claims: dict[str, Any],
) -> None:
    token = signer.token(connector.url, **claims)
    response = await teams_secured.post(message(PRIYA, AMY, connector.url), bearer(token))
    assert response.status == 401
    await nothing_happened(loaded, connector)


async def test_a_service_url_other_than_the_signed_one_is_401(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost
) -> None:
    """A valid token replayed with another serviceUrl must not send our token to that URL."""
    token = signer.token("https://smba.trafficmanager.net/uk/")
    response = await teams_secured.post(message(PRIYA, AMY, connector.url), bearer(token))
    assert response.status == 401
    await nothing_happened(loaded, connector)


async def test_other_routes_answer_without_a_teams_token(teams_secured: TeamsApp) -> None:
    """JWT checks are on /api/messages only: /healthz and the Slack routes are unaffected."""
    health = await teams_secured.client.get("/healthz")
    assert health.status == 200 and (await health.json())["status"] == "ok"
    slack = await teams_secured.client.post("/slack/events", json={"type": "url_verification"})
    assert slack.status == 200 and (await slack.json()) == {"ok": True}
    teams = await teams_secured.client.post("/api/messages", json={})
    assert teams.status == 401


DROPPED = object()


@pytest.mark.parametrize(
    "claims",
    [{"exp": DROPPED}, {"exp": 10**30}, {"exp": int(time.time()) + 10 * 365 * 86400}],
    ids=["no exp", "exp 10^30", "exp in ten years"],
)
async def test_a_token_without_a_plausible_expiry_is_401_in_one_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, claims: dict[str, Any]
) -> None:
    """The Bot Framework's tokens always expire, within hours (Entra ID issues none for longer than
    a day): a signed token that never expires, or only in decades, would be a key for good if it
    leaked. PyJWT checks ``exp`` only when it is there."""
    token = signer.token(connector.url, **({} if claims["exp"] is DROPPED else claims))
    if claims["exp"] is DROPPED:
        payload = jwt.decode(token, options={"verify_signature": False})
        del payload["exp"]
        token = jwt.encode(payload, signer.key, algorithm="RS256", headers={"kid": signer.kid})
    with logged_at("info") as log:
        response = await teams_secured.post(message(PRIYA, AMY, connector.url), bearer(token))
    assert response.status == 401
    [line] = log.lines()
    assert (line["event"], line["reason"]) == ("teams_request_rejected", "implausible_expiry")
    await nothing_happened(loaded, connector)


@pytest.mark.parametrize("good_first", [True, False], ids=["good first", "junk first"])
async def test_two_authorization_headers_are_401_in_one_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, good_first: bool
) -> None:
    """Which of two credentials is meant is not for Signpost to guess (aiohttp would hand over the
    first): refused, as Slack refuses a repeated signature header."""
    good, junk = f"Bearer {signer.token(connector.url)}", "Bearer junk"
    headers = CIMultiDict([("Authorization", good), ("Authorization", junk)])
    if not good_first:
        headers = CIMultiDict([("Authorization", junk), ("Authorization", good)])
    with logged_at("info") as log:
        response = await teams_secured.client.post(
            "/api/messages", json=message(PRIYA, AMY, connector.url), headers=headers
        )
    assert response.status == 401
    [line] = log.lines()
    assert (line["event"], line["reason"]) == ("teams_request_rejected", "repeated_authorization_header")
    await nothing_happened(loaded, connector)
