"""Retention prunes closed notices: delivered or dropped 30 days before, in bounded batches; a notice
whose dedupe key must outlive it keeps its key (text gone), so that it is never sent twice."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.notify import Outbox
from handlers.clock import FakeClock
from handlers.lifecycle.flows import decommission_tick, retention_tick
from handlers.operator import lifecycle as operator
from handlers.operator.common import audited
from handlers.vocabulary import Action, Notice, Outcome
from store.delivery import notices, outbox
from store.delivery.notices import EMAIL_KIND, PRUNED_BODY, SENT_BODY
from store.keys.backup import backup
from store.lifecycle import notices as closed_notices
from store.lifecycle import retention as lifecycle
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from tests.access_helpers import load_access, search_as
from tests.factories import AMY
from tests.handlers.lifecycle.test_decommission import schedule
from tests.handlers.lifecycle.test_decommission_notices import ConsolePlatform
from tests.statements import sqlite_plan, statements_sent
from tests.store.lifecycle.lifecycle_data import MARKER, at, load

DAY_0 = date(2026, 11, 2)
AMY_FORMATTED = "999 000 0018"  # how a lookup's notice names the child (nowhere else in clear)


async def stored(app: Signpost) -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(NoticeRow).order_by(NoticeRow.id))).scalars())


async def by_key(app: Signpost) -> dict[str, NoticeRow]:
    return {str(row.dedupe_key): row for row in await stored(app)}


async def enqueue(app: Signpost, *found: Notice) -> None:
    async with app.ctx.db.write() as session:
        await app.ctx.notices.enqueue(session, list(found), app.ctx.clock.now())


async def test_the_daily_run_prunes_notices_closed_30_days_ago_and_keeps_open_and_recent_ones(
    signpost: Signpost, clock: FakeClock
) -> None:
    """On day 0 a lookup tells AMY's lead (the looker's contact beside the reference), and notices
    with and without a dedupe key are delivered, one is dropped and an e-mail notice waits for the
    mailer; on day 20 another is delivered. The scheduler's retention run on day 31 deletes the
    lookup's and the keyless notice, empties the keyed ones to their key (text and account gone,
    times kept), leaves the one still waiting and the recent one as they were, and says how many
    it pruned in its summary and its audited totals."""
    clock.set(at(DAY_0))
    await load_access(signpost)
    assert (await search_as(signpost, "P002", AMY)).outcome is Outcome.ANSWERED
    box = Outbox(signpost.ctx, [ConsolePlatform()])
    await enqueue(
        signpost,
        Notice("AD01", "info", f"keyless {MARKER}"),
        Notice("AD01", "retention", f"keyed {MARKER}", dedupe_key="retention:old:AD01"),
        Notice("DM01", "info", f"dropped {MARKER}", dedupe_key="dropped:DM01"),
        Notice("P001", EMAIL_KIND, f"waiting {MARKER}", dedupe_key="email:P001"),
    )
    [dropped] = [row.id for row in await stored(signpost) if row.dedupe_key == "dropped:DM01"]
    async with signpost.ctx.db.write() as session:
        await outbox.dropped_many(session, [dropped], clock.now(), "not sent: recipient not active")
    await box.deliver_due(clock.now())
    before = await stored(signpost)
    lookups = [row for row in before if row.kind == "lead_informed"]
    # Delivered, they keep no text (``SENT_BODY``: the reference and the looker's contact went with
    # it); their rows wait for pruning.
    assert lookups and all(row.delivered_at is not None and row.body == SENT_BODY for row in lookups)
    assert AMY_FORMATTED not in "".join(row.body for row in before)
    keyed_delivered_at = (await by_key(signpost))["retention:old:AD01"].delivered_at
    clock.set(at(DAY_0 + timedelta(days=20)))
    await enqueue(signpost, Notice("AD01", "info", f"recent {MARKER}", dedupe_key="recent:AD01"))
    await box.deliver_due(clock.now())

    clock.set(at(DAY_0 + timedelta(days=31)))
    report = await retention_tick(signpost.ctx, clock.now(), catch_up_to=clock.now().date())

    after = await by_key(signpost)
    assert [row for row in after.values() if row.kind == "lead_informed" or row.dedupe_key is None] == []
    for key in ("retention:old:AD01", "dropped:DM01"):
        assert (after[key].body, after[key].account) == (PRUNED_BODY, None), key
    assert after["retention:old:AD01"].delivered_at == keyed_delivered_at
    assert after["recent:AD01"].body == SENT_BODY and after["recent:AD01"].delivered_at is not None
    assert MARKER in after["email:P001"].body and after["email:P001"].delivered_at is None
    assert report.notices_pruned == len(lookups) + 3
    assert f"{report.notices_pruned} notices closed over 30 days ago were pruned." in report.summary()
    async with signpost.ctx.db.read() as session:
        details = (
            await session.execute(select(AuditEvent.detail).where(AuditEvent.action == Action.RETENTION.value))
        ).scalars()
        totals = [str(d) for d in details if str(d).startswith("run totals:")]
    assert totals and totals[-1].endswith(f"notices_pruned={report.notices_pruned}")


async def test_an_operators_retention_run_says_how_many_notices_it_pruned_in_its_audited_outcome(
    signpost: Signpost, clock: FakeClock
) -> None:
    """`signpost retention run`'s own audit event (what an auditor reads for the operator's run) gives
    the pruned count beside the other totals."""
    clock.set(at(DAY_0))
    await load_access(signpost)
    await enqueue(signpost, Notice("AD01", "info", f"keyless {MARKER}"), Notice("AD02", "info", f"two {MARKER}"))
    await Outbox(signpost.ctx, [ConsolePlatform()]).deliver_due(clock.now())
    clock.set(at(DAY_0 + timedelta(days=31)))
    async with audited(signpost.ctx, "ops", Action.RETENTION_RUN) as audit:
        report = await operator.retention_run(signpost.ctx, audit, catch_up_to=clock.now().date())
    assert report.notices_pruned == 2
    async with signpost.ctx.db.read() as session:
        rows = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail).where(AuditEvent.action == Action.RETENTION_RUN.value)
        )
        outcome, detail = rows.all()[-1]
    assert str(outcome) == "done" and str(detail).endswith(", notices pruned 2")


async def test_a_pruned_switch_off_notice_is_not_sent_again_by_the_ticks_that_raise_it(
    signpost: Signpost, clock: FakeClock
) -> None:
    """Decommissioning raises its "switched off" notice on every tick from the switch-off until the
    destroy-by date (up to 60 days): the outbox's dedupe key is what sends it once. Delivered on
    the switch-off day and pruned 32 days on, its row keeps the key (its text gone), and the next
    tick's notice is refused: the admins are not told a second time."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 10/11/2026 09/01/2027")
    platform = ConsolePlatform()
    box = Outbox(signpost.ctx, [platform])
    clock.set(at(date(2026, 11, 10)))
    await decommission_tick(signpost.ctx, clock.now())
    await box.deliver_due(clock.now())
    switched_off = {f"decommission:1:switched_off:{admin}" for admin in ("AD01", "AD02")}
    assert {str(n.dedupe_key) for _, n in platform.sent} >= switched_off
    platform.sent.clear()

    clock.set(at(date(2026, 12, 12)))
    assert (await retention_tick(signpost.ctx, clock.now(), catch_up_to=clock.now().date())).notices_pruned >= 2
    await decommission_tick(signpost.ctx, clock.now())
    await box.deliver_due(clock.now())

    assert [n.dedupe_key for _, n in platform.sent if n.kind == "decommission"] == []
    again = [row for row in await stored(signpost) if str(row.dedupe_key) in switched_off]
    assert len(again) == 2 and all(row.body == PRUNED_BODY for row in again)


async def test_a_backup_taken_after_the_prune_holds_no_pruned_text(
    signpost: Signpost, clock: FakeClock, tmp_path: Path
) -> None:
    """The pruned texts (the lookup's, naming the child; a kept key's) are in neither a backup taken
    after the run nor, on SQLite, the live database file and its WAL: deleted and overwritten bytes
    are zeroed (secure_delete) and the run's compaction checkpoints them out of the WAL."""
    clock.set(at(DAY_0))
    await load_access(signpost)
    assert (await search_as(signpost, "P002", AMY)).outcome is Outcome.ANSWERED
    await enqueue(signpost, Notice("AD01", "retention", f"keyed {MARKER}", dedupe_key="retention:old:AD01"))
    await Outbox(signpost.ctx, [ConsolePlatform()]).deliver_due(clock.now())
    clock.set(at(DAY_0 + timedelta(days=31)))
    await retention_tick(signpost.ctx, clock.now(), catch_up_to=clock.now().date())

    taken = tmp_path / "after.backup"
    await backup(signpost.ctx.db, taken)
    files = [taken]
    if signpost.ctx.db.dialect == "sqlite":
        live = Path(str(signpost.ctx.db.engine.url.database))
        files += [p for p in (live, Path(f"{live}-wal")) if p.exists()]
    for file in files:
        data = file.read_bytes()
        assert [n for n in (AMY_FORMATTED, MARKER) if n.encode() in data] == [], file.name


async def test_a_first_run_takes_every_closed_notice_in_batches_and_later_runs_only_newer_days(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A store's first prune has no day recorded: it takes every notice closed before its cutoff
    day, however many, in batches (of 2 here), and records the day; run again that day it does
    nothing, and a notice closed since is pruned once its own 30 days have passed."""
    clock.set(at(DAY_0))
    await load_access(signpost)
    await enqueue(signpost, *(Notice("AD01", "info", f"old {n} {MARKER}") for n in range(5)))
    await Outbox(signpost.ctx, [ConsolePlatform()]).deliver_due(clock.now())
    clock.set(at(DAY_0 + timedelta(days=3)))
    await enqueue(signpost, Notice("AD01", "info", f"later {MARKER}"))
    await Outbox(signpost.ctx, [ConsolePlatform()]).deliver_due(clock.now())

    day_31 = at(DAY_0 + timedelta(days=31))
    assert await closed_notices.prune(signpost.ctx.db, day_31, chunk=2) == 5
    later = at(DAY_0 + timedelta(days=3))
    assert [(row.body, row.delivered_at) for row in await stored(signpost)] == [(SENT_BODY, later)]
    async with signpost.ctx.db.read() as session:
        assert await closed_notices.pruned_before(session) == DAY_0 + timedelta(days=1)
    assert await closed_notices.prune(signpost.ctx.db, day_31, chunk=2) == 0
    assert await closed_notices.prune(signpost.ctx.db, at(DAY_0 + timedelta(days=34)), chunk=2) == 1
    assert await stored(signpost) == []


async def test_a_dry_run_counts_the_notices_a_run_would_prune_and_prunes_none(
    signpost: Signpost, clock: FakeClock
) -> None:
    """`retention run --dry-run --as-of` counts the notices already closed that a run on that day
    would prune, and leaves them."""
    clock.set(at(DAY_0))
    await load_access(signpost)
    await enqueue(signpost, Notice("AD01", "info", "one"), Notice("AD01", "info", "two", dedupe_key="two:AD01"))
    await Outbox(signpost.ctx, [ConsolePlatform()]).deliver_due(clock.now())
    today = DAY_0 + timedelta(days=1)
    clock.set(at(today))
    ahead = await lifecycle.preview(signpost.ctx.db, signpost.ctx.keys, today, today + timedelta(days=31))
    assert ahead.notices_pruned == 2 and "2 notices closed over 30 days ago would be pruned." in ahead.summary()
    assert (await lifecycle.preview(signpost.ctx.db, signpost.ctx.keys, today, today)).notices_pruned == 0
    assert len(await stored(signpost)) == 2


@pytest.mark.sqlite_only
async def test_the_prune_finds_closed_notices_through_their_indexes(signpost: Signpost) -> None:
    """The statements that find a day's closed notices and the next day with any search
    ix_notices_pending and ix_notices_dropped_at, never the table: asked with ``ORDER BY id LIMIT``,
    SQLite walked the primary key past the day, to the end of the table, on every run."""
    with statements_sent(signpost.ctx.db) as sent:
        async with signpost.ctx.db.read() as session:
            await notices.closed_in(session, at(DAY_0), at(DAY_0 + timedelta(days=1)))
            await notices.first_closed(session, at(DAY_0), at(DAY_0 + timedelta(days=1)))
            await notices.first_closed(session, None, at(DAY_0))
    seen = [statement for statement in sent if statement.verb == "SELECT"]
    assert len(seen) == 5
    for statement in seen:
        plan = await sqlite_plan(signpost.ctx.db, statement)
        assert "ix_notices_" in plan and "PRIMARY KEY" not in plan and "SCAN" not in plan, plan


async def test_a_busy_day_is_read_in_windows_of_bounded_size_and_pruned_whole(
    signpost: Signpost, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day's closed notices are never read all at once past ``read_at_once``: the day is cut into
    shorter windows until each holds that many at most, and every notice of the day is pruned."""
    await load_access(signpost)
    for hour in range(7):
        clock.set(at(DAY_0) + timedelta(hours=hour))
        await enqueue(signpost, *(Notice("AD01", "info", f"h{hour} n{n} {MARKER}") for n in range(hour % 3 + 1)))
        await Outbox(signpost.ctx, [ConsolePlatform()]).deliver_due(clock.now())
    assert len(await stored(signpost)) == 13
    reads: list[int] = []
    real_closed_in = notices.closed_in

    async def counted(*args: Any) -> list[tuple[int, str | None]]:
        found = await real_closed_in(*args)
        reads.append(len(found))
        return found

    monkeypatch.setattr(notices, "closed_in", counted)
    pruned = await closed_notices.prune(signpost.ctx.db, at(DAY_0 + timedelta(days=31)), chunk=2, read_at_once=3)
    assert pruned == 13 and await stored(signpost) == []
    assert sum(reads) == 13 and max(reads) <= 3 and len(reads) >= 5, reads
    async with signpost.ctx.db.read() as session:
        assert await closed_notices.pruned_before(session) == DAY_0 + timedelta(days=1)
