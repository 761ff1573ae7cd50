"""What a read transaction's life costs in CPU: through the ORM session every read-only command takes
(``Database.read``), and through a pooled Core connection (issue 15, "the session off the read path").

    python -m benchmarks.read_session [--reads 4000] [--rounds 3] [--postgres URL]

Each way is timed with nothing read (the session's autobegin, or the connection's begin, the pool's
checkout and the close with its rollback), and with one ``SELECT 1``. Prints JSON: CPU microseconds a
read, the least of ``--rounds`` rounds (on a shared machine the least is the code's cost), and the
load average. Compare the two ways only within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks.core import drop_postgres, fresh_postgres
from store.db import Database

_ONE = text("SELECT 1")


def _ways(db: Database) -> dict[str, Callable[[], Awaitable[None]]]:
    async def session_empty() -> None:
        async with db.read() as session:
            await session.connection()

    async def session_select() -> None:
        async with db.read() as session:
            (await session.execute(_ONE)).scalar_one()

    async def connection_empty() -> None:
        async with db.engine.connect() as conn:
            await conn.begin()

    async def connection_select() -> None:
        async with db.engine.connect() as conn:
            await conn.begin()
            (await conn.execute(_ONE)).scalar_one()

    return {
        "session, nothing read": session_empty,
        "session, SELECT 1": session_select,
        "connection, nothing read": connection_empty,
        "connection, SELECT 1": connection_select,
    }


async def _least(way: Callable[[], Awaitable[None]], reads: int, rounds: int) -> float:
    for _ in range(200):  # warm up: the pool's connections made, the statements compiled
        await way()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(reads):
            await way()
        best = min(best, time.process_time() - start)
    return round(best / reads * 1e6, 1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="signpost-read-session-"))
    url = await fresh_postgres(args.postgres) if args.postgres else f"sqlite+aiosqlite:///{workdir / 'r.db'}"
    try:
        db = await Database.open(url)
        try:
            cpu = {name: await _least(way, args.reads, args.rounds) for name, way in _ways(db).items()}
        finally:
            await db.close()
        return {
            "backend": db.dialect,
            "cpu_us_per_read": cpu,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if args.postgres:
            await drop_postgres(args.postgres, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="a server for a fresh database (default SQLite)")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=1))


if __name__ == "__main__":
    main()
