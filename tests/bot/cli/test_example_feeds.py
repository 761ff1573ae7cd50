"""The example feeds in examples/ import as the README says, and the searches it suggests on them
answer as it says: a newcomer had no feed to try `signpost import` on."""

from __future__ import annotations

from pathlib import Path

import pyotp

from tests.bot.cli.conftest import Cli

ROOT = Path(__file__).parents[3]
README = (ROOT / "README.md").read_text("utf-8")
FEEDS = sorted(str(path) for path in (ROOT / "examples").glob("*.csv"))
# The console lines the README suggests, and what each answers with.
SEARCHES = {
    "Lily Testperson 14/02/2016": "Signposts for 999 100 0003: 2 involvements.",
    "999 100 0011": "Signposts for 999 100 0011: 1 involvement.",
    "999 100 0038": "A record exists and is shielded.",
}


def test_the_readme_shows_how_to_try_the_example_feeds() -> None:
    assert [Path(feed).name for feed in FEEDS] == ["children.csv", "involvements.csv", "practitioners.csv"]
    assert ".venv/bin/signpost import examples/*.csv" in README
    assert ".venv/bin/signpost console --as EX-P002" in README
    assert all(search in README for search in SEARCHES)


def test_the_example_feeds_import_and_answer_as_the_readme_says(cli: Cli) -> None:
    imported = cli("import", *FEEDS)
    assert imported.code == 0, imported.err
    assert imported.out.splitlines() == [
        "practitioners: 4 rows read, 4 new or changed",
        "children: 3 rows read, 3 new or changed",
        "involvements: 4 rows read, 4 new or changed",
    ]
    code = pyotp.TOTP(cli.enrol("EX-P002")).now()
    first, *rest = SEARCHES
    out = cli("console", "--as", "EX-P002", stdin="\n".join([first, code, *rest]) + "\n").out
    for answer in SEARCHES.values():
        assert answer in out, out
