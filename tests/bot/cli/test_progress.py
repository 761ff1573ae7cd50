"""Progress on long work as an operator sees it: plain lines on stderr when stderr is a pipe or a
file (counts, every tenth, a final line), a bar when it is a terminal; stdout stays the answer."""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

import pytest
from rich.filesize import decimal

from store.register.synthetic import HEADERS, SyntheticRegister, feeds_text
from tests.bot.cli.conftest import Cli, Run
from tests.spread import either_store

CHILDREN = 2500  # more than two batches of key rotation (1000 keys each)
ELAPSED = r"in \d+(\.\d)? s$|in \d+ min \d+ s$"


def progress_lines(run: Run, label: str) -> list[str]:
    return [line for line in run.err.splitlines() if line.startswith(label + ":")]


def final(run: Run, label: str) -> str:
    """The one line that ends ``label``'s progress: the count and how long it took."""
    lines = progress_lines(run, label)
    assert lines, run.err
    assert re.search(ELAPSED, lines[-1]), lines[-1]
    return re.sub(ELAPSED, "in …", lines[-1])


def seeded(cli: Cli, children: int = CHILDREN) -> Run:
    run = cli("seed-demo", "--children", str(children))
    assert run.code == 0, run.err
    return run


def roll(tmp_path: Path, rows: int) -> tuple[Path, list[str]]:
    """A roll of the first demo children, their references left out; and the names it holds."""
    register = SyntheticRegister(children=CHILDREN)
    picked = [row for _, row in zip(range(rows), register.children(), strict=False)]
    buffer = io.StringIO()
    buffer.write(HEADERS["children.csv"] + "\n")
    csv.writer(buffer, lineterminator="\n").writerows([["", *row[1:]] for _, row in picked])
    path = tmp_path / "roll.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path, [name for _, row in picked for name in row[1:3]]


def test_long_commands_report_progress_on_stderr_in_plain_lines(cli: Cli, tmp_path: Path) -> None:
    """Seed, retention, key rotation, backup and match each end with a line of count and time; the
    longer ones say every tenth on the way; nothing of it on stdout, and no name anywhere."""
    seed = seeded(cli)
    assert final(seed, "Seeding demo data") == f"Seeding demo data: {CHILDREN:,} children in …"
    assert "Seeding" not in seed.out

    retention = cli("retention", "run")
    assert retention.code == 0, retention.err
    assert final(retention, "Retention: days") == "Retention: days: 1 day in …"
    # An import wraps each child's key under its birth-date cohort already: nothing to seal in.
    assert progress_lines(retention, "Retention: sealing in") == ["Retention: sealing in: nothing to do"]
    assert retention.out.startswith("Retention (") and "sealing" not in retention.out

    rotate = cli("keys", "rotate")
    assert rotate.code == 0, rotate.err
    keys = sum(int(n) for n in re.findall(r": (\d+)", rotate.out))
    assert keys >= CHILDREN
    rewrapping = " ".join(progress_lines(rotate, "Re-wrapping keys"))
    assert f"Re-wrapping keys: 1,000/{keys:,} keys (" in rewrapping
    assert f"Re-wrapping keys: 2,000/{keys:,} keys (" in rewrapping
    assert final(rotate, "Re-wrapping keys") == f"Re-wrapping keys: {keys:,} keys in …"

    backup = cli("backup", str(tmp_path / "store.backup"))
    assert backup.code == 0, backup.err
    size = int(re.findall(r"\((\d+) bytes, ", backup.out)[0])
    assert final(backup, "Writing the backup") == f"Writing the backup: {decimal(size)} in …"

    path, names = roll(tmp_path, 12)
    match = cli("match", str(path), "--as", SyntheticRegister(children=CHILDREN).examples().admin_id)
    assert match.code == 0, match.err
    assert final(match, "Matching rows") == "Matching rows: 12 rows in …"
    assert match.out.startswith("line,decision,rank,candidate_ref,confidence\n")
    assert "Matching" not in match.out
    progress = "\n".join(
        line for run in (seed, retention, rotate, backup, match) for line in run.err.splitlines() if ": " in line
    )
    assert not [name for name in names if name in progress]


STEPS = (
    "checking involvements for repeats and unknown references",
    "building the search index",
    "recording the involvements",
    "committing",
)


def feed_paths(tmp_path: Path, children: int = CHILDREN) -> tuple[list[str], int]:
    """The synthetic register's three feeds as files; and how many involvement rows they hold."""
    paths = []
    for name, text in feeds_text(SyntheticRegister(children=children)).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    involvements = len((tmp_path / "involvements.csv").read_text(encoding="utf-8").splitlines()) - 1
    return paths, involvements


def test_an_import_counts_its_children_against_the_files_total(cli: Cli, tmp_path: Path, db_url: str) -> None:
    """`signpost import` knows the feeds' sizes before it starts (a cheap line count), says how far
    it got through the children and then the involvements, names each step that has nothing to
    count as it begins and how long it took (at national scale each takes minutes), and ends with
    the count and time; the summary alone is on stdout."""
    paths, involvements = feed_paths(tmp_path)
    run = cli("import", *paths)
    assert run.code == 0, run.err
    assert final(run, "Importing") == f"Importing: {CHILDREN:,} children in …"
    counts = [line for line in progress_lines(run, "Importing") if "children" in line]
    assert counts[-1] == progress_lines(run, "Importing")[-1]
    assert all(f"/{CHILDREN:,} children" in line for line in counts[:-1])
    assert final(run, "Reading involvements") == f"Reading involvements: {involvements:,} rows in …"
    assert all(f"/{involvements:,} rows" in line for line in progress_lines(run, "Reading involvements")[:-1])
    # PostgreSQL's COPY writes the search index as the children go in: no step of its own there.
    steps = [step for step in STEPS if db_url.startswith("sqlite") or step != "building the search index"]
    said = [line for line in progress_lines(run, "Importing") if "children" not in line]
    assert said[0::2] == [f"Importing: {step}" for step in steps]
    assert [re.sub(ELAPSED, "in …", line) for line in said[1::2]] == [f"Importing: {step}: done in …" for step in steps]
    assert run.err.index("Reading involvements: ") < run.err.index(f"Importing: {STEPS[0]}")
    assert "Importing" not in run.out and f"children: {CHILDREN:,} rows read" in run.out


def test_a_refused_import_says_where_it_stopped_and_commits_nothing(cli: Cli, tmp_path: Path) -> None:
    """An involvement naming a child nobody registered is found by the checking step: that step is
    said to have stopped, no later step begins, and the problem is the last thing said."""
    paths, _ = feed_paths(tmp_path, 40)
    involvements = tmp_path / "involvements.csv"
    lines = involvements.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")
    lines.append(",".join(["1000000001", *first[1:]]))  # a valid reference no feed names
    involvements.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = cli("import", *paths)
    assert run.code == 1
    steps = [line for line in progress_lines(run, "Importing") if "children" not in line]
    assert steps[0] == f"Importing: {STEPS[0]}"
    assert re.fullmatch(rf"Importing: {STEPS[0]}: stopped after \d+(\.\d)? s", steps[1]), steps
    assert len(steps) == 2
    assert run.said.splitlines()[-1] == "Nothing was imported: 1 problem above."
    assert "no child with this reference" in run.said


@either_store  # a roll refused before a row is matched: one store shows it (tests/spread.py)
def test_a_refused_roll_shows_no_progress_and_its_problems_last(cli: Cli, tmp_path: Path) -> None:
    """Nothing was matched, so no progress line: the problems and their count are what is said."""
    seeded(cli, 100)
    bad = tmp_path / "roll.csv"
    bad.write_text(f"{HEADERS['children.csv']}\n,Amy,Jones,,2014-13-03,,,,\n", encoding="utf-8")
    run = cli("match", str(bad), "--as", SyntheticRegister(children=100).examples().admin_id)
    assert run.code == 1
    assert not progress_lines(run, "Matching rows")
    assert run.said.splitlines()[-1] == "Nothing was matched: 1 problem above."


class Terminal(io.StringIO):
    """What a terminal receives (rich decides by ``isatty``, as for a real one)."""

    def isatty(self) -> bool:
        return True


@either_store
def test_on_a_terminal_progress_is_a_bar_with_count_and_rate(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stderr a terminal: a rich bar (drawn with ━), the count of the total and a rate per second;
    no plain lines; stdout unchanged."""
    seeded(cli, 100)
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setenv("COLUMNS", "120")
    rotate = cli("keys", "rotate")
    assert rotate.code == 0, screen.getvalue()
    keys = sum(int(n) for n in re.findall(r": (\d+)", rotate.out))
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # colours and cursor moves
    assert "Re-wrapping keys" in shown and "━" in shown
    assert f"{keys:,}/{keys:,}" in shown and "100%" in shown and "keys/s" in shown
    assert "Re-wrapping keys: " not in shown  # the plain lines are for pipes and files
    assert rotate.out.startswith("Keys rotated to generation 2;")


@either_store
def test_on_a_terminal_a_step_with_nothing_to_do_says_so_as_a_pipe_does(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention's sealing in has nothing to do after an import: on a terminal too it is the line
    "nothing to do", not an empty 0/0 bar; the step with work is still a bar."""
    seeded(cli, 100)
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setenv("COLUMNS", "120")
    run = cli("retention", "run")
    assert run.code == 0, screen.getvalue()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "Retention: sealing in: nothing to do" in shown
    assert "0/0" not in shown
    assert "Retention: days" in shown and "1/1" in shown and "━" in shown


@either_store
def test_on_a_terminal_an_imports_steps_are_bars_too(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The involvements have a bar with their count; each step without a count a bar of its own,
    ended full; no plain lines."""
    paths, involvements = feed_paths(tmp_path, 100)
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setenv("COLUMNS", "160")
    run = cli("import", *paths)
    assert run.code == 0, screen.getvalue()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert f"{involvements:,}/{involvements:,}" in shown and "rows/s" in shown
    assert all(f"Importing: {step}" in shown for step in STEPS if step != "building the search index")
    assert ": done in" not in shown  # the plain lines are for pipes and files


@either_store
def test_on_a_terminal_log_lines_are_written_above_the_bars_not_into_them(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log line written while bars are drawn (retention's own info lines) goes above them, each on
    a line of its own: written straight to the terminal, it was drawn into a bar's line (newcomer)."""
    seeded(cli, 20)
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setenv("COLUMNS", "200")
    run = cli("retention", "run")
    assert run.code == 0, screen.getvalue()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    lines = [line for line in re.split(r"[\r\n]", shown) if line.strip()]
    logged = [line for line in lines if "retention_run" in line]
    assert logged, shown
    assert all("━" not in line and "Retention:" not in line for line in logged), logged


@either_store  # a file's rows counted, not the store: one store shows it (tests/spread.py)
def test_a_header_repeated_between_joined_exports_is_not_counted_as_a_row(cli: Cli, tmp_path: Path) -> None:
    """Two exports joined into one file (``cat a.csv b.csv``) repeat the header between their rows,
    in their own column order: the import reads it as a header, but the progress total counted it
    (and an empty line) as one more row, so the count ended short of its own total."""
    paths, involvements = feed_paths(tmp_path)
    for name in ("children.csv", "involvements.csv"):
        header, *rows = (tmp_path / name).read_text(encoding="utf-8").splitlines()
        cells = header.split(",")
        reordered = ",".join(reversed(cells))
        second = [",".join(reversed(row.split(","))) for row in rows[len(rows) // 2 :]]
        joined = [header, *rows[: len(rows) // 2], "", reordered.upper(), *second]
        (tmp_path / name).write_text("\r\n".join(joined) + "\r\n", encoding="utf-8")
    run = cli("import", *paths)
    assert run.code == 0, run.err
    counts = [line for line in progress_lines(run, "Importing") if "children" in line]
    assert len(counts) > 1 and all(f"/{CHILDREN:,} children" in line for line in counts[:-1]), counts
    assert final(run, "Importing") == f"Importing: {CHILDREN:,} children in …"
    assert all(f"/{involvements:,} rows" in line for line in progress_lines(run, "Reading involvements")[:-1])
    assert final(run, "Reading involvements") == f"Reading involvements: {involvements:,} rows in …"


@either_store  # a file's rows counted, not the store: one store shows it (tests/spread.py)
def test_a_quoted_field_over_several_lines_is_one_row_of_the_progress_total(cli: Cli, tmp_path: Path) -> None:
    """A quoted field may hold line breaks (RFC 4180; Excel writes one for Alt+Enter in a cell): the
    import reads the row as one, but the progress total counted each of its lines as a row, so the
    count ended short of its own total. Such a field may leave a line that is blank, or that begins
    with a quote, or escape a quote before its break: each row is still one row of the total."""
    paths, involvements = feed_paths(tmp_path)
    endings = {"children.csv": (7, ["\n", "\r\n", "\n\n", " \n \n"]), "involvements.csv": (2, ['""\n', '"" \n\n'])}
    for name, (column, breaks) in endings.items():
        header, *rows = (tmp_path / name).read_text(encoding="utf-8").splitlines()
        for at in range(0, len(rows), 3):
            cells = rows[at].split(",")
            cells[column] = '"' + cells[column] + breaks[at % len(breaks)] + '"'
            rows[at] = ",".join(cells)
        (tmp_path / name).write_text("\r\n".join([header, *rows]) + "\r\n", encoding="utf-8", newline="")
    run = cli("import", *paths)
    assert run.code == 0, run.err
    counts = [line for line in progress_lines(run, "Importing") if "children" in line]
    assert len(counts) > 1 and all(f"/{CHILDREN:,} children" in line for line in counts[:-1]), counts
    assert final(run, "Importing") == f"Importing: {CHILDREN:,} children in …"
    read = progress_lines(run, "Reading involvements")  # one batch: at the right total, its last line alone
    assert all(f"/{involvements:,} rows" in line for line in read[:-1]), read
    assert final(run, "Reading involvements") == f"Reading involvements: {involvements:,} rows in …"
