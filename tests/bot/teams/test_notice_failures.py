"""A notice through the real Teams front end to the fake connector on loopback, when the connector
throttles it (429 with Retry-After), fails it (5xx), refuses the chat (403, 404: the chat gone, the
app removed), does not answer, or cannot be reached: kept, retried after its backoff (a rate limit's
Retry-After waited out), taken once, closed only with its reason recorded; one log line each, naming
nobody."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.notify import Outbox
from bot.teams.front import TEAMS_KEY
from handlers.clock import FakeClock
from handlers.vocabulary import Notice
from store.tables.delivery import Notice as NoticeRow
from tests.bot.log_stream import LogStream, logged_at
from tests.bot.teams.teams_support import DANA, PRIYA, TeamsApp, message
from tests.fakes.teams_connector import FakeConnector

TEXT = "P002 looked up 999 000 0050; you are its lead professional."


async def _queue(app: Signpost, *pids: str) -> None:
    async with app.ctx.db.write() as session:
        found = [Notice(pid, "lead_informed", TEXT, dedupe_key=f"lead:{pid}") for pid in pids]
        await app.ctx.notices.enqueue(session, found, app.ctx.clock.now())


async def _rows(app: Signpost) -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(NoticeRow).order_by(NoticeRow.id))).scalars())


@pytest.fixture
async def box(teams: TeamsApp, connector: FakeConnector, loaded: Signpost) -> Outbox:
    """Dana (DM01) has talked to the bot, so her 1:1 chat is stored; one notice for her is queued."""
    await teams.post(message(DANA, "help", connector.url))
    connector.sent.clear()
    await _queue(loaded, "DM01")
    return Outbox(loaded.ctx, [teams.web[TEAMS_KEY].deliverer])


def _posts(connector: FakeConnector) -> list[str]:
    return [s.conversation_id for s in connector.sent if s.method == "POST" and s.path.endswith("/activities")]


def _names_nobody(log: LogStream) -> None:
    for secret in (DANA.aad, DANA.teams_id, DANA.personal_conversation, DANA.name, TEXT, "999 000 0050"):
        assert secret not in log.text


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_notice_the_connector_fails_is_kept_retried_after_its_backoff_and_taken_once(
    box: Outbox, connector: FakeConnector, loaded: Signpost, clock: FakeClock, status: int
) -> None:
    connector.refuse(status)
    with logged_at("info") as log:
        report = await box.deliver_due()
    assert (report.retried, report.delivered, report.dropped) == (1, 0, 0)
    [line] = [line for line in log.lines() if line["level"] != "info"]
    assert (line["event"], line["status"]) == ("teams_notice_failed", status)
    _names_nobody(log)
    assert (await box.deliver_due()).retried == 0, "not before its backoff"
    assert len(_posts(connector)) == 1
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 1
    clock.advance(hours=2)
    assert (await box.deliver_due()).delivered == 0
    assert _posts(connector) == [DANA.personal_conversation] * 2, "one refused, one taken"
    [row] = await _rows(loaded)
    assert row.delivered_at is not None and row.dropped_at is None and row.attempts == 2


async def test_a_throttled_notice_waits_out_retry_after_and_the_tenant_gets_nothing_meanwhile(
    teams: TeamsApp, box: Outbox, connector: FakeConnector, loaded: Signpost, clock: FakeClock
) -> None:
    """429 with Retry-After: 120 (Bot Framework's limits are per chat and per app per tenant): the
    notice is not tried at its 30-second backoff, and Priya, in the same tenant, is not sent hers
    until the 120 s are over; then each goes once."""
    await teams.post(message(PRIYA, "help", connector.url))
    connector.sent.clear()
    await _queue(loaded, "P002")
    connector.refuse(429, retry_after=120)
    with logged_at("info") as log:
        report = await box.deliver_due()
    assert (report.retried, report.delivered, report.dropped) == (2, 0, 0)
    assert _posts(connector) == [DANA.personal_conversation], "nothing more to the tenant in that pass"
    [line] = [line for line in log.lines() if line["level"] != "info"]
    assert (line["event"], line["status"]) == ("teams_notice_failed", 429)
    _names_nobody(log)
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 0
    assert len(_posts(connector)) == 1, "not before Retry-After"
    clock.advance(seconds=90)
    assert (await box.deliver_due()).delivered == 2
    assert sorted(_posts(connector)[1:]) == sorted([DANA.personal_conversation, PRIYA.personal_conversation])
    assert all(row.delivered_at is not None and row.dropped_at is None for row in await _rows(loaded))


async def test_a_throttle_whose_retry_after_is_an_http_date_is_waited_out_for_the_tenant(
    teams: TeamsApp, box: Outbox, connector: FakeConnector, loaded: Signpost, clock: FakeClock
) -> None:
    """429 with Retry-After as an HTTP date two minutes ahead (RFC 9110 allows it; a connector may
    send it): waited out as the seconds form is, for Dana's notice and Priya's in the same tenant."""
    await teams.post(message(PRIYA, "help", connector.url))
    connector.sent.clear()
    await _queue(loaded, "P002")
    connector.refuse(429, retry_after=format_datetime(clock.now() + timedelta(seconds=120), usegmt=True))
    report = await box.deliver_due()
    assert (report.retried, report.delivered, report.dropped) == (2, 0, 0)
    assert _posts(connector) == [DANA.personal_conversation], "nothing more to the tenant in that pass"
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 0
    assert len(_posts(connector)) == 1, "not before the date"
    clock.advance(seconds=90)
    assert (await box.deliver_due()).delivered == 2
    assert all(row.delivered_at is not None and row.dropped_at is None for row in await _rows(loaded))


async def test_a_chat_teams_no_longer_knows_is_asked_for_again_and_the_notice_taken_once(
    box: Outbox, connector: FakeConnector, loaded: Signpost
) -> None:
    """404 for the stored chat (moved, the app added again): the chat Teams gives now takes it, in
    the same pass."""
    connector.refuse(404)
    with logged_at("info") as log:
        report = await box.deliver_due()
    assert (report.delivered, report.retried, report.dropped) == (1, 0, 0)
    assert len(connector.creations()) == 1
    first, again = _posts(connector)
    assert first == DANA.personal_conversation and again.startswith("a:personal-")
    assert [line["event"] for line in log.lines() if line["level"] != "info"] == []
    _names_nobody(log)
    [row] = await _rows(loaded)
    assert row.delivered_at is not None


async def test_a_person_who_removed_the_app_is_kept_for_their_week_then_closed_with_the_reason(
    box: Outbox, connector: FakeConnector, loaded: Signpost, clock: FakeClock
) -> None:
    """403 for the stored chat and for a new one (the app removed, or blocked): not a failure of
    Teams; the notice is kept (they may add the app again within its week) and retried without a
    call into the forgotten chat; after 7 days it is closed, the reason recorded, never dropped
    silently."""
    connector.refuse(403)
    connector.refuse_creations = True
    with logged_at("info") as log:
        report = await box.deliver_due()
    assert (report.retried, report.delivered, report.dropped) == (1, 0, 0)
    [line] = [line for line in log.lines() if line["level"] != "info"]
    assert (line["event"], line["status"], line["again"]) == ("teams_chat_gone", 403, 403)
    _names_nobody(log)
    [row] = await _rows(loaded)
    assert row.dropped_at is None and row.last_error == "teams: PersonUnreachable"
    sent = len(connector.sent)
    clock.advance(hours=3)
    assert (await box.deliver_due()).retried == 1
    assert len(connector.sent) == sent, "nothing sent into a chat Teams refused"
    clock.advance(days=7)
    assert (await box.deliver_due()).dropped == 1
    [row] = await _rows(loaded)
    assert row.delivered_at is None and row.dropped_at is not None
    assert row.last_error == "not sent: failing for 7 days (teams: PersonUnreachable)"


async def test_a_connector_that_does_not_answer_is_given_up_on_and_the_notice_retried(
    box: Outbox, connector: FakeConnector, loaded: Signpost, clock: FakeClock
) -> None:
    """The post hangs: abandoned at half the claim's hold, recorded as timed out, retried later."""
    connector.hold()
    quick = Outbox(loaded.ctx, list(box.deliverers.values()), hold=timedelta(seconds=1), timer=lambda: 0.0)
    report = await quick.deliver_due()
    assert (report.retried, report.delivered, report.dropped) == (1, 0, 0)
    [row] = await _rows(loaded)
    assert row.last_error == "teams: timed out" and row.dropped_at is None
    connector.stop_holding()  # new posts are answered; the abandoned one never is
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 1
    assert _posts(connector) == [DANA.personal_conversation]


async def test_a_connector_that_cannot_be_reached_leaves_the_notice_kept(
    box: Outbox, connector: FakeConnector, loaded: Signpost
) -> None:
    await connector.close()  # connection refused
    with logged_at("info") as log:
        report = await box.deliver_due()
    assert (report.retried, report.delivered, report.dropped) == (1, 0, 0)
    [line] = [line for line in log.lines() if line["level"] != "info"]
    assert line["event"] == "teams_notice_failed" and line["error"] == "ClientConnectorError"
    _names_nobody(log)
    [row] = await _rows(loaded)
    assert row.dropped_at is None and row.delivered_at is None and row.last_error == "teams: DeliveryFailed"
