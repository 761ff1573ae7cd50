"""National import benchmark: write a synthetic national register's feeds (once; reused when the
folder already holds them) and time `signpost import` on them in a fresh store, in its own
process, measuring wall time and peak RSS (the importer and its sealing workers, each).

    python -m benchmarks.national_import --children 1000000 [--postgres URL] [--feeds DIR] [--keep DIR]

``--keep DIR`` keeps the SQLite store and its key file in DIR (``signpost.db``, ``signpost.key``)
for benchmarks that search the imported register (``benchmarks.national_search``).

Prints JSON: children, involvements, seconds, children a second, peak RSS of the importing
process and of the largest sealing worker (MB), the machine's load average before and after,
and the import's own closing progress lines (how long the children took, and each later step).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from store.register.national import NationalRegister, write_feeds

FEEDS = ("practitioners.csv", "children.csv", "involvements.csv")
# The progress line that ends each phase: "Importing: 1,000,000 children in 2 min 5 s", "Importing:
# committing: done in 40 s" (counts and step names only: nothing read from a row).
PHASE_DONE = re.compile(r"(children|rows|done) in \d")


def feeds_for(children: int, folder: Path) -> Path:
    """The feed folder for ``children`` children, written unless already there."""
    target = folder / f"national-{children}"
    if not all((target / name).exists() for name in FEEDS):
        write_feeds(NationalRegister(children), target)
    return target


async def fresh_postgres(url: str, name: str) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--postgres", help="PostgreSQL URL of a database to create a fresh one beside")
    parser.add_argument("--feeds", type=Path, default=Path(tempfile.gettempdir()), help="where feeds are kept")
    parser.add_argument("--keep", type=Path, help="keep the SQLite store and key file in this folder")
    args = parser.parse_args()
    folder = feeds_for(args.children, args.feeds)
    with tempfile.TemporaryDirectory() as temporary:
        scratch = str(args.keep) if args.keep else temporary
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, SIGNPOST_KEY_FILE=str(Path(scratch) / "signpost.key"))
        if args.postgres:
            env["SIGNPOST_DATABASE_URL"] = asyncio.run(fresh_postgres(args.postgres, f"national_{args.children}"))
        else:
            env["SIGNPOST_DATABASE_URL"] = f"sqlite+aiosqlite:///{scratch}/signpost.db"
        load_before = os.getloadavg()
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli.main", "import", *(str(folder / name) for name in FEEDS)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    involvements = sum(1 for _ in (folder / "involvements.csv").open("rb")) - 1
    # ru_maxrss of waited-for children is the largest of them: the importer (its workers are smaller).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "backend": "postgresql" if args.postgres else "sqlite",
                "children": args.children,
                "involvements": involvements,
                "seconds": round(seconds, 1),
                "children_per_second": round(args.children / seconds),
                "peak_rss_mb": round(peak),
                "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "output": done.stdout.strip().splitlines(),
                "phases": [line for line in done.stderr.splitlines() if PHASE_DONE.search(line)],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
