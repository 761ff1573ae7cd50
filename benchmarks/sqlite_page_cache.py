"""RSS of a serving SQLite pool after concurrent reads over a register (issue 15).

Each pooled connection has a page cache of its own; this holds a full pool's worth of
connections busy with keyed reads and demographic-style probes (blind term -> candidates ->
their rows) and prints the process's RSS after each phase. ``--old`` gives every connection the
former fixed 64 MB, to compare.

    .venv/bin/python -m benchmarks.sqlite_page_cache PATH/TO/signpost.db [--pool 64] [--rounds 10] [--old]

(a register: ``python -m benchmarks.e2e --children 1000000 --backend sqlite --keep`` leaves one.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource

from sqlalchemy import text

import store.db as sdb


def rss_mb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


async def measure(path: str, pool: int, rounds: int, old: bool) -> dict[str, object]:
    if old:
        sdb.SQLITE_CACHE_BUDGET_KIB = 65536 * (pool + sdb.SQLITE_MAX_OVERFLOW)
    db = sdb.Database.connect(f"sqlite+aiosqlite:///{path}", pool_size=pool)
    async with db.read() as session:
        refs = [int(r) for (r,) in await session.execute(text("SELECT ref FROM children"))]
        terms = [
            int(t) for (t,) in await session.execute(text("SELECT term FROM child_terms ORDER BY random() LIMIT 20000"))
        ]
        cache = int((await session.execute(text("PRAGMA cache_size"))).scalar_one())
    out: dict[str, object] = {"cache_size": cache, "children": len(refs), "rss_mb_start": rss_mb()}
    rng = random.Random(1)

    async def worker() -> None:
        for _ in range(rounds):
            async with db.read() as session:
                for ref in rng.sample(refs, 20):
                    await session.execute(text("SELECT identity FROM children WHERE ref = :r"), {"r": ref})
                for term in rng.sample(terms, 5):
                    found = await session.execute(
                        text("SELECT child_ref FROM child_terms WHERE term = :t LIMIT 200"), {"t": term}
                    )
                    for (ref,) in list(found)[:50]:
                        await session.execute(text("SELECT identity FROM children WHERE ref = :r"), {"r": ref})

    phases = []
    for _ in range(3):
        await asyncio.gather(*(worker() for _ in range(pool + sdb.SQLITE_MAX_OVERFLOW)))
        phases.append(rss_mb())
    await db.close()
    out["rss_mb_after_phases"] = phases
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--pool", type=int, default=64, help="pool size (SIGNPOST_MAX_IN_FLIGHT)")
    parser.add_argument("--rounds", type=int, default=10, help="read transactions per connection per phase")
    parser.add_argument("--old", action="store_true", help="the former fixed 64 MB cache per connection")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.path, args.pool, args.rounds, args.old))))


if __name__ == "__main__":
    main()
