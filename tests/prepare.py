"""Run by `make test` before pytest: say loudly what the suite can and cannot reach."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.databases import postgres_problem, postgres_url


def main() -> int:
    problem = asyncio.run(postgres_problem())
    if problem is None:
        print(f"PostgreSQL reachable at {postgres_url().split('@')[-1]}: the suite runs on SQLite and PostgreSQL.")
        return 0
    banner = "!" * 78
    print(f"{banner}\n!!! PostgreSQL is UNREACHABLE ({problem}).\n", file=sys.stderr)
    if os.environ.get("CI") == "true":
        print("!!! CI=true: the PostgreSQL half must run, so this is a failure.\n" + banner, file=sys.stderr)
        return 1
    print("!!! The PostgreSQL tests will be SKIPPED on this machine.\n" + banner, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
