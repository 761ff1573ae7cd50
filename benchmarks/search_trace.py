"""Statements, transactions and CPU per answered search (by name and date of birth), end to end
inside one process: ``benchmarks.keyed_trace``'s sibling for demographic enquiries.

    python -m benchmarks.search_trace [--children 20000] [--searches 1000] [--concurrency 16]
                                      [--askers 50] [--rounds 5] [--postgres URL]

What the e2e benchmark's demographic phase makes the bot do, without HTTP: stepped-up
practitioners (``--askers``, 50 as in the e2e, so no one asker's misuse windows fill up) type
searches as ``benchmarks.e2e.register.typed_searches`` makes them (the matching benchmark's
corruptions of registered children, and strangers) through the real dispatcher; the audit
writer's listeners (the misuse monitor) run; the notice outbox delivers the lead-professional
notices of matched children through a deliverer that only counts. The audit-term key of every
birth date is made first (``warm_term_keys``), as in the e2e. Every SQL statement is counted by
phase, with transactions and CPU time; ``uncached_compiles`` counts statements SQLAlchemy compiled
without its cache (no cache key) while searching. Counts and timings only: no query text is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.sql import elements

from benchmarks.core import drop_postgres, fresh_postgres
from benchmarks.e2e.register import TEAM, build_register, enrol_askers, load_generator, slack_user, warm_term_keys
from benchmarks.keyed_trace import CountingDeliverer, per_unit, shape
from bot.app import build
from bot.logging import configure
from bot.notify import Outbox
from handlers.clock import SystemClock
from handlers.vocabulary import Command, Outcome, Platform, Principal
from store.db import Database
from store.keys.crypto import KeyRing

# A search is answered whatever it found: the child's signposts, "more than one record", or none.
SEARCH_ANSWERS = {Outcome.ANSWERED.value, Outcome.AMBIGUOUS.value, Outcome.NO_MATCH.value, Outcome.SHIELDED.value}


class UncachedCompiles:
    """Counts statements compiled without SQLAlchemy's cache (``NO_CACHE_KEY``) while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.count = 0
        self.kinds: Counter[str] = Counter()
        self._original = elements.ClauseElement._compile_w_cache

    def __enter__(self) -> UncachedCompiles:
        original = self._original

        def counting(element: Any, dialect: Any, **kw: Any) -> Any:
            result = original(element, dialect, **kw)
            if self.on and result[-1] is dialect.NO_CACHE_KEY:
                self.count += 1
                self.kinds[shape(str(result[0]))] += 1
            return result

        elements.ClauseElement._compile_w_cache = counting  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        elements.ClauseElement._compile_w_cache = self._original  # type: ignore[method-assign]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="signpost-strace-"))
    url = await fresh_postgres(args.postgres) if args.postgres else f"sqlite+aiosqlite:///{workdir / 't.db'}"
    try:
        db = await Database.open(url, pool_size=args.concurrency + 4)
        app = build(db, KeyRing.generate(), SystemClock())
        now = datetime.now(UTC)
        register = await build_register(app, load_generator(args.generator), args.children, 15, now)
        askers = list(range(args.askers))
        await enrol_askers(app, askers, now)
        await warm_term_keys(app, now)
        await app.ctx.audit.settle()
        deliverer = CountingDeliverer()
        box = Outbox(app.ctx, [deliverer])
        await box.deliver_due(limit=10_000)  # whatever enrolment queued

        counts: Counter[str] = Counter()
        phase = ["none"]

        @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            counts[f"{phase[0]}|{shape(statement)}"] += 1

        @event.listens_for(db.engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            counts[f"{phase[0]}|(transaction)"] += 1

        texts = itertools.cycle(register.demographic)
        users = itertools.cycle(askers)
        queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        outcomes: Counter[str] = Counter()

        async def searcher() -> None:
            while not queue.empty():
                text, user = queue.get_nowait()
                who = Principal(Platform.SLACK, TEAM, slack_user(user))
                reply = await app.dispatcher.handle(
                    Command(who, text, uuid.uuid4().hex, idempotency_key=uuid.uuid4().hex)
                )
                outcomes[reply.outcome.value] += 1

        def answered() -> int:
            return sum(n for outcome, n in outcomes.items() if outcome in SEARCH_ANSWERS)

        with UncachedCompiles() as uncached:
            phase[0] = "searches"
            uncached.on = True
            print("searching", file=sys.stderr, flush=True)  # a profiler may attach from here
            # In rounds, each timed on its own: on a shared machine the least CPU a round took is
            # the code's cost, the others carry what the neighbours took from it.
            t0, m0 = time.process_time(), time.thread_time()
            per_round: list[float] = []
            size = max(args.searches // args.rounds, 1)
            for _ in range(args.rounds):
                for _ in range(size):
                    queue.put_nowait((next(texts), next(users)))
                r0, answered0 = time.process_time(), answered()
                await asyncio.gather(*(searcher() for _ in range(args.concurrency)))
                per_round.append((time.process_time() - r0) * 1000 / max(answered() - answered0, 1))
            main_thread = time.thread_time() - m0
            phase[0] = "listeners"
            t1 = time.process_time()
            await app.ctx.audit.settle()
            uncached.on = False
            phase[0] = "outbox"
            t2 = time.process_time()
            while (await box.deliver_due(limit=100)).delivered:
                pass
            t3 = time.process_time()
            phase[0] = "none"
        cpu = {
            "searches (of which the event loop's thread)": main_thread,
            "searches": t1 - t0,
            "listeners": t2 - t1,
            "outbox": t3 - t2,
        }
        done = answered()
        await app.close()
        return {
            "backend": db.dialect,
            "children": register.children,
            "answered": done,
            "outcomes": dict(outcomes),
            "notices_delivered": deliverer.delivered,
            **per_unit("search", counts, cpu, t3 - t0, per_round, done),
            "uncached_compiles": {"total": uncached.count, "by_statement": dict(uncached.kinds)},
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if args.postgres:
            await drop_postgres(args.postgres, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=20000)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--askers", type=int, default=50, help="practitioners searching, in turn")
    parser.add_argument("--rounds", type=int, default=5, help="searches in rounds; the least CPU a round is reported")
    parser.add_argument("--postgres", metavar="URL", help="a server for a fresh database (default SQLite)")
    parser.add_argument("--generator", default="benchmarks.e2e.register:matching_identities")
    args = parser.parse_args()
    configure("json", level=logging.WARNING)  # as benchmarks.core: numbers, not log lines
    print(json.dumps(asyncio.run(run(args)), indent=1))


if __name__ == "__main__":
    main()
