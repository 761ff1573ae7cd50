"""An answer the Teams connector did not take is on record as not shown: the lookup's event stands
(audited before the answer was sent) and one ``answer_not_shown`` event follows it, naming the same
child and request, with the connector's status as its reason. None when the answer is sent, none for
Teams' redelivery of the same message. Real Activity JSON in; the fake connector refusing."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from store.tables.audit import AuditEvent
from tests.bot.log_stream import logged_at
from tests.bot.teams.teams_support import PRIYA, TeamsApp, mention, message, teams_events
from tests.factories import AMY
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


def assert_not_shown(events: list[AuditEvent], reason: str) -> None:
    """The lookup, then the one event saying its answer was not shown, referring to it."""
    answered, unshown = events
    assert (answered.action, answered.outcome, answered.subject_refs) == ("lookup", "answered", AMY)
    assert (unshown.action, unshown.outcome, unshown.subject_refs) == ("answer_not_shown", "failed", AMY)
    assert unshown.correlation_id == answered.correlation_id
    assert (unshown.platform, unshown.user_id, unshown.actor_id) == ("teams", PRIYA.aad, "P002")
    assert unshown.detail == f"the answer to event {answered.seq} was not shown to the practitioner: {reason}"


async def test_an_answer_the_connector_refuses_is_recorded_as_not_shown(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The 1:1 chat unknown to the connector (404): one warning line, as before, and the record."""
    connector.unknown_conversations.add(PRIYA.personal_conversation)
    with logged_at("info") as log:
        response = await teams.post(message(PRIYA, AMY, connector.url))
    assert response.status == 202
    assert_not_shown(await teams_events(loaded), "teams:http_404")
    ours = [line for line in log.lines() if str(line.get("logger", "")).startswith("signpost")]
    assert [line["event"] for line in ours if line["level"] != "info"] == ["teams_reply_refused"]
    assert "Sam Carter" not in log.text and AMY not in log.text


async def test_an_answer_the_connector_fails_is_recorded_as_not_shown_and_the_person_gets_the_apology(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The connector failing the answer (503): the generic apology follows, and the record."""
    connector.fail_next = 1
    await teams.post(message(PRIYA, AMY, connector.url))
    _failed, apology = connector.sent
    assert apology.card is not None and "Sam Carter" not in str(apology.card)
    assert_not_shown(await teams_events(loaded), "teams:http_503")


async def test_a_channel_question_teams_gives_no_private_chat_for_is_recorded_as_not_shown(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Asked in a channel by someone Teams will not open a 1:1 chat with: the answer went nowhere."""
    connector.refuse_creations = True
    await teams.post(mention(PRIYA, AMY, connector.url))
    assert_not_shown(await teams_events(loaded), "teams:chat_gone")


async def test_a_redelivered_message_whose_answer_was_lost_is_recorded_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Teams sends the same message again: a duplicate, which shows nothing new and records nothing."""
    connector.unknown_conversations.add(PRIYA.personal_conversation)
    activity = message(PRIYA, AMY, connector.url)
    await teams.post(activity)
    await teams.post(activity)
    assert_not_shown(await teams_events(loaded), "teams:http_404")


async def test_an_answer_that_is_sent_has_its_own_event_only(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Sent in the 1:1 chat, and asked in a channel and sent privately: nothing more is recorded."""
    await teams.post(message(PRIYA, AMY, connector.url))
    await teams.post(mention(PRIYA, AMY, connector.url))
    assert [s.card is not None and "Sam Carter" in str(s.card) for s in connector.sent][:2] == [True, True]
    assert [(e.action, e.outcome) for e in await teams_events(loaded)] == [("lookup", "answered")] * 2
