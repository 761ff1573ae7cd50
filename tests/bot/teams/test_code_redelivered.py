"""A code card Teams delivers again (the same activity id: Bot Framework redelivers an invoke
answered slowly) is one attempt: audited once, and a wrong code counts once towards a lockout."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Signpost
from store.tables.people import TotpCredential
from tests.bot.teams.teams_support import TeamsApp, another_code, invoke, teams_events
from tests.bot.teams.test_cards import TOM, challenge_card, only_action, stale_tom
from tests.fakes.teams_connector import FakeConnector


async def failures_of(signpost: Signpost, practitioner_id: str) -> int:
    async with signpost.ctx.db.read() as session:
        count = await session.scalar(
            select(TotpCredential.failures).where(TotpCredential.practitioner_id == practitioner_id)
        )
    return int(count or 0)


async def test_a_wrong_code_teams_delivers_again_is_audited_and_counted_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    totp = await stale_tom(loaded)
    send = only_action(await challenge_card(teams, connector), "code")
    wrong = another_code(totp.now())
    sent = invoke(TOM, send, connector.url, {"code": wrong}, activity_id="invoke-code-1")
    first = await teams.post(sent)
    again = await teams.post(sent)
    assert first.status == 200 and again.status == 200
    events = [(e.action, e.outcome, e.detail) for e in await teams_events(loaded)]
    assert events[1:] == [("code", "challenged", "code wrong")]
    assert await failures_of(loaded, "P003") == 1


async def test_a_good_code_teams_delivers_again_is_audited_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The redelivery of the code that resumed a search neither resumes it again nor is recorded as
    a second attempt ("code reused")."""
    totp = await stale_tom(loaded)
    send = only_action(await challenge_card(teams, connector), "code")
    sent = invoke(TOM, send, connector.url, {"code": totp.now()}, activity_id="invoke-code-2")
    assert (await teams.post(sent)).status == 200
    assert (await teams.post(sent)).status == 200
    actions = [(e.action, e.detail) for e in await teams_events(loaded)][1:]
    assert [a for a, _ in actions].count("code") == 1, actions
