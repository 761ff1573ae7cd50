"""`signpost match` holds a roll in bounded memory: the real command, in its own process, on a
small and a large synthetic roll, measured by that process's own peak RSS (``os.wait4``), not time.

SQLite only: what grows with the roll is the reading, the answers and the CSV, none of which
depends on the backend (the batch's database work is one chunk at a time on both); the use case
runs on both backends in tests/handlers/test_reconcile.py. benchmarks/roll_memory.py measures
rolls whose every row searches the register.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.bot.cli.test_main import write_feeds
from tests.factories import CHILDREN_HEADER

LARGE = 100_000
SMALL = 1_000
AMY_EVERY = 1_000  # one row in so many searches the register (Amy Jones, matched); the rest match nobody
# A roll's columns that match does not read (child_ref, local_authority) padded, so that a row is
# as long as a real one with an address, while costing no search.
PADDING = "x" * 100
GROWTH_LIMIT_MB = 20  # the reader that held the roll whole grew by about 125 MB from the small roll to the large


def write_roll(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(CHILDREN_HEADER + "\n")
        for n in range(1, rows + 1):
            if n % AMY_EVERY == 0:
                out.write(",Amy,Jones,,2014-04-03,,,,\n")
            else:
                out.write(f"{PADDING},,,,,,,{PADDING},\n")


def peak_rss_mb(argv: list[str], env: dict[str, str], cwd: Path, out: Path) -> float:
    """The peak RSS of one process (its own, waited for by pid), after checking it succeeded."""
    with out.open("wb") as stdout:
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE)
        assert child.stderr is not None
        err = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    assert child.returncode == 0, err.decode()[-2000:]
    return usage.ru_maxrss / 1024


def test_a_large_roll_is_matched_in_the_memory_of_a_small_one(tmp_path: Path) -> None:
    """100 times the rows, the same peak RSS within GROWTH_LIMIT_MB; every row still answered."""
    env = {
        **os.environ,
        "SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "SIGNPOST_KEY_FILE": str(tmp_path / "signpost.key"),
        "SIGNPOST_LOG_FORMAT": "json",
    }
    signpost = [sys.executable, "-m", "bot.cli.main"]
    imported = subprocess.run([*signpost, "import", *write_feeds(tmp_path)], env=env, cwd=tmp_path, check=False)
    assert imported.returncode == 0
    peaks = {}
    for rows in (SMALL, LARGE):
        write_roll(tmp_path / f"roll-{rows}.csv", rows)
        argv = [*signpost, "match", str(tmp_path / f"roll-{rows}.csv"), "--as", "AD01"]
        peaks[rows] = peak_rss_mb(argv, env, tmp_path, tmp_path / f"answers-{rows}.csv")
    with (tmp_path / f"answers-{LARGE}.csv").open(encoding="utf-8") as answers:
        lines = answers.readlines()
    # The line column is the file's line: the header is line 1, so data row n is line n + 1.
    assert len(lines) == LARGE + 1 and lines[-1].startswith(f"{LARGE + 1},match,1,")
    assert lines[AMY_EVERY - 1] == f"{AMY_EVERY},no_match,,,\n"
    growth = peaks[LARGE] - peaks[SMALL]
    assert growth < GROWTH_LIMIT_MB, (
        f"peak RSS {peaks[SMALL]:.0f} MB for {SMALL:,} rows, {peaks[LARGE]:.0f} MB for {LARGE:,}"
    )
