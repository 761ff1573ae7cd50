"""A forged Teams token is one log line: Signpost's ``teams_request_rejected``. The Agents SDK's
token validator warned of the same audience or issuer too (bot/logging.py caps it at error)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bot.log_stream import logged_at
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message
from tests.bot.teams.teams_tokens import Signer
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "claims",
    [{"aud": "another-bot-entirely"}, {"iss": "https://issuer.attacker.example"}],
    ids=["audience", "issuer"],
)
async def test_a_token_with_the_wrong_audience_or_issuer_is_one_log_line(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, claims: dict[str, Any]
) -> None:
    """The SDK's validator warned as well as Signpost's rejection: two lines for one request."""
    with logged_at("info") as log:
        response = await teams_secured.post(
            message(PRIYA, AMY, connector.url), bearer(signer.token(connector.url, **claims))
        )
    assert response.status == 401
    assert log.events() == ["teams_request_rejected"]
