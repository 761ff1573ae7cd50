"""Teams' outbound access tokens from Entra ID, through MSAL, over HTTP that follows no redirect.

The SDK's provider (``MsalAuth``) lets MSAL make its own requests session, which follows redirects:
a token endpoint answering 307 (or the OpenID configuration MSAL finds it by, pointing elsewhere
after one) had the bot's client secret posted again wherever it pointed, and the token that came
back used. MSAL takes an ``http_client`` (its documented way to choose the HTTP), but the SDK's
provider passes none and takes none, so this is Signpost's own, for the two ways Signpost signs in
(a client secret, or a certificate; ``bot.teams.front.teams_setup``), with ``token_session``.

MSAL blocks (requests): its client is built, which reads the token service's OpenID configuration,
and each token fetched, on a worker thread. The SDK's provider built the client on the event
loop's thread, which waited on the token service meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msal
from azure.core.credentials_async import AsyncTokenCredential
from microsoft_agents.hosting.core import AccessTokenProviderBase, AgentAuthConfiguration
from microsoft_agents.hosting.core.authorization import AuthTypes

from bot.outbound import token_session

ENTRA = "https://login.microsoftonline.com"


class TokenNotGiven(Exception):
    """Entra ID answered without a token: its error code only (its description can quote ids)."""


class EntraTokens(AccessTokenProviderBase):
    """Access tokens for the bot's registration (``config``: the SDK's, as ``teams_setup`` makes it)."""

    def __init__(self, config: AgentAuthConfiguration) -> None:
        self._config = config
        self._client: msal.ConfidentialClientApplication | None = None
        self._building = threading.Lock()  # one client, made once, whichever thread asks first

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return self._config

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        """A token for ``scopes`` (none: the resource's ``/.default``), from MSAL's cache while it lasts."""
        wanted = scopes or [resource_url.rstrip("/") + "/.default"]
        result: Any = await asyncio.to_thread(lambda: self._app().acquire_token_for_client(scopes=wanted))
        token = result.get("access_token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not token:
            error = result.get("error") if isinstance(result, dict) else None
            raise TokenNotGiven(f"Entra ID gave no token ({error or 'no answer'})")
        return token

    def get_token_credential(self) -> AsyncTokenCredential:
        raise NotImplementedError("Signpost fetches tokens with get_access_token only")

    def _app(self) -> msal.ConfidentialClientApplication:
        with self._building:
            if self._client is None:
                self._client = self._build()
            return self._client

    def _build(self) -> msal.ConfidentialClientApplication:
        config = self._config
        credential: str | dict[str, Any]
        match config.AUTH_TYPE:
            case AuthTypes.client_secret:
                credential = config.CLIENT_SECRET or ""
            case AuthTypes.certificate:
                credential = {"private_key_pfx_path": config.CERT_PFX_FILE}
                if config.SEND_X5C:
                    credential["public_certificate"] = True
            case other:
                raise NotImplementedError(f"Signpost signs in to Entra ID with a secret or a certificate, not {other}")
        return msal.ConfidentialClientApplication(
            client_id=config.CLIENT_ID,
            authority=config.AUTHORITY or f"{ENTRA}/{config.TENANT_ID}",
            client_credential=credential,
            http_client=token_session(),
        )
