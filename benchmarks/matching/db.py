"""Matching through the database: the labelled benchmark queries run through the real store path.

    python -m benchmarks.matching.db --children 100000 --queries 5000 [--postgres URL] [--roll 100000]

The register from ``generate.py`` is loaded with ``store.register.children.insert_new`` (each child sealed
under its own data key, blind-index terms written, one transaction per 5,000 children); then each
query runs ``handlers.search.find_child`` (the chat search without the dispatcher: one IN probe of
child_terms, decrypt the candidates, score, decide) in its own read session, timed wall-clock;
then a roll of ``--roll`` rows goes through ``handlers.reconcile.run_batch`` (chunked probes,
one audit event). Prints markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import io
import logging
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from benchmarks.core import drop_postgres, fresh_postgres
from benchmarks.matching.generate import Child, Generator, Labelled
from benchmarks.matching.run import Outcome, pct, summarise
from bot.app import Signpost, build
from bot.logging import configure
from handlers.clock import FakeClock
from handlers.matching.decide import MatchPolicy, shared_posterior
from handlers.matching.terms import Query, query_terms
from handlers.reconcile import run_batch
from handlers.roll import Roll, read_roster
from handlers.search import find_child
from handlers.vocabulary import Role
from store.db import Database
from store.keys.crypto import KeyRing
from store.people import practitioners
from store.people.practitioners import PractitionerRow
from store.register import children
from store.register.children import ChildRow
from store.register.feeds import HEADERS, FeedKind
from store.register.refs import references
from store.tables.register import LocalAuthority

NOW = datetime(2024, 12, 30, 9, 0, tzinfo=UTC)
"""Inside the generator's 18 years of birth dates (2007-01-01 to 2024-12-27): every child is under
18 and none is born later. With a later NOW the oldest children are imported already 18 and
archived (no ordinary search finds them), which read as ~10 % of queries "not a candidate"."""
LOAD_CHUNK = 5000


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def load(app: Signpost, register: Sequence[Child], now: datetime = NOW) -> tuple[list[int], float]:
    """Write the register through the bulk path; returns the references and children/s."""
    refs = references(900_000_000)
    rows = [ChildRow(next(refs), child.identity, "Benchshire", False) for child in register]
    started = time.perf_counter()
    async with app.ctx.db.write() as session:  # children name their authority (a foreign key)
        session.add(LocalAuthority(name="Benchshire", first_seen=now))
    for start in range(0, len(rows), LOAD_CHUNK * 10):
        async with app.ctx.db.write() as session:
            await children.insert_new(session, app.ctx.keys, rows[start : start + LOAD_CHUNK * 10], now)
    async with app.ctx.db.write() as session:
        admin = PractitionerRow(
            "BENCH-AD", "Bench", "Admin", "Admin", "Bench", "Benchshire", "0", "a@b.example", frozenset({Role.ADMIN})
        )
        await practitioners.upsert_practitioners(session, [admin], now)
    if app.ctx.db.dialect == "postgresql":
        async with app.ctx.db.write() as session:
            await session.execute(text("ANALYZE"))
    return [row.ref for row in rows], len(rows) / (time.perf_counter() - started)


async def ask(app: Signpost, labelled: Labelled, truth: int | None, now: datetime = NOW) -> tuple[Outcome, float]:
    started = time.perf_counter()
    async with app.ctx.db.read() as session:
        decision = await find_child(app.ctx, session, labelled.query, now)
    seconds = time.perf_counter() - started
    ranked = decision.ranked
    top = [ref for ref, _ in ranked[:5]]
    outcome = Outcome(
        labelled.kind,
        truth is not None,
        len(ranked),
        truth in {ref for ref, _ in ranked},
        bool(top) and top[0] == truth,
        truth in top,
        [(ref == truth, p) for ref, p in ranked[:5]],
        shared_posterior(ranked)[0] if ranked else 0.0,
        decision.kind,
        seconds,
        len(query_terms(labelled.query)),
    )
    return outcome, seconds


def report_quality(outcomes: Sequence[Outcome], policy: MatchPolicy) -> None:
    present, absent, kinds = summarise(outcomes, policy)
    single, _, _ = summarise([o for o in outcomes if o.present and "+" not in o.kind], policy)
    double, _, _ = summarise([o for o in outcomes if o.present and "+" in o.kind], policy)
    print("| metric | value |\n|---|---|")
    print(f"| true child among candidates | {pct(present.recall, present.n)} |")
    print(f"| top-1 accuracy (all present queries) | {pct(present.top1, present.n)} |")
    print(f"| top-1, one mistake at most / two at once | {pct(single.top1, single.n)} / {pct(double.top1, double.n)} |")
    print(f"| recall@5 | {pct(present.at5, present.n)} |")
    print(f"| answered with the right child (match) | {pct(present.right, present.n)} |")
    print(f"| answered ambiguous (present) | {pct(present.ambiguous, present.n)} |")
    print(f"| wrong-child answers | {pct(present.wrong, present.n)} ({present.wrong} / {present.n}) |")
    print(f"| false match for absent children | {pct(absent.wrong, absent.n)} ({absent.wrong} / {absent.n}) |")
    cands = sorted(o.candidates for o in outcomes)
    mean, p99 = statistics.fmean(cands), percentile(cands, 0.99)
    print(f"| candidates per query mean / p99 / max | {mean:.1f} / {p99} / {cands[-1]} |")
    print("\n| corruption (single) | n | top-1 | @5 | match right | ambiguous | wrong |\n|---|---|---|---|---|---|---|")
    for name, s in sorted(kinds.items(), key=lambda kv: (kv[0].startswith("absent"), kv[0])):
        if "+" in name:
            continue
        if name.startswith("absent"):
            print(f"| {name} | {s.n} | - | - | - | {pct(s.ambiguous, s.n)} | {pct(s.wrong, s.n)} (false match) |")
        else:
            print(
                f"| {name} | {s.n} | {pct(s.top1, s.n)} | {pct(s.at5, s.n)} | {pct(s.right, s.n)} | "
                f"{pct(s.ambiguous, s.n)} | {pct(s.wrong, s.n)} |"
            )


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="signpost-match-bench-"))
    url = await fresh_postgres(args.postgres) if args.postgres else f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    app = build(await Database.open(url), KeyRing.generate(), FakeClock(NOW))
    generator = Generator(args.seed)
    started = time.perf_counter()
    register = generator.register(args.children)
    generated = time.perf_counter() - started
    refs, rate = await load(app, register)
    labelled = generator.queries(register, args.queries)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"## {backend}, {args.children:,} children, {len(labelled):,} queries\n")
    print(
        f"register generated in {generated:.0f} s; loaded through store.register.children.insert_new at "
        f"**{rate:,.0f} children/s** ({args.children / rate:.0f} s)\n"
    )
    gc.collect()
    gc.freeze()
    for item in labelled[:200]:  # warm the pool, the page cache and the name caches
        await ask(app, item, None)
    outcomes, load_before = [], os.getloadavg()[0]
    cpu_started = time.process_time()
    for item in labelled:
        outcome, _ = await ask(app, item, None if item.child is None else refs[item.child])
        outcomes.append(outcome)
    cpu = (time.process_time() - cpu_started) / len(labelled)
    walls = [o.seconds * 1000 for o in outcomes]
    print(
        f"latency per query (wall, find_child in its own read session): p50 {percentile(walls, 0.5):.2f} ms, "
        f"p99 {percentile(walls, 0.99):.2f} ms, max {max(walls):.2f} ms; process CPU {cpu * 1000:.2f} ms/query; "
        f"load average {load_before:.1f} → {os.getloadavg()[0]:.1f}\n"
    )
    report_quality(outcomes, app.ctx.policy.match)
    if args.roll:
        await batch(app, generator, register, args.roll)
    print(
        f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    await app.close()
    if args.postgres:
        await drop_postgres(args.postgres, url)


def roll_text(queries: Iterable[Query]) -> str:
    """The queries as a roll in the children feed format (the columns a roll's match reads)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADERS[FeedKind.CHILDREN])
    for q in queries:
        dob = "" if q.date_of_birth is None else q.date_of_birth.isoformat()
        writer.writerow(("", q.given_names, q.family_name, "", dob, q.sex or "", q.postcode or "", "", ""))
    return out.getvalue()


async def batch(app: Signpost, generator: Generator, register: list[Child], rows: int) -> None:
    """A roll of ``rows`` labelled queries through run_batch (chunked probes, one audit event)."""
    roll = Roll("roll.csv", roll_text(item.query for item in generator.queries(register, rows)))
    started, cpu_started = time.perf_counter(), time.process_time()
    roster = read_roster(roll)  # the check pass `signpost match` makes first, timed with the rest
    with await run_batch(app.ctx, "BENCH-AD", roster, 5, "bench") as answers:
        seconds = time.perf_counter() - started
        counts = {kind.value: n for kind, n in answers.counts.items()}
        subjects = len(answers.subjects)
    print(
        f"\nbatch `signpost match` use case: {rows:,} rows in {seconds:.1f} s = **{rows / seconds:,.0f} rows/s** "
        f"(process CPU {time.process_time() - cpu_started:.1f} s; decisions {counts}; one audit event with "
        f"{subjects:,} subject references)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--roll", type=int, default=0, help="rows of a batch roll to reconcile after the queries")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--postgres", metavar="URL", help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    configure("json", level=logging.WARNING)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
