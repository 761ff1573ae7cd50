"""What chaining the audit costs: events appended per second, with and without the chain, alone and contended.

    python -m benchmarks.audit_chain [--events 2000] [--backends sqlite,postgres]

For each backend, on a fresh migrated store:

- one event per transaction, one writer: the chain's fixed cost per commit (lock the head, insert the
  chain entry, move the head) against a plain insert of the same event (the pre-chain code);
- 100 events per transaction: the chain's cost per event once commits are amortised;
- 32 concurrent writers, one event per transaction: plain inserts run side by side on PostgreSQL,
  chained ones queue on the head row (SQLite's single writer serialises both alike);
- the production path, ``AuditLog`` group commit with 64 concurrent commands, chained; and the same
  with the misuse monitor listening (as the commands see it, and until the monitor caught up);
- two processes (two bot replicas), each an ``AuditLog`` with 64 concurrent commands, chained;
- ``verify``: events re-walked per second.

PostgreSQL is the local test server (SIGNPOST_TEST_POSTGRES_URL or postgres@127.0.0.1:5432); a
scratch database is created and dropped. Prints a Markdown table for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.events import lookup_event
from bot.app import build
from store.audit import chain as audit_chain
from store.audit.log import AuditLog, AuditRecord, append
from store.audit.signing import Signer
from store.audit.verify import verify
from store.db import Database
from store.keys.crypto import KeyRing
from store.register.feeds import Feed, import_feeds
from store.register.synthetic import SyntheticRegister, feeds_text
from store.tables.audit import AuditEvent, AuditSubject

Appender = Callable[[AsyncSession, Sequence[AuditRecord]], Awaitable[object]]
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
# Events are stamped in working hours (a Monday morning), so the misuse monitor sees an ordinary
# day rather than 125 practitioners working at night (which would, rightly, raise 125 alerts).
DAYTIME = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def record(i: int, writer: str = "bench") -> AuditRecord:
    """A typical lookup event: one child, sealed terms of typical size."""
    return lookup_event(i, DAYTIME + timedelta(milliseconds=i), 9_990_000_000 + i, os.urandom(12 + 10 + 16), writer)


async def plain_append(session: AsyncSession, records: Sequence[AuditRecord]) -> object:
    """The pre-chain append: events and their subjects, nothing else."""
    rows = [{**asdict(r), "subject_refs": " ".join(map(str, r.subject_refs))} for r in records]
    result = await session.execute(insert(AuditEvent).returning(AuditEvent.seq, sort_by_parameter_order=True), rows)
    seqs = list(result.scalars())
    await session.execute(
        insert(AuditSubject),
        [{"seq": s, "child_ref": ref} for s, r in zip(seqs, records, strict=True) for ref in r.subject_refs],
    )
    return seqs


def hashing(events: int) -> float:
    """CPU alone: events encoded, leaf-hashed and linked per second (no database)."""
    rows = [{**asdict(record(i)), "seq": i, "subject_refs": str(9_990_000_000 + i)} for i in range(events)]
    started, head = time.perf_counter(), audit_chain.EMPTY_HEAD
    for row in rows:
        head = audit_chain.link(head, audit_chain.leaf_hash(row))
    return events / (time.perf_counter() - started)


async def transactions(db: Database, appender: Appender, events: int, per_txn: int, writers: int) -> float:
    """Events per second when ``writers`` tasks each commit ``per_txn`` events at a time."""
    counter = iter(range(events))

    async def writer() -> None:
        while True:
            batch = [record(i) for _, i in zip(range(per_txn), counter, strict=False)]
            if not batch:
                return
            async with db.write() as session:
                await appender(session, batch)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return events / (time.perf_counter() - started)


async def group_commit(
    db: Database, events: int, concurrency: int, name: str = "bench", log: AuditLog | None = None
) -> float:
    own = log is None
    log = log or AuditLog(db)
    counter = iter(range(events))

    async def command() -> None:
        for i in counter:
            await log.record(record(i, name))

    started = time.perf_counter()
    await asyncio.gather(*(command() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if own:
        await log.close()
    return events / elapsed


async def monitored(db: Database, events: int) -> tuple[float, float]:
    """Group commit with misuse detection attached, as `signpost run` wires it (500 practitioners).

    Returns events per second as the commands saw them (durable), and counted until the monitor
    had also checked every batch.
    """
    register = SyntheticRegister(children=0, practitioners_per_authority=125)
    practitioners_csv = feeds_text(register)["practitioners.csv"]
    await import_feeds(db, KeyRing.generate(), [Feed("practitioners.csv", practitioners_csv)], datetime.now(UTC))
    app = build(db, KeyRing.generate())
    started = time.perf_counter()
    durable = await group_commit(db, events, 64, log=app.ctx.audit)
    await app.ctx.audit.settle()
    checked = events / (time.perf_counter() - started)
    await app.ctx.audit.close()
    return durable, checked


async def two_processes(url: str, events: int) -> float:
    """Two replicas at once, each ``events`` // 2 through its own AuditLog; total events per second.

    Each worker reports when its appends started and ended, so process start-up is not counted.
    """
    argv = [sys.executable, "-m", "benchmarks.audit_chain", "--worker", url, str(events // 2)]
    root = Path(__file__).resolve().parent.parent
    procs = [await asyncio.create_subprocess_exec(*argv, cwd=root, stdout=asyncio.subprocess.PIPE) for _ in range(2)]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    if [p.returncode for p in procs] != [0, 0]:
        raise RuntimeError("a benchmark worker failed")
    spans = [tuple(map(float, out.split())) for out, _ in outputs]
    return events / (max(end for _, end in spans) - min(start for start, _ in spans))


async def worker(url: str, events: int) -> None:
    db = Database.connect(url)
    try:
        async with db.read() as session:  # connect and warm up before the clock starts
            await session.execute(select(1))
        started = time.time()
        await group_commit(db, events, 64, name=f"replica-{os.getpid()}")
        print(started, time.time())
    finally:
        await db.close()


async def measure(plain_url: str, chained_url: str, events: int) -> list[tuple[str, float, float | None]]:
    """(scenario, chained events/s, plain events/s or None) rows for one backend.

    Plain inserts go to a store of their own: they are not in the chain, so they would (rightly)
    make the chained store fail verification.
    """
    plain_db, db = await Database.open(plain_url), await Database.open(chained_url)
    rows: list[tuple[str, float, float | None]] = [
        ("hashing only (canonical encoding, leaf, link)", hashing(events), None)
    ]
    try:
        for label, per_txn, writers in (
            ("1 event per transaction, 1 writer", 1, 1),
            ("100 events per transaction, 1 writer", 100, 1),
            ("1 event per transaction, 32 concurrent writers", 1, 32),
        ):
            n = events if per_txn > 1 else events // 2
            plain = await transactions(plain_db, plain_append, n, per_txn, writers)
            chained = await transactions(db, append, n, per_txn, writers)
            rows.append((label, chained, plain))
        rows.append(("AuditLog group commit, 64 concurrent commands", await group_commit(db, events, 64), None))
        durable, checked = await monitored(db, events)
        rows.append(("… with the misuse monitor listening (durable)", durable, None))
        rows.append(("… with the misuse monitor, until it has checked every batch", checked, None))
        rows.append(
            (
                "two processes, each AuditLog with 64 concurrent",
                await two_processes(chained_url, events),
                None,
            )
        )
        started = time.perf_counter()
        verdict = await verify(db, Signer(KeyRing.generate()).public)
        assert verdict.ok, verdict.finding
        rows.append(
            (
                f"verify (re-walk {verdict.count} events)",
                verdict.count / (time.perf_counter() - started),
                None,
            )
        )
    finally:
        await plain_db.close()
        await db.close()
    return rows


async def with_postgres(events: int) -> list[tuple[str, float, float | None]]:
    base = os.environ.get("SIGNPOST_TEST_POSTGRES_URL", DEFAULT_PG)
    names = [f"signpost_bench_audit_{os.getpid()}_{kind}" for kind in ("plain", "chained")]
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{name}"')
        urls = [base.rsplit("/", 1)[0] + "/" + name for name in names]
        return await measure(urls[0], urls[1], events)
    finally:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def with_sqlite(events: int) -> list[tuple[str, float, float | None]]:
    with tempfile.TemporaryDirectory() as scratch:
        urls = [f"sqlite+aiosqlite:///{Path(scratch) / name}" for name in ("plain.db", "chained.db")]
        return await measure(urls[0], urls[1], events)


def table(results: dict[str, list[tuple[str, float, float | None]]]) -> str:
    lines = [
        "| backend | scenario | chained events/s | plain events/s | chain cost |",
        "|---|---|---:|---:|---:|",
    ]
    for backend, rows in results.items():
        for label, chained, plain in rows:
            cost = f"{(plain / chained - 1) * 100:+.0f} % time" if plain else ""
            lines.append(f"| {backend} | {label} | {chained:,.0f} | {f'{plain:,.0f}' if plain else ''} | {cost} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000, help="events per scenario (default 2000)")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--worker", nargs=2, metavar=("URL", "EVENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker(args.worker[0], int(args.worker[1])))
        return 0
    runners = {"sqlite": with_sqlite, "postgres": with_postgres}
    results = {name: asyncio.run(runners[name](args.events)) for name in args.backends.split(",")}
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
