"""The audit chain: untouched it verifies; every kind of tampering is reported at the right seq."""

from __future__ import annotations

import asyncio
import sys
import uuid
from asyncio.subprocess import PIPE
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Action, Origin
from store.audit import chain as audit_chain
from store.audit.chain import CANONICAL_FIELDS, make_checkpoint, parse_note
from store.audit.log import AuditRecord, AuditWriteFailed, append, origin_event
from store.audit.signing import Signer
from store.audit.verify import Problem, Verdict, verify
from store.db import Database, alembic_config
from store.keys.crypto import KeyRing
from store.tables.audit import AuditChainEntry, AuditEvent
from tests.databases import Templates, postgres_url, with_database
from tests.factories import AMY, BEN, load_standard, say
from tests.stepup_helpers import ensure_enrolled
from tests.store.audit.tamper import rechain, run_sql, unprotect

HERE = Path(__file__).parent


async def write_events(app: Signpost, n: int) -> None:
    """n real commands (lookups and searches, so events carry sealed terms and child subjects)."""
    clock = app.ctx.clock
    assert isinstance(clock, FakeClock)
    for i in range(n):
        text = (AMY, BEN, "Amy Jones 03/04/2014", "Zed Nobody 01/01/2015")[i % 4]
        await say(app, ("P001", "P002")[i % 2], text)
        clock.advance(seconds=7)


async def check(app: Signpost, *supplied: audit_chain.Checkpoint) -> Verdict:
    return await verify(app.ctx.db, app.ctx.signer.public, supplied)


async def checkpoint(app: Signpost) -> audit_chain.Checkpoint:
    return await make_checkpoint(app.ctx.db, app.ctx.signer, app.ctx.clock.now())


@pytest.fixture
async def twelve(signpost: Signpost) -> Signpost:
    """Twelve real events. P001 and P002 enrol an authenticator and step up first (an "enrol" and a
    "code" event each: seq 1..4), so the eight commands that follow (seq 5..12) reach children:
    lookups carry child subjects, searches sealed terms, as a real practitioner's would."""
    await load_standard(signpost)
    await ensure_enrolled(signpost, "P001")
    await ensure_enrolled(signpost, "P002")
    await write_events(signpost, 8)
    return signpost


# -- what is hashed ------------------------------------------------------------------------------------


def test_canonical_encoding_covers_every_column_of_audit_events() -> None:
    """A new audit column cannot slip into the table without being hashed."""
    assert set(CANONICAL_FIELDS) == {c.name for c in AuditEvent.__table__.columns}


def test_changing_any_single_field_changes_the_leaf_hash() -> None:
    """Every field, including the sealed terms bytes, is covered; None and empty differ."""
    base: dict[str, object] = {
        "seq": 7,
        "at": datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        "actor_id": "P001",
        "platform": "slack",
        "tenant": "T1",
        "user_id": "U1",
        "actor_role": "Social worker",
        "actor_org": "Org",
        "actor_la": "LA",
        "channel": "direct",
        "action": "lookup",
        "outcome": "answered",
        "subject_refs": "9990000018",
        "result_count": 2,
        "correlation_id": "c1",
        "detail": "",
        "terms": b"\x01sealed",
        "terms_key": "child:1",
    }
    changed = {
        "seq": 8,
        "at": datetime(2026, 11, 2, 9, 0, 0, 1, tzinfo=UTC),
        "actor_id": None,
        "platform": "teams",
        "tenant": "T2",
        "user_id": "U2",
        "actor_role": None,
        "actor_org": "Org2",
        "actor_la": "LB",
        "channel": "button",
        "action": "search",
        "outcome": "no_match",
        "subject_refs": "",
        "result_count": 3,
        "correlation_id": "c2",
        "detail": "x",
        "terms": b"\x01sealeD",
        "terms_key": None,
    }
    leaf = audit_chain.leaf_hash(base)
    for name in CANONICAL_FIELDS:
        assert audit_chain.leaf_hash({**base, name: changed[name]}) != leaf, name


def test_naive_and_aware_utc_times_hash_alike() -> None:
    """SQLite hands back naive UTC times; PostgreSQL aware ones; both must give one hash."""
    aware = datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC)
    assert audit_chain.canonical({n: None for n in CANONICAL_FIELDS} | {"at": aware}) == audit_chain.canonical(
        {n: None for n in CANONICAL_FIELDS} | {"at": aware.replace(tzinfo=None)}
    )


# -- untouched --------------------------------------------------------------------------------------


async def test_untouched_chain_verifies_with_its_count(twelve: Signpost) -> None:
    await checkpoint(twelve)
    verdict = await check(twelve)
    assert verdict.ok, verdict.finding
    assert (verdict.count, verdict.last_seq, verdict.checkpoints) == (12, 12, 1)


async def test_empty_chain_verifies(signpost: Signpost) -> None:
    verdict = await check(signpost)
    assert verdict.ok and verdict.count == 0


async def test_many_concurrent_commands_make_one_valid_chain(signpost: Signpost) -> None:
    """Group commit batches concurrent events; the chain still has every one, in order."""
    await load_standard(signpost)
    await asyncio.gather(*(say(signpost, f"P00{1 + i % 3}", AMY) for i in range(60)))
    verdict = await check(signpost)
    assert verdict.ok and verdict.count == 60


# -- tampering ---------------------------------------------------------------------------------------


async def test_edited_field_is_reported_at_its_seq(twelve: Signpost) -> None:
    db = twelve.ctx.db
    await unprotect(db)
    await run_sql(db, "UPDATE audit_events SET outcome = 'no_match' WHERE seq = 5")
    verdict = await check(twelve)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.EDITED, 5)
    assert verdict.count == 4


async def test_edited_sealed_terms_are_reported(twelve: Signpost) -> None:
    """Seq 7 is P001's search "Amy Jones 03/04/2014": its terms are sealed."""
    db = twelve.ctx.db
    await unprotect(db)
    async with db.read() as session:
        sealed = (await session.execute(select(AuditEvent.terms).where(AuditEvent.seq == 7))).scalar_one()
    assert sealed
    await run_sql(db, "UPDATE audit_events SET terms = :t WHERE seq = 7", t=sealed[:-1] + bytes([sealed[-1] ^ 1]))
    verdict = await check(twelve)
    assert verdict.finding is not None and (verdict.finding.problem, verdict.finding.seq) == (
        Problem.EDITED,
        7,
    )


async def test_removed_child_index_row_is_reported(twelve: Signpost) -> None:
    """Hiding an event from subject-access reports by deleting its index row is caught too (seq 6 is
    P002's lookup of BEN)."""
    db = twelve.ctx.db
    await unprotect(db)
    await run_sql(db, "DELETE FROM audit_subjects WHERE seq = 6")
    verdict = await check(twelve)
    assert verdict.finding is not None and (verdict.finding.problem, verdict.finding.seq) == (
        Problem.EDITED,
        6,
    )


async def test_deleted_event_is_reported_at_its_seq(twelve: Signpost) -> None:
    db = twelve.ctx.db
    await unprotect(db)
    await run_sql(db, "DELETE FROM audit_events WHERE seq = 7", "DELETE FROM audit_chain WHERE seq = 7")
    verdict = await check(twelve)
    assert verdict.finding is not None and (verdict.finding.problem, verdict.finding.seq) == (
        Problem.DELETED,
        7,
    )


async def test_deleted_event_whose_chain_entry_remains(twelve: Signpost) -> None:
    db = twelve.ctx.db
    await unprotect(db)
    await run_sql(db, "DELETE FROM audit_events WHERE seq = 2")
    verdict = await check(twelve)
    assert verdict.finding is not None and (verdict.finding.problem, verdict.finding.seq) == (
        Problem.DELETED,
        2,
    )


async def test_event_inserted_outside_signpost(twelve: Signpost) -> None:
    db = twelve.ctx.db
    await unprotect(db)
    columns = ", ".join(c for c in CANONICAL_FIELDS if c != "seq")
    await run_sql(db, f"INSERT INTO audit_events (seq, {columns}) SELECT 13, {columns} FROM audit_events WHERE seq = 4")
    verdict = await check(twelve)
    assert verdict.finding is not None and (verdict.finding.problem, verdict.finding.seq) == (
        Problem.INSERTED,
        13,
    )


@pytest.mark.sqlite_only
async def test_an_append_after_the_newest_events_were_deleted_is_refused_not_forked(twelve: Signpost) -> None:
    """SQLite numbers a batch from the largest event stored, read with the chain head: with the
    newest event and its entry deleted under it, the next number would repeat one the head has
    chained, so the append is refused (no event, the head unmoved) rather than forking the chain."""
    db = twelve.ctx.db
    await unprotect(db)
    await run_sql(db, "DELETE FROM audit_events WHERE seq = 12", "DELETE FROM audit_chain WHERE seq = 12")
    record = origin_event(Origin.TERMINAL, Action.HELP, twelve.ctx.clock.now(), who="op")
    with pytest.raises(AuditWriteFailed):
        async with db.write() as session:
            await append(session, [record])
    async with db.read() as session:
        head = await audit_chain.lock_head(session)
        assert (head.size, head.last_seq) == (12, 12)
        assert (await session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()))).scalars().first() == 11


async def _make_room_at_9(db: Database) -> None:
    """Renumber the real events 9..12 to 10..13 with their entries (newest first: keys never collide)."""
    for seq in (12, 11, 10, 9):
        await run_sql(
            db,
            "UPDATE audit_events SET seq = :n WHERE seq = :o",
            "UPDATE audit_chain SET seq = :n WHERE seq = :o",
            "UPDATE audit_subjects SET seq = :n WHERE seq = :o",
            n=seq + 1,
            o=seq,
        )


async def test_copied_event_slipped_into_the_middle(twelve: Signpost) -> None:
    """A copy of event 4 (with a copy of its chain entry) placed between 8 and the rest."""
    db = twelve.ctx.db
    await unprotect(db)
    await _make_room_at_9(db)
    columns = ", ".join(c for c in CANONICAL_FIELDS if c != "seq")
    await run_sql(
        db,
        f"INSERT INTO audit_events (seq, {columns}) SELECT 9, {columns} FROM audit_events WHERE seq = 4",
        "INSERT INTO audit_chain (seq, prev_seq, leaf_hash, head_hash) SELECT 9, 8, leaf_hash, head_hash "
        "FROM audit_chain WHERE seq = 4",
    )
    verdict = await check(twelve)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.INSERTED, 9)


async def test_forged_event_with_correct_hashes_slipped_into_the_middle(twelve: Signpost) -> None:
    """The forger hashes and links event 9 properly; the next real event still points past it."""
    db = twelve.ctx.db
    await unprotect(db)
    await _make_room_at_9(db)
    columns = [getattr(AuditEvent, name) for name in CANONICAL_FIELDS]
    async with db.read() as session:
        model = dict((await session.execute(select(*columns).where(AuditEvent.seq == 4))).mappings().one())
        head8 = (await session.execute(select(AuditChainEntry.head_hash).where(AuditChainEntry.seq == 8))).scalar_one()
    forged = {**model, "seq": 9, "correlation_id": "forged", "subject_refs": ""}
    leaf = audit_chain.leaf_hash(forged)
    async with db.engine.begin() as conn:
        await conn.execute(insert(AuditEvent).values(**forged))
        await conn.execute(
            insert(AuditChainEntry).values(seq=9, prev_seq=8, leaf_hash=leaf, head_hash=audit_chain.link(head8, leaf))
        )
    verdict = await check(twelve)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.INSERTED, 9)


async def test_two_events_swapped_are_reported_as_reordered(twelve: Signpost) -> None:
    """The contents of events 4 and 5 exchanged, their sequence numbers kept."""
    db = twelve.ctx.db
    await unprotect(db)
    movable = [c for c in CANONICAL_FIELDS if c != "seq"]
    sets = ", ".join(f"{c} = (SELECT {c} FROM audit_events WHERE seq = 0)" for c in movable)
    columns = ", ".join(movable)
    await run_sql(
        db,
        f"INSERT INTO audit_events (seq, {columns}) SELECT 0, {columns} FROM audit_events WHERE seq = 4",
        f"UPDATE audit_events SET {sets.replace('seq = 0', 'seq = 5')} WHERE seq = 4",
        f"UPDATE audit_events SET {sets} WHERE seq = 5",
        "DELETE FROM audit_events WHERE seq = 0",
    )
    verdict = await check(twelve)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.REORDERED, 4)


async def test_two_rows_renumbered_are_reported_as_reordered(twelve: Signpost) -> None:
    """Events 8 and 9 swapped with their chain entries and index rows: the chain order betrays it."""
    db = twelve.ctx.db
    await unprotect(db)
    for table in ("audit_events", "audit_chain", "audit_subjects"):
        await run_sql(
            db,
            f"UPDATE {table} SET seq = -1 WHERE seq = 8",
            f"UPDATE {table} SET seq = 8 WHERE seq = 9",
            f"UPDATE {table} SET seq = 9 WHERE seq = -1",
        )
    verdict = await check(twelve)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.REORDERED, 8)


async def test_truncated_end_is_caught_by_the_latest_checkpoint(twelve: Signpost) -> None:
    """The last three events removed and the chain head wound back to match."""
    db = twelve.ctx.db
    await checkpoint(twelve)
    await unprotect(db)
    await run_sql(
        db,
        "DELETE FROM audit_subjects WHERE seq > 9",
        "DELETE FROM audit_chain WHERE seq > 9",
        "DELETE FROM audit_events WHERE seq > 9",
    )
    await rechain(db)
    verdict = await check(twelve)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.TRUNCATED, 10)


async def test_truncation_with_checkpoints_removed_is_caught_by_the_kept_file(twelve: Signpost, tmp_path: Path) -> None:
    """Only a checkpoint kept outside Signpost catches a thorough truncation; without it the rest verifies."""
    db = twelve.ctx.db
    kept = tmp_path / "checkpoint.txt"
    kept.write_text((await checkpoint(twelve)).to_note(twelve.ctx.signer.public))
    await unprotect(db)
    await run_sql(
        db,
        "DELETE FROM audit_checkpoints",
        "DELETE FROM audit_subjects WHERE seq > 10",
        "DELETE FROM audit_chain WHERE seq > 10",
        "DELETE FROM audit_events WHERE seq > 10",
    )
    await rechain(db)
    assert (await check(twelve)).ok
    verdict = await check(twelve, parse_note(kept.read_text()))
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.TRUNCATED, 11)


async def test_tail_replaced_with_a_recomputed_chain_is_caught_by_checkpoints(signpost: Signpost) -> None:
    """Events 7..12 edited and every hash recomputed: the walk holds, the signed checkpoint does not."""
    db = signpost.ctx.db
    await load_standard(signpost)
    await write_events(signpost, 6)
    await checkpoint(signpost)  # still matches after the forgery: the damage starts after it
    await write_events(signpost, 6)
    await checkpoint(signpost)
    await unprotect(db)
    await run_sql(db, "UPDATE audit_events SET outcome = 'no_match' WHERE seq >= 7")
    await rechain(db)
    verdict = await check(signpost)
    assert verdict.finding is not None
    assert (verdict.finding.problem, verdict.finding.seq) == (Problem.REWRITTEN, 7)
    assert "to seq 12" in verdict.finding.message


async def test_recomputed_tail_with_checkpoints_removed_is_caught_by_the_kept_file(twelve: Signpost) -> None:
    db = twelve.ctx.db
    kept = await checkpoint(twelve)
    await unprotect(db)
    await run_sql(db, "DELETE FROM audit_checkpoints", "UPDATE audit_events SET detail = 'nothing' WHERE seq = 11")
    await rechain(db)
    assert (await check(twelve)).ok
    verdict = await check(twelve, kept)
    assert verdict.finding is not None and verdict.finding.problem is Problem.REWRITTEN


async def test_forged_checkpoint_is_refused(twelve: Signpost) -> None:
    """A checkpoint edited to claim more events fails its signature before anything else is believed."""
    real = await checkpoint(twelve)
    note = real.to_note(twelve.ctx.signer.public).replace("\n12\n", "\n13\n", 1)
    verdict = await check(twelve, parse_note(note))
    assert verdict.finding is not None and verdict.finding.problem is Problem.BAD_CHECKPOINT


async def test_checkpoint_from_another_log_is_refused(twelve: Signpost, tmp_path: Path) -> None:
    other = Signer(KeyRing.generate())
    foreign = audit_chain.sign(other, audit_chain.Head(12, 12, b"\x00" * 32), twelve.ctx.clock.now())
    verdict = await check(twelve, parse_note(foreign.to_note(other.public)))
    assert verdict.finding is not None and verdict.finding.problem is Problem.BAD_CHECKPOINT
    assert "another log" in verdict.finding.message


async def test_checkpoint_note_round_trips_and_verifies(twelve: Signpost) -> None:
    cp = await checkpoint(twelve)
    again = parse_note(cp.to_note(twelve.ctx.signer.public))
    assert again == cp and again.signed_by(twelve.ctx.signer.public)
    assert (await checkpoint(twelve)) == cp  # nothing appended since: the same checkpoint


def test_malformed_checkpoint_file_is_refused_clearly() -> None:
    with pytest.raises(audit_chain.CheckpointError, match="not a Signpost audit checkpoint"):
        parse_note("hello\nworld\n")


# -- triggers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["audit_events", "audit_subjects", "audit_chain", "audit_checkpoints"])
async def test_audit_tables_refuse_update_and_delete(twelve: Signpost, table: str) -> None:
    await checkpoint(twelve)
    for statement in (
        f"UPDATE {table} SET seq = seq" if table != "audit_checkpoints" else f"UPDATE {table} SET size = size",
        f"DELETE FROM {table}",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            await run_sql(twelve.ctx.db, statement)
    assert (await check(twelve)).ok


async def test_chain_head_cannot_be_wound_back_or_deleted(twelve: Signpost) -> None:
    for statement in ("UPDATE audit_chain_head SET size = size - 1", "DELETE FROM audit_chain_head"):
        with pytest.raises(DBAPIError, match="audit chain head"):
            await run_sql(twelve.ctx.db, statement)


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "table", ["audit_events", "audit_subjects", "audit_chain", "audit_checkpoints", "audit_chain_head"]
)
async def test_postgres_refuses_truncate_and_replica_role_changes_nothing(twelve: Signpost, table: str) -> None:
    """ENABLE ALWAYS: session_replication_role = replica (as used to skip triggers) does not help."""
    db = twelve.ctx.db
    with pytest.raises(DBAPIError, match="append-only"):
        await run_sql(db, f"TRUNCATE {table} CASCADE")
    for statement in (f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
        with pytest.raises(DBAPIError, match="refused"):
            await run_sql(db, "SET LOCAL session_replication_role = replica", statement)
    assert (await check(twelve)).ok


# -- concurrency and migration -------------------------------------------------------------------------


async def release_together(procs: list[asyncio.subprocess.Process], said: str) -> None:
    """A barrier: wait until every worker says ``said``, then let them all go at once."""
    for proc in procs:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), timeout=120) == f"{said}\n".encode()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
    await asyncio.gather(*(proc.stdin.drain() for proc in procs if proc.stdin is not None))


async def test_two_processes_appending_at_once_make_one_valid_chain(signpost: Signpost, db_url: str) -> None:
    """Two OS processes (two bot replicas) append 200 events each, concurrently: one chain, no fork.

    Both start at a barrier once connected, and meet again once each has its first batch in the
    chain, so a slow process start on a loaded machine cannot let one finish before the other begins."""
    worker = [sys.executable, "-m", "tests.store.audit.append_worker", db_url, "200"]
    root = HERE.parents[2]
    procs = [
        await asyncio.create_subprocess_exec(*worker, name, cwd=root, stdin=PIPE, stdout=PIPE) for name in ("A", "B")
    ]
    await release_together(procs, "ready")
    await release_together(procs, "started")
    codes = await asyncio.gather(*(p.wait() for p in procs))
    assert codes == [0, 0]
    verdict = await check(signpost)
    assert verdict.ok, verdict.finding
    assert verdict.count == 400
    async with signpost.ctx.db.read() as session:
        writers = list((await session.execute(select(AuditEvent.user_id).order_by(AuditEvent.seq))).scalars())
    assert sorted(writers) == ["A"] * 200 + ["B"] * 200
    switches = sum(1 for a, b in pairwise(writers) if a != b)
    assert switches >= 2, "the two writers did not overlap, so this run proved nothing"


async def test_migration_chains_events_written_before_it(backend: str, templates: Templates, tmp_path: Path) -> None:
    """A store from before the chain existed becomes verifiable when it is upgraded."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        url = await fresh_postgres_database(templates.run_id)
    db = Database.connect(url)
    try:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(signpost_write=True)
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0001_core"))
            await conn.commit()
        async with db.engine.begin() as conn:
            for i in range(1, 4):
                await conn.execute(
                    insert(AuditEvent).values(
                        at=datetime(2026, 1, i, tzinfo=UTC),
                        actor_id="P001",
                        platform="console",
                        tenant="local",
                        user_id="P001",
                        channel="terminal",
                        action="lookup",
                        outcome="answered",
                        subject_refs="",
                        result_count=0,
                        correlation_id=f"c{i}",
                        detail="",
                        terms=b"x",
                    )
                )
        await db.migrate()
        keys = KeyRing.generate()
        verdict = await verify(db, Signer(keys).public)
        assert verdict.ok and verdict.count == 3
        async with db.write() as session:
            await append(
                session,
                [
                    AuditRecord(
                        at=datetime(2026, 1, 5, tzinfo=UTC),
                        actor_id=None,
                        platform="console",
                        tenant="local",
                        user_id="x",
                        actor_role=None,
                        actor_org=None,
                        actor_la=None,
                        channel="terminal",
                        action="help",
                        outcome="info",
                        subject_refs=(),
                        result_count=0,
                        correlation_id="c4",
                    )
                ],
            )
        assert (await verify(db, Signer(keys).public)).count == 4
    finally:
        await db.close()
        if backend == "postgres":
            templates.drop_postgres(url)


async def fresh_postgres_database(run_id: str) -> str:
    """An empty PostgreSQL database (not cloned from the migrated template)."""
    name = f"signpost_t_{run_id}_old_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(postgres_url().replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(postgres_url(), name)


async def test_periodic_checkpoint_only_when_the_chain_grew_and_one_is_due(
    signpost: Signpost, clock: FakeClock
) -> None:
    """The scheduler's checkpoint: the first at once, then none until the interval passed and events came."""
    await load_standard(signpost)
    await write_events(signpost, 2)
    db, signer = signpost.ctx.db, signpost.ctx.signer
    first = await audit_chain.checkpoint_if_due(db, signer, clock.now(), every_seconds=300)
    assert first is not None and first.size == 2
    await write_events(signpost, 1)
    assert await audit_chain.checkpoint_if_due(db, signer, clock.now(), every_seconds=300) is None  # too soon
    clock.advance(minutes=6)
    second = await audit_chain.checkpoint_if_due(db, signer, clock.now(), every_seconds=300)
    assert second is not None and second.size == 3
    clock.advance(minutes=6)
    assert await audit_chain.checkpoint_if_due(db, signer, clock.now(), every_seconds=300) is None  # no growth
    assert (await check(signpost)).checkpoints == 2
