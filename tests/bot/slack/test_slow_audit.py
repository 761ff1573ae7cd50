"""The answer budget when the store is slow to make the audit event durable (another connection
holds SQLite's write lock, or on PostgreSQL locks the audit table): the slash command's ack never
carries an answer whose event is not durable yet. It acks empty, and the answer reaches the modal
once its event is written, exactly one event for it. Real signed requests in, the fake Web API."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import Signpost
from tests.bot.conftest import serving
from tests.bot.slack.slack_requests import SlackUser, slack_events
from tests.factories import AMY, load_standard
from tests.fakes.slack_api import FakeSlackApi

NURSE = SlackUser("U0NURSE")


@asynccontextmanager
async def audit_held(signpost: Signpost) -> AsyncIterator[None]:
    """No audit event can be written until this ends: SQLite's write lock, taken by another
    connection; on PostgreSQL, ``LOCK TABLE audit_events`` in another session."""
    url = signpost.ctx.db.engine.url
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.execute(text("LOCK TABLE audit_events"))
            try:
                yield
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


async def test_a_search_whose_event_waits_on_the_store_is_not_answered_in_the_ack(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """The ack comes back while the audit is still held (so its event cannot be durable): it shows
    nothing of the answer; the answer is shown in the modal afterwards, under one event."""
    await load_standard(signpost)
    async with serving(signpost, fake_slack, SIGNPOST_SLACK_ANSWER_BUDGET="0.1") as app:
        user = await app.link("P002", NURSE)
        before = len(await slack_events(signpost))
        async with audit_held(signpost):
            ack = await app.slack.command(user, AMY)
            assert ack.status == 200
            acked = await ack.text()
        await app.front.idle()
        assert "Sam Carter" not in acked
        assert "Sam Carter" in app.fake.of("views.update")[-1].raw
        events = [(e.action, e.outcome) for e in (await slack_events(signpost))[before:]]
        assert events == [("lookup", "answered")]
