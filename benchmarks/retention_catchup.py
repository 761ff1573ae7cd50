"""How long `retention run` takes to catch up years of days it missed (a store restored from an
old backup, a service left off), through ``store.lifecycle.retention.run`` with the key file on disk.

N synthetic children born across the years before the start are imported on START; retention
then runs once with the clock ``--years`` later, allowed every day it missed (as `signpost
retention run` is when it is given no bound), writing the audit step of each transaction as the CLI
does. Printed: days processed, seconds, milliseconds a day, children archived and destroyed, and
the birth-date keys destroyed (an archived child is destroyed with its day's key).

    .venv/bin/python -m benchmarks.retention_catchup [--years 7] [--children 200] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.core import drop_postgres, fresh_postgres
from store.db import Database
from store.keys.crypto import KeyRing
from store.lifecycle import retention
from store.register.feeds import Feed, import_feeds
from store.register.refs import make_reference

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HEADER = "child_ref,given_names,family_name,aliases,date_of_birth,sex,postcode,local_authority,shielded"
GIVEN = ("Ava", "Noah", "Isla", "Leo", "Maya", "Finn", "Ruby", "Theo")
FAMILY = ("Price", "Hale", "Moss", "Reed", "Lane", "Vale", "Shaw", "Frost")


def children_csv(count: int, seed: int) -> str:
    """Children born between 23 years and 1 year before START: over --years, some turn 18 and some 24."""
    rng = random.Random(seed)
    rows = [HEADER]
    for n in range(count):
        born = START.date() - timedelta(days=rng.randrange(365, 23 * 365))
        ref = make_reference(999_100_000 + n * 10)
        rows.append(f"{ref},{rng.choice(GIVEN)},{rng.choice(FAMILY)},,{born},F,M1 2AB,Northshire,false")
    return "\n".join(rows) + "\n"


async def measure(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        url = await fresh_postgres(args.postgres) if args.postgres else f"sqlite+aiosqlite:///{Path(folder) / 'b.db'}"
        db = await Database.open(url)
        try:
            keys = KeyRing.load_or_create(Path(folder) / "signpost.key")
            await import_feeds(db, keys, [Feed("children.csv", children_csv(args.children, args.seed))], START)
            first = await retention.run(db, keys, START)  # the import day's own run, as the scheduler's
            later = START + timedelta(days=round(365.25 * args.years))

            async def audit_step(session: AsyncSession, detail: str, archived: int, destroyed: int) -> None:
                return None  # the CLI's step writes one audit event here; its cost is not retention's

            began = time.perf_counter()
            # The date confirmed, as `signpost retention run --catch-up-to` gives it (ClockUnchecked).
            report = await retention.run(
                db, keys, later, max_days=100_000, audit_step=audit_step, catch_up_to=later.date()
            )
            took = time.perf_counter() - began
        finally:
            await db.close()
            if args.postgres:
                await drop_postgres(args.postgres, url)
    days = (report.last_day - report.first_day).days + 1 if report.first_day and report.last_day else 0
    return {
        "backend": "postgresql" if args.postgres else "sqlite",
        "children": args.children,
        "years": args.years,
        "first_run_days": 1 if first.first_day else 0,
        "days": days,
        "seconds": round(took, 2),
        "ms_a_day": round(1000 * took / max(days, 1), 2),
        "archived": report.archived,
        "destroyed": report.destroyed,
        "cohort_days_destroyed": report.cohort_days_destroyed,
        "today": str(date.today()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=7.0)
    parser.add_argument("--children", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is made and dropped)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args))))


if __name__ == "__main__":
    main()
