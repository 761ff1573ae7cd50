"""The access store: conditional state changes, grants checked at query time, claims, schema."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Notice, Platform, Principal
from store.db import Database
from store.delivery import outbox, schedule
from store.people import access as store
from store.tables.base import Base
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import AccessRequest
from tests.access_helpers import load_access
from tests.factories import SHIELDED
from tests.statements import sqlite_plan, statements_sent

HOUR = timedelta(hours=1)


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def _open(app: Signpost, requester: str = "P002") -> int:
    async with app.ctx.db.write() as session:
        new = store.NewRequest(requester, int(SHIELDED), "Southvale", None, None)
        now = app.ctx.clock.now()
        return await store.open_request(session, new, now, 24 * HOUR, now + timedelta(minutes=30))


async def test_only_the_first_decision_changes_a_request(app: Signpost) -> None:
    rid = await _open(app)
    now = app.ctx.clock.now()
    async with app.ctx.db.write() as session:
        assert await store.decide_request(session, rid, store.APPROVED, "DM02", now)
    async with app.ctx.db.write() as session:
        assert not await store.decide_request(session, rid, store.DENIED, "DM03", now)
        row = await store.get_request(session, app.ctx.keys, rid)
    assert row is not None and (row.state, row.decided_by) == (store.APPROVED, "DM02")


async def test_an_expired_request_cannot_be_decided(app: Signpost, clock: FakeClock) -> None:
    rid = await _open(app)
    clock.advance(hours=24)
    async with app.ctx.db.write() as session:
        assert not await store.decide_request(session, rid, store.APPROVED, "DM02", clock.now())
        assert await store.expire_request(session, rid, clock.now())
        assert not await store.expire_request(session, rid, clock.now())


async def test_a_grant_counts_until_it_expires_even_before_the_scheduler_marks_it(
    app: Signpost, clock: FakeClock
) -> None:
    rid = await _open(app)
    now = clock.now()
    async with app.ctx.db.write() as session:
        request = await store.get_request(session, app.ctx.keys, rid)
        assert request is not None
        await store.create_grant(session, request, "DM02", now, now + 2 * HOUR)
    async with app.ctx.db.read() as session:
        assert await store.current_grant(session, "P002", int(SHIELDED), now + HOUR) is not None
        assert await store.current_grant(session, "P002", int(SHIELDED), now + 2 * HOUR) is None
        assert await store.current_grant(session, "P003", int(SHIELDED), now) is None
        [due] = await store.due_grant_expiries(session, app.ctx.keys, now + 2 * HOUR)
    async with app.ctx.db.write() as session:
        assert await store.expire_grant(session, due.id, now + 2 * HOUR)
        assert not await store.expire_grant(session, due.id, now + 2 * HOUR)


async def test_an_escalation_step_is_claimed_once(app: Signpost) -> None:
    rid = await _open(app)
    async with app.ctx.db.write() as session:
        assert await store.escalate(session, rid, 0, None)
        assert not await store.escalate(session, rid, 0, None)


async def test_a_scheduled_run_is_claimed_by_one_worker_per_interval(db: Database, clock: FakeClock) -> None:
    now = clock.now()
    async with db.write() as session:
        assert await schedule.claim_run(session, "job", "a", now, timedelta(minutes=1))
    async with db.write() as session:
        assert not await schedule.claim_run(session, "job", "b", now + timedelta(seconds=59), timedelta(minutes=1))
    async with db.write() as session:
        assert await schedule.claim_run(session, "job", "b", now + timedelta(minutes=1), timedelta(minutes=1))


async def test_a_notice_claim_holds_until_it_runs_out(app: Signpost, clock: FakeClock) -> None:
    now = clock.now()
    async with app.ctx.db.write() as session:
        await app.ctx.notices.enqueue(session, [Notice("P001", "test", "hello", dedupe_key="k1")], now)
        notice_id = (await session.execute(select(NoticeRow.id))).scalar_one()
    async with app.ctx.db.write() as session:
        assert await outbox.claim(session, notice_id, "a", now, timedelta(minutes=2)) == 0
    async with app.ctx.db.write() as session:
        assert await outbox.claim(session, notice_id, "b", now + timedelta(minutes=1), timedelta(minutes=2)) is None
    async with app.ctx.db.write() as session:
        assert await outbox.claim(session, notice_id, "b", now + timedelta(minutes=2), timedelta(minutes=2)) == 0
        await outbox.delivered(session, notice_id, now)
    async with app.ctx.db.write() as session:
        assert await outbox.claim(session, notice_id, "c", now + timedelta(minutes=9), timedelta(minutes=2)) is None


ACCESS_TABLES = {
    "registration_requests",
    "access_requests",
    "access_grants",
    "notice_claims",
    "scheduled_tasks",
}


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migration_0004_matches_the_access_models(db: Database) -> None:
    """The migrated schema, access tables included, equals the models (columns, indexes, constraints)."""
    await db.migrate()
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(c.dialect.get_table_names(c)))
    assert names >= ACCESS_TABLES


@pytest.mark.sqlite_only
async def test_the_expiry_job_finds_old_registrations_through_their_index(app: Signpost, clock: FakeClock) -> None:
    """The statements that find registrations past their lifetime, and those opened by a clock
    ahead, search ix_registration_requests_state_created_at, never the whole table (decided ones
    accumulate)."""
    async with app.ctx.db.write() as session:
        asker = Principal(Platform.SLACK, "T0001", "U0001")
        await store.open_registration(session, asker, "P001", "Northshire", clock.now())
    with statements_sent(app.ctx.db) as seen:
        async with app.ctx.db.read() as session:
            [due] = await store.due_registration_expiries(session, clock.now(), clock.now())
    assert due.practitioner_id == "P001"
    selects = [sent for sent in seen if sent.verb == "SELECT"]
    assert len(selects) == 2, "past their lifetime, then opened ahead"
    for select_due in selects:
        plan = await sqlite_plan(app.ctx.db, select_due)
        assert "ix_registration_requests_state_created_at" in plan and "SCAN" not in plan, plan


@pytest.mark.sqlite_only
async def test_the_expiry_jobs_find_grants_and_requests_stamped_ahead_through_their_indexes(
    app: Signpost, clock: FakeClock
) -> None:
    """Those past their end, and those stamped by a clock ahead (``store.skew``), are each read
    through an index range on state and the stamp, never the table (closed ones accumulate)."""
    rid = await _open(app)
    async with app.ctx.db.write() as session:
        request = (await session.execute(select(AccessRequest).where(AccessRequest.id == rid))).scalar_one()
        await store.create_grant(session, request, "DM02", clock.now(), clock.now() + HOUR)
    with statements_sent(app.ctx.db) as seen:
        async with app.ctx.db.read() as session:
            assert await store.due_request_expiries(session, app.ctx.keys, clock.now()) == []
            assert await store.due_grant_expiries(session, app.ctx.keys, clock.now()) == []
    plans = [await sqlite_plan(app.ctx.db, sent) for sent in seen if sent.verb == "SELECT"]
    indexes = [
        "ix_access_requests_state_expires_at",
        "ix_access_requests_state_created_at",
        "ix_access_grants_state_expires_at",
        "ix_access_grants_state_granted_at",
    ]
    assert len(plans) == len(indexes)
    for index, plan in zip(indexes, plans, strict=True):
        assert index in plan and "SCAN" not in plan, plan
