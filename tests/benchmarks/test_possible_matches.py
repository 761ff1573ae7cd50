"""The possible-matches benchmark: the report's query and the export's read through the table's
primary key (no scan of the events), and find what the old scan found."""

from __future__ import annotations

from typing import cast

from benchmarks.possible_matches import main, parse

QUERIES = ("scan", "index", "export scan", "export index")


async def test_the_report_and_the_export_read_possible_matches_through_the_index() -> None:
    result = await main(parse(["--events", "600", "--hits", "3", "--rounds", "1"]))
    assert result["events_naming_the_child"] == 3  # the script checks each query finds exactly these
    plans = {name: " | ".join(cast(dict[str, list[str]], result[name])["plan"]) for name in QUERIES}
    assert "SCAN audit_events" in plans["scan"]
    for name in ("index", "export index"):
        assert "SEARCH audit_candidates USING PRIMARY KEY (tag=?)" in plans[name], plans[name]
        assert "SCAN audit_events" not in plans[name] and "rowid>?" not in plans[name], plans[name]
    assert "rowid>?" in plans["export scan"]  # the old filter walked every event from the page's start
