"""Roll memory benchmark: peak RSS of `signpost match` on a small and a large synthetic roll.

    python -m benchmarks.roll_memory [--children 2000] [--rows 1000 200000] [--postgres URL]

Seeds the demo register (``--children``) into a fresh store, writes each roll from the register's
own rows (so that rows match, are ambiguous or miss, as a real roll's would; cycled past the
register's size, with empty child_ref) and runs the real `signpost match` in its own process on
each, its CSV going to a file. Peak RSS is that process's own (``os.wait4``), so one run's peak
cannot hide another's. Memory, not time, is what this measures; seconds are shown for scale.

Prints JSON: per roll its rows, file size, peak RSS (MB), seconds and the CSV's rows.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.national_import import fresh_postgres
from store.register.synthetic import HEADERS, SyntheticRegister


def write_roll(register: SyntheticRegister, rows: int, path: Path) -> None:
    """``rows`` data rows in the children feed format, cycling the register's own children."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADERS["children.csv"] + "\n")
        for _, row in itertools.islice(itertools.cycle(list(register.children())), rows):
            out.write(",".join(("", row[1], row[2], "", row[4], "", row[6], "", "")) + "\n")


def peak_rss_mb(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, int, float]:
    """(peak RSS in MB, exit status, seconds) of one process, waited for by its own pid."""
    started = time.monotonic()
    with out.open("wb") as stdout:
        child = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return usage.ru_maxrss / 1024, child.returncode, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--children", type=int, default=2000)
    parser.add_argument("--roll-of", type=int, help="write rolls from a register of this size (default: --children)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 200_000])
    parser.add_argument("--postgres", help="PostgreSQL URL of a database to create a fresh one beside")
    args = parser.parse_args()
    register = SyntheticRegister(children=args.children)
    admin = register.examples().admin_id
    source = SyntheticRegister(children=args.roll_of) if args.roll_of else register
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = dict(os.environ, SIGNPOST_KEY_FILE=str(folder / "signpost.key"), SIGNPOST_LOG_FORMAT="json")
        if args.postgres:
            env["SIGNPOST_DATABASE_URL"] = asyncio.run(fresh_postgres(args.postgres, "roll_memory"))
        else:
            env["SIGNPOST_DATABASE_URL"] = f"sqlite+aiosqlite:///{folder}/signpost.db"
        signpost = [sys.executable, "-m", "bot.cli.main"]
        seeded = subprocess.run([*signpost, "seed-demo", "--children", str(args.children)], env=env, check=False)
        if seeded.returncode != 0:
            sys.exit("seed-demo failed")
        results = []
        for rows in args.rows:
            roll, answers = folder / f"roll-{rows}.csv", folder / f"answers-{rows}.csv"
            write_roll(source, rows, roll)
            peak, code, seconds = peak_rss_mb([*signpost, "match", str(roll), "--as", admin], env, answers)
            if code != 0:
                sys.exit(f"match of {rows} rows failed ({code})")
            with answers.open("rb") as written:
                csv_rows = sum(1 for _ in written) - 1
            size = roll.stat().st_size
            results.append({"rows": rows, "roll_mb": round(size / 1e6, 1), "peak_rss_mb": round(peak, 1)})
            results[-1].update({"seconds": round(seconds, 1), "csv_rows": csv_rows})
    backend = "postgresql" if args.postgres else "sqlite"
    print(json.dumps({"backend": backend, "children": args.children, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
