"""The national import and search benchmarks run end to end on a small register and report what happened
(SQLite: the store ``national_import --keep`` keeps is a file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def benchmark(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, check=True, timeout=300)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_kept_import_is_searched_as_typed_and_strangers_are_not_matched(tmp_path: Path) -> None:
    store, feeds = tmp_path / "store", tmp_path / "feeds"
    imported = benchmark("benchmarks.national_import", "--children", "600", "--feeds", str(feeds), "--keep", str(store))
    assert imported["children"] == 600
    assert (store / "signpost.db").exists() and (store / "signpost.key").exists()
    found = benchmark(
        "benchmarks.national_search",
        *("--store", str(store), "--children", "600", "--feeds", str(feeds), "--queries", "40", "--warm", "5"),
    )
    by_kind = found["by_kind"]
    assert isinstance(by_kind, dict)
    assert by_kind["exact"] == {"right child": 40, "candidate": 40}
    assert found["strangers_falsely_matched"] == 0
    present = found["present"]
    assert isinstance(present, dict) and present["wrong_child"] == 0
    assert found["searches"] == sum(n for kind in by_kind.values() for what, n in kind.items() if what != "candidate")
    # How many candidates each search weighed, and the CPU of those at the cap apart from the rest.
    weighed = found["candidates"]
    assert isinstance(weighed, dict)
    assert 1 <= weighed["p50"] <= weighed["p99"] <= 200  # every exact search weighs its child at least
    assert 0 <= weighed["at_cap_pct"] <= 100
    below = found["search_cpu_below_cap"]
    assert isinstance(below, dict) and below["p50_ms"] > 0 and "p99_ms" in below
    assert isinstance(found["search_cpu_at_cap"], dict)
