"""The thread hand-off benchmark times the round trip aiosqlite makes for every statement."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_thread_hop_benchmark_times_cpu_and_wall_per_hop() -> None:
    command = [sys.executable, "-m", "benchmarks.thread_hop", "--hops", "300"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(done.stdout)
    assert result["hops"] == 300
    parts = result["user_us_per_hop"] + result["system_us_per_hop"]
    assert result["cpu_us_per_hop"] >= 0 and abs(result["cpu_us_per_hop"] - parts) <= 0.2  # each rounded
    assert result["wall_us_per_hop"] > 0
