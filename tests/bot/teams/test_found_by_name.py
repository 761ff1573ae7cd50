"""A shielded child found by name and date of birth, through the real Teams front end: the card's
Request access and Send a message carry no reference (a card's data is the client's to read), and
the cards that answer them name the record without it."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Signpost
from tests.bot.teams.teams_support import PRIYA, TeamsApp, invoke, link, message, texts_of
from tests.bot.teams.test_relay import LEE, MARKER, card_in, everything, invoke_card, only_action
from tests.factories import SHIELDED
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

SPELLINGS = (SHIELDED, "999 000 0050", "999-000-0050")


async def test_the_cards_for_a_search_by_name_never_name_the_reference(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    await link(loaded, LEE, "S001")  # the lead: a message is delivered only to someone Signpost can reach
    await teams.post(message(PRIYA, "Mia Stone 30/06/2015", connector.url))
    shielded = card_in(connector.messages_in(PRIYA.personal_conversation)[-1])
    priya_saw: list[dict[str, Any]] = [shielded]
    ask = only_action(shielded, "request_access")
    assert ask["data"]["button"]["command"].startswith("request found-")
    asked = await invoke_card(teams, invoke(PRIYA, ask, connector.url, {"purpose": "section 47 enquiry"}))
    assert "Access request 1 for the record you found by name and date of birth" in texts_of(asked)
    priya_saw.append(asked)
    send = only_action(shielded, "relay_message")
    sent = await invoke_card(teams, invoke(PRIYA, send, connector.url, {"text": MARKER}))
    assert "Message 1 about the record you found by name and date of birth delivered" in texts_of(sent)
    priya_saw.append(sent)
    shown = everything(priya_saw)
    assert not [spelling for spelling in SPELLINGS if spelling in shown]
