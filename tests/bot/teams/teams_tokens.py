"""Real RS256 tokens shaped like the Bot Framework's, signed with keys generated per test run."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "6c1f4b1e-0b7e-4a47-9d8f-5a8f7e3c2b10"
BOT_TENANT = "5a1d7c2e-3f4b-4e6a-8b9c-0d1e2f3a4b5c"
USERS_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # teams_support.TENANT
ISSUER = "https://api.botframework.com"
KID = "signpost-test-key"
OUTBOUND_TOKEN = "fake-entra-access-token"


class Signer:
    """An RSA key pair: signs tokens and publishes its public half as a JWKS."""

    def __init__(self, kid: str = KID) -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, service_url: str, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "serviceurl": service_url,
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + 3600,
            **overrides,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


def credentials(jwks_url: str) -> dict[str, str]:
    """The Settings values of a configured bot registration (a fake one)."""
    prefix = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
    return {
        prefix + "CLIENTID": CLIENT_ID,
        prefix + "CLIENTSECRET": "not-a-real-secret",
        prefix + "TENANTID": BOT_TENANT,
        "SIGNPOST_TEAMS_JWKS_URL": jwks_url,
        "SIGNPOST_TEAMS_TENANTS": USERS_TENANT,  # the people's tenant (the bot's is BOT_TENANT)
    }


async def fake_entra(resource: str, scopes: list[str]) -> str:
    """Stands in for Entra ID's token endpoint for the bot's outbound calls."""
    return OUTBOUND_TOKEN
