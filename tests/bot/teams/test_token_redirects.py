"""Teams' outbound tokens come from Entra ID through MSAL, whose HTTP is the requests library's, which
follows redirects: a token endpoint answering 307 had the bot's client secret posted again wherever
it pointed, and the token that came back used. Like every other outbound call (bot/outbound.py) the
redirect is now refused. The provider is the one Signpost's Teams front end makes for a bot
registration; the token service is a fake on loopback (HTTPS, as MSAL requires), the place it
points to another, recording anything that reaches it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from microsoft_agents.hosting.core import AccessTokenProviderBase, AgentAuthConfiguration
from microsoft_agents.hosting.core.authorization import AuthTypes

from bot.teams.front import TeamsSetup, _connections
from bot.teams.tokens import TokenUnavailable
from tests.fakes.elsewhere import Elsewhere, running_elsewhere
from tests.fakes.entra import TENANT, TOKEN, FakeEntra, certificate_file, running_entra

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

CLIENT_ID = "00000000-0000-0000-0000-0000000000b1"
SECRET = "synthetic-client-secret"
BOT_FRAMEWORK = "https://api.botframework.com"
SCOPES = [f"{BOT_FRAMEWORK}/.default"]


@pytest.fixture
async def elsewhere() -> AsyncIterator[Elsewhere]:
    async with running_elsewhere() as found:
        yield found


def tokens_from(entra: FakeEntra, certificate: Path | None = None) -> AccessTokenProviderBase:
    """The token provider Signpost's Teams front end uses for a bot registration with a secret, or
    with ``certificate`` (``bot.teams.front.teams_setup`` makes the configuration these two ways)."""
    auth = AgentAuthConfiguration(
        auth_type=AuthTypes.client_secret if certificate is None else AuthTypes.certificate,
        client_id=CLIENT_ID,
        tenant_id=TENANT,
        client_secret=SECRET if certificate is None else None,
        cert_pfx_file=None if certificate is None else str(certificate),
        authority=entra.authority,
    )
    provider: AccessTokenProviderBase = _connections(TeamsSetup(auth, anonymous=False), None).get_default_connection()
    return provider


@pytest.mark.parametrize("where", ["token endpoint", "openid configuration"])
async def test_a_token_service_answering_a_redirect_is_refused_and_the_secret_goes_nowhere(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, elsewhere: Elsewhere
) -> None:
    """Redirected from the token endpoint (the secret in the body) or from the OpenID configuration
    MSAL finds it by: nothing reaches the other place, and the refusal names the host that answered."""
    to = elsewhere.url("/steal")
    async with running_entra(tmp_path, monkeypatch, to, redirect_configuration=where != "token endpoint") as entra:
        provider = tokens_from(entra)
        with pytest.raises(TokenUnavailable) as refused:
            # On a thread of its own: the SDK's provider read the configuration on the event loop's
            # thread, where the fake answers, and would have waited for ever.
            await asyncio.to_thread(asyncio.run, provider.get_access_token(BOT_FRAMEWORK, SCOPES))
    assert elsewhere.received == []
    assert (str(refused.value), refused.value.host) == ("redirect", "127.0.0.1")
    assert SECRET not in repr(refused.value)


@pytest.mark.parametrize("credential", ["client_secret", "client_assertion"])
async def test_a_token_service_answering_a_token_gives_it_without_holding_up_the_event_loop(
    credential: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answered as Entra ID answers, the token is the one it gave (then from MSAL's cache), asked
    with the secret or the certificate's signed assertion, and fetched from the event loop's thread,
    which serves the fake meanwhile (MSAL's HTTP blocks: it is not done on the loop's thread)."""
    certificate = certificate_file(tmp_path) if credential == "client_assertion" else None
    async with running_entra(tmp_path, monkeypatch) as entra:
        provider = tokens_from(entra, certificate)
        assert await provider.get_access_token(BOT_FRAMEWORK, SCOPES) == TOKEN
        assert await provider.get_access_token(BOT_FRAMEWORK, SCOPES) == TOKEN
    assert [method for method, _ in entra.seen] == ["GET", "POST"]
    assert entra.credentials == [credential]
