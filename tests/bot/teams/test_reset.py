"""`reset PRACTITIONER_ID` from Teams: activities in, what the connector is asked to post out.

Dana (DM01, stepped up by the ``loaded`` fixture) resets Tom's (P003's) authenticator in her personal
chat; the outbox then tells Tom in his, and Tom's `enrol` gives a new set-up link. An admin's
authenticator (AD01's) is refused, to be reset on the host.
"""

from __future__ import annotations

import pytest

from bot.app import Signpost
from bot.notify import Outbox
from bot.teams.front import TEAMS_KEY
from handlers.stepup import flow as stepup
from handlers.stepup import reset
from store.people import credentials
from tests.bot.teams.teams_support import DANA, TeamsApp, TeamsUser, link, message, teams_events, texts_of
from tests.fakes.teams_connector import FakeConnector
from tests.stepup_helpers import ensure_enrolled

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

TOM = TeamsUser("29:1tom", "00000000-0000-4000-8000-000000000003", "Tom Reed")  # linked to P003 below


def shown(connector: FakeConnector, user: TeamsUser) -> str:
    """Everything posted to ``user``'s personal chat so far, cards' texts included."""
    return " ".join(
        (s.text or "") + (texts_of(s.card) if s.card else "") for s in connector.messages_in(user.personal_conversation)
    )


async def test_a_duty_manager_resets_in_teams_and_the_practitioner_is_told_and_enrols(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    await link(loaded, TOM, "P003")
    await ensure_enrolled(loaded, "P003")
    await ensure_enrolled(loaded, "AD01")
    await teams.post(message(TOM, "help", connector.url))  # Tom's personal chat, for the notice to reach
    await teams.post(message(DANA, "reset AD01", connector.url))
    await teams.post(message(DANA, "reset P003", connector.url))
    dana = shown(connector, DANA)
    assert reset.ON_THE_HOST.format(id="AD01") in dana
    assert "Reset P003's authenticator" in dana and "by phone or in person" in dana, dana
    async with loaded.ctx.db.read() as session:
        assert await credentials.get(session, "P003") is None
        assert await credentials.get(session, "AD01") is not None
    await Outbox(loaded.ctx, [teams.web[TEAMS_KEY].deliverer]).deliver_due()
    assert "Your Signpost authenticator was reset by your duty manager." in shown(connector, TOM)
    await teams.post(message(TOM, "enrol", connector.url))
    assert stepup.PROMPT_PENDING in shown(connector, TOM)
    events = [(e.action, e.outcome, e.actor_id, e.detail) for e in await teams_events(loaded)]
    assert [e for e in events if e[0] == "totp_reset"] == [
        ("totp_reset", "refused", "DM01", "AD01 holds the admin role"),
        ("totp_reset", "done", "DM01", "credential removed for P003"),
    ]


async def test_a_duty_manager_s_own_reset_is_sent_to_the_host_in_teams(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Teams shows the self-reset refusal as Signpost words it: an admin on the host (``BY_AN_ADMIN``)."""
    await teams.post(message(DANA, "reset DM01", connector.url))
    dana = shown(connector, DANA)
    assert reset.OWN.format(id="DM01") in dana and reset.BY_AN_ADMIN.format(id="DM01") in dana, dana
