"""#13 item 7: the audit checked from outside the host.

Signed checkpoints leave the host (files the scheduler writes to SIGNPOST_CHECKPOINT_DIR, the
GET /audit/checkpoint endpoint a monitor polls), the signing key can live apart from the data keys,
and what an insider with database write access can and cannot hide from an auditor holding an
exported checkpoint and the published key — each case on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Signpost, build
from bot.config import load_settings
from bot.notify import Outbox
from bot.scheduler import Scheduler, standard_tasks
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.operator import audit
from handlers.operator.common import audited
from handlers.vocabulary import Action
from store.audit.chain import NOTE_PREFIX, make_checkpoint, parse_note
from store.audit.signing import Signer, SigningKeyGone, public_line
from store.audit.verify import Problem, Verdict, verify
from store.db import Database
from store.keys.crypto import KeyRing
from tests.factories import load_standard
from tests.store.audit.tamper import rechain, run_sql, unprotect
from tests.store.audit.test_chain import write_events


async def exported(app: Signpost, folder: Path) -> Path:
    """What the scheduler's export task does: sign a checkpoint now and write it as a new file."""
    written = await audit.export_checkpoint(app.ctx, folder)
    assert written is not None
    return written


async def auditor(app: Signpost, kept: Path, published: str) -> Verdict:
    """`signpost audit verify --checkpoint DIR --public-key KEYFILE`: the exported files and the key
    published before — nothing taken from the database on trust."""
    notes = [(str(path), path.read_text()) for path in sorted(kept.glob("checkpoint-*.note"))]
    return await audit.verify_published(app.ctx.db, notes, ("published key", published))


async def said_by_itself(app: Signpost) -> Verdict:
    """What the database says about itself: its chain against its own key and stored checkpoints
    (checked without auditing the check, which would add an event after the insider's work)."""
    return await verify(app.ctx.db, app.ctx.signer.public, [])


@pytest.fixture
async def exported_at_twelve(signpost: Signpost, tmp_path: Path) -> tuple[Signpost, Path, str]:
    """Twelve real events, a checkpoint of them exported off the host, the key published; then six
    more events (seq 13..18) after the export, with a stored checkpoint of all eighteen."""
    await load_standard(signpost)
    published = public_line(signpost.ctx.signer.public)
    await write_events(signpost, 12)
    kept = tmp_path / "shipped"
    await exported(signpost, kept)
    await write_events(signpost, 6)
    await make_checkpoint(signpost.ctx.db, signpost.ctx.signer, signpost.ctx.clock.now())  # stored in the database only
    assert (await auditor(signpost, kept, published)).ok
    return signpost, kept, published


async def delete_stored_checkpoints(db: Database) -> None:
    await run_sql(db, "DELETE FROM audit_checkpoints")


async def test_cut_tail_and_deleted_checkpoints_are_caught_by_an_exported_checkpoint(
    exported_at_twelve: tuple[Signpost, Path, str],
) -> None:
    """Insider: events after seq 9 deleted, stored checkpoints deleted, the chain head wound back to
    match. The database alone still verifies; the exported checkpoint says events were removed."""
    app, kept, published = exported_at_twelve
    await unprotect(app.ctx.db)
    await delete_stored_checkpoints(app.ctx.db)
    await run_sql(
        app.ctx.db,
        "DELETE FROM audit_subjects WHERE seq > 9",
        "DELETE FROM audit_chain WHERE seq > 9",
        "DELETE FROM audit_events WHERE seq > 9",
    )
    await rechain(app.ctx.db)
    assert (await said_by_itself(app)).ok
    verdict = await auditor(app, kept, published)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.TRUNCATED, 10)


async def test_full_rehash_with_deleted_checkpoints_is_caught_by_an_exported_checkpoint(
    exported_at_twelve: tuple[Signpost, Path, str],
) -> None:
    """Insider: event 5 (before the export) edited, every hash recomputed, stored checkpoints deleted."""
    app, kept, published = exported_at_twelve
    await unprotect(app.ctx.db)
    await delete_stored_checkpoints(app.ctx.db)
    await run_sql(app.ctx.db, "UPDATE audit_events SET outcome = 'no_match' WHERE seq = 5")
    await rechain(app.ctx.db)
    assert (await said_by_itself(app)).ok
    verdict = await auditor(app, kept, published)
    assert verdict.finding is not None and verdict.finding.problem is Problem.REWRITTEN


async def test_edit_after_the_last_export_without_rehash_is_detected(
    exported_at_twelve: tuple[Signpost, Path, str],
) -> None:
    """Insider: event 15 (after the export) edited in place, hashes left alone, checkpoints deleted."""
    app, kept, published = exported_at_twelve
    await unprotect(app.ctx.db)
    await delete_stored_checkpoints(app.ctx.db)
    await run_sql(app.ctx.db, "UPDATE audit_events SET outcome = 'no_match' WHERE seq = 15")
    verdict = await auditor(app, kept, published)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.EDITED, 15)


async def test_rehash_of_only_the_events_after_the_last_export_is_not_detectable(
    exported_at_twelve: tuple[Signpost, Path, str],
) -> None:
    """The limit, stated in the README: events after the newest exported checkpoint, edited or cut
    with every hash recomputed and the stored checkpoints deleted, verify. Exporting often (the
    scheduler's default is every five minutes) is what keeps that window small."""
    app, kept, published = exported_at_twelve
    await unprotect(app.ctx.db)
    await delete_stored_checkpoints(app.ctx.db)
    await run_sql(
        app.ctx.db,
        "UPDATE audit_events SET outcome = 'no_match' WHERE seq = 15",
        "DELETE FROM audit_subjects WHERE seq > 16",
        "DELETE FROM audit_chain WHERE seq > 16",
        "DELETE FROM audit_events WHERE seq > 16",
    )
    await rechain(app.ctx.db)
    verdict = await auditor(app, kept, published)
    assert verdict.ok and verdict.checkpoints == 1 and verdict.count == 16


async def test_the_scheduler_writes_new_signed_checkpoint_files_only_when_the_chain_grew(
    signpost: Signpost, clock: FakeClock, tmp_path: Path
) -> None:
    """With SIGNPOST_CHECKPOINT_DIR the scheduler writes checkpoint-<time>-<size>.note files, one per
    export that has something new, never rewriting an earlier one; each verifies with the published key."""
    folder = tmp_path / "checkpoints"
    tasks = [task for task in standard_tasks(Outbox(signpost.ctx, []), folder) if task.name == "export_checkpoint"]
    scheduler = Scheduler(signpost.ctx, tasks)
    await load_standard(signpost)
    await write_events(signpost, 3)
    assert "export_checkpoint" in await scheduler.run_due()
    first = sorted(folder.iterdir())
    assert [p.name.endswith("-3.note") for p in first] == [True]
    before = first[0].read_text()
    clock.advance(minutes=6)
    assert "export_checkpoint" in await scheduler.run_due()
    assert sorted(folder.iterdir()) == first  # nothing appended: nothing new to ship
    await write_events(signpost, 2)
    clock.advance(minutes=6)
    await scheduler.run_due()
    files = sorted(folder.iterdir())
    assert len(files) == 2 and files[0].read_text() == before and files[1].name.endswith("-5.note")
    public = signpost.ctx.signer.public
    assert all(parse_note(path.read_text()).signed_by(public) for path in files)
    assert (await auditor(signpost, folder, public_line(public))).checkpoints >= 2


_EXPORT_KILLED = """
import asyncio, os, signal, sys
from pathlib import Path
import store.audit.chain
from bot.app import open_signpost
from handlers.operator import audit
from store.keys.crypto import KeyRing


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


if sys.argv[2] == "writing":  # as the note's text is written
    store.audit.chain.Checkpoint.to_note = die
else:  # the note written whole, before it takes its name
    os.link = die


async def export():
    keys = KeyRing.load(Path(os.environ["SIGNPOST_KEY_FILE"]))
    app = await open_signpost(os.environ["SIGNPOST_DATABASE_URL"], keys)
    await audit.export_checkpoint(app.ctx, Path(sys.argv[1]))


asyncio.run(export())
"""


@pytest.mark.parametrize("killed", ["writing", "naming"])
async def test_an_export_killed_part_way_leaves_no_checkpoint_file_that_is_not_whole(
    signpost: Signpost, clock: FakeClock, db_url: str, tmp_path: Path, killed: str
) -> None:
    """The scheduler's export (SIGNPOST_CHECKPOINT_DIR) killed -9 as it writes a note, or before the
    note has its name: every checkpoint file in the folder is still a whole, signed note, and the
    next export writes its own and clears what the killed one left. (The note was written under its
    final name: killed as it was written, an empty checkpoint-….note was left, shipped off the host,
    and `audit verify --checkpoint DIR` refused the folder from then on: "not a Signpost audit
    checkpoint".)"""
    folder = tmp_path / "checkpoints"
    await load_standard(signpost)
    await write_events(signpost, 3)
    await exported(signpost, folder)
    await write_events(signpost, 2)
    assert signpost.ctx.keys.path is not None
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "SIGNPOST_DATABASE_URL": db_url}
    env["SIGNPOST_KEY_FILE"] = str(signpost.ctx.keys.path)
    script = [sys.executable, "-c", _EXPORT_KILLED, str(folder), killed]
    died = subprocess.run(script, cwd=tmp_path, env=env, capture_output=True, check=False)
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]
    public = signpost.ctx.signer.public
    assert all(parse_note(path.read_text()).signed_by(public) for path in folder.glob(f"{NOTE_PREFIX}*.note"))

    await write_events(signpost, 1)
    clock.advance(minutes=6)
    await exported(signpost, folder)
    notes = sorted(folder.iterdir())
    assert len(notes) == 2 and all(path.name.endswith(".note") for path in notes)
    assert all(parse_note(path.read_text()).signed_by(public) for path in notes)
    assert (await auditor(signpost, folder, public_line(public))).checkpoints >= 2


async def test_a_monitor_polls_a_freshly_signed_checkpoint_over_http(signpost: Signpost, clock: FakeClock) -> None:
    """GET /audit/checkpoint on the one aiohttp app: a note signed now, of the chain as it is now."""
    await load_standard(signpost)
    await write_events(signpost, 2)
    client = TestClient(TestServer(create_app(signpost, load_settings()), host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.get("/audit/checkpoint")
        assert response.status == 200 and response.content_type == "text/plain"
        first = parse_note(await response.text())
        assert first.size == 2 and first.signed_by(signpost.ctx.signer.public) and first.at == clock.now()
        await write_events(signpost, 1)
        second = parse_note(await (await client.get("/audit/checkpoint")).text())
        assert second.size == 3 and second.at == clock.now() and second.at > first.at
    finally:
        await client.close()


async def test_the_signing_key_can_live_apart_from_the_data_keys(
    db: Database, keys: KeyRing, clock: FakeClock, tmp_path: Path
) -> None:
    """SIGNPOST_SIGNING_KEY_FILE: the key file's seed moves to its own file (0600), so the log keeps
    its name and earlier checkpoints still verify; the key file no longer holds it."""
    published = Signer(keys).public
    signing_file = tmp_path / "signing.key"
    settings = load_settings(SIGNPOST_KEY_FILE=str(keys.path), SIGNPOST_SIGNING_KEY_FILE=str(signing_file))
    assert settings.signing_key_file == signing_file
    apart = Signer(KeyRing.load_or_create(keys.path), settings.signing_key_file)  # type: ignore[arg-type]
    assert apart.public == published and apart.can_sign
    assert stat.S_IMODE(signing_file.stat().st_mode) == 0o600
    assert json.loads(keys.path.read_text())["signing_seed"] == ""  # type: ignore[union-attr]
    app = build(db, KeyRing.load_or_create(keys.path), clock, signer=apart)  # type: ignore[arg-type]
    try:
        await load_standard(app)
        await write_events(app, 2)
        async with audited(app.ctx, "ops", Action.AUDIT_CHECKPOINT) as checkpoint:
            note = await audit.checkpoint_note(app.ctx, checkpoint)
        assert parse_note(note).signed_by(published)
        again = Signer(KeyRing.load_or_create(keys.path), signing_file)  # type: ignore[arg-type]
        assert again.public == published  # loaded, not moved twice
        # Started later without SIGNPOST_SIGNING_KEY_FILE: it said "destroyed (decommissioned)".
        forgotten = Signer(KeyRing.load_or_create(keys.path))  # type: ignore[arg-type]
        assert not forgotten.can_sign and not forgotten.destroyed
        with pytest.raises(SigningKeyGone, match="moved to a signing key file of its own"):
            forgotten.sign(b"x")
    finally:
        await app.ctx.audit.close()
