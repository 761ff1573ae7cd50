"""Run by `make test` before pytest: say loudly what the suite can and cannot reach."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.databases import postgres_problem, postgres_url

CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> int:
    """Install Debian's chromium for the enrolment-page browser check (idempotent; needs root)."""
    if CHROMIUM.exists():
        print(f"Chromium present at {CHROMIUM}: the enrolment page is checked in a headless browser.")
        return 0
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Debian's chromium for the headless enrolment-page check …")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            if subprocess.run(step, env=env, check=False).returncode != 0:
                break
    if CHROMIUM.exists():
        return 0
    banner = "!" * 78
    print(f"{banner}\n!!! Chromium is missing and could not be installed ({CHROMIUM}).", file=sys.stderr)
    if os.environ.get("CI") == "true":
        print("!!! CI=true: the headless browser check must run: a failure.\n" + banner, file=sys.stderr)
        return 1
    print("!!! The headless Chromium check will be SKIPPED on this machine.\n" + banner, file=sys.stderr)
    return 0


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
    sys.exit(max(main(), ensure_chromium()))
