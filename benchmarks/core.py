"""Core benchmark: import N synthetic children (the national generator, store.register.national,
its feeds written to disk and streamed) through the feed path, then time keyed and demographic
enquiries through the handler layer (dispatch, policy chain, audit with group commit).

    python -m benchmarks.core --children 100000 [--postgres URL] [--queries 2000] [--concurrency 32]
        [--only keyed|demographic]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import logging
import os
import platform
import random
import resource
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pyotp
from sqlalchemy import event

from bot.app import Signpost, build
from bot.logging import configure
from handlers.clock import SystemClock
from handlers.vocabulary import Command, Outcome, Platform, Principal
from store.db import Database
from store.keys.crypto import KeyRing
from store.register.feeds import Feed, import_feeds
from store.register.national import NationalRegister, write_feeds


async def step_up(app: Signpost, who: Principal) -> None:
    """Enrol an authenticator and answer the first challenge, as the practitioner would each day."""
    enrolled = await app.dispatcher.handle(Command(who, "enrol", uuid.uuid4().hex))
    assert enrolled.challenge is not None and enrolled.enrolment_uri is not None, enrolled.text
    totp = pyotp.parse_uri(enrolled.enrolment_uri)
    assert isinstance(totp, pyotp.TOTP)
    code = totp.now()
    reply = await app.dispatcher.handle(
        Command(who, "code", uuid.uuid4().hex, code=code, challenge_id=enrolled.challenge.challenge_id)
    )
    assert reply.outcome is Outcome.DONE, reply.text


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def fresh_postgres(base_url: str) -> str:
    name = f"signpost_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(base_url.replace("postgresql+asyncpg://", "postgresql://"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return base_url.rsplit("/", 1)[0] + "/" + name


async def drop_postgres(base_url: str, url: str) -> None:
    admin = await asyncpg.connect(base_url.replace("postgresql+asyncpg://", "postgresql://"))
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="signpost-bench-"))
    url = await fresh_postgres(args.postgres) if args.postgres else f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    db = await Database.open(url, pool_size=args.concurrency)  # as `signpost run` sizes it to its in-flight bound
    keys = KeyRing.generate()
    app = build(db, keys, SystemClock())
    # The national generator: 10-digit references at any size (SyntheticRegister's overflow past
    # ~900 k), realistic name frequencies, households; its feeds are written to disk and streamed in.
    register = NationalRegister(args.children)
    started = time.perf_counter()
    written = write_feeds(register, workdir / "feeds")
    feeds = [Feed.from_path(path) for path in written.files]
    generated = time.perf_counter() - started
    started = time.perf_counter()
    report = await import_feeds(db, keys, feeds, app.ctx.clock.now())
    imported = time.perf_counter() - started

    rng = random.Random(7)
    keep = min(1.0, 3 * args.queries / args.children)  # a bounded pool to sample from, at any size
    with (workdir / "feeds" / "children.csv").open(encoding="utf-8", newline="") as children_csv:
        rows = [
            row
            for row in itertools.islice(csv.reader(children_csv), 1, None)
            if row[8] == "false" and rng.random() < keep
        ]
    sample = rng.sample(rows, min(args.queries, len(rows)))
    keyed = [row[0] for row in sample]
    # With the postcode, as a practitioner usually has it: name and date alone are often too common
    # for the matcher's accept threshold (it asks for more detail instead).
    demographic = [f"{row[1]} {row[2]} {date.fromisoformat(row[4]):%d/%m/%Y} {row[6]}" for row in sample]
    first_practitioner = next(register.practitioners())[0]
    who = Principal(Platform.CONSOLE, "local", first_practitioner)
    await step_up(app, who)

    async def ask(text: str) -> tuple[float, Outcome]:
        t0 = time.perf_counter()
        reply = await app.dispatcher.handle(Command(who, text, uuid.uuid4().hex))
        return (time.perf_counter() - t0) * 1000, reply.outcome

    semaphore = asyncio.Semaphore(args.concurrency)

    async def bounded(text: str) -> tuple[float, Outcome]:
        async with semaphore:
            return await ask(text)

    results: dict[str, object] = {}
    statements: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    kinds = (("keyed", keyed), ("demographic", demographic))
    for label, texts in [(k, t) for k, t in kinds if args.only in (None, k)]:
        for text in texts[:50]:  # warm caches and pools
            await ask(text)
        latencies, outcomes = [], []
        statements.clear()
        for text in texts:
            ms, outcome = await ask(text)
            latencies.append(ms)
            outcomes.append(outcome)
        per_enquiry = len(statements) / len(texts)
        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(bounded(t) for t in texts))
        throughput = len(texts) / (time.perf_counter() - t0)
        cpu_ms = (time.process_time() - cpu0) * 1000 / len(texts)
        results[label] = {
            "sequential_p50_ms": round(statistics.median(latencies), 2),
            "sequential_p99_ms": round(percentile(latencies, 99), 2),
            "concurrent_per_s": round(throughput, 1),
            # Robust on a shared box, unlike wall time: process CPU (every thread) and SQL statements.
            "cpu_ms_per_enquiry": round(cpu_ms, 2),
            "sql_statements_per_enquiry": round(per_enquiry, 1),
            "answered_share": round(sum(o is Outcome.ANSWERED for o in outcomes) / len(outcomes), 4),
        }
    await app.close()
    if args.postgres:
        await drop_postgres(args.postgres, url)
    return {
        "backend": "postgresql" if args.postgres else "sqlite",
        "children": args.children,
        "involvements": report.rows.get("involvements"),
        "generate_s": round(generated, 1),
        "import_s": round(imported, 1),
        "import_children_per_s": round(args.children / imported),
        "queries_each": len(sample),
        "concurrency": args.concurrency,
        **results,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--postgres", metavar="URL", help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=("keyed", "demographic"), help="time one kind of enquiry only")
    args = parser.parse_args()
    configure("json", level=logging.WARNING)  # one log line per command would drown the numbers
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
