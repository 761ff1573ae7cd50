"""`signpost import` and `signpost match` refuse feed text that would not be shown as itself, and a
row the csv module cannot read, as one problem line each (file:line: field: problem): never a
traceback, never the value, and nothing imported."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import select

from store.db import Database
from store.register.refs import check_digit
from store.tables.audit import AuditEvent
from store.tables.register import Involvement
from tests.bot.cli.conftest import Cli, Run
from tests.factories import (
    AMY,
    CHILDREN,
    CHILDREN_HEADER,
    INVOLVEMENTS,
    INVOLVEMENTS_HEADER,
    PRACTITIONERS,
    PRACTITIONERS_HEADER,
    SHIELDED,
)
from tests.spread import either_store, spread

# Each test marked either_store below throws input that is read and refused before the store is
# written: one store shows it (tests/spread.py). A NUL (which PostgreSQL cannot store), names in
# any script kept, and a refused import's rollback run on both.

PERSON = "P009,{given},Hale,Nurse,Northshire NHS,{authority},0161 496 0009,{email},practitioner"
FORGED = "Sam\n> quoted\n\u202eevil"


def person(given: str = "Ann", authority: str = "Northshire", email: str = "ann.hale@nhs.example") -> str:
    return PERSON.format(given=given, authority=authority, email=email)


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(cli: Cli, *paths: Path) -> list[str]:
    """The problem lines an import printed; it must have imported nothing (exit status 1)."""
    result = cli("import", *map(str, paths))
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    lines = result.said.splitlines()
    assert lines[-1].startswith("Nothing was imported:")
    return [line for line in lines if re.match(r"[\w.]+:\d+: ", line)]  # not the progress lines


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@spread(  # input refused before the store is written: each on one store (tests/spread.py)
    "email, why",
    [
        ("[priya.shah@nhs.example](https://evil.example/phish)", "markdown link"),
        ("priya.shah@nhs.example <!here>", "mention after it"),
        ("priya|shah@nhs.example", "pipe"),
        ("<priya.shah@nhs.example>", "angle brackets"),
    ],
)
def test_an_email_that_is_not_only_an_address_is_refused(cli: Cli, tmp_path: Path, email: str, why: str) -> None:
    """Only ``local@domain.tld`` is an email: a value that would be a link or a mention is a problem."""
    feed = write(tmp_path, "practitioners.csv", f"{PRACTITIONERS_HEADER}\n{person(email=quoted(email))}\n")
    assert problems(cli, feed) == ["practitioners.csv:2: email: is not an email address"], why


def test_line_breaks_bidi_marks_and_nul_in_feed_text_are_problems_never_quoted(cli: Cli, tmp_path: Path) -> None:
    """A name forging extra lines, a direction override, a NUL in an authority or a service (which
    PostgreSQL cannot store): each a problem naming the field, none written, none quoted."""
    people = write(
        tmp_path,
        "practitioners.csv",
        f"{PRACTITIONERS_HEADER}\n{person(given=quoted(FORGED))}\n"
        + PERSON.replace("P009", "P010").format(given="Al", authority="North\x00shire", email="al@n.example")
        + "\n"
        + PERSON.replace("P009", "P011").format(given="Bo\u2028b", authority="Northshire", email="bo@n.example")
        + "\n",
    )
    kids = write(
        tmp_path, "children.csv", f"{CHILDREN_HEADER}\n{AMY},Amy,Jo\u200bnes,,2014-04-03,F,,North\u202eshire,false\n"
    )
    links = write(tmp_path, "involvements.csv", f"{INVOLVEMENTS_HEADER}\n{AMY},P009,Care\x00,2024-01-01,,false\n")
    said = problems(cli, people, kids, links)
    assert said == [
        "practitioners.csv:2: given_name: holds a character that is not shown as text "
        "(a line break, tab, NUL, direction mark or zero-width character)",
        "practitioners.csv:5: local_authority: holds a character that is not shown as text "
        "(a line break, tab, NUL, direction mark or zero-width character)",
        "practitioners.csv:6: given_name: holds a character that is not shown as text "
        "(a line break, tab, NUL, direction mark or zero-width character)",
        "children.csv:2: family_name: holds a character that is not shown as text "
        "(a line break, tab, NUL, direction mark or zero-width character)",
        "children.csv:2: local_authority: holds a character that is not shown as text "
        "(a line break, tab, NUL, direction mark or zero-width character)",
        "involvements.csv:2: service: holds a character that is not shown as text "
        "(a line break, tab, NUL, direction mark or zero-width character)",
    ]
    assert "quoted" not in "\n".join(said) and "evil" not in "\n".join(said)


def test_a_nul_in_an_unknown_practitioner_id_is_a_problem_not_a_database_error(cli: Cli, tmp_path: Path) -> None:
    """A bad involvement row is still staged for its references: a NUL there never reaches the database."""
    links = write(tmp_path, "involvements.csv", f"{INVOLVEMENTS_HEADER}\n9990000026,P\x0001,Care,2024-01-01,,x\n")
    said = problems(cli, links)
    assert "involvements.csv:2: practitioner_id: holds a character that is not shown as text" in said[0]


def test_names_in_any_script_with_joiners_and_other_spaces_are_imported(cli: Cli, tmp_path: Path) -> None:
    """Letters, accents, a no-break space and the zero-width non-joiner Persian names use are text."""
    people = PRACTITIONERS + person(given="Zoë\u00a0\u0645\u0647\u0631\u200c\u0646\u0627\u0632") + "\n"
    files = [write(tmp_path, name, text) for name, text in (("p.csv", people), ("c.csv", CHILDREN))]
    result = cli("import", *map(str, files), str(write(tmp_path, "i.csv", INVOLVEMENTS)))
    assert result.code == 0, result.err


@either_store
def test_a_field_past_the_csv_limit_is_one_problem_with_its_line(cli: Cli, tmp_path: Path) -> None:
    """The csv module refuses a field over 131,072 characters: one line naming the file and row,
    not a traceback, and nothing imported from any file."""
    huge = PERSON.replace("P009", "P012").format(given="x" * 140_000, authority="Northshire", email="x@n.example")
    people = write(tmp_path, "practitioners.csv", f"{PRACTITIONERS}{huge}\n{person()}\n")
    said = problems(cli, people, write(tmp_path, "children.csv", CHILDREN))
    assert said == [
        "practitioners.csv:8: row: cannot be read as CSV (field larger than field limit (131072)); "
        "nothing after it was read"
    ]
    assert cli("console", "--as", "P002", stdin="").code == 2  # nothing was imported: P002 is unknown


def refused_roll(cli: Cli, tmp_path: Path, rows: str) -> Run:
    """`signpost match` of a roll with ``rows`` against the imported register: refused (exit 1, no
    CSV out, no traceback); the run, for what it said."""
    files = [write(tmp_path, n, t) for n, t in (("p.csv", PRACTITIONERS), ("c.csv", CHILDREN))]
    assert cli("import", *map(str, files)).code == 0
    result = cli("match", str(write(tmp_path, "roll.csv", f"{CHILDREN_HEADER}\n{rows}")), "--as", "AD01")
    assert result.code == 1 and result.out == "" and "Traceback" not in result.err
    return result


@either_store
def test_a_header_past_the_csv_limit_is_one_problem(cli: Cli, tmp_path: Path) -> None:
    feed = write(tmp_path, "children.csv", "x" * 140_000 + "\n")
    [said] = problems(cli, feed)
    assert said.startswith("children.csv:1: row: cannot be read as CSV (field larger than field limit")


@either_store
def test_a_roll_past_the_csv_limit_is_one_problem_and_nothing_is_matched(cli: Cli, tmp_path: Path) -> None:
    """`signpost match`: the same refusal, exit status 1, no CSV out."""
    result = refused_roll(cli, tmp_path, f",Amy,Jones,,2014-04-03,,,,\n,{'x' * 140_000},B,,,,,,\n")
    lines = result.said.splitlines()
    assert (
        "roll.csv:3: row: cannot be read as CSV (field larger than field limit (131072)); nothing after it was read"
        in lines
    )
    assert lines[-1] == "Nothing was matched: 1 problem above."


@either_store
def test_a_header_naming_a_column_twice_is_refused_never_read_as_its_last_value(cli: Cli, tmp_path: Path) -> None:
    """A children feed whose header names `shielded` twice (true, then false) was imported with the
    last value: the shielded child came out unshielded and its signposts showed to any search.
    Which of the two a supplier meant cannot be known, so the header is a problem and nothing is imported."""
    files = [write(tmp_path, n, t) for n, t in (("p.csv", PRACTITIONERS), ("c.csv", CHILDREN))]
    assert cli("import", *map(str, files), str(write(tmp_path, "i.csv", INVOLVEMENTS))).code == 0
    header = f"{CHILDREN_HEADER},shielded"
    twice = write(tmp_path, "again.csv", f"{header}\n{SHIELDED},Mia,Stone,,2015-06-30,F,S1 4ZZ,Southvale,true,false\n")
    said = problems(cli, twice)
    assert said == ["again.csv:1: header: names a column more than once (shielded): name each column once"]


@either_store
def test_a_data_row_taken_for_a_header_is_never_quoted_back(cli: Cli, tmp_path: Path) -> None:
    """A file whose header line was lost: its first row repeats values (the two dates), but the
    problem names only Signpost's own column names, never the row's text."""
    headless = write(tmp_path, "c.csv", f"{AMY},Amy,Jones,,2014-04-03,2014-04-03,M1 2AB,Northshire,false\n")
    [said] = problems(cli, headless)
    assert said.startswith("c.csv:1: header: not a known feed") and "2014" not in said and "Amy" not in said


@spread("day", ["2015-W05-1", "2015-W05", "2015-06-3\u0663"])  # refused before the store: each on one store
def test_a_date_in_another_iso_form_of_the_same_length_is_a_problem(cli: Cli, tmp_path: Path, day: str) -> None:
    """`date.fromisoformat` takes an ISO week date (`2015-W05-1` is 26 January 2015), and the
    length check let it through: a feed promised YYYY-MM-DD took it as a date of birth."""
    row = f"{SHIELDED},Mia,Stone,,{day},F,S1 4ZZ,Southvale,true"
    said = problems(cli, write(tmp_path, "c.csv", f"{CHILDREN_HEADER}\n{row}\n"))
    assert said == ["c.csv:2: date_of_birth: is not a date in YYYY-MM-DD form"]
    link = f"{SHIELDED},S001,Health visiting,{day},,true"
    said = problems(cli, write(tmp_path, "i.csv", f"{INVOLVEMENTS_HEADER}\n{link}\n"))
    assert "i.csv:2: started: is not a date in YYYY-MM-DD form" in said


@spread(  # dates refused before the store is written: each on one store (tests/spread.py)
    "started, ended, said",
    {
        "year one": ("0001-01-01", "", "i.csv:2: started: is more than 25 years ago"),
        "1900": ("1900-01-01", "", "i.csv:2: started: is more than 25 years ago"),
        "9999": ("2024-09-01", "9999-12-31", "i.csv:2: ended: is more than 24 years ahead"),
        "2099": ("2024-09-01", "2099-01-01", "i.csv:2: ended: is more than 24 years ahead"),
    },
)
async def test_an_involvement_date_no_child_in_signpost_can_have_is_a_problem(
    cli: Cli, db: Database, tmp_path: Path, started: str, ended: str, said: str
) -> None:
    """Exports fill a date they lack with a placeholder (0001-01-01 or 1900-01-01 for "unknown",
    9999-12-31 for "no end"). Each was imported: practitioners were shown "since 01/01/1", and a
    current involvement "ended 31/12/9999" (read as ended, so its lead professional was never told
    of a search). A child is held until 24 (and an involvement may begin before birth): a date
    outside that is a problem, and nothing is imported."""
    feeds = [write(tmp_path, "p.csv", PRACTITIONERS), write(tmp_path, "c.csv", CHILDREN)]
    link = f"{AMY},P003,Youth work,{started},{ended},true"
    feeds.append(write(tmp_path, "i.csv", f"{INVOLVEMENTS_HEADER}\n{link}\n"))
    result = await cli.run("import", *map(str, feeds))
    assert result.code == 1 and "Traceback" not in result.err
    [problem, last] = [line for line in result.said.splitlines() if not line.startswith("Importing")][-2:]
    assert problem.startswith(said) and last == "Nothing was imported: 1 problem above."
    assert started not in problem and (not ended or ended not in problem)
    async with db.read() as session:
        assert (await session.execute(select(Involvement.child_ref).limit(1))).first() is None


@either_store
def test_a_postcode_or_phone_in_full_width_digits_is_a_problem(cli: Cli, tmp_path: Path) -> None:
    """Python's ``\\d`` takes any script's digits: "S1 4ZZ" with a full-width 1 was accepted as a UK
    postcode (and a phone number in full-width digits would be shown to practitioners as a signpost)."""
    row = f"{SHIELDED},Mia,Stone,,2016-05-05,F,S\uff11 4ZZ,Southvale,true"
    said = problems(cli, write(tmp_path, "c.csv", f"{CHILDREN_HEADER}\n{row}\n"))
    assert said == ["c.csv:2: postcode: is not a UK postcode"]


@either_store
def test_a_roll_with_a_week_date_is_a_problem_and_nothing_is_matched(cli: Cli, tmp_path: Path) -> None:
    result = refused_roll(cli, tmp_path, ",Amy,Jones,,2014-W14-4,,,,\n")
    assert "roll.csv:2: date_of_birth: is not a date in YYYY-MM-DD form" in result.err


@spread("ending", {"carriage returns": b"\r", "no line break at all": b""})  # a file's reading: one store shows it
def test_a_file_without_line_breaks_is_read_in_bounded_memory(cli: Cli, tmp_path: Path, ending: bytes) -> None:
    """An import promises bounded memory however large its feeds. A 64 MB file without a line
    break was read whole as one line (twice: counted, then parsed) and decoded: several times its
    size in memory, so a national feed saved with carriage returns alone, or a binary file, failed
    with MemoryError or was killed. Now a line stops at 8 MB, one problem, and nothing is imported
    (a file of carriage returns alone is read line by line as any other: one with none after its
    header is as long a line)."""
    row = b"x" * 64
    big = tmp_path / "children.csv"
    with big.open("wb") as out:
        out.write(CHILDREN_HEADER.encode() + (ending or b"\n"))
        block = row * (1 << 20 // len(row) + 1)
        for _ in range(64 * (1 << 20) // len(block) + 1):
            out.write(block)
    tracemalloc.start()
    try:
        said = problems(cli, big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(said) == 1 and said[0].startswith("children.csv:")
    assert "cannot be read as CSV" in said[0] and "nothing after it was read" in said[0]
    assert peak < 40 * (1 << 20), f"peak {peak >> 20} MB for a 64 MB feed"


@either_store  # a file read in bounded memory, not the store: one store shows it (tests/spread.py)
def test_a_roll_without_line_breaks_is_refused_in_bounded_memory(cli: Cli, tmp_path: Path) -> None:
    """`signpost match` read its roll whole: a 64 MB roll without a line break took several times
    its size in memory. Now a line stops at 8 MB, as a feed's does: one problem, nothing matched."""
    files = [write(tmp_path, n, t) for n, t in (("p.csv", PRACTITIONERS), ("c.csv", CHILDREN))]
    assert cli("import", *map(str, files)).code == 0
    roll = tmp_path / "roll.csv"
    with roll.open("wb") as out:
        out.write(CHILDREN_HEADER.encode() + b"\n")
        for _ in range(64):
            out.write(b"x" * (1 << 20))
    tracemalloc.start()
    try:
        result = cli("match", str(roll), "--as", "AD01")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.code == 1 and result.out == "" and "Traceback" not in result.err
    assert result.said.splitlines() == [
        "roll.csv:2: row: cannot be read as CSV (no line break in 8 MB); nothing after it was read",
        "Nothing was matched: 1 problem above.",
    ]
    assert peak < 40 * (1 << 20), f"peak {peak >> 20} MB for a 64 MB roll"


async def test_a_refused_import_is_audited_as_changing_nothing(cli: Cli, db: Database, tmp_path: Path) -> None:
    """Rows written before the bad last one are rolled back: the audit's outcome said "children=7/6"
    (six changed) for an import that changed nothing."""
    kids = write(tmp_path, "children.csv", CHILDREN + "9990000077,Zed,Last,,2015-01-01,F,,Northshire,maybe\n")
    result = await cli.run("import", str(write(tmp_path, "practitioners.csv", PRACTITIONERS)), str(kids))
    assert result.code == 1
    async with db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == "import").order_by(AuditEvent.seq.desc()).limit(1)
        event = (await session.execute(query)).scalar_one()
    assert event.outcome == "invalid" and event.result_count == 0
    assert event.detail.startswith("1 problem; nothing changed: children=7/0 practitioners=6/0 (read/changed);")


@either_store
def test_the_same_file_given_twice_is_one_problem(cli: Cli, tmp_path: Path) -> None:
    """Not one repeat per row: the file is named once as given twice, and nothing is imported."""
    kids = write(tmp_path, "children.csv", CHILDREN)
    result = cli("import", str(write(tmp_path, "practitioners.csv", PRACTITIONERS)), str(kids), str(kids))
    assert result.code == 1 and "Traceback" not in result.err
    assert result.said.splitlines()[-2:] == [
        "children.csv: file: is given more than once: give each file once",
        "Nothing was imported: 1 problem above.",
    ]


@either_store
def test_a_long_list_of_problems_is_cut_with_a_count(cli: Cli, tmp_path: Path) -> None:
    """A copy of a children file under another name repeats every row: the problems shown stop at
    100, and the last line says how many there were in all."""
    refs = [f"{s}{d}" for s in range(999000100, 999000400) if (d := check_digit(str(s))) is not None][:150]
    rows = "".join(f"{ref},A,B,,2015-01-01,F,,Northshire,false\n" for ref in refs)
    first = write(tmp_path, "children.csv", CHILDREN_HEADER + "\n" + rows)
    result = cli("import", str(first), str(write(tmp_path, "copy.csv", CHILDREN_HEADER + "\n" + rows)))
    assert result.code == 1 and "Traceback" not in result.err
    lines = [line for line in result.said.splitlines() if not line.startswith(("Importing", "Reading"))]
    assert lines[0] == "copy.csv:2: child_ref: repeats the row at children.csv:2"
    assert lines[99] == "copy.csv:101: child_ref: repeats the row at children.csv:101"
    assert lines[100:] == ["… and 50 more problems.", "Nothing was imported: 150 problems (100 shown above)."]


def release(pipe: Path) -> None:
    """Let a writer blocked opening ``pipe`` go on (a reader that opens it and goes at once)."""
    os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))


@spread("text", {"a writer": PRACTITIONERS, "nothing written": ""})  # a file refused unread: one store shows it
def test_a_feed_from_a_pipe_is_refused_in_one_line_saying_what_to_do(cli: Cli, tmp_path: Path, text: str) -> None:
    """An import reads each file twice (counted for the progress bar, then imported): a pipe was
    drained by the count, and its right header refused as "not a known feed"; a named pipe that
    nobody wrote to hung the command for ever as it was opened. Both are refused before anything is
    read, as a roll from a pipe is, audited as refused, and nothing is imported."""
    pipe = tmp_path / "practitioners.csv"
    os.mkfifo(pipe)
    done = threading.Event()

    def writer() -> None:  # each time the pipe is opened to read, ``text`` is there to read
        while not done.is_set():
            with contextlib.suppress(BrokenPipeError), pipe.open("w", encoding="utf-8") as out:
                out.write(text)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        result = cli("import", str(pipe))
    finally:
        done.set()
        while thread.is_alive():
            release(pipe)
            thread.join(0.05)
    assert result.code == 2 and result.out == ""
    assert result.said == f"signpost: {pipe} is not a file (a pipe?): save the feed to a file and import that"
    exported = [json.loads(line) for line in cli("audit", "export").out.splitlines()]
    assert [e["outcome"] for e in exported if e["action"] == "import"] == ["refused"]


@spread("command", {"import": ("import",), "match": ("match", "--as", "AD01")})  # a file refused unread
def test_a_named_pipe_nobody_writes_to_is_refused_not_waited_on(
    cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Opening a named pipe to read waits for a writer: with none, `signpost import` and `signpost
    match` hung for ever. Run as a process (a hang must fail the test, not stop the suite); the
    timeout is far past the second or two the refusal takes, so a slow machine cannot fail it."""
    files = [write(tmp_path, n, t) for n, t in (("p.csv", PRACTITIONERS), ("c.csv", CHILDREN))]
    assert cli("import", *map(str, files)).code == 0  # AD01, an admin, may match
    pipe = tmp_path / "feed.csv"
    os.mkfifo(pipe)
    verb, *rest = command
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bot", verb, str(pipe), *rest],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"signpost {verb} waited on a named pipe nobody writes to")
    assert f"{pipe} is not a file (a pipe?)" in done.stderr and "Traceback" not in done.stderr
