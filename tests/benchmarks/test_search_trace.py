"""The one-process search trace runs on a small register and counts what a search does (SQLite)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_search_trace_counts_statements_cpu_and_uncached_compiles() -> None:
    args = ("--children", "400", "--searches", "24", "--rounds", "2", "--askers", "3", "--concurrency", "4")
    command = [sys.executable, "-m", "benchmarks.search_trace", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    result = json.loads(done.stdout)
    assert result["answered"] == 24 == sum(result["outcomes"].values())
    assert result["statements_per_search"]["searches"] > 1  # gates, the probe, the audit write
    assert result["cpu_ms_per_search"]["searches"] > 0
    uncached = result["uncached_compiles"]
    assert uncached["total"] == sum(uncached["by_statement"].values())
    # Counts and timings only: the searches typed are nowhere in what it prints.
    assert "/" not in done.stdout
