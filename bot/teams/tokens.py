"""Teams' outbound access tokens from Entra ID, through MSAL, over HTTP that follows no redirect.

The SDK's provider (``MsalAuth``) lets MSAL make its own requests session, which follows redirects:
a token endpoint answering 307 (or the OpenID configuration MSAL finds it by, pointing elsewhere
after one) had the bot's client secret posted again wherever it pointed, and the token that came
back used. MSAL takes an ``http_client`` (its documented way to choose the HTTP), but the SDK's
provider passes none and takes none, so this is Signpost's own, for the two ways Signpost signs in
(a client secret, or a certificate; ``bot.teams.front.teams_setup``), with ``token_session``.

MSAL blocks (requests): its client is built, which reads the token service's OpenID configuration,
and each token fetched, on a worker thread. The SDK's provider built the client on the event
loop's thread, which waited on the token service meanwhile, and so did every front end, Slack's
too. The thread is one of the provider's own (a hung Entra ID never takes the threads the rest of
Signpost shares), and a caller waits ``TIMEOUT`` seconds at most.

A token that cannot be had is ``TokenUnavailable``, with a fixed reason (and the host, for a
redirect), never a URL or Entra ID's text: the caller logs it in one line of its own. Teams' front
end asks for the token only when it calls the connector, so a command is run and audited whatever
Entra ID does.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msal
import requests
from azure.core.credentials_async import AsyncTokenCredential
from microsoft_agents.hosting.core import AccessTokenProviderBase, AgentAuthConfiguration
from microsoft_agents.hosting.core.authorization import AuthTypes

from bot.outbound import TokenRedirectRefused, token_session

ENTRA = "https://login.microsoftonline.com"
TIMEOUT = 5.0  # seconds a caller waits for a token at most (and MSAL's HTTP for each answer)


class TokenUnavailable(Exception):
    """No token from Entra ID just now. ``reason``, one of: ``unreachable`` (no connection, or no
    such host), ``timeout``, ``tls_failed``, ``redirect`` (not followed; ``host``: the host that
    answered it), ``refused`` (Entra ID answered an error, or no token: a wrong secret or tenant),
    ``failed`` (a server error, or anything else). Its text is the reason alone."""

    def __init__(self, reason: str, host: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.host = host


class EntraTokens(AccessTokenProviderBase):
    """Access tokens for the bot's registration (``config``: the SDK's, as ``teams_setup`` makes it)."""

    def __init__(self, config: AgentAuthConfiguration, timeout: float = TIMEOUT) -> None:
        self._config = config
        self._timeout = timeout
        self._client: msal.ConfidentialClientApplication | None = None
        self._building = threading.Lock()  # one client, made once, whichever thread asks first
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signpost-entra")

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return self._config

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        """A token for ``scopes`` (none: the resource's ``/.default``), from MSAL's cache while it
        lasts; ``TokenUnavailable`` when none comes within ``timeout`` seconds."""
        wanted = scopes or [resource_url.rstrip("/") + "/.default"]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                return await loop.run_in_executor(self._worker, self._fetch, wanted)
        except TimeoutError:
            raise TokenUnavailable("timeout") from None

    def _fetch(self, scopes: list[str]) -> str:
        """On the worker thread: MSAL's token (kept, or Entra ID's new one), or ``TokenUnavailable``."""
        try:
            result: Any = self._app().acquire_token_for_client(scopes=scopes)
        except TokenRedirectRefused as redirected:
            raise TokenUnavailable("redirect", redirected.host) from None
        except requests.exceptions.SSLError:
            raise TokenUnavailable("tls_failed") from None
        except requests.exceptions.Timeout:
            raise TokenUnavailable("timeout") from None
        except requests.exceptions.ConnectionError:
            raise TokenUnavailable("unreachable") from None
        except ValueError:  # MSAL: the tenant's OpenID configuration refused (4xx), or not JSON
            raise TokenUnavailable("refused") from None
        except Exception:  # a server error (MSAL's raise_for_status), anything else MSAL raises
            raise TokenUnavailable("failed") from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenUnavailable("refused")  # Entra ID's error and its description are not kept
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
            http_client=token_session(self._timeout),
        )
