"""A notice dropped (a "please decide" once the request is decided, a relayed message handed on)
while a worker is sending it: a send that went through is recorded as delivered; one that failed,
or never began, is closed with the drop's reason, never retried and sent late."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from structlog.testing import capture_logs

from bot.app import Signpost
from bot.delivery import DeliveryFailed
from bot.notify import Outbox
from handlers.clock import FakeClock
from handlers.vocabulary import Notice, Platform, Principal
from store.db import is_deadlock
from store.delivery import notices, outbox
from store.lifecycle import decommission
from store.tables.delivery import Notice as NoticeRow
from store.tables.delivery import NoticeClaim
from tests.statements import sqlite_plan, statements_sent

HOLD = timedelta(minutes=2)


def _asked(request_id: int) -> Notice:
    """A duty manager's "please decide" for one access request (as handlers/access makes it)."""
    return Notice(
        "P001", "access_request", f"Please decide request {request_id}", dedupe_key=f"access:{request_id}:P001"
    )


async def _enqueue(app: Signpost, *queued: Notice) -> list[int]:
    async with app.ctx.db.write() as session:
        await app.ctx.notices.enqueue(session, list(queued), app.ctx.clock.now())
    return [row.id for row in await _rows(app)]


async def _rows(app: Signpost) -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(NoticeRow).order_by(NoticeRow.id))).scalars())


async def _claims(app: Signpost) -> list[int]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(NoticeClaim.notice_id))).scalars())


async def _decide(app: Signpost, request_id: int) -> int:
    """The request is decided (by another replica): its "please decide" notices are dropped."""
    async with app.ctx.db.write() as session:
        return await notices.drop_decided(session, "access_request", f"access:{request_id}:", app.ctx.clock.now())


class DecidedMeanwhile:
    """Slack, and while it is being sent a notice the request is decided on another replica
    (``during``); the send then goes through, or fails (``fails``)."""

    platform = Platform.SLACK

    def __init__(self, during: Callable[[Notice], Awaitable[object]], fails: bool = False) -> None:
        self.during = during
        self.fails = fails
        self.sent: list[str] = []

    async def deliver(self, to: Principal, notice: Notice) -> None:
        await self.during(notice)
        if self.fails:
            raise DeliveryFailed("platform unavailable")
        self.sent.append(notice.text)


async def test_a_notice_sent_as_it_was_dropped_is_recorded_as_delivered(app: Signpost) -> None:
    """The duty manager was sent "please decide" (Slack took it) while the request was decided:
    the record says what they saw, delivered, not "not sent"."""
    await _enqueue(app, _asked(12))
    slack = DecidedMeanwhile(lambda notice: _decide(app, 12))
    report = await Outbox(app.ctx, [slack]).deliver_due()
    assert slack.sent == ["Please decide request 12"]
    [row] = await _rows(app)
    assert (row.delivered_at is not None, row.dropped_at) == (True, None), "sent, and recorded as not sent"
    assert report.delivered == 1
    assert await _claims(app) == []


async def test_a_notice_dropped_while_its_send_fails_is_closed_with_the_drops_reason_not_retried(
    app: Signpost, clock: FakeClock
) -> None:
    """The send the drop could not stop failed (a Slack outage): the notice is closed as the drop
    said, and no later pass sends the stale "please decide" once Slack is back."""
    await _enqueue(app, _asked(12))
    failing = DecidedMeanwhile(lambda notice: _decide(app, 12), fails=True)
    report = await Outbox(app.ctx, [failing]).deliver_due()
    assert (report.retried, report.dropped) == (0, 1)
    [row] = await _rows(app)
    assert (row.delivered_at, row.dropped_at is not None, row.last_error) == (None, True, notices.DECIDED)

    clock.advance(hours=2)
    back = DecidedMeanwhile(lambda notice: asyncio.sleep(0))
    assert (await Outbox(app.ctx, [back]).deliver_due()).delivered == 0
    assert back.sent == [], "a stale 'please decide' went out after the outage"
    assert await _claims(app) == []


async def test_a_notice_dropped_while_claimed_and_left_untried_is_closed_when_let_go(
    app: Signpost, clock: FakeClock
) -> None:
    """Two requests to decide; the first one's send fails, so the second waits behind it, claimed
    but untried, and is decided meanwhile: it is closed as decided when the pass lets it go, and
    only the first is sent once Slack is back."""
    await _enqueue(app, _asked(11), _asked(12))
    failing = DecidedMeanwhile(lambda notice: _decide(app, 12), fails=True)
    report = await Outbox(app.ctx, [failing]).deliver_due()
    assert (report.retried, report.held, report.dropped) == (1, 0, 1)
    first, second = await _rows(app)
    assert (first.dropped_at, first.attempts) == (None, 1), "the first waits for its retry"
    assert (second.dropped_at is not None, second.last_error) == (True, notices.DECIDED)

    clock.advance(hours=2)
    back = DecidedMeanwhile(lambda notice: asyncio.sleep(0))
    assert (await Outbox(app.ctx, [back]).deliver_due()).delivered == 1
    assert back.sent == ["Please decide request 11"]


async def test_a_notice_dropped_while_a_worker_that_then_died_held_it_is_never_sent(
    app: Signpost, clock: FakeClock
) -> None:
    """A worker claimed the notice and died; the drop found it claimed (the claim had not run out)
    and left the closing to the worker. The next worker to claim it closes it with the drop's reason."""
    [notice_id] = await _enqueue(app, _asked(12))
    async with app.ctx.db.write() as session:
        assert (await outbox.claim_many(session, [notice_id], "died", clock.now(), HOLD)).attempts == {notice_id: 0}
    await _decide(app, 12)
    clock.advance(minutes=3)
    slack = DecidedMeanwhile(lambda notice: asyncio.sleep(0))
    report = await Outbox(app.ctx, [slack]).deliver_due()
    assert slack.sent == []
    [row] = await _rows(app)
    assert (row.delivered_at, row.dropped_at is not None, row.last_error) == (None, True, notices.DECIDED)
    assert report.delivered == 0
    assert await _claims(app) == []


def _dropped_lines(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "notice_dropped"]


def _dropped_metric(app: Signpost) -> float | None:
    return app.metrics.registry.get_sample_value("signpost_notices_total", {"state": "dropped"})


async def test_a_dead_workers_notice_closed_for_its_drop_on_takeover_is_logged_and_counted_once(
    app: Signpost, clock: FakeClock
) -> None:
    """The next worker to claim a notice dropped while a dead worker held it closes it unsent: one
    ``notice_dropped`` line (its id, kind and the drop's reason, nothing else) and one dropped
    notice counted, as for every other notice closed unsent."""
    [notice_id] = await _enqueue(app, _asked(12))
    async with app.ctx.db.write() as session:
        await outbox.claim_many(session, [notice_id], "died", clock.now(), HOLD)
    await _decide(app, 12)
    clock.advance(minutes=3)
    with capture_logs() as logs:
        report = await Outbox(app.ctx, [DecidedMeanwhile(lambda notice: asyncio.sleep(0))]).deliver_due()
    assert _dropped_lines(logs) == [
        {
            "event": "notice_dropped",
            "log_level": "info",
            "notice_id": notice_id,
            "kind": "access_request",
            "reason": notices.DECIDED,
        }
    ]
    assert (report.delivered, report.dropped) == (0, 1)
    assert _dropped_metric(app) == 1


async def test_a_notice_dropped_while_a_dead_worker_held_it_closes_a_week_on_with_the_drops_reason(
    app: Signpost, clock: FakeClock
) -> None:
    """Nobody claimed the notice again within its week (the only worker died holding it, a drop
    found it claimed): the week's closing records why it was really not sent, the drop's reason,
    not that it waited a week; logged and counted once."""
    [notice_id] = await _enqueue(app, _asked(12))
    async with app.ctx.db.write() as session:
        await outbox.claim_many(session, [notice_id], "died", clock.now(), HOLD)
    await _decide(app, 12)
    clock.advance(days=7, minutes=1)
    slack = DecidedMeanwhile(lambda notice: asyncio.sleep(0))
    with capture_logs() as logs:
        report = await Outbox(app.ctx, [slack]).deliver_due()
    assert slack.sent == []
    [row] = await _rows(app)
    assert (row.delivered_at, row.dropped_at is not None, row.last_error) == (None, True, notices.DECIDED)
    assert [(e["notice_id"], e["reason"]) for e in _dropped_lines(logs)] == [(notice_id, notices.DECIDED)]
    assert report.dropped == 1
    assert _dropped_metric(app) == 1
    assert await _claims(app) == []


@pytest.mark.parametrize("sender", ["failed", "died"])
async def test_a_notice_whose_drop_is_wanted_is_not_renewed_and_never_goes_out_later(
    app: Signpost, clock: FakeClock, sender: str
) -> None:
    """A relayed message's notice is handed on while a worker sends it (the drop is wanted), then
    its recipient may take the message again (``renew``), all before the worker records its send.
    The renew reopens nothing (nothing is closed yet: a wish is not a drop), and the wish stands:
    the send fails, or the worker dies and the next one takes its claim over; either way the
    notice is closed as handed on, and no later pass sends it."""
    key = "relay:3:P001"
    relayed = Notice("P001", "relay_message", "A message waits for you (message 3).", dedupe_key=key)
    [notice_id] = await _enqueue(app, relayed)
    now = clock.now()
    async with app.ctx.db.write() as session:
        await outbox.claim_many(session, [notice_id], "sending", now, HOLD)
    async with app.ctx.db.write() as session:
        assert await notices.drop_keyed(session, "relay_message", {key}, now, notices.HANDED_ON) == 0
    async with app.ctx.db.write() as session:
        assert await notices.renew(session, [relayed], now, {notices.HANDED_ON}) == set()
    if sender == "failed":
        async with app.ctx.db.write() as session:
            assert await outbox.retry_later(session, notice_id, 0, now, "slack: DeliveryFailed") is None
    clock.advance(hours=2)
    slack = DecidedMeanwhile(lambda notice: asyncio.sleep(0))
    assert (await Outbox(app.ctx, [slack]).deliver_due()).delivered == 0
    assert slack.sent == [], "a notice whose drop was wanted went out"
    [row] = await _rows(app)
    assert (row.delivered_at, row.dropped_at is not None, row.last_error) == (None, True, notices.HANDED_ON)
    assert await _claims(app) == []


async def test_a_drop_closes_at_once_a_notice_nobody_is_sending_and_one_whose_claim_ran_out(
    app: Signpost, clock: FakeClock
) -> None:
    unclaimed, ran_out, other = await _enqueue(app, _asked(12), _asked(120), _asked(13))
    async with app.ctx.db.write() as session:
        await outbox.claim_many(session, [ran_out], "died", clock.now() - timedelta(minutes=3), HOLD)
    async with app.ctx.db.write() as session:
        now = clock.now()
        assert await notices.drop_decided(session, "access_request", "access:12", now) == 2
        assert await notices.drop_keyed(session, "access_request", {"access:13:P001"}, now, notices.HANDED_ON) == 1
    rows = {row.id: row for row in await _rows(app)}
    assert [rows[i].last_error for i in (unclaimed, ran_out, other)] == [
        notices.DECIDED,
        notices.DECIDED,
        notices.HANDED_ON,
    ]
    assert await _claims(app) == []


@pytest.mark.sqlite_only
async def test_a_drop_and_a_pass_letting_its_claims_go_search_indexes_never_the_tables(
    app: Signpost, clock: FakeClock
) -> None:
    """A drop is three statements however many notices it closes (claim, close, let go), one when
    it closes none; a pass lets a chunk's claims go in one. Each searches an index, as the drop's
    single UPDATE did (``ix_notices_pending``, the primary keys): never a table."""
    ids = await _enqueue(app, _asked(12), _asked(13))
    async with app.ctx.db.write() as session:
        await outbox.claim_many(session, ids[1:], "sending", clock.now(), HOLD)
    with statements_sent(app.ctx.db) as sent:
        assert await _decide(app, 12) == 1
        assert await _decide(app, 13) == 0  # being sent: left to its sender, with the wish
        async with app.ctx.db.write() as session:
            assert await outbox.let_go(session, ids[1:]) == {ids[1]: notices.DECIDED}
    seen = [statement for statement in sent if statement.verb in {"INSERT", "UPDATE", "DELETE"}]
    assert [statement.verb for statement in seen] == ["INSERT", "UPDATE", "DELETE", "INSERT", "DELETE"]
    for statement in seen:
        plan = await sqlite_plan(app.ctx.db, statement)
        assert "SCAN" not in plan, plan


# -- two replicas on one PostgreSQL, one step at a time ---------------------------------------


async def _waits_for_a_lock(app: Signpost, task: asyncio.Task[object]) -> None:
    """Until ``task`` ends or waits for a lock another transaction holds (no timing: each check is
    a query; a task that neither ends nor waits fails the test by pytest's own timeout)."""
    while not task.done():
        async with app.ctx.db.read() as session:
            found = await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            if found.scalar_one():
                return
        await asyncio.sleep(0)


@pytest.mark.postgres_only
@pytest.mark.parametrize("went_through", [True, False], ids=["sent", "failed"])
async def test_a_drop_as_another_replica_claims_the_notice_never_records_a_sent_notice_as_unsent(
    app: Signpost, clock: FakeClock, went_through: bool
) -> None:
    """Replica A claims the notice in a transaction not yet committed; replica B decides the
    request and drops its notices meanwhile. A's claim commits and A sends. Sent: it is recorded
    delivered (not "not sent" while the duty manager reads it). Failed: closed as decided, and not
    claimed again."""
    [notice_id] = await _enqueue(app, _asked(12))
    now = clock.now()
    async with app.ctx.db.write() as claiming:  # replica A
        assert (await outbox.claim_many(claiming, [notice_id], "replica-a", now, HOLD)).attempts == {notice_id: 0}
        dropping = asyncio.create_task(_decide(app, 12))  # replica B
        await _waits_for_a_lock(app, dropping)
    await dropping
    async with app.ctx.db.write() as recording:  # A sent it, or the platform refused it
        if went_through:
            await outbox.delivered_many(recording, [notice_id], now)
        else:
            await outbox.retry_later(recording, notice_id, 0, now, "slack: DeliveryFailed")
    assert await _claims(app) == []
    [row] = await _rows(app)
    if went_through:
        assert (row.delivered_at is not None, row.dropped_at) == (True, None), "sent, recorded as not sent"
    else:
        assert (row.delivered_at, row.dropped_at is not None, row.last_error) == (None, True, notices.DECIDED)
        async with app.ctx.db.write() as session:
            later = now + timedelta(hours=2)
            assert (await outbox.claim_many(session, [notice_id], "replica-a", later, HOLD)).attempts == {}


@pytest.mark.postgres_only
async def test_a_failed_send_recorded_as_a_drop_commits_is_closed_with_the_drops_reason(
    app: Signpost, clock: FakeClock
) -> None:
    """Replica A's send failed; as it records the failure, replica B's drop (which found the
    notice claimed by A) has not committed yet. A's record waits for it and closes the notice as
    decided, not back in the queue for a retry."""
    [notice_id] = await _enqueue(app, _asked(12))
    now = clock.now()
    async with app.ctx.db.write() as session:
        assert (await outbox.claim_many(session, [notice_id], "replica-a", now, HOLD)).attempts == {notice_id: 0}

    async def record_failure() -> None:
        async with app.ctx.db.write() as recording:
            await outbox.retry_later(recording, notice_id, 0, now, "slack: DeliveryFailed")

    async with app.ctx.db.write() as dropping:  # replica B, not committed yet
        assert await notices.drop_decided(dropping, "access_request", "access:12:", now) == 0
        recorded = asyncio.create_task(record_failure())
        await _waits_for_a_lock(app, recorded)
    await recorded
    [row] = await _rows(app)
    assert (row.delivered_at, row.dropped_at is not None, row.last_error) == (None, True, notices.DECIDED)
    assert await _claims(app) == []


@pytest.mark.postgres_only
async def test_a_job_dropping_several_notices_as_a_pass_records_them_never_loses_a_send(
    app: Signpost, clock: FakeClock
) -> None:
    """A pass has sent both "please decide" notices (requests 7 and 5, in that order of id). Before
    it records them, a job's one transaction drops request 5's (the higher id, claimed by the pass:
    the drop is wished), the pass lets its claims go, then the job drops request 7's: the two wait
    for each other. Whichever PostgreSQL rolls back, both sends are recorded as delivered, once,
    and never go out again: the pass tries its record again; the job fails whole, for its next run."""
    low, high = await _enqueue(app, _asked(7), _asked(5))
    now = clock.now()
    first_dropped, go_on = asyncio.Event(), asyncio.Event()
    # Which side PostgreSQL rolls back depends on whose deadlock check runs first once both wait (a
    # matter of its timers and the machine's load), so the test holds the outcome for either.

    async def job() -> None:
        async with app.ctx.db.write() as session:
            assert await notices.drop_decided(session, "access_request", "access:5:", now) == 0
            first_dropped.set()
            await go_on.wait()
            await notices.drop_decided(session, "access_request", "access:7:", now)

    jobs: list[asyncio.Task[None]] = []

    async def during(notice: Notice) -> None:
        if notice.text.endswith(" 5"):  # the second, the last of the pass
            jobs.append(asyncio.create_task(job()))
            await first_dropped.wait()

    slack = DecidedMeanwhile(during)
    delivering = asyncio.create_task(Outbox(app.ctx, [slack]).deliver_due())
    await first_dropped.wait()
    await _waits_for_a_lock(app, delivering)  # the pass lets its claims go, and waits for request 5's
    go_on.set()
    [dropping] = jobs
    job_failed = await asyncio.gather(dropping, return_exceptions=True)
    report = await delivering
    assert slack.sent == ["Please decide request 7", "Please decide request 5"]
    assert report.delivered == 2
    rows = await _rows(app)
    assert [(r.id, r.delivered_at is not None, r.dropped_at) for r in rows] == [(low, True, None), (high, True, None)]
    assert await _claims(app) == []
    [error] = job_failed
    assert error is None or (isinstance(error, Exception) and is_deadlock(error))
    later = now + timedelta(hours=2)
    async with app.ctx.db.write() as session:
        assert (await outbox.claim_many(session, [low, high], "replica-a", later, HOLD)).attempts == {}, "sent again"


async def test_a_failure_recorded_for_a_notice_closed_meanwhile_leaves_its_record_as_it_was(
    app: Signpost, clock: FakeClock
) -> None:
    """A step recording a failed attempt (its claim already let go) for a notice another step had
    closed, delivered or dropped, in the same chunk: the notice keeps what closed it."""
    sent, decided = await _enqueue(app, _asked(7), _asked(5))
    now = clock.now()
    async with app.ctx.db.write() as session:
        await outbox.delivered_many(session, [sent], now, release=False)
        assert await notices.drop_decided(session, "access_request", "access:5:", now) == 1
        await outbox.retry_later(session, sent, 0, now, "slack: DeliveryFailed", release=False)
        await outbox.retry_later(session, decided, 0, now, "slack: DeliveryFailed", release=False)
    by_id = {r.id: r for r in await _rows(app)}
    assert (by_id[sent].delivered_at is not None, by_id[sent].last_error, by_id[sent].attempts) == (True, None, 1)
    assert (by_id[decided].dropped_at is not None, by_id[decided].last_error) == (True, notices.DECIDED)
    assert by_id[decided].attempts == 0


async def test_a_notice_sent_as_signpost_was_switched_off_is_recorded_as_delivered(app: Signpost) -> None:
    """Signpost switched off at once while a duty manager's "please decide" was being sent: Slack took
    it, and the switch-off's closing of waiting decisions recorded it "not sent" (review). It goes
    through the drops' one claim-first path, so the record says what the duty manager saw."""
    await _enqueue(app, _asked(12))

    async def switched_off(notice: Notice) -> None:
        async with app.ctx.db.write() as session:
            now = app.ctx.clock.now()
            await decommission.schedule(session, now.date(), None, "AD01", now, at_once=True)

    slack = DecidedMeanwhile(switched_off)
    assert (await Outbox(app.ctx, [slack]).deliver_due()).delivered == 1
    [row] = await _rows(app)
    assert (row.delivered_at is not None, row.dropped_at) == (True, None), "sent, and recorded as not sent"
    assert await _claims(app) == []
