"""Each Teams delivery acts once and is audited once (an audit review found them counted per
delivery), and a message that arrives while the server drains is told "busy" in Teams."""

from __future__ import annotations

from bot.admission import BUSY_TEXT
from bot.app import Signpost
from bot.web import ADMISSION_KEY
from tests.bot.teams.teams_support import DANA, TeamsApp, message, teams_events, texts_of
from tests.fakes.teams_connector import FakeConnector


async def test_a_message_teams_sends_again_is_run_and_audited_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Teams sends a message again when the bot answers slowly, with the same activity id."""
    before = len(await teams_events(loaded))
    sent = message(DANA, "history", connector.url)
    first = await teams.post(sent)
    again = await teams.post(sent)
    assert first.status < 300 and again.status < 300
    events = (await teams_events(loaded))[before:]
    assert [(e.action, e.channel) for e in events] == [("history", "direct")]
    answers = connector.messages_in(DANA.personal_conversation)
    assert len(answers) == 2 and answers[-1].card is not None
    assert "Already received" in texts_of(answers[-1].card)


async def test_a_message_while_draining_is_told_busy_in_teams_not_refused_with_503(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    before = len(await teams_events(loaded))
    teams.web[ADMISSION_KEY].draining = True
    response = await teams.post(message(DANA, "history", connector.url))
    assert response.status < 300
    [answer] = connector.messages_in(DANA.personal_conversation)
    assert answer.card is not None and BUSY_TEXT in texts_of(answer.card)
    assert len(await teams_events(loaded)) == before  # nothing was run
