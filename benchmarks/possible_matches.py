"""A child's possible matches in a large audit log: the scan of every ambiguous search's detail
(before ``audit_candidates``) against the index lookup (now), on SQLite.

    python -m benchmarks.possible_matches [--events 200000] [--hits 3] [--rounds 20]

A fresh migrated SQLite store gets one child (imported, so it has a data key and a tag) and
``--events`` ambiguous search events, appended as the service appends them (chained, filed by
tag), each naming 1-5 random tags; ``--hits`` of them name the child's tag. Then, ``--rounds``
times each (the median and the slowest reported, milliseconds):

- ``scan``: the query the report ran before, a LIKE over every ambiguous search's detail;
- ``index``: the query it runs now (``possible_match_seqs``, the table's primary key);
- ``sar``: the whole subject access report for the child (``subject_access``), as `audit sar` runs it;
- ``export scan`` / ``export index``: the events `audit export --child` reads (one page), with the
  filter it had before (subjects OR the LIKE) and the one it has now (one IN over a UNION);

and SQLite's plan for each. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.events import search_event
from handlers.vocabulary import Action, Outcome
from store.audit.candidates import CANDIDATES_PREFIX, possible_match_seqs
from store.audit.log import TermSealer, append
from store.audit.sar import subject_access
from store.db import Database
from store.keys.crypto import KeyRing
from store.register.feeds import Feed, import_feeds
from store.tables.audit import AuditEvent, AuditSubject

CHILD = 9990000026
CHILDREN = (
    "child_ref,given_names,family_name,aliases,date_of_birth,sex,postcode,local_authority,shielded\n"
    f"{CHILD},Ben,Okafor,,2016-09-12,M,M4 5CD,Northshire,false\n"
)
START = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
BATCH = 2000  # events a transaction while filling


def scanned(tag: str) -> ColumnElement[bool]:
    """What the report and the export read before (``possible_match``, now gone): every ambiguous
    search's detail, scanned for the tag."""
    return and_(
        AuditEvent.action == Action.SEARCH.value,
        AuditEvent.outcome == Outcome.AMBIGUOUS.value,
        AuditEvent.detail.startswith(CANDIDATES_PREFIX, autoescape=True),
        AuditEvent.detail.contains(tag, autoescape=True),
    )


async def fill(db: Database, tag: str, events: int, hits: int) -> list[int]:
    """``events`` ambiguous searches, ``hits`` of them (spread evenly) naming ``tag``; their seqs."""
    rng = random.Random(7)
    marked = {events * (n + 1) // (hits + 1) for n in range(hits)}
    found: list[int] = []
    for start in range(0, events, BATCH):
        records = []
        for i in range(start, min(start + BATCH, events)):
            tags = [f"{rng.getrandbits(64):016x}" for _ in range(rng.randint(1, 5))]
            if i in marked:
                tags[0] = tag
            records.append(search_event(i, START + timedelta(milliseconds=50 * i), tags, random.randbytes(40)))
        async with db.write() as session:
            seqs = await append(session, records)
        found += [seq for seq, record in zip(seqs, records, strict=True) if tag in record.detail]
    return found


async def timed(rounds: int, run: Callable[[], Awaitable[object]]) -> dict[str, float]:
    await run()  # warm: the pages read once, as a report after another would find them
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        await run()
        took.append((time.perf_counter() - began) * 1000)
    return {"median_ms": round(statistics.median(took), 3), "max_ms": round(max(took), 3)}


async def plan(session: AsyncSession, query: Select[Any]) -> list[str]:
    compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    rows = await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
    return [str(row[-1]) for row in rows]


async def main(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        db = await Database.open(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
        try:
            keys = KeyRing.generate()
            await import_feeds(db, keys, [Feed("children.csv", CHILDREN)], START)
            sealer = TermSealer(db, keys)
            async with db.read() as session:
                tag = await sealer.candidate_tag(session, CHILD)
            assert tag is not None
            began = time.perf_counter()
            expected = await fill(db, tag, args.events, args.hits)
            filled = time.perf_counter() - began

            by_seq = AuditEvent.seq
            scan = select(by_seq).where(scanned(tag)).order_by(by_seq)
            matches = possible_match_seqs(tag).subquery()  # as the report joins it
            index = select(by_seq).join(matches, matches.c.seq == by_seq).order_by(by_seq)
            subjects = by_seq.in_(select(AuditSubject.seq).where(AuditSubject.child_ref == CHILD))
            export_scan = select(by_seq).where(by_seq > 0, or_(subjects, scanned(tag))).order_by(by_seq).limit(1000)
            both = select(AuditSubject.seq).where(AuditSubject.child_ref == CHILD).union(possible_match_seqs(tag))
            export_index = select(by_seq).where(by_seq > 0, by_seq.in_(both)).order_by(by_seq).limit(1000)
            queries = {
                "scan": scan,
                "index": index,
                "export scan": export_scan,
                "export index": export_index,
            }
            results: dict[str, object] = {}
            async with db.read() as session:
                for name, query in queries.items():
                    seqs = list((await session.execute(query)).scalars())
                    assert seqs == expected, (name, seqs, expected)

                    async def run(query: Select[Any] = query) -> None:
                        await session.execute(query)

                    results[name] = {**await timed(args.rounds, run), "plan": await plan(session, query)}

            async def report() -> None:
                sar = await subject_access(db, sealer, CHILD, START)
                assert [e.seq for e in sar.entries] == expected

            results["sar"] = await timed(args.rounds, report)
            async with db.read() as session:
                filed = (await session.execute(text("SELECT count(*) FROM audit_candidates"))).scalar_one()
                size = await session.execute(text("SELECT sum(pgsize) FROM dbstat WHERE name = 'audit_candidates'"))
                results["audit_candidates"] = {"rows": filed, "mb": round((size.scalar() or 0) / 2**20, 1)}
            return {
                "backend": "sqlite",
                "ambiguous_events": args.events,
                "events_naming_the_child": len(expected),
                "fill_seconds": round(filled, 1),
                "db_mb": round((Path(folder) / "bench.db").stat().st_size / 2**20, 1),
                **results,
            }
        finally:
            await db.close()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--hits", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse())), indent=2))
