"""Backups hold children's keys wrapped only (practitioners are in clear); destroying a child destroys it in old
backups too; key rotation."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select, update

from bot.app import Signpost, build
from handlers.vocabulary import Outcome
from store.db import Database
from store.keys import keychain
from store.keys.backup import BackupFailed, backup
from store.keys.crypto import DecryptionError, KeyRing, child_aad
from store.keys.rotation import RotationFailed, rotate
from store.people.credentials import seed_aad
from store.register import children
from store.register.feeds import Feed, import_feeds
from store.tables.audit import AuditEvent, AuditTermKey
from store.tables.people import ParkedCommand, TotpCredential
from store.tables.register import Child, ChildKey
from tests.databases import postgres_url, with_database
from tests.factories import AMY, CHILDREN_HEADER, say
from tests.stepup_helpers import code_now, ensure_enrolled, say_fresh
from tests.store.lifecycle.lifecycle_data import MARKER, TURNS_24, load, ref, retention_on

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)


@asynccontextmanager
async def restored(db_url: str, backup_file: Path) -> AsyncIterator[Database]:
    """The backup brought back as a database of its own (a copy of the SQLite file, or pg_restore)."""
    if db_url.startswith("sqlite"):
        copy = backup_file.with_suffix(".restored.db")
        shutil.copyfile(backup_file, copy)
        url, name = f"sqlite+aiosqlite:///{copy}", None
    else:
        name = db_url.rsplit("/", 1)[1] + "_restored"
        admin = await asyncpg.connect(postgres_url().replace("postgresql+asyncpg://", "postgresql://"))
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        target = with_database(postgres_url(), name).replace("postgresql+asyncpg://", "postgresql://")
        proc = await asyncio.create_subprocess_exec("pg_restore", "--no-owner", f"--dbname={target}", str(backup_file))
        assert await proc.wait() == 0
        url = with_database(postgres_url(), name)
    db = await Database.open(url)
    try:
        yield db
    finally:
        await db.close()
        if name is not None:
            admin = await asyncpg.connect(postgres_url().replace("postgresql+asyncpg://", "postgresql://"))
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def current_key_material(keys: KeyRing, today: date) -> KeyRing:
    """The key file as a freshly started process would load it."""
    assert keys.path is not None
    ring = KeyRing.load_or_create(keys.path)
    keychain.ensure_chains(ring, today)
    return ring


async def test_old_backup_cannot_decrypt_a_child_destroyed_since(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """Backup, destroy a child, restore the old backup beside the current key file: the destroyed
    child's identity cannot be decrypted, while every other child in that backup still can."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    assert signpost.ctx.keys.path is not None
    key_file_then = KeyRing.load_or_create(signpost.ctx.keys.path)  # control: the key file as it was
    keychain.install(key_file_then, NOV_2)
    await retention_on(signpost, NOV_3)
    now_keys = current_key_material(signpost.ctx.keys, NOV_3)
    async with restored(db_url, backup_file) as old, old.read() as session:
        assert await session.get(ChildKey, int(TURNS_24)) is not None  # the wrapped key is in the backup
        with pytest.raises(DecryptionError):
            await children.load_identities(session, now_keys, [int(TURNS_24)])
        survivors = await children.load_identities(session, now_keys, [int(AMY)])
        assert survivors[int(AMY)].family_name == "Jones"
        # Control: with the key file as it was at backup time, the child *was* decryptable; so it
        # is destroying the birth-date key (not anything else) that destroyed it in the backup.
        then = await children.load_identities(session, key_file_then, [int(TURNS_24)])
        assert then[int(TURNS_24)].family_name == MARKER


async def test_backup_holds_wrapped_keys_only(signpost: Signpost, tmp_path: Path) -> None:
    """No data key, KEK, chain state, derived key, index key or signing seed appears in a backup."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    # Enrols P001 (a sealed TOTP seed) and creates a month key for the search's audit terms.
    await say_fresh(signpost, "P001", "Nobody Known 01/01/2015")
    keys = signpost.ctx.keys
    secrets_held = [keys.index_key, keys.signing_seed, *keys.keks.values()]
    async with signpost.ctx.db.read() as session:
        for ref, kek_id, wrapped in (
            await session.execute(select(ChildKey.child_ref, ChildKey.kek_id, ChildKey.wrapped))
        ).all():
            secrets_held.append(keys.unwrap(kek_id, wrapped, child_aad(ref)))
        assert (await session.execute(select(AuditTermKey))).first() is not None
        credential = select(TotpCredential.practitioner_id, TotpCredential.kek_id, TotpCredential.seed)
        seeds = (await session.execute(credential)).all()
        assert [pid for pid, _, _ in seeds] == ["P001"]
        secrets_held += [keys.unwrap(kek_id, seed, seed_aad(pid)) for pid, kek_id, seed in seeds]
    target = tmp_path / "store.keys.backup"
    size = await backup(signpost.ctx.db, target)
    data = target.read_bytes()
    assert size == len(data) > 0
    assert MARKER.encode() not in data
    assert [s for s in secrets_held if s in data] == []


async def test_backup_refuses_to_overwrite(signpost: Signpost, tmp_path: Path) -> None:
    """An existing file is never overwritten by a backup."""
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(BackupFailed, match="already exists"):
        await backup(signpost.ctx.db, target)
    assert target.read_text() == "keep me"


async def test_marker_gone_from_file_wal_and_backup_after_destruction(signpost: Signpost, tmp_path: Path) -> None:
    """A marker in an identity field never appears in clear (before or after destruction); after the
    child is destroyed its wrapped key and ciphertext are in neither the database files nor a backup."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    async with signpost.ctx.db.read() as session:
        wrapped = (
            await session.execute(select(ChildKey.wrapped).where(ChildKey.child_ref == int(TURNS_24)))
        ).scalar_one()
        sealed = (await session.execute(select(Child.identity).where(Child.ref == int(TURNS_24)))).scalar_one()
    files = _database_files(signpost.ctx.db)
    before = b"".join(f.read_bytes() for f in files if f.exists())
    assert MARKER.encode() not in before
    if files:
        assert wrapped in before  # the check below can find what it looks for
    await retention_on(signpost, NOV_3)
    target = tmp_path / "after.backup"
    await backup(signpost.ctx.db, target)
    for blob in [target.read_bytes(), *(f.read_bytes() for f in files if f.exists())]:
        assert MARKER.encode() not in blob
        assert wrapped not in blob
        assert sealed is not None and sealed not in blob


def _database_files(db: Database) -> list[Path]:
    """SQLite's database file and WAL (PostgreSQL's files are the server's: the backup is checked)."""
    if db.dialect != "sqlite":
        return []
    path = Path(str(db.engine.url.database))
    return [path, Path(str(path) + "-wal")]


async def test_rotation_rewraps_every_key_and_removes_the_old_generation(signpost: Signpost) -> None:
    """After ``keys rotate`` only the new generation is in the key file, every wrapped key is under
    it, and a freshly started process still finds children, opens audit terms, checks an enrolled
    practitioner's code (the TOTP seed is re-wrapped) and runs the command parked for it."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    totp = await ensure_enrolled(signpost, "P001")
    await say_fresh(signpost, "P001", "Nobody Known 01/01/2015")
    await say_fresh(signpost, "P001", ref(90))  # a reference nobody holds: its terms take the month's key
    signpost.ctx.clock.advance(hours=13)  # type: ignore[attr-defined]  # the code is stale: asked again
    parked = await say(signpost, "P001", AMY)
    assert parked.outcome is Outcome.CHALLENGED and parked.challenge is not None
    keys = signpost.ctx.keys
    assert keys.path is not None
    old_master = keys.keks["k1"]
    report = await rotate(signpost.ctx.db, keys, NOV_2)
    assert (report.old_generation, report.new_generation) == (1, 2)
    # audit_term_keys: the month's key, the searched birth date's terms key, and AMY's birth day's
    # terms key (the challenged lookup of AMY, not yet its event's subject, is sealed under it)
    assert report.rewrapped["child_keys"] == 10 and report.rewrapped["audit_term_keys"] == 3
    assert report.rewrapped["totp_credentials"] == 1 and report.rewrapped["parked_commands"] == 1
    on_disk = KeyRing.load_or_create(keys.path)
    assert on_disk.current_kek_id == "k2" and "k1" not in on_disk.keks
    assert {e.split(":")[1] for e in on_disk.keks if e.startswith("~")} == {"2"}
    assert old_master not in keys.path.read_bytes()
    fresh = current_key_material(keys, NOV_2)
    async with signpost.ctx.db.read() as session:
        assert all(k.startswith("d2") for k in (await session.execute(select(ChildKey.kek_id))).scalars())
        assert set((await session.execute(select(TotpCredential.kek_id))).scalars()) == {"k2"}
        parked_keys = list((await session.execute(select(ParkedCommand.kek_id))).scalars())
        # A lookup of Amy's reference: under the key her data key is wrapped under (her birth day's), new generation.
        amy_key = await session.scalar(select(ChildKey.kek_id).where(ChildKey.child_ref == int(AMY)))
        assert parked_keys == [amy_key] and str(amy_key).startswith("d2")
        assert (await children.load_identities(session, fresh, [int(AMY)]))[int(AMY)].family_name == "Jones"
        event = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.terms_key.like("cohort:%")).order_by(AuditEvent.seq)
                )
            )
            .scalars()
            .first()
        )
        assert event is not None and event.terms is not None and event.terms_key is not None
        sealer = type(signpost.ctx.sealer)(signpost.ctx.db, fresh)
        assert await sealer.open(session, event.terms, event.terms_key) == "Nobody Known 01/01/2015"
    restarted = build(signpost.ctx.db, fresh, signpost.ctx.clock)
    try:
        code = code_now(restarted, totp)
        answer = await say(restarted, "P001", "code", code=code, challenge_id=parked.challenge.challenge_id)
    finally:
        await restarted.ctx.audit.close()
    assert answer.outcome is Outcome.ANSWERED and answer.child_ref == "999 000 0018"
    assert (await say(signpost, "P001", AMY)).outcome is Outcome.ANSWERED


async def test_rotation_fails_closed_when_a_key_cannot_be_opened(signpost: Signpost) -> None:
    """A wrapped key that no KEK opens stops the rotation; the old generation stays, nothing is lost."""
    await load(signpost)
    async with signpost.ctx.db.write() as session:
        await session.execute(update(ChildKey).where(ChildKey.child_ref == int(TURNS_24)).values(wrapped=b"\0" * 60))
    with pytest.raises(RotationFailed):
        await rotate(signpost.ctx.db, signpost.ctx.keys, NOV_2)
    assert signpost.ctx.keys.path is not None
    assert "k1" in KeyRing.load_or_create(signpost.ctx.keys.path).keks
    assert (await say_fresh(signpost, "P001", AMY)).outcome is Outcome.ANSWERED


# -- issue 13 item 1: no window in which a backup holds a master-wrapped child key -------------------

PAST_24 = ref(90)  # born 25 years before it is imported
NEW_TURNS_24 = ref(91)  # imported after the first run, 24 the next day
LATE_MARKER = "Qzlatemarkerplugh"


def late_children() -> Feed:
    return Feed(
        "children.csv",
        f"{CHILDREN_HEADER}\n"
        f"{PAST_24},Ula,{LATE_MARKER},,2001-10-01,F,M9 9ZZ,Northshire,false\n"
        f"{NEW_TURNS_24},Vic,{LATE_MARKER},,2002-11-03,M,M9 9ZY,Northshire,false\n",
    )


async def test_a_backup_taken_before_any_later_run_cannot_open_children_destroyed_since(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """The issue's reproduction: after a first run, import a child born 25 years ago and one who
    turns 24 tomorrow, back up (B1), run retention again, open B1 with the current key file. The
    25-year-old was never stored (the import report counts it, and B1 has no row of it); the other
    is in B1 but only under its birth-date key, so nothing of either decrypts; no child key in B1
    is under the master key at all."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    report = await import_feeds(signpost.ctx.db, signpost.ctx.keys, [late_children()], signpost.ctx.clock.now())
    assert report.past_retention == 1 and report.changed["children"] == 1
    assert report.notes() and LATE_MARKER not in " ".join(report.notes())
    b1 = tmp_path / "b1.backup"
    await backup(signpost.ctx.db, b1)
    key_file_then = KeyRing.load_or_create(signpost.ctx.keys.path)  # type: ignore[arg-type]
    keychain.install(key_file_then, NOV_2)
    assert (await retention_on(signpost, NOV_3)).destroyed == 2  # TURNS_24 and NEW_TURNS_24
    now_keys = current_key_material(signpost.ctx.keys, NOV_3)
    assert LATE_MARKER.encode() not in b1.read_bytes()
    async with restored(db_url, b1) as old, old.read() as session:
        assert await session.get(Child, int(PAST_24)) is None and await session.get(ChildKey, int(PAST_24)) is None
        kek_ids = set((await session.execute(select(ChildKey.kek_id))).scalars())
        assert kek_ids and all(k.startswith("d") for k in kek_ids), kek_ids
        assert (await session.get(ChildKey, int(NEW_TURNS_24))) is not None
        with pytest.raises(DecryptionError):
            await children.load_identities(session, now_keys, [int(NEW_TURNS_24)])
        # Control: the key file as it was when B1 was taken did open it.
        then = await children.load_identities(session, key_file_then, [int(NEW_TURNS_24)])
        assert then[int(NEW_TURNS_24)].family_name == LATE_MARKER


# -- issue 13 item 6: a marker through every stage, then destruction -----------------------------------

STAGED = ref(92)  # 24 on 3 November 2026
STAGE_MARKER = "Qzstagedmarkerfrobozz"


async def test_marker_and_identity_gone_from_files_backups_and_logs_after_destruction(
    signpost: Signpost, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A child with a unique marker in its identity is searched for and backed up at every stage
    (after import before any retention run, after a run, just before its destruction). After it is
    destroyed, with the key file as it is then: no marker bytes in the database file, its -wal or
    -shm, any backup or the captured logs; no backup yields its identity; the search's sealed
    terms open nowhere."""
    await load(signpost)
    feed = Feed(
        "children.csv",
        f"{CHILDREN_HEADER}\n{STAGED},Wyn,{STAGE_MARKER},Wyn {STAGE_MARKER}x,2002-11-03,F,M9 9ZX,Northshire,false\n",
    )
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [feed], signpost.ctx.clock.now())
    await say_fresh(signpost, "P001", f"Wyn {STAGE_MARKER} 03/11/2002")  # terms naming the child
    backups = [tmp_path / "b0-before-any-run.backup"]
    await backup(signpost.ctx.db, backups[0])
    await retention_on(signpost, NOV_2)
    backups.append(tmp_path / "b1-after-a-run.backup")
    await backup(signpost.ctx.db, backups[1])
    await say_fresh(signpost, "P001", STAGED)  # a keyed lookup too (archived: no match)
    backups.append(tmp_path / "b2-just-before-destruction.backup")
    await backup(signpost.ctx.db, backups[2])
    assert (await retention_on(signpost, NOV_3)).destroyed == 2  # TURNS_24 and STAGED
    now_keys = current_key_material(signpost.ctx.keys, NOV_3)
    marker = STAGE_MARKER.encode()
    files = _database_files(signpost.ctx.db)
    if files:
        files.append(Path(str(files[0]) + "-shm"))
    for blob in [*(b.read_bytes() for b in backups), *(f.read_bytes() for f in files if f.exists())]:
        assert marker not in blob
    logs = capsys.readouterr()
    assert STAGE_MARKER not in logs.out + logs.err
    for taken in backups:
        async with restored(db_url, taken) as old, old.read() as session:
            try:
                found = await children.load_identities(session, now_keys, [int(STAGED)])
            except DecryptionError:
                found = {}
            assert found == {}, taken.name
            sealer = type(signpost.ctx.sealer)(old, now_keys)
            events = (await session.execute(select(AuditEvent).where(AuditEvent.terms.is_not(None)))).scalars().all()
            opened = [await _open_or_none(sealer, session, e) for e in events]
            assert not [t for t in opened if t and STAGE_MARKER in t], taken.name


async def _open_or_none(sealer: object, session: object, event: AuditEvent) -> str | None:
    assert event.terms is not None and event.terms_key is not None
    try:
        opened: str | None = await sealer.open(session, event.terms, event.terms_key)  # type: ignore[attr-defined]
        return opened
    except DecryptionError:
        return None
