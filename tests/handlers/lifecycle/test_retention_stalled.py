"""When the scheduler's retention run cannot run, the admins are told (once a day while it lasts,
and once when it runs again) and the failure is audited (once a day): children would otherwise go
past 24 undestroyed with nothing but a log line to say so."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from structlog.testing import capture_logs

from bot.app import Signpost, build
from bot.notify import Outbox
from bot.scheduler import Scheduler, standard_tasks
from handlers.clock import FakeClock
from handlers.lifecycle import flows
from handlers.vocabulary import Action, Origin, Outcome
from store.keys import witness
from store.keys.binding import bind
from store.keys.crypto import KeyRing
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from store.tables.lifecycle import Meta
from tests.store.lifecycle.lifecycle_data import MARKER, load

ADMINS = ["AD01", "AD02"]
# What the children of lifecycle_data hold in clear: none of it may reach a notice or the audit.
PERSONAL = (MARKER, "Tara", "Omar", "Patel", "2002-11-03", "03/11/2002", "2008-11-03", "M2 3CD", "M3 4EF")


def _retention_only(signpost: Signpost) -> Scheduler:
    """The scheduler with the standard ``retention`` task alone, as the server registers it."""
    tasks = [task for task in standard_tasks(Outbox(signpost.ctx, [])) if task.name == "retention"]
    assert len(tasks) == 1
    return Scheduler(signpost.ctx, tasks)


def _day_chain_replaced(path: Path) -> None:
    """The key file's birth-date chain given 32 bytes of other state (a damaged or hand-edited file)."""
    doc = json.loads(path.read_text("utf-8"))
    entry = next(k for k in doc["keks"] if k.startswith("~day:"))
    doc["keks"][entry] = base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(json.dumps(doc), "utf-8")


async def _admin_notices(signpost: Signpost) -> list[NoticeRow]:
    async with signpost.ctx.db.read() as session:
        found = await session.execute(select(NoticeRow).where(NoticeRow.kind == "retention").order_by(NoticeRow.id))
        return list(found.scalars())


def _texts(rows: list[NoticeRow]) -> list[str]:
    return [json.loads(row.body)["text"] for row in rows]


async def _failures(signpost: Signpost) -> list[AuditEvent]:
    async with signpost.ctx.db.read() as session:
        found = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == Action.RETENTION.value, AuditEvent.outcome == Outcome.FAILED.value)
            .order_by(AuditEvent.seq)
        )
        return list(found.scalars())


async def test_a_refused_key_file_tells_each_admin_once_a_day_and_once_when_retention_runs_again(
    signpost: Signpost, clock: FakeClock, keys: KeyRing
) -> None:
    await load(signpost)
    await bind(signpost.ctx.db, keys, clock.now().date())
    assert keys.path is not None
    kept = keys.path.read_bytes()
    _day_chain_replaced(keys.path)
    scheduler = _retention_only(signpost)

    assert await scheduler.run_due() == []  # failed
    stalled = await _admin_notices(signpost)
    assert sorted(row.recipient_id for row in stalled) == ADMINS, "each admin told once"
    said = _texts(stalled)[0]
    assert witness.NOT_OURS in said  # the witness's own words for the operator
    assert "overdue" in said and "signpost retention run" in said
    failed = await _failures(signpost)
    assert len(failed) == 1
    assert (failed[0].platform, failed[0].channel) == (Origin.SCHEDULER.value, Origin.SCHEDULER.value)

    clock.advance(hours=1)  # the next hourly run fails too: nothing more today
    assert await scheduler.run_due() == []
    assert len(await _admin_notices(signpost)) == 2
    assert len(await _failures(signpost)) == 1

    clock.advance(days=1)  # still failing the next day: told (and audited) once more
    assert await scheduler.run_due() == []
    assert len(await _admin_notices(signpost)) == 4
    assert len(await _failures(signpost)) == 2

    keys.path.write_bytes(kept)  # the key file kept with the store put back
    clock.advance(hours=1)
    assert await scheduler.run_due() == ["retention"]
    rows = await _admin_notices(signpost)
    again = [row for row in rows if "running again" in json.loads(row.body)["text"]]
    assert sorted(row.recipient_id for row in again) == ADMINS, "each admin told once it runs again"
    clock.advance(hours=1)
    assert await scheduler.run_due() == ["retention"]
    assert [r.id for r in await _admin_notices(signpost) if "running again" in json.loads(r.body)["text"]] == [
        r.id for r in again
    ]
    assert len(await _failures(signpost)) == 2

    for said in _texts(await _admin_notices(signpost)) + [str(e.detail) for e in await _failures(signpost)]:
        assert not any(word in said for word in PERSONAL), said


async def test_an_unexpected_error_is_named_by_its_type_never_by_its_text(signpost: Signpost, clock: FakeClock) -> None:
    """An error nobody foresaw (here a column renamed by hand) may quote anything in its text: the
    notice and the audit name its type only, and still say what is overdue and what to do."""
    await load(signpost)
    async with signpost.ctx.db.write() as session:
        await session.execute(text("ALTER TABLE retention_state RENAME COLUMN last_day TO moved"))
    scheduler = _retention_only(signpost)
    assert await scheduler.run_due() == []
    stalled = await _admin_notices(signpost)
    assert sorted(row.recipient_id for row in stalled) == ADMINS
    for said in _texts(stalled) + [str(e.detail) for e in await _failures(signpost)]:
        assert "unexpected error (" in said, said
        assert not any(quoted in said for quoted in ("retention_state", "last_day", "column")), said
        assert not any(word in said for word in PERSONAL), said
    assert "overdue" in _texts(stalled)[0] and "signpost retention run" in _texts(stalled)[0]


def test_what_stopped_a_run_quotes_no_unknown_exception_text() -> None:
    assert flows.retention_stopped_by(ValueError(f"invalid literal: '{MARKER}'")) == "an unexpected error (ValueError)"
    assert witness.UNCHECKABLE in flows.retention_stopped_by(witness.ChainsNotOurs(witness.UNCHECKABLE))


async def test_two_replicas_failing_at_once_tell_and_audit_it_once(
    signpost: Signpost, clock: FakeClock, keys: KeyRing
) -> None:
    """Two replicas' runs may overlap (the scheduler lets another take a run while a long one goes on):
    failing together, on the first day and on a later one, they audit it once and tell each admin once,
    and neither logs that the admins could not be told."""
    await load(signpost)
    await bind(signpost.ctx.db, keys, clock.now().date())
    assert keys.path is not None
    _day_chain_replaced(keys.path)

    async def both_fail() -> None:
        with capture_logs() as logged:
            ran = await asyncio.gather(
                flows.scheduled_retention(signpost.ctx, clock.now()),
                flows.scheduled_retention(signpost.ctx, clock.now()),
                return_exceptions=True,
            )
        assert all(isinstance(outcome, witness.ChainsNotOurs) for outcome in ran), ran
        assert [e for e in logged if e["event"] == "retention_stall_untold"] == []

    await both_fail()
    assert len(await _failures(signpost)) == 1
    assert sorted(row.recipient_id for row in await _admin_notices(signpost)) == ADMINS
    clock.advance(days=1)
    await both_fail()
    assert len(await _failures(signpost)) == 2
    assert len(await _admin_notices(signpost)) == 4


async def _resumed(signpost: Signpost) -> list[AuditEvent]:
    async with signpost.ctx.db.read() as session:
        found = await session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == Action.RETENTION.value, AuditEvent.detail.contains("running again"))
            .order_by(AuditEvent.seq)
        )
        return list(found.scalars())


async def test_runs_failing_and_succeeding_in_turn_tell_it_once_a_day_and_running_again_only_after_a_told_failure(
    signpost: Signpost, clock: FakeClock, keys: KeyRing, tmp_path: Path
) -> None:
    """One replica's runs fail (a damaged key file on one host; older code in a rolling upgrade) while
    another's succeed, and the scheduler hands the hourly run to either: each failure begins a new
    stall, yet the admins are told (and it is audited) once a day that it fails, and told it runs
    again only when the stall that ends is one they were told of."""
    await load(signpost)
    await bind(signpost.ctx.db, keys, clock.now().date())
    assert keys.path is not None
    damaged = tmp_path / "damaged.key"
    damaged.write_bytes(keys.path.read_bytes())
    _day_chain_replaced(damaged)
    failing = build(signpost.ctx.db, KeyRing.load(damaged), clock)

    async def run(app: Signpost) -> bool:
        try:
            await flows.scheduled_retention(app.ctx, clock.now())
        except witness.ChainsNotOurs:
            return False
        return True

    async def told() -> tuple[int, int, int, int]:
        texts = _texts(await _admin_notices(signpost))
        failed = sum("has failed since" in said for said in texts)
        again = sum("running again" in said for said in texts)
        return failed, len(await _failures(signpost)), again, len(await _resumed(signpost))

    for hour in range(6):  # 09:00 to 14:00: failing, running, failing, ...
        assert await run(failing if hour % 2 == 0 else signpost) == (hour % 2 == 1)
        clock.advance(hours=1)
    # Told (each admin) and audited once that it fails, and once that it runs again after that.
    assert await told() == (2, 1, 2, 1)

    assert not await run(failing)  # 15:00: fails again, untold (told today), and on into the next day
    clock.advance(hours=10)
    assert not await run(failing)  # 01:00 the next day: told, that it has failed since 15:00
    assert await told() == (4, 2, 2, 1)
    assert "failed since 02/11/2026 15:00 GMT" in _texts(await _admin_notices(signpost))[-1]
    clock.advance(hours=1)
    assert await run(signpost)
    assert await told() == (4, 2, 4, 2)
    for hour in range(4):  # that day's later runs in turn: told nothing more
        clock.advance(hours=1)
        assert await run(failing if hour % 2 == 0 else signpost) == (hour % 2 == 1)
    assert await told() == (4, 2, 4, 2)


async def test_a_stall_an_older_version_told_of_ends_running_again_and_its_day_stays_told(
    signpost: Signpost, clock: FakeClock, keys: KeyRing
) -> None:
    """An older version kept one row, ``<since> <day told>``, while it failed, and told on the day it
    wrote it (a rolling upgrade): the stall it told of ends with "running again", and that day's
    next failure is not told again."""
    await load(signpost)
    await bind(signpost.ctx.db, keys, clock.now().date())
    since = clock.now()
    async with signpost.ctx.db.write() as session:
        await session.execute(
            insert(Meta).values(key="retention_stalled", value=f"{since.isoformat()} {since.date().isoformat()}")
        )
    clock.advance(hours=1)
    await flows.scheduled_retention(signpost.ctx, clock.now())
    again = [said for said in _texts(await _admin_notices(signpost)) if "running again" in said]
    assert len(again) == len(ADMINS) and all("since 02/11/2026 09:00 GMT" in said for said in again)
    assert keys.path is not None
    _day_chain_replaced(keys.path)
    clock.advance(hours=1)
    with pytest.raises(witness.ChainsNotOurs):
        await flows.scheduled_retention(signpost.ctx, clock.now())
    assert await _failures(signpost) == []  # the older version audited that day's
    assert len(await _admin_notices(signpost)) == len(ADMINS)
