"""When Teams is served, and that half a configuration or anonymous-with-credentials fails closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.app import Signpost
from bot.config import SettingsError
from bot.teams.front import teams_route_adder
from bot.web import create_app
from tests.bot.teams.teams_support import settings

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

PREFIX = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
FULL = {PREFIX + "CLIENTID": "6c1f4b1e-0b7e-4a47-9d8f-5a8f7e3c2b10", PREFIX + "TENANTID": "tenant-guid"}


def test_teams_is_off_without_credentials_or_anonymous_mode() -> None:
    assert teams_route_adder(settings(SIGNPOST_TEAMS_ANONYMOUS=False)) is None


@pytest.mark.parametrize("credential", ["CLIENTSECRET", "CERTPFXFILE"])
def test_teams_is_on_with_a_client_id_secret_or_certificate_and_tenant(credential: str, tmp_path: Path) -> None:
    certificate = tmp_path / "bot.pfx"
    certificate.write_bytes(b"not parsed at start")  # read for a token, at the first answer
    value = "s" if credential == "CLIENTSECRET" else str(certificate)
    assert teams_route_adder(settings(**FULL, **{PREFIX + credential: value})) is not None


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({PREFIX + "CLIENTID": "id"}, "CLIENTSECRET (or CERTPFXFILE), " + PREFIX + "TENANTID"),
        ({PREFIX + "CLIENTID": "id", PREFIX + "CLIENTSECRET": "s"}, PREFIX + "TENANTID"),
        ({PREFIX + "CLIENTSECRET": "s", PREFIX + "TENANTID": "t"}, PREFIX + "CLIENTID"),
    ],
)
def test_half_a_configuration_is_refused_with_what_is_missing(values: dict[str, str], missing: str) -> None:
    with pytest.raises(SettingsError, match="only partly configured") as refused:
        teams_route_adder(settings(**values))
    assert missing in str(refused.value)


def test_anonymous_mode_cannot_be_combined_with_credentials() -> None:
    with pytest.raises(SettingsError, match="SIGNPOST_TEAMS_ANONYMOUS=1 is for local development"):
        teams_route_adder(settings(**FULL, SIGNPOST_TEAMS_ANONYMOUS=True, **{PREFIX + "CLIENTSECRET": "s"}))


async def test_anonymous_mode_says_so_loudly_at_start(signpost: Signpost) -> None:
    """Starting the app with anonymous Teams logs a warning naming the risk."""
    adder = teams_route_adder(settings())
    assert adder is not None
    with capture_logs() as logs:
        create_app(signpost, settings(), [adder])
    [warning] = [e for e in logs if e["event"] == "teams_anonymous_mode"]
    assert warning["log_level"] == "warning" and "NOT authenticated" in warning["message"]


async def test_credentials_start_quietly(signpost: Signpost) -> None:
    values = {**FULL, PREFIX + "CLIENTSECRET": "s"}
    adder = teams_route_adder(settings(**values))
    assert adder is not None
    with capture_logs() as logs:
        app = create_app(signpost, settings(**values), [adder])
    assert not [e for e in logs if e["log_level"] == "warning"]
    assert any(
        r.method == "POST" and r.resource is not None and r.resource.canonical == "/api/messages"
        for r in app.router.routes()
    )
