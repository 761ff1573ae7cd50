"""The read-session benchmark times a read transaction's life through the ORM session and through a
pooled Core connection (SQLite), with nothing read and with one statement."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_read_session_benchmark_times_each_way_of_reading() -> None:
    command = [sys.executable, "-m", "benchmarks.read_session", "--reads", "50", "--rounds", "1"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(done.stdout)
    assert result["backend"] == "sqlite"
    ways = result["cpu_us_per_read"]
    expected = {"session, nothing read", "session, SELECT 1", "connection, nothing read", "connection, SELECT 1"}
    assert set(ways) == expected
    assert all(cpu >= 0 for cpu in ways.values())
