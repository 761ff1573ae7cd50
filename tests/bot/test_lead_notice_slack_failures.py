"""A lookup's notice to the lead through the real Slack fake, when Slack refuses it or cannot be
reached: kept, retried after its backoff, delivered once; a refused one is never dropped."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.notify import Outbox
from bot.slack.front import SlackDeliverer, web_client
from handlers.clock import FakeClock
from handlers.vocabulary import Platform, Principal
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
