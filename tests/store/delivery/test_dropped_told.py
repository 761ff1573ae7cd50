"""Every notice closed unsent is told to the operator once, and only once its closing has committed:
one ``notice_dropped`` log line (its id, kind and reason, nothing else) and one count of
``signpost_notices_total{state="dropped"}`` on /metrics, whichever way it was closed: a request
decided, a relayed message handed on, a drop found on a claim or on a failed attempt, a recipient no
longer active or with no address, a week gone by. A closing rolled back is neither logged nor counted."""

from __future__ import annotations

import re
from collections.abc import MutableMapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from bot.app import Signpost, build
from bot.notify import MAILER_WAITED_FOR, NO_ADDRESS, Outbox, emails_due
from handlers.clock import FakeClock
from handlers.stand_in import NOT_ACTIVE, drop_for_inactive
from handlers.vocabulary import Notice, Platform, Principal
from store.delivery import notices, outbox
from store.keys.crypto import KeyRing
from store.lifecycle import retention
from store.people import practitioners
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import Practitioner
from store.tables.register import Child
from tests.access_helpers import decide, request_access
from tests.bot.test_operations import get, serving, value
from tests.factories import SHIELDED, say

HOLD = timedelta(minutes=2)
FIELDS = {"event", "log_level", "notice_id", "kind", "reason"}


def _asked(request_id: int, who: str = "P001") -> Notice:
    return Notice(who, "access_request", f"Please decide request {request_id}", dedupe_key=f"access:{request_id}:{who}")


async def _enqueue(app: Signpost, *queued: Notice) -> list[int]:
    async with app.ctx.db.write() as session:
        await app.ctx.notices.enqueue(session, list(queued), app.ctx.clock.now())
    async with app.ctx.db.read() as session:
        keys = [n.dedupe_key for n in queued]
        found = await session.execute(select(NoticeRow.id).where(NoticeRow.dedupe_key.in_(keys)).order_by(NoticeRow.id))
        return list(found.scalars())


async def _dropped_rows(app: Signpost) -> list[tuple[int, str, str | None]]:
    async with app.ctx.db.read() as session:
        found = await session.execute(
            select(NoticeRow.id, NoticeRow.kind, NoticeRow.last_error)
            .where(NoticeRow.dropped_at.is_not(None))
            .order_by(NoticeRow.id)
        )
        return [(int(row.id), row.kind, row.last_error) for row in found]


def _told(logs: Sequence[MutableMapping[str, Any]]) -> list[tuple[int, str, str]]:
    """The ``notice_dropped`` lines, each holding its id, kind and reason and nothing else."""
    lines = [entry for entry in logs if entry["event"] == "notice_dropped"]
    assert all(set(entry) == FIELDS for entry in lines), lines
    return sorted((entry["notice_id"], entry["kind"], entry["reason"]) for entry in lines)


def _metric(app: Signpost) -> float | None:
    """``signpost_notices_total{state="dropped"}``, as the metric tests read it."""
    return app.metrics.registry.get_sample_value("signpost_notices_total", {"state": "dropped"})


async def test_a_request_decided_drops_its_please_decide_notices_logged_and_counted_once(app: Signpost) -> None:
    """A duty manager decides an access request before any pass has sent the "please decide"
    notices: each left unsent is closed as decided, one line and one count each."""
    await request_access(app, "P002", SHIELDED)
    with capture_logs() as logs:
        await decide(app, "DM02", "approve", 1)
    dropped = await _dropped_rows(app)
    assert dropped and {why for _, _, why in dropped} == {notices.DECIDED}
    assert _told(logs) == [(i, kind, why) for i, kind, why in dropped]
    runner, url = await serving(app)
    try:
        status, _, text = await get(url + "/metrics")
    finally:
        await runner.cleanup()
    assert status == 200
    assert value(text, 'signpost_notices_total{state="dropped"}') == len(dropped)


async def test_drop_decided_and_drop_keyed_are_logged_and_counted_once_committed(app: Signpost) -> None:
    decided, handed_on = await _enqueue(app, _asked(12), _asked(13))
    with capture_logs() as logs:
        async with app.ctx.db.write() as session:
            now = app.ctx.clock.now()
            assert await notices.drop_decided(session, "access_request", "access:12:", now) == 1
            assert await notices.drop_keyed(session, "access_request", {"access:13:P001"}, now, notices.HANDED_ON) == 1
            assert _told(logs) == [], "told before the drop committed"
    assert _told(logs) == [
        (decided, "access_request", notices.DECIDED),
        (handed_on, "access_request", notices.HANDED_ON),
    ]
    assert _metric(app) == 2


async def test_a_drop_rolled_back_is_neither_logged_nor_counted(app: Signpost) -> None:
    await _enqueue(app, _asked(12))
    with capture_logs() as logs, pytest.raises(RuntimeError):
        async with app.ctx.db.write() as session:
            assert await notices.drop_decided(session, "access_request", "access:12:", app.ctx.clock.now()) == 1
            raise RuntimeError("the decision failed after the drop")
    assert await _dropped_rows(app) == []
    assert _told(logs) == []
    assert _metric(app) == 0


async def test_a_drop_found_on_a_failed_attempt_is_logged_and_counted_once(app: Signpost, clock: FakeClock) -> None:
    """A worker's attempt failed while the request was decided (the drop was left to it): recording
    the failure closes the notice as decided, told once."""
    [notice_id] = await _enqueue(app, _asked(12))
    now = clock.now()
    async with app.ctx.db.write() as session:
        assert (await outbox.claim_many(session, [notice_id], "sending", now, HOLD)).attempts == {notice_id: 0}
    async with app.ctx.db.write() as session:
        assert await notices.drop_decided(session, "access_request", "access:12:", now) == 0
    with capture_logs() as logs:
        async with app.ctx.db.write() as session:
            assert await outbox.retry_later(session, notice_id, 0, now, "slack: DeliveryFailed") is None
    assert _told(logs) == [(notice_id, "access_request", notices.DECIDED)]
    assert _metric(app) == 1


async def test_a_drop_found_on_a_claim_of_one_is_logged_and_counted_once(app: Signpost, clock: FakeClock) -> None:
    """A worker died holding the notice, a drop found it claimed; the next to claim it alone
    (``outbox.claim``) closes it as decided, told once."""
    [notice_id] = await _enqueue(app, _asked(12))
    now = clock.now()
    async with app.ctx.db.write() as session:
        await outbox.claim_many(session, [notice_id], "died", now, HOLD)
    async with app.ctx.db.write() as session:
        assert await notices.drop_decided(session, "access_request", "access:12:", now) == 0
    with capture_logs() as logs:
        async with app.ctx.db.write() as session:
            assert await outbox.claim(session, notice_id, "next", now + timedelta(minutes=3), HOLD) is None
    assert _told(logs) == [(notice_id, "access_request", notices.DECIDED)]
    assert _metric(app) == 1


async def test_a_notice_for_someone_no_longer_active_is_logged_without_its_stand_ins_and_counted_once(
    app: Signpost,
) -> None:
    [notice_id] = await _enqueue(app, Notice("P001", "access_approved", "Approved.", dedupe_key="n1"))
    async with app.ctx.db.write() as session:
        await session.execute(update(Practitioner).where(Practitioner.id == "P001").values(status="inactive"))

    class Slack:
        platform = Platform.SLACK

        async def deliver(self, to: Principal, notice: Notice) -> None:
            raise AssertionError("sent to someone no longer active")

    with capture_logs() as logs:
        assert (await Outbox(app.ctx, [Slack()]).deliver_due()).dropped == 1
    assert _told(logs) == [(notice_id, "access_approved", NOT_ACTIVE)]
    assert _metric(app) == 1


async def test_email_notices_closed_by_the_mailers_pass_are_logged_and_counted_once(
    app: Signpost, clock: FakeClock
) -> None:
    """One e-mail notice a week old, one for a practitioner with no recorded address: both closed,
    told once each."""
    [old] = await _enqueue(app, Notice("P001", notices.EMAIL_KIND, "Linked.", dedupe_key="e1"))
    clock.advance(days=7, minutes=1)
    async with app.ctx.db.write() as session:
        await session.execute(update(Practitioner).where(Practitioner.id == "P002").values(email=""))
    [blank] = await _enqueue(app, Notice("P002", notices.EMAIL_KIND, "Linked.", dedupe_key="e2"))
    with capture_logs() as logs:
        assert await emails_due(app.ctx) == []
    assert _told(logs) == [(old, notices.EMAIL_KIND, MAILER_WAITED_FOR), (blank, notices.EMAIL_KIND, NO_ADDRESS)]
    assert _metric(app) == 2


async def test_a_notice_whose_stand_ins_are_queued_says_so_on_a_line_of_its_own_once_committed(
    app: Signpost,
) -> None:
    """Northshire's one duty manager is made inactive while a registration waits to be sent: their
    copy is dropped (its line id, kind and reason only, counted once) and the admins' stand-ins are
    queued, said on a line of its own (``notice_stood_in``: the id and how many, no more)."""
    await say(app, Principal(Platform.SLACK, "T1", "UNEW"), "register P003")
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "DM01", "inactive")

    class Slack:
        platform = Platform.SLACK

        async def deliver(self, to: Principal, notice: Notice) -> None:
            raise AssertionError("nothing is sent in this pass: DM01 is not active, the admins unlinked")

    [asked] = await _enqueued_ids(app, "registration_request")
    with capture_logs() as logs:
        assert (await Outbox(app.ctx, [Slack()]).deliver_due()).dropped == 1
    assert _told(logs) == [(asked, "registration_request", NOT_ACTIVE)]
    stood = [entry for entry in logs if entry["event"] == "notice_stood_in"]
    assert [(e["notice_id"], e["stand_ins"], set(e)) for e in stood] == [
        (
            asked,
            len(await _enqueued_ids(app, "registration_request")) - 1,
            {"event", "log_level", "notice_id", "stand_ins"},
        )
    ]
    assert _metric(app) == 1


async def _enqueued_ids(app: Signpost, kind: str) -> list[int]:
    async with app.ctx.db.read() as session:
        found = await session.execute(select(NoticeRow.id).where(NoticeRow.kind == kind).order_by(NoticeRow.id))
        return list(found.scalars())


def test_only_the_one_home_closes_a_notice_unsent() -> None:
    """No code but ``store.delivery.drops.close`` sets a notice's ``dropped_at`` (but to None, when a
    notice is reopened or found sent after all): a closing written anywhere else would be neither
    logged nor counted."""
    root = Path(__file__).resolve().parents[3]
    home = root / "store" / "delivery" / "drops.py"
    sets = re.compile(r"""(\bdropped_at\s*=|["']dropped_at["']\s*:)\s*(?!None\b)""")
    elsewhere = [
        f"{path.relative_to(root)}:{number}"
        for layer in ("bot", "handlers", "store")
        for path in sorted((root / layer).rglob("*.py"))
        if path != home and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if sets.search(line)
    ]
    assert elsewhere == []


async def test_a_drop_in_a_savepoint_rolled_back_is_neither_logged_nor_counted(app: Signpost) -> None:
    """A drop inside a savepoint that rolls back did not happen, though the transaction around it
    commits (and a drop before the savepoint, which did, is told)."""
    kept, undone = await _enqueue(app, _asked(12), _asked(13))
    with capture_logs() as logs:
        async with app.ctx.db.write() as session:
            now = app.ctx.clock.now()
            assert await notices.drop_decided(session, "access_request", "access:12:", now) == 1
            savepoint = await session.begin_nested()
            assert await notices.drop_decided(session, "access_request", "access:13:", now) == 1
            inner = await session.begin_nested()
            await inner.commit()
            await savepoint.rollback()
    assert await _dropped_rows(app) == [(kept, "access_request", notices.DECIDED)]
    assert _told(logs) == [(kept, "access_request", notices.DECIDED)]
    assert _metric(app) == 1
    assert undone not in [notice_id for notice_id, _, _ in await _dropped_rows(app)]


async def test_a_drop_in_a_savepoint_released_is_told_only_once_the_transaction_commits(app: Signpost) -> None:
    """A savepoint released is not a commit: its drop is told when the transaction commits, and
    never if the transaction then rolls back."""
    [notice_id] = await _enqueue(app, _asked(12))
    with capture_logs() as logs, pytest.raises(RuntimeError):
        async with app.ctx.db.write() as session:
            async with session.begin_nested():
                assert await notices.drop_decided(session, "access_request", "access:12:", app.ctx.clock.now()) == 1
            assert _told(logs) == [], "told when the savepoint was released"
            raise RuntimeError("the transaction failed after the savepoint")
    assert await _dropped_rows(app) == []
    assert _told(logs) == []
    assert _metric(app) == 0
    with capture_logs() as logs:
        async with app.ctx.db.write() as session:
            async with session.begin_nested():
                assert await notices.drop_decided(session, "access_request", "access:12:", app.ctx.clock.now()) == 1
            assert _told(logs) == [], "told when the savepoint was released"
    assert _told(logs) == [(notice_id, "access_request", notices.DECIDED)]
    assert _metric(app) == 1


async def test_two_apps_built_on_one_database_each_count_its_drops(app: Signpost, keys: KeyRing) -> None:
    """A second app built on the same database (another front end in the process) does not take the
    first one's count away: each /metrics shows every drop the database committed."""
    other = build(app.ctx.db, keys, app.ctx.clock)
    try:
        await _enqueue(app, _asked(12))
        async with app.ctx.db.write() as session:
            assert await notices.drop_decided(session, "access_request", "access:12:", app.ctx.clock.now()) == 1
        assert _metric(app) == 1
        assert _metric(other) == 1
    finally:
        await other.ctx.audit.close()


async def test_stand_ins_are_queued_only_for_the_notices_actually_closed(app: Signpost) -> None:
    """Northshire's duty manager is made inactive, but their registration request was delivered
    meanwhile (another replica sent it): it is not closed, and the admins are not asked to decide
    it a second time."""
    await say(app, Principal(Platform.SLACK, "T1", "UNEW"), "register P003")
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "DM01", "inactive")
    [asked] = await _enqueued_ids(app, "registration_request")
    async with app.ctx.db.write() as session:
        await outbox.delivered(session, asked, app.ctx.clock.now())
    async with app.ctx.db.read() as session:
        notice = notices.decode((await session.execute(select(NoticeRow).where(NoticeRow.id == asked))).scalar_one())
    with capture_logs() as logs:
        async with app.ctx.db.write() as session:
            now = app.ctx.clock.now()
            assert (
                await drop_for_inactive(app.ctx.notices, app.ctx.keys, session, [(asked, notice)], now, app.ctx.reaches)
                == 0
            )
    assert await _enqueued_ids(app, "registration_request") == [asked], "the admins asked to decide it again"
    assert [entry for entry in logs if entry["event"] == "notice_stood_in"] == []
    assert _told(logs) == []
    assert _metric(app) == 0


async def test_notices_naming_a_child_destroyed_are_logged_and_counted_once_as_they_go(app: Signpost) -> None:
    """A child's record is destroyed while notices naming them wait: each still open is told once
    (id, kind and a reason naming nobody) as the destruction commits, then all are gone; one sent,
    or dropped before, is not told again."""
    waiting, sent, dropped = await _enqueue(app, _asked(12), _asked(13), _asked(14))
    async with app.ctx.db.read() as session:
        ref = (await session.execute(select(Child.ref).order_by(Child.ref).limit(1))).scalar_one()
    async with app.ctx.db.write() as session:
        now = app.ctx.clock.now()
        await session.execute(update(NoticeRow).values(child_ref=ref))
        await outbox.delivered(session, sent, now)
        assert await notices.drop_decided(session, "access_request", "access:14:", now) == 1
    with capture_logs() as logs:
        async with app.ctx.db.write() as session:
            assert (await retention.destroy(session, app.ctx.keys, [ref], app.ctx.clock.now()))[0] == 1
            assert _told(logs) == [], "told before the destruction committed"
        async with app.ctx.db.write() as session:
            await retention.destroy(session, app.ctx.keys, [ref], app.ctx.clock.now())
    assert _told(logs) == [(waiting, "access_request", notices.DESTROYED)]
    assert _metric(app) == 2  # the one dropped before, and this one
    async with app.ctx.db.read() as session:
        left = (await session.execute(select(NoticeRow.id).where(NoticeRow.id.in_([waiting, sent, dropped])))).all()
    assert left == []
