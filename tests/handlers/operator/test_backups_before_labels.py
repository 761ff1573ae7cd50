"""Backups whose events were written before the audit named them by label (``backup_label``): then
a backup's events said the file's name typed at the terminal. A run of that version killed part-way
must still be found by a rerun of the same name after upgrading, and what the rerun writes names the
backup by its label only: the file name is never written into the audit again."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from bot.app import Signpost
from handlers.operator import lifecycle
from handlers.operator.common import audited
from handlers.vocabulary import CUT_SHORT, Action, Origin, Outcome
from store.audit.log import append, origin_event
from store.keys.backup import PARTIAL
from store.lifecycle.decommission import backups_taken
from store.tables.audit import AuditEvent
from tests.access_helpers import load_access

OLD_RUN = "old-run-0001"


async def old_started(app: Signpost, name: str) -> None:
    """A `signpost backup NAME` of the previous version, killed after its 'started' (which said NAME)."""
    async with app.ctx.db.write() as session:
        event = origin_event(
            Origin.TERMINAL,
            Action.BACKUP,
            app.ctx.clock.now(),
            who="ops",
            outcome=Outcome.STARTED,
            detail=name,
            correlation_id=OLD_RUN,
        )
        await append(session, [event])


async def backup_events(app: Signpost) -> list[tuple[str, str, str]]:
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == Action.BACKUP.value).order_by(AuditEvent.seq)
        return [(e.outcome, e.detail, e.correlation_id) for e in (await session.execute(query)).scalars().all()]


async def test_an_old_backup_killed_after_naming_its_file_is_recorded_finished_by_its_rerun(
    signpost: Signpost, tmp_path: Path
) -> None:
    """It was refused 'already exists' for ever, its 'started' never answered, and decommissioning
    named a partial copy that does not exist. Now the rerun records it finished, under the dead run's
    own id, by its label, and decommissioning names the one whole backup."""
    await load_access(signpost)
    folder = tmp_path / "backups"
    folder.mkdir()
    target = folder / "nightly.db"
    target.write_bytes(b"a whole backup, named before its run was killed")
    os.link(target, folder / ("nightly.db" + PARTIAL))
    await old_started(signpost, "nightly.db")

    async with audited(signpost.ctx, "ops", Action.BACKUP) as audit:
        written = await lifecycle.backup_to(signpost.ctx, audit, target)

    assert written.recorded_late and written.size == target.stat().st_size
    assert sorted(p.name for p in folder.iterdir()) == ["nightly.db"]
    label = lifecycle.backup_label(signpost.ctx.keys, "nightly.db")
    late = f"{label}: {written.size} bytes, sha256 {written.sha256}: {lifecycle.BACKUP_RECORDED_LATE}"
    assert await backup_events(signpost) == [("started", "nightly.db", OLD_RUN), ("done", late, OLD_RUN)]
    async with signpost.ctx.db.read() as session:
        assert [taken.name for taken in await backups_taken(session)] == [f"{label} (sha256 {written.sha256})"]


async def test_an_old_backup_killed_while_copying_is_recorded_cut_short_by_its_rerun_by_label(
    signpost: Signpost, tmp_path: Path
) -> None:
    await load_access(signpost)
    target = tmp_path / "nightly.db"
    await old_started(signpost, "nightly.db")

    async with audited(signpost.ctx, "ops", Action.BACKUP) as audit:
        written = await lifecycle.backup_to(signpost.ctx, audit, target)

    assert not written.recorded_late and target.exists()
    label = lifecycle.backup_label(signpost.ctx.keys, "nightly.db")
    found = await backup_events(signpost)
    assert [(outcome, detail) for outcome, detail, _ in found] == [
        ("started", "nightly.db"),
        ("failed", f"{label}: {CUT_SHORT}"),
        ("started", label),
        ("done", f"{label}: {written.size} bytes, sha256 {written.sha256}"),
    ]
    assert found[1][2] == OLD_RUN and found[2][2] != OLD_RUN
    assert sum("nightly.db" in detail for _, detail, _ in found) == 1  # only the old event names the file


async def test_a_new_backup_killed_after_naming_its_file_is_named_once_by_decommissioning(
    signpost: Signpost, tmp_path: Path
) -> None:
    """The same for a run of this version: its late outcome answers its own 'started'."""
    await load_access(signpost)
    target = tmp_path / "nightly.db"
    target.write_bytes(b"a whole backup, named before its run was killed")
    os.link(target, tmp_path / ("nightly.db" + PARTIAL))
    label = lifecycle.backup_label(signpost.ctx.keys, "nightly.db")
    await old_started(signpost, label)

    async with audited(signpost.ctx, "ops", Action.BACKUP) as audit:
        written = await lifecycle.backup_to(signpost.ctx, audit, target)

    assert written.recorded_late
    assert [run for _, _, run in await backup_events(signpost)] == [OLD_RUN, OLD_RUN]
    async with signpost.ctx.db.read() as session:
        assert [taken.name for taken in await backups_taken(session)] == [f"{label} (sha256 {written.sha256})"]
