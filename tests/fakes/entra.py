"""A fake Entra ID token service on loopback, over HTTPS (MSAL takes nothing else): the OpenID
configuration MSAL reads first, and a token endpoint that answers a token, or a redirect.

Its certificate is issued on the spot by a test CA that only this process trusts, through
``REQUESTS_CA_BUNDLE`` (MSAL's HTTP is the requests library's). The authority names a B2C-style
policy (``/b2c_…``), which MSAL takes as known to the developer: it then asks no instance discovery
of login.microsoftonline.com, so nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TENANT = "00000000-0000-0000-0000-0000000000aa"
TOKEN = "synthetic-entra-token"


def _issue(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (its certificate written to ``ca.pem``) and a server context for 127.0.0.1."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Signpost test CA")])

    def builder(subject: x509.Name, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
        )

    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    ca = (
        builder(ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    plain = serialization.NoEncryption()
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, plain))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


class FakeEntra:
    """``redirect_to``: where every caller is sent (307) by the token endpoint, or with
    ``redirect_configuration`` by the OpenID configuration; None: it answers a token. While
    ``held``, each request waits for ``release`` (set when it stops) before it is answered;
    ``arrived`` is set by the first request."""

    def __init__(self, redirect_to: str | None = None, *, redirect_configuration: bool = False) -> None:
        self.redirect_to = redirect_to
        self.redirect_configuration = redirect_configuration
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.credentials: list[str] = []  # how each token request proved who asked (its form's field)
        self.held = False
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    @property
    def authority(self) -> str:
        return f"{self.base}/{TENANT}/b2c_1_signpost"

    async def _answer(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.seen.append((request.method, request.path))
        self.credentials += [field for field in ("client_secret", "client_assertion") if field in form]
        self.arrived.set()
        if self.held:
            await self.release.wait()
        configuration = request.path.endswith("/.well-known/openid-configuration")
        if self.redirect_to is not None and configuration == self.redirect_configuration:
            return web.Response(status=307, headers={"Location": self.redirect_to})
        if configuration:
            return web.json_response(
                {
                    "authorization_endpoint": f"{self.base}/{TENANT}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{self.base}/{TENANT}/oauth2/v2.0/token",
                    "issuer": f"{self.base}/{TENANT}/v2.0",
                }
            )
        return web.json_response({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})


def certificate_file(folder: Path) -> Path:
    """A PKCS #12 file (no password) holding a new RSA key and its self-signed certificate, as a bot
    registration's certificate credential is given (SIGNPOST_TEAMS_CERT_FILE)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Signpost test bot")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = folder / "bot.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"bot", key, cert, None, serialization.NoEncryption()))
    return path


@asynccontextmanager
async def running_entra(
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    redirect_to: str | None = None,
    *,
    redirect_configuration: bool = False,
) -> AsyncIterator[FakeEntra]:
    """A FakeEntra serving HTTPS on loopback, its CA trusted by requests for the test's length."""
    ca_file, context = _issue(folder)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    fake = FakeEntra(redirect_to, redirect_configuration=redirect_configuration)
    await fake.server.start_server(ssl=context)
    try:
        yield fake
    finally:
        fake.release.set()
        await fake.server.close()
