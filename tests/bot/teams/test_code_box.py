"""The Teams code box and button forms left empty: asked again on the same card, and audited once
through the dispatcher, as Slack's code modal and input modal are."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.stepup import flow as stepup
from tests.bot.teams.teams_support import PRIYA, TeamsApp, audit_events, invoke, message, teams_events, texts_of
from tests.bot.teams.test_cards import TOM, challenge_card, invoke_card, only_action, stale_tom
from tests.factories import SHIELDED
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


async def test_an_empty_code_box_is_asked_again_on_the_same_challenge_and_audited_as_slack_audits_it(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A code card sent with the box empty, whether the client sends the input empty or leaves it
    out: the same challenge asks again ("A code is 6 digits"), one ``code`` event each, as Slack's
    empty code modal is (the box left out had been told to send the request again, its challenge lost)."""
    await stale_tom(loaded)
    send = only_action(await challenge_card(teams, connector), "code")
    for inputs in ({"code": ""}, {}):
        card = await invoke_card(teams, invoke(TOM, send, connector.url, inputs))
        assert stepup.MALFORMED in texts_of(card), inputs
        assert only_action(card, "code")["data"]["challenge_id"] == send["data"]["challenge_id"]
    events = [(e.action, e.outcome, e.detail) for e in await teams_events(loaded)]
    assert events[1:] == [("code", "challenged", "code malformed")] * 2


async def test_a_missing_required_input_is_asked_for_again_and_audited_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """An empty reason gets a kind prompt and the same form back; the click reached Signpost, so it
    is audited once (``usage``, invalid), with nothing of the button's command in it."""
    await teams.post(message(PRIYA, SHIELDED, connector.url))
    assert connector.sent[0].card is not None
    send = only_action(connector.sent[0].card, "request_access")
    before = len(await audit_events(loaded))
    card = await invoke_card(teams, invoke(PRIYA, send, connector.url, {"purpose": "   "}))
    assert "Please fill in: Purpose" in texts_of(card)
    assert only_action(card, "request_access")["data"] == send["data"]
    events = await audit_events(loaded)
    assert len(events) == before + 1
    last = events[-1]
    assert (last.action, last.outcome, last.platform, last.terms) == ("usage", "invalid", "teams", None)
    assert SHIELDED not in (last.detail or "") and SHIELDED not in last.subject_refs
