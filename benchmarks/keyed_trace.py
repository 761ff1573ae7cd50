"""Statements, transactions and CPU per answered keyed enquiry, end to end inside one process.

    python -m benchmarks.keyed_trace [--children 5000] [--enquiries 400] [--concurrency 16] [--rounds 5]
                                     [--postgres URL]

What the e2e benchmark's closed loop makes the bot do, without HTTP: stepped-up practitioners ask
for children by reference through the real dispatcher (each child's lead professional is told, as
in the e2e register), the audit writer's listeners (the misuse monitor) run, and the notice outbox
delivers the lead-professional notices through a deliverer that only counts. Every SQL statement
is counted by phase (``before_cursor_execute``), with transactions (BEGIN), CPU time and, on SQLite,
hand-offs to aiosqlite's thread (each a thread wake-up and an event-loop wake-up), so a
change to the hot path can be weighed without the e2e run's shared-machine noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite.core
from sqlalchemy import event

from benchmarks.core import drop_postgres, fresh_postgres
from benchmarks.e2e.register import TEAM, build_register, enrol_askers, load_generator, slack_user
from bot.app import build
from bot.logging import configure
from bot.notify import Outbox
from handlers.clock import SystemClock
from handlers.vocabulary import Command, Notice, Outcome, Platform, Principal
from store.db import Database
from store.keys.crypto import KeyRing


class CountingDeliverer:
    """A Slack deliverer that takes every notice (the e2e's fake Slack API, without HTTP)."""

    platform = Platform.SLACK

    def __init__(self) -> None:
        self.delivered = 0

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.delivered += 1


def per_unit(
    unit: str, counts: Counter[str], cpu: dict[str, float], total: float, per_round: list[float], done: int
) -> dict[str, Any]:
    """CPU, statements and transactions per ``unit`` (an answer, a search), from the phase-keyed
    statement ``counts`` ("phase|shape") and CPU seconds; shared by the trace benchmarks."""
    per: dict[str, dict[str, float]] = {}
    for key, n in sorted(counts.items()):
        name, _, what = key.partition("|")
        per.setdefault(name, {})[what] = round(n / max(done, 1), 2)
    return {
        f"cpu_ms_per_{unit}": {k: round(v * 1000 / max(done, 1), 2) for k, v in cpu.items()},
        f"cpu_ms_per_{unit}_total": round(total * 1000 / max(done, 1), 2),
        f"cpu_ms_per_{unit}_by_round": {
            "least": round(min(per_round), 2),
            "median": round(sorted(per_round)[len(per_round) // 2], 2),
            "rounds": len(per_round),
        },
        f"statements_per_{unit}": {
            name: round(sum(v for k, v in stmts.items() if k != "(transaction)"), 2) for name, stmts in per.items()
        },
        f"transactions_per_{unit}": {name: stmts.get("(transaction)", 0.0) for name, stmts in per.items()},
        "by_statement": per,
    }


def shape(statement: str) -> str:
    """A statement's kind and first table, e.g. 'SELECT children', 'INSERT audit_events'."""
    words = statement.split()
    if not words:
        return "?"
    verb = words[0].upper()
    if verb in {"BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SAVEPOINT", "RELEASE"}:
        return " ".join(words[:2]).upper() if verb == "BEGIN" else verb
    found = re.search(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", statement, re.IGNORECASE)
    return f"{verb} {found.group(1) if found else '?'}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="signpost-trace-"))
    url = await fresh_postgres(args.postgres) if args.postgres else f"sqlite+aiosqlite:///{workdir / 't.db'}"
    try:
        db = await Database.open(url, pool_size=args.concurrency + 4)
        app = build(db, KeyRing.generate(), SystemClock())
        now = datetime.now(UTC)
        register = await build_register(app, load_generator(args.generator), args.children, 15, now)
        askers = list(range(args.concurrency))
        await enrol_askers(app, askers, now)
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

        trips: Counter[str] = Counter()  # hand-offs to aiosqlite's thread (SQLite): a wake-up each way
        handed: Any = aiosqlite.core.Connection._execute

        async def _trip(self: Any, fn: Any, *a: Any, **k: Any) -> Any:
            trips[phase[0]] += 1
            return await handed(self, fn, *a, **k)

        aiosqlite.core.Connection._execute = _trip  # type: ignore[method-assign]

        refs = iter(register.refs)
        queue: asyncio.Queue[int] = asyncio.Queue()
        outcomes: Counter[str] = Counter()

        async def asker(n: int) -> None:
            who = Principal(Platform.SLACK, TEAM, slack_user(n))
            while not queue.empty():
                ref = queue.get_nowait()
                reply = await app.dispatcher.handle(
                    Command(who, str(ref), uuid.uuid4().hex, idempotency_key=uuid.uuid4().hex)
                )
                outcomes[reply.outcome.value] += 1

        cpu: dict[str, float] = {}
        phase[0] = "enquiries"
        # The enquiries in rounds, each timed on its own: on a shared machine the least CPU a
        # round took is the code's cost, the others carry what the neighbours took from it.
        t0, m0 = time.process_time(), time.thread_time()
        per_round: list[float] = []
        size = max(args.enquiries // args.rounds, 1)
        for _ in range(args.rounds):
            for _ in range(size):
                queue.put_nowait(next(refs))
            r0, answered0 = time.process_time(), outcomes[Outcome.ANSWERED.value]
            await asyncio.gather(*(asker(n) for n in askers))
            done = outcomes[Outcome.ANSWERED.value] - answered0
            per_round.append((time.process_time() - r0) * 1000 / max(done, 1))
        main_thread = time.thread_time() - m0
        phase[0] = "listeners"
        t1 = time.process_time()
        await app.ctx.audit.settle()
        phase[0] = "outbox"
        t2 = time.process_time()
        while (await box.deliver_due(limit=100)).delivered:
            pass
        t3 = time.process_time()
        phase[0] = "none"
        cpu = {
            "enquiries (of which the event loop's thread)": main_thread,
            "enquiries": t1 - t0,
            "listeners": t2 - t1,
            "outbox": t3 - t2,
        }
        answered = outcomes[Outcome.ANSWERED.value]
        aiosqlite.core.Connection._execute = handed  # type: ignore[method-assign]
        await app.close()
        return {
            "backend": db.dialect,
            "answered": answered,
            "outcomes": dict(outcomes),
            "notices_delivered": deliverer.delivered,
            **per_unit("answer", counts, cpu, t3 - t0, per_round, answered),
            "driver_trips_per_answer": {name: round(n / max(answered, 1), 2) for name, n in sorted(trips.items())},
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if args.postgres:
            await drop_postgres(args.postgres, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=5000)
    parser.add_argument("--enquiries", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="enquiries in rounds; the least CPU a round is reported")
    parser.add_argument("--postgres", metavar="URL", help="a server for a fresh database (default SQLite)")
    parser.add_argument("--generator", default="benchmarks.e2e.register:matching_identities")
    args = parser.parse_args()
    configure("json", level=logging.WARNING)  # as benchmarks.core: numbers, not log lines
    print(json.dumps(asyncio.run(run(args)), indent=1))


if __name__ == "__main__":
    main()
