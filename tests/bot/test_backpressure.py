"""One bound on work in flight for the whole server (SIGNPOST_MAX_IN_FLIGHT), whichever front end
the work came from: above it a search in Slack and a message in Teams are each told "busy, please
try again" privately, nothing is run or audited for them, /metrics counts them, and nothing queues.

Not auditing them is a choice (README, "Busy and stopping"): nothing was read for them, and an event
per refusal would let a flood amplify the audit writes the admitted requests wait on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.admission import BUSY_TEXT
from bot.app import Signpost
from bot.slack.front import SLACK_KEY, add_slack
from bot.teams.front import teams_route_adder
from handlers.vocabulary import Platform, Principal
from store.people import practitioners
from tests.bot.slack.slack_requests import BOT_TOKEN, SIGNING_SECRET, SignedSlack, SlackUser, slack_events
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message, settings, teams_events, texts_of
from tests.factories import AMY
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.teams_connector import FakeConnector

NURSE = SlackUser("U0NURSE")


@pytest.fixture
async def both(loaded: Signpost, fake_slack: FakeSlackApi) -> AsyncIterator[TeamsApp]:
    """Slack and Teams on the one app, with room for one request in flight."""
    values = {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SIGNPOST_SLACK_API_URL": fake_slack.api_url,
        "SIGNPOST_MAX_IN_FLIGHT": 1,
    }
    config = settings(**values)
    adder = teams_route_adder(config)
    assert adder is not None
    app = TeamsApp(loaded, config, [add_slack, adder])
    await app.client.start_server()
    yield app
    await app.close()


async def metric(app: TeamsApp, name: str) -> float:
    text = await (await app.client.get("/metrics")).text()
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


async def test_above_the_bound_slack_and_teams_are_told_busy_and_nothing_is_run_or_audited(
    both: TeamsApp, fake_slack: FakeSlackApi, connector: FakeConnector, loaded: Signpost
) -> None:
    slack = SignedSlack(both.client, fake_slack)
    front = both.web[SLACK_KEY]
    async with loaded.ctx.db.write() as session:
        await practitioners.link_identity(
            session, Principal(Platform.SLACK, NURSE.team_id, NURSE.user_id), "P002", loaded.ctx.clock.now()
        )
    fake_slack.hold("response_url")
    first = await slack.command(NURSE, "help")  # acknowledged; its answer waits at Slack's door
    assert (first.status, await first.text()) == (200, "")
    await fake_slack.wait_for_waiting("response_url", 1)
    assert await metric(both, "signpost_in_flight") == 1

    search = await slack.command(NURSE, AMY)
    assert await search.json() == {"text": BUSY_TEXT, "response_type": "ephemeral"}
    teams = await both.post(message(PRIYA, AMY, connector.url))
    assert teams.status == 202
    [busy] = connector.sent
    assert busy.conversation_id == PRIYA.personal_conversation  # privately, where the answer would go
    assert busy.card is not None and texts_of(busy.card) == BUSY_TEXT
    assert fake_slack.of("views.open") == []
    assert await teams_events(loaded) == []
    assert await metric(both, "signpost_busy_refused_total") == 2
    assert await metric(both, "signpost_in_flight_limit") == 1

    fake_slack.release("response_url")
    await front.idle()
    assert [e.action for e in await slack_events(loaded)] == ["help"]
    assert await metric(both, "signpost_in_flight") == 0
    # Below the bound again: Teams is answered.
    connector.sent.clear()
    await both.post(message(PRIYA, AMY, connector.url))
    [answered] = connector.sent
    assert answered.card is not None and "Sam Carter" in texts_of(answered.card)
    assert [(e.action, e.outcome) for e in await teams_events(loaded)] == [("lookup", "answered")]
