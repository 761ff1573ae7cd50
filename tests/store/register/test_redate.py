"""A corrected date of birth: a fresh data key for the child, and compaction after the import.

Destroyed means destroyed in every backup (crypto-shredding): a child's data key is wrapped under
the key of their birth-date cohort, punctured when the cohort turns 24. A correction moves the
child to another cohort; the backups taken before still hold the old data key under the old
cohort's key, which lives on until the wrongly recorded date turns 24. So nothing written after
the correction may open with that key, and the old row versions must leave the database files.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.app import Signpost
from store.db import Database
from store.keys.backup import backup
from store.keys.crypto import DecryptionError, child_aad, open_sealed
from store.lifecycle import retention
from store.people import relay
from store.register import children
from store.register.feeds import Feed, ImportReport, import_feeds
from store.tables.people import AccessRequest, RelayMessage
from store.tables.register import Child, ChildKey
from tests.factories import AMY, CHILDREN
from tests.store.keys.test_backup import current_key_material, restored
from tests.store.lifecycle.lifecycle_data import load, retention_on

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)
AMY_REF = int(AMY)
AMY_ROW = next(line for line in CHILDREN.splitlines() if line.startswith(AMY))
PURPOSE, MESSAGE = "section 47 enquiry, call 0161 496 0001", "please ring the school nurse"


def corrected(dob: str) -> str:
    """The children feed with Amy's date of birth corrected (and her name and postcode with it)."""
    fields = AMY_ROW.split(",")
    fields[1:3], fields[4], fields[6] = ["Amie", "Jonas"], dob, "M9 9ZZ"
    return CHILDREN.replace(AMY_ROW, ",".join(fields))


async def import_children(app: Signpost, feed: str, *, destroy_redated: bool = False) -> ImportReport:
    now = app.ctx.clock.now()
    feeds = [Feed("children.csv", feed)]
    return await import_feeds(app.ctx.db, app.ctx.keys, feeds, now, destroy_redated=destroy_redated)


async def seal_purpose_and_relay(app: Signpost) -> None:
    """An access request's purpose and a relay message about Amy, sealed under her data key by
    the code that seals them in service."""
    now = app.ctx.clock.now()
    async with app.ctx.db.write() as session:
        reason, reason_key = await app.ctx.sealer.seal(session, PURPOSE, (AMY_REF,), now, writer=True)
        assert reason_key == f"child:{AMY_REF}"
        session.add(
            AccessRequest(
                requester_id="P002",
                child_ref=AMY_REF,
                local_authority="Northshire",
                reason=reason,
                reason_key=reason_key,
                state="pending",
                created_at=now,
                expires_at=now + timedelta(hours=1),
                escalation_level=0,
            )
        )
        sealed = await relay.seal_for_child(session, app.ctx.keys, AMY_REF, MESSAGE, "message")
        assert sealed is not None
        session.add(
            RelayMessage(
                child_ref=AMY_REF,
                local_authority="Northshire",
                sender_id="P002",
                recipients="P001",
                recipient_role="lead",
                text=sealed,
                created_at=now,
            )
        )


def assert_shut(key: bytes, sealed: bytes, aad: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_sealed(key, sealed, aad)


async def test_a_corrected_date_of_birth_is_sealed_under_a_key_no_older_backup_holds(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """Backup A, correct Amy's date of birth (now 24 tomorrow), backup B, retention destroys her.
    The data key A holds (it still unwraps: the old cohort lives on) opens nothing written since:
    not her identity in the store or in B, not her re-sealed purpose and relay message, not the
    query terms sealed about her afterwards; and B, with the key file as it is now, opens nothing."""
    app, keys = signpost, signpost.ctx.keys
    await load(app)
    await retention_on(app, NOV_2)
    await seal_purpose_and_relay(app)
    await backup(app.ctx.db, tmp_path / "A.bak")
    report = await import_children(app, corrected("2002-11-03"))
    assert report.changed["children"] == 1 and report.compaction and not report.compaction_pending
    await backup(app.ctx.db, tmp_path / "B.bak")
    async with restored(db_url, tmp_path / "A.bak") as old, old.read() as session:
        old_key = await children.data_key_for(session, keys, AMY_REF)
    assert old_key is not None
    aad = child_aad(AMY_REF)
    async with app.ctx.db.read() as session:
        assert await children.data_key_for(session, keys, AMY_REF) != old_key
        assert (await children.load_identities(session, keys, [AMY_REF]))[AMY_REF].family_name == "Jonas"
        identity = (await session.execute(select(Child.identity).where(Child.ref == AMY_REF))).scalar_one()
        reason = (await session.execute(select(AccessRequest.reason))).scalar_one()
        message = (await session.execute(select(RelayMessage.text))).scalar_one()
        assert reason is not None
        # Re-sealed, not lost: what service reads still opens with the child's key as it is now.
        assert await app.ctx.sealer.open(session, reason, f"child:{AMY_REF}") == PURPOSE
        assert await relay.open_for_child(session, keys, AMY_REF, message, "message") == MESSAGE
        terms, terms_key = await app.ctx.sealer.seal(session, "Amie Jonas 03/11/2002", (AMY_REF,), app.ctx.clock.now())
    assert identity is not None and terms is not None and terms_key == f"child:{AMY_REF}"
    assert_shut(old_key, identity, aad)
    assert_shut(old_key, reason, b"audit-terms:" + aad)
    assert_shut(old_key, message, aad + b":relay:message")
    assert_shut(old_key, terms, b"audit-terms:" + aad)
    assert (await retention_on(app, NOV_3)).destroyed == 2  # Amy and the lifecycle child born 2002-11-03
    now_keys = current_key_material(keys, NOV_3)
    async with restored(db_url, tmp_path / "B.bak") as later, later.read() as session:
        with pytest.raises(DecryptionError):  # her new cohort's key is punctured
            await children.load_identities(session, now_keys, [AMY_REF])
        in_b = (await session.execute(select(Child.identity).where(Child.ref == AMY_REF))).scalar_one()
    assert in_b is not None
    assert_shut(old_key, in_b, aad)


async def test_a_correction_in_the_same_cohort_keeps_the_data_key(signpost: Signpost) -> None:
    """A new name or postcode with the same date of birth re-seals under the key the child has:
    nothing sealed under it (audit terms, purposes) stops opening."""
    app, keys = signpost, signpost.ctx.keys
    await load(app)
    async with app.ctx.db.read() as session:
        before = await children.data_key_for(session, keys, AMY_REF)
    report = await import_children(app, corrected("2014-04-03"))
    assert report.changed["children"] == 1 and report.shredded == 0 and report.compaction == ""
    async with app.ctx.db.read() as session:
        assert await children.data_key_for(session, keys, AMY_REF) == before
        assert (await children.load_identities(session, keys, [AMY_REF]))[AMY_REF].family_name == "Jonas"


async def held_bytes(db: Database, table: str) -> list[bytes]:
    """Every byte string a table's storage still holds: SQLite's file and WAL whole; on
    PostgreSQL each row version of every heap page, live or dead (pageinspect, as a reviewer
    recovered a destroyed identity)."""
    if db.dialect == "sqlite":
        path = str(db.engine.url.database)
        return [open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p)]
    async with db.write() as session:
        await session.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        pages = (await session.execute(text(f"SELECT pg_relation_size('{table}') / 8192"))).scalar_one()
        rows = await session.execute(
            text(
                "SELECT t_data FROM generate_series(0, :last) AS blk, "
                f"LATERAL heap_page_items(get_raw_page('{table}', blk::int)) WHERE t_data IS NOT NULL"
            ),
            {"last": int(pages) - 1},
        )
        return [bytes(row[0]) for row in rows]


async def assert_gone(db: Database, table: str, secret: bytes) -> None:
    assert not any(secret in held for held in await held_bytes(db, table)), f"{table} still holds it"


async def amy_at_rest(app: Signpost) -> tuple[bytes, bytes]:
    async with app.ctx.db.read() as session:
        wrapped = (await session.execute(select(ChildKey.wrapped).where(ChildKey.child_ref == AMY_REF))).scalar_one()
        identity = (await session.execute(select(Child.identity).where(Child.ref == AMY_REF))).scalar_one()
    assert identity is not None
    return wrapped, identity


async def test_an_import_that_rekeys_or_destroys_leaves_no_old_row_version(signpost: Signpost) -> None:
    """The wrapped key and sealed identity a correction replaces, and those an import destroying
    the child deletes, are gone from the database files (SQLite's file and WAL; PostgreSQL's heap,
    dead row versions included) once the import returns: it compacts as retention does."""
    app = signpost
    await load(app)
    first_key, first_identity = await amy_at_rest(app)
    report = await import_children(app, corrected("2010-01-01"))
    assert report.shredded == 1 and not report.compaction_pending, report.compaction
    await assert_gone(app.ctx.db, "child_keys", first_key)
    await assert_gone(app.ctx.db, "children", first_identity)
    second_key, second_identity = await amy_at_rest(app)
    report = await import_children(app, corrected("2000-01-01"), destroy_redated=True)
    assert (report.past_retention, report.shredded) == (1, 1) and not report.compaction_pending, report.compaction
    async with app.ctx.db.read() as session:
        assert (await children.find(session, signpost.ctx.keys, AMY_REF)) is not None
        assert await children.load_identities(session, app.ctx.keys, [AMY_REF]) == {}
    await assert_gone(app.ctx.db, "child_keys", second_key)
    await assert_gone(app.ctx.db, "children", second_identity)


async def test_compaction_held_up_by_a_reader_is_reported_in_the_import_notes(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another connection holds an old snapshot, the import's compaction cannot finish: the
    import still commits, and its notes say compaction is pending (nobody named)."""
    monkeypatch.setattr(retention, "COMPACTION_WAIT", 0.6)  # bounded wait, kept short for the test
    app, db = signpost, signpost.ctx.db
    await load(app)
    reader = await db.engine.connect()
    try:
        if db.dialect == "postgresql":
            reader = await reader.execution_options(isolation_level="REPEATABLE READ")
        await reader.begin()
        await reader.execute(select(ChildKey.child_ref).limit(1))  # the snapshot is taken
        report = await import_children(app, corrected("2000-01-01"), destroy_redated=True)
    finally:
        await reader.close()
    assert report.past_retention == 1 and report.compaction_pending, report.compaction
    assert retention.COMPACTION_PENDING in report.notes()
    assert not any(word in " ".join(report.notes()) for word in ("Amie", "Jonas", "2000", AMY))
