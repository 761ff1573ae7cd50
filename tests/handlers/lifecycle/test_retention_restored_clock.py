"""What a refused run leaves alone (README, "Retention" and "Backups"): more than a month of days
due waits for an operator to confirm today's date (``retention.ClockUnchecked``), and so does the
work a run does before its first day: destroying the children a restored backup brought back under
birth-date keys already punctured (``_destroy_orphans``), and finishing a puncture left behind the
last processed day (``_finish_puncture``). Refused, a run has changed nothing, by the scheduler or at
the terminal; confirmed, it does all of it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import Signpost, build
from handlers.clock import FakeClock
from handlers.lifecycle import flows
from handlers.operator import lifecycle as operator
from handlers.operator.common import Refused, audited
from handlers.vocabulary import Action
from store.db import Database
from store.keys import keychain
from store.keys.backup import backup
from store.keys.crypto import DecryptionError, KeyRing
from store.keys.keychain import Chain
from store.keys.unheld import under_destroyed
from store.lifecycle import retention
from store.register import children
from store.tables.audit import AuditEvent
from store.tables.register import Child, ChildKey, ChildTerm, Involvement
from tests.store.keys.test_backup import current_key_material, restored
from tests.store.lifecycle.lifecycle_data import TURNS_18, TURNS_24, at, load, retention_on, snapshot
from tests.store.lifecycle.test_retention import state_of

NOV_2 = date(2026, 11, 2)

# What a refused run may write: its audit events, the admins' stall notice and its meta row, and
# the scheduler's own record of when it next runs.
REFUSAL_WRITES = {"audit_events", "audit_chain", "audit_chain_head", "notices", "meta", "scheduled_tasks"}


async def _held(db: Database, child: str) -> tuple[str, bool, int, int]:
    """A child as the store holds it: its state, whether its wrapped data key is there, and how many
    involvements and blind-index rows name it."""
    ref = int(child)
    async with db.read() as session:
        state = (await session.execute(select(Child.state).where(Child.ref == ref))).scalar_one()
        wrapped = await session.get(ChildKey, ref) is not None
        involved = (
            await session.execute(select(func.count()).select_from(Involvement).where(Involvement.child_ref == ref))
        ).scalar_one()
        terms = (
            await session.execute(select(func.count()).select_from(ChildTerm).where(ChildTerm.child_ref == ref))
        ).scalar_one()
    return str(state), wrapped, int(involved), int(terms)


async def _operator_run(app: Signpost, catch_up_to: date | None = None) -> retention.RetentionReport:
    """`signpost retention run [--catch-up-to]`, as the terminal calls it."""
    async with audited(app.ctx, "ops", Action.RETENTION_RUN) as audit:
        return await operator.retention_run(app.ctx, audit, catch_up_to=catch_up_to)


async def _run_outcomes(db: Database) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == Action.RETENTION_RUN.value)
            .order_by(AuditEvent.seq)
        )
        return [(str(outcome), str(detail)) for outcome, detail in rows.all()]


async def test_a_backup_restored_40_days_on_waits_for_the_date_then_destroys_the_child_destroyed_since(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """Backed up after the run of 2 November 2026, restored 40 days on beside the key file as it is
    then (TURNS_24 destroyed on the 3rd, its birth-date key with it). Neither the scheduler nor a
    plain `retention run` changes anything: TURNS_24's rows stay as the backup has them, read as the
    destroyed child it is, no day is processed (TURNS_18 is not archived) and the key file is not
    written. `retention run --catch-up-to` today destroys TURNS_24 and catches the 40 days up."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    taken = tmp_path / "before.backup"
    await backup(signpost.ctx.db, taken)
    today = NOV_2 + timedelta(days=40)
    await retention_on(signpost, today)  # the live store: TURNS_24 destroyed, its cohort punctured
    assert await state_of(signpost, TURNS_24) == "destroyed"
    assert signpost.ctx.keys.path is not None
    key_file = signpost.ctx.keys.path.read_bytes()
    now_keys = current_key_material(signpost.ctx.keys, today)
    async with restored(db_url, taken) as old:
        app = build(old, now_keys, FakeClock(at(today)))
        try:
            brought_back = await _held(old, TURNS_24)
            assert brought_back[:3] == ("archived", True, 1) and brought_back[3] > 0
            assert [d.table for d in await under_destroyed(old, now_keys, today)] == ["child_keys"]
            before = await snapshot(old)

            with pytest.raises(retention.ClockUnchecked) as stalled:
                await flows.scheduled_retention(app.ctx, app.ctx.clock.now())
            assert (stalled.value.last, stalled.value.today) == (NOV_2, today)
            with pytest.raises(Refused) as refused:
                await _operator_run(app)
            said = str(refused.value)
            assert said.startswith(
                f"retention stopped, nothing changed: the host's clock says today is {today:%d/%m/%Y}, "
                "40 days after the last day retention processed (02/11/2026)"
            ), said
            assert "`signpost retention run --catch-up-to DD/MM/YYYY`" in said

            after = await snapshot(old)
            assert {name for name in before if before[name] != after[name]} <= REFUSAL_WRITES
            assert signpost.ctx.keys.path.read_bytes() == key_file  # no puncture, nothing written
            assert await _held(old, TURNS_24) == brought_back  # the child destroyed since: not dealt with yet
            assert [d.table for d in await under_destroyed(old, now_keys, today)] == ["child_keys"]
            assert (await state_of(app, TURNS_24), await state_of(app, TURNS_18)) == ("destroyed", "active")
            async with old.read() as session:
                with pytest.raises(DecryptionError):  # … nor readable
                    await children.load_identities(session, now_keys, [int(TURNS_24)])
                assert await retention.last_day(session) == NOV_2

            report = await _operator_run(app, catch_up_to=today)
            assert await _held(old, TURNS_24) == ("destroyed", False, 0, 0)
            assert await under_destroyed(old, now_keys, today) == []
            assert await state_of(app, TURNS_18) == "archived"
            async with old.read() as session:
                assert await retention.last_day(session) == today
            assert (report.destroyed, report.pending_days) == (1, 0)
            assert f"Retention (03/11/2026 to {today:%d/%m/%Y})" in report.summary()
            assert await _run_outcomes(old) == [
                ("started", ""),
                ("refused", "clock unchecked"),
                ("started", ""),
                ("done", f"archived {report.archived}, destroyed 1, sealed in 0"),
            ]
        finally:
            await app.ctx.audit.close()


async def test_a_lagging_puncture_waits_for_the_date_too(signpost: Signpost, clock: FakeClock) -> None:
    """The key file a run left behind the last processed day (killed between the day's commit and
    the key file's write, or an earlier copy put back): TURNS_24 is destroyed in the store, yet the
    file still holds its birth-date key. 40 days on, a refused run does not finish that puncture
    either (a refused run writes nothing); confirmed, it does, first."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    path = signpost.ctx.keys.path
    assert path is not None
    behind = path.read_bytes()
    await retention_on(signpost, NOV_2 + timedelta(days=1))  # TURNS_24 destroyed, its cohort punctured
    path.write_bytes(behind)  # … the key file as it was before that run's write
    keychain.reload(signpost.ctx.keys)
    lagging = await retention.unfinished_puncture(signpost.ctx.db, signpost.ctx.keys)
    assert lagging >= 1  # what `signpost db check` says: "still holds the birth-date … keys of N days"
    cutoff = keychain.cutoff_of(KeyRing.load(path), Chain.DAY)

    today = NOV_2 + timedelta(days=41)
    clock.set(at(today))
    with pytest.raises(retention.ClockUnchecked):
        await flows.scheduled_retention(signpost.ctx, clock.now())
    with pytest.raises(Refused):
        await _operator_run(signpost)
    assert path.read_bytes() == behind
    assert await retention.unfinished_puncture(signpost.ctx.db, signpost.ctx.keys) == lagging

    await _operator_run(signpost, catch_up_to=today)
    assert await retention.unfinished_puncture(signpost.ctx.db, signpost.ctx.keys) == 0
    punctured = keychain.cutoff_of(KeyRing.load(path), Chain.DAY)
    assert cutoff is not None and punctured is not None and punctured > cutoff
