"""A lookup's notice to the lead through the real Slack fake, when Slack refuses it or cannot be
reached: kept, retried after its backoff, delivered once; a refused one is never dropped."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.notify import Outbox
from bot.slack.front import SlackDeliverer, web_client
from handlers.clock import FakeClock
from handlers.vocabulary import Notice, Platform, Principal
from store.people import practitioners
from store.tables.delivery import Notice as NoticeRow
from tests.access_helpers import load_access, search_as
from tests.bot.conftest import slack_settings
from tests.factories import AMY
from tests.fakes.slack_api import FakeSlackApi


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(
            session, Principal(Platform.SLACK, "T0001", "U0P1"), "P001", signpost.ctx.clock.now()
        )
    return signpost


async def _rows(app: Signpost) -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(NoticeRow))).scalars())


@pytest.mark.parametrize("error", ["account_inactive", "ratelimited", "internal_error", "channel_not_found"])
async def test_a_refused_notice_is_kept_retried_once_later_and_delivered_once(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock, error: str
) -> None:
    await search_as(app, "P002", AMY)
    fake_slack.fail("conversations.open", error)
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    report = await box.deliver_due()
    assert (report.retried, report.delivered, report.dropped) == (1, 0, 0)
    assert (await box.deliver_due()).retried == 0, "not before its backoff"
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 1
    assert len(fake_slack.of("chat.postMessage")) == 1
    [row] = await _rows(app)
    assert row.delivered_at is not None and row.dropped_at is None


async def test_a_notice_slack_cannot_be_reached_for_is_kept_and_retried(app: Signpost, clock: FakeClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fake = FakeSlackApi(port=port)  # nothing listening: connection refused
    await search_as(app, "P002", AMY)
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake)))])
    report = await box.deliver_due()
    assert (report.retried, report.delivered, report.dropped) == (1, 0, 0)
    [row] = await _rows(app)
    assert row.dropped_at is None and row.delivered_at is None and row.last_error


async def _enqueue(app: Signpost, *found: Notice) -> None:
    async with app.ctx.db.write() as session:
        await app.ctx.notices.enqueue(session, list(found), app.ctx.clock.now())


async def test_a_rate_limit_longer_than_the_backoff_is_waited_out_before_the_next_try(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Slack answers 429 with Retry-After: 120: the notice is kept, and not tried again at its own
    30-second backoff (a call before Retry-After prolongs the limit), but once the 120 s are over."""
    await search_as(app, "P002", AMY)
    fake_slack.rate_limit("conversations.open", retry_after=120)
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    assert (await box.deliver_due()).retried == 1
    clock.advance(seconds=30)
    report = await box.deliver_due()
    assert (report.delivered, report.retried) == (0, 0), "not tried before Retry-After"
    assert len(fake_slack.of("conversations.open")) == 1
    clock.advance(seconds=90)
    assert (await box.deliver_due()).delivered == 1
    assert len(fake_slack.of("chat.postMessage")) == 1
    [row] = await _rows(app)
    assert row.delivered_at is not None and row.dropped_at is None


async def test_a_rate_limit_given_as_an_http_date_is_waited_out_as_one_given_in_seconds(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Retry-After in RFC 9110's other form, an HTTP date two minutes ahead: the notice is not
    tried again at its own 30-second backoff (the date was read, not ignored), but once it is past."""
    await search_as(app, "P002", AMY)
    fake_slack.rate_limit("conversations.open", retry_after=http_date(clock.now() + timedelta(seconds=120)))
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    assert (await box.deliver_due()).retried == 1
    clock.advance(seconds=30)
    report = await box.deliver_due()
    assert (report.delivered, report.retried) == (0, 0), "not tried before the date"
    assert len(fake_slack.of("conversations.open")) == 1
    clock.advance(seconds=90)
    assert (await box.deliver_due()).delivered == 1
    assert len(fake_slack.of("chat.postMessage")) == 1


async def test_a_rate_limit_dated_days_ahead_is_waited_out_an_hour_at_most_as_seconds_are(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """A wild date (three days ahead) holds the notice as a wild number of seconds does: an hour
    at most, then it is tried again and delivered."""
    await search_as(app, "P002", AMY)
    fake_slack.rate_limit("conversations.open", retry_after=http_date(clock.now() + timedelta(days=3)))
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    assert (await box.deliver_due()).retried == 1
    clock.advance(minutes=59)
    assert (await box.deliver_due()).delivered == 0, "held while Slack asked, up to the hour"
    clock.advance(minutes=1)
    assert (await box.deliver_due()).delivered == 1
    assert len(fake_slack.of("conversations.open")) == 2


def http_date(moment: datetime) -> str:
    """``moment`` as Retry-After's date form (IMF-fixdate, GMT)."""
    return format_datetime(moment, usegmt=True)


async def test_a_rate_limit_holds_back_the_workspace_not_another(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Slack's limits are per app per workspace (per method; chat.postMessage's workspace-wide
    too): after a 429 with Retry-After: 120 for one person, the pass sends nothing more to that
    workspace, nor does the next pass before the 120 s are over (a notice queued meanwhile
    included); a person in another workspace is still told. Each is sent once, after."""
    async with app.ctx.db.write() as session:
        for principal, pid in [
            (Principal(Platform.SLACK, "T0001", "U0P3"), "P003"),
            (Principal(Platform.SLACK, "T0002", "U0D1"), "DM01"),
            (Principal(Platform.SLACK, "T0001", "U0D2"), "DM02"),
        ]:
            await practitioners.link_identity(session, principal, pid, clock.now())
    await _enqueue(app, *[Notice(pid, "test", f"to {pid}", dedupe_key=pid) for pid in ("P001", "P003", "DM01")])
    fake_slack.rate_limit("conversations.open", retry_after=120)
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    report = await box.deliver_due()
    assert (report.delivered, report.retried) == (1, 2)
    opened = [c.body["users"] for c in fake_slack.of("conversations.open")]
    assert opened == ["U0P1", "U0D1"], "nothing more to T0001 in that pass"
    clock.advance(seconds=30)
    await _enqueue(app, Notice("DM02", "test", "to DM02", dedupe_key="DM02"))
    report = await box.deliver_due()
    assert (report.delivered, report.retried) == (0, 1), "DM02's pushed back untried, to when the limit ends"
    assert len(fake_slack.of("conversations.open")) == 2, "T0001 is still rate limited"
    clock.advance(seconds=90)
    assert (await box.deliver_due()).delivered == 3
    opened = [c.body["users"] for c in fake_slack.of("conversations.open")]
    assert sorted(opened[2:]) == ["U0D2", "U0P1", "U0P3"]
    assert len(fake_slack.of("chat.postMessage")) == 4
    assert all(row.delivered_at is not None and row.dropped_at is None for row in await _rows(app))
