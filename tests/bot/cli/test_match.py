"""`signpost match` as an admin runs it (in this process, on each backend): its CSV on stdout, one
audit event; and the batch use case, decision for decision equal to chat."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import threading
from pathlib import Path

from sqlalchemy import select, update

from bot.app import Signpost
from bot.cli.common import operator_account
from bot.cli.match import write_csv
from handlers.reconcile import run_batch
from handlers.roll import Roll, read_roster
from handlers.vocabulary import Outcome
from store.register.feeds import NOT_SHOWN
from store.register.refs import make_reference
from store.tables.audit import AuditEvent
from store.tables.register import Child
from tests.bot.cli.conftest import Cli
from tests.factories import CHILDREN_HEADER, PRACTITIONERS, ready, say
from tests.fuzzy_register import AMELIA, ARCHIVED, FUZZY_CHILDREN, JACK, JAKE, KYLE, ROBERT, filler_children, load_fuzzy
from tests.fuzzy_register import INVOLVEMENTS as FUZZY_INVOLVEMENTS
from tests.spread import either_store, spread
from tests.statements import statements_sent

# given_names, family_name, date_of_birth, postcode: each row also typed into chat by the test.
ROLL = [
    ("Amelia", "Thornton", "2014-04-03", ""),  # exact
    ("Bob", "Smith-Patel", "2010-07-12", ""),  # nickname and day/month swapped
    ("Jak", "Lockwood", "2013-05-09", ""),  # between two twins
    ("Zebedee", "Quartermain", "2012-01-01", ""),  # absent
    ("Kai", "Morton", "2015-02-14", "NE4 7YH"),  # alias
]
EXPECTED_DECISIONS = ["match", "match", "ambiguous", "no_match", "match"]


def roll_csv(rows: list[tuple[str, str, str, str]]) -> str:
    lines = [CHILDREN_HEADER] + [f",{g},{f},,{d},,{p},," for g, f, d, p in rows]
    return "\n".join(lines) + "\n"


def setup_store(cli: Cli, tmp: Path) -> None:
    for name, text in (("p.csv", PRACTITIONERS), ("c.csv", FUZZY_CHILDREN), ("i.csv", FUZZY_INVOLVEMENTS)):
        (tmp / name).write_text(text, encoding="utf-8")
    imported = cli("import", str(tmp / "p.csv"), str(tmp / "c.csv"), str(tmp / "i.csv"))
    assert imported.code == 0, imported.err


def audit_events(cli: Cli) -> list[dict[str, object]]:
    exported = cli("audit", "export")
    return [json.loads(line) for line in exported.out.splitlines()]


def test_match_writes_ranked_candidates_as_csv_and_one_audit_event(cli: Cli, tmp_path: Path) -> None:
    """Header, one row per candidate ranked from 1, an empty-candidate row for no match; one batch event."""
    setup_store(cli, tmp_path)
    (tmp_path / "roll.csv").write_text(roll_csv(ROLL), encoding="utf-8")
    result = cli("match", str(tmp_path / "roll.csv"), "--top", "3", "--as", "AD01")
    assert result.code == 0, result.err
    rows = list(csv.reader(io.StringIO(result.out)))
    assert rows[0] == ["line", "decision", "rank", "candidate_ref", "confidence"]
    by_line: dict[int, list[list[str]]] = {}
    for row in rows[1:]:
        by_line.setdefault(int(row[0]), []).append(row)
    assert sorted(by_line) == [2, 3, 4, 5, 6]  # the file's lines: the header is line 1
    assert [by_line[n][0][1] for n in range(2, 7)] == EXPECTED_DECISIONS
    assert by_line[2] == [["2", "match", "1", AMELIA, "1.0000"]]
    assert by_line[3][0][3] == ROBERT and by_line[6][0][3] == KYLE
    twins = by_line[4]
    assert [r[2] for r in twins] == ["1", "2"] and {r[3] for r in twins} == {JACK, JAKE}
    assert float(twins[0][4]) >= float(twins[1][4])
    assert by_line[5] == [["5", "no_match", "", "", ""]]
    assert all(len(rows_) <= 3 for rows_ in by_line.values())
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert len(events) == 1
    (event,) = events
    facts = (event["outcome"], event["result_count"], event["actor_id"], event["channel"])
    assert facts == ("answered", 5, "AD01", "batch")
    assert AMELIA in str(event["subject_refs"]) and "Amelia" not in json.dumps(event)


@either_store  # a roll read and refused before a row is matched: one store shows it (tests/spread.py)
def test_a_bad_roll_is_explained_and_nothing_is_audited_as_answered(cli: Cli, tmp_path: Path) -> None:
    """Every bad row is named (file:line: field: problem), exit status 1, no CSV, no answered event;
    each try is audited (a roll that cannot be opened as refused)."""
    setup_store(cli, tmp_path)
    bad = tmp_path / "roll.csv"
    bad.write_text(f"{CHILDREN_HEADER}\n,Amy,Jones,,2014-13-03,,,,\n,Ben,Okafor,,2016-09-12,Q,M4,,\n,too,few\n")
    result = cli("match", str(bad), "--as", "AD01")
    assert result.code == 1 and result.out == ""
    lines = result.err.strip().splitlines()
    assert "roll.csv:2: date_of_birth: is not a real date" in lines
    assert "roll.csv:3: sex: must be F, M, X, U or empty" in lines
    assert "roll.csv:4: row: has 3 fields, expected 9" in lines
    assert lines[-1] == "Nothing was matched: 3 problems above."
    (tmp_path / "wrong.csv").write_text("name,dob\nAmy,2014-04-03\n")
    wrong = cli("match", str(tmp_path / "wrong.csv"), "--as", "AD01")
    assert wrong.code == 1 and "header" in wrong.err
    missing = cli("match", str(tmp_path / "absent.csv"), "--as", "AD01")
    assert missing.code == 2 and missing.said.startswith("signpost: cannot read")
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [e["outcome"] for e in events] == ["invalid", "invalid", "refused"]
    assert all(e["result_count"] == 0 for e in events)


@either_store  # a refusal in words: one store shows it (tests/spread.py)
def test_only_an_admin_may_run_a_batch_match(cli: Cli, tmp_path: Path) -> None:
    """A practitioner is refused with one clear line, and the refusal is audited."""
    setup_store(cli, tmp_path)
    (tmp_path / "roll.csv").write_text(roll_csv(ROLL[:1]), encoding="utf-8")
    result = cli("match", str(tmp_path / "roll.csv"), "--as", "P001")
    assert result.code == 2 and result.out == ""
    assert result.said == "signpost: only an active admin can run a batch match: check --as"
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["actor_id"]) for e in events] == [("refused", "P001")]


@spread("typed", ["Amy.Jones", "M11AA", "2014-04-03", "Amy Jones 03/04/2014 M1 2AB"])  # refused words
def test_an_id_typed_as_the_admin_that_names_no_one_is_kept_nowhere(cli: Cli, tmp_path: Path, typed: str) -> None:
    """`--as` that names no one in the register: a name or postcode shaped like an id (AMY.JONES,
    M11AA) was recorded as the refusal's user_id, for good (the audit is append-only). The refusal
    is recorded under the operator's account, as every host command without --as is; the typed text
    is in no column `audit export` shows and in no line the command wrote. A real admin's id is
    recorded as the register holds it, however it was typed."""
    setup_store(cli, tmp_path)
    (tmp_path / "roll.csv").write_text(roll_csv(ROLL[:1]), encoding="utf-8")
    refused = cli("match", str(tmp_path / "roll.csv"), "--as", typed)
    assert refused.code == 2 and refused.out == ""
    assert refused.said == "signpost: only an active admin can run a batch match: check --as"
    admin = cli("match", str(tmp_path / "roll.csv"), "--as", "ad01")
    assert admin.code == 0, admin.err
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["user_id"], e["actor_id"], e["detail"]) for e in events[:1]] == [
        ("refused", operator_account(), None, "needs admin")
    ]
    assert [(e["outcome"], e["user_id"], e["actor_id"]) for e in events[1:]] == [("answered", "AD01", "AD01")]
    words = [word for word in typed.upper().replace(".", " ").split() if len(word) > 2]
    for form in ("jsonl", "csv"):
        exported = cli("audit", "export", "--format", form)
        assert exported.code == 0, exported.err
        assert leaked(words, exported.out) == []
    assert leaked(words, refused.err) == []


def leaked(words: list[str], text: str) -> list[str]:
    """The typed words found in ``text``: a word of letters and digits as a whole word (a hash or hex
    digest holds "2AB" inside it by chance, 1 in ~4,000 a place, which failed a CI run), any other
    ("2014-04-03") wherever it is."""
    tokens = set(re.findall(r"[0-9A-Z]+", text.upper()))
    return [w for w in words if (w in tokens if w.isalnum() else w in text.upper())]


def chat_text(given: str, family: str, dob: str, postcode: str) -> str:
    year, month, day = dob.split("-")
    return f"{given} {family} {day}/{month}/{year} {postcode}".strip()


CHAT_DECISION = {
    Outcome.ANSWERED: "match",
    Outcome.SHIELDED: "match",
    Outcome.AMBIGUOUS: "ambiguous",
    Outcome.NO_MATCH: "no_match",
}


async def test_batch_decisions_equal_the_chat_search_and_skip_archived_children(signpost: Signpost) -> None:
    """For every row the batch decision is the chat's; an archived child is never a candidate."""
    await load_fuzzy(signpost)
    await ready(signpost, "P002")
    async with signpost.ctx.db.write() as session:
        await session.execute(update(Child).where(Child.ref == int(ARCHIVED)).values(state="archived"))
    rows = [*ROLL, ("Zachary", "Fairweather", "2008-03-17", "YO1 7HH"), ("Robert", "Patel", "2010-12-07", "")]
    roster = read_roster(Roll("roll.csv", roll_csv(rows)))
    with await run_batch(signpost.ctx, "AD01", roster, 5, "corr-1") as spooled:
        answers = list(spooled)
    for answer, row in zip(answers, rows, strict=True):
        chat = await say(signpost, "P002", chat_text(*row))
        assert answer.decision.value == CHAT_DECISION[chat.outcome], row
        if chat.child_ref is not None:
            assert f"{answer.candidates[0].ref:010d}" == chat.child_ref.replace(" ", "")
    assert answers[5].decision.value == "no_match" and answers[5].candidates == ()
    assert all(int(ARCHIVED) not in {c.ref for c in a.candidates} for a in answers)
    async with signpost.ctx.db.read() as session:
        batch = (await session.execute(select(AuditEvent).where(AuditEvent.action == "match_batch"))).scalars().all()
    assert [(e.outcome, e.result_count, e.platform, e.channel) for e in batch] == [("answered", 7, "batch", "batch")]
    out = io.StringIO()
    write_csv(answers, out)
    assert out.getvalue().splitlines()[0] == "line,decision,rank,candidate_ref,confidence"


async def test_a_long_roll_probes_the_index_once_per_chunk_not_per_row(signpost: Signpost) -> None:
    """300 rows are three chunks of at most 133: three IN queries on the blind index, not 300."""
    from tests.handlers.test_search_fuzzy import on_child_terms

    await load_fuzzy(signpost)
    roster = read_roster(Roll("roll.csv", roll_csv(ROLL * 60)))
    with (
        statements_sent(signpost.ctx.db) as sent,
        await run_batch(signpost.ctx, "AD01", roster, 5, "corr-2") as spooled,
    ):
        answers = list(spooled)
    assert len(answers) == 300 and [a.line for a in answers] == list(range(2, 302))
    assert [a.decision.value for a in answers[:5]] == EXPECTED_DECISIONS
    assert len(on_child_terms(sent)) == 3


def test_a_matched_row_lists_only_its_child(cli: Cli, tmp_path: Path) -> None:
    """On the demo data, `--top 5` and the console's example row (matched to one child) listed
    another child below it at 0.0000, recorded as a subject of the batch in the audit. A match
    lists its one child, as the chat answers it, and only that child is audited."""
    assert cli("seed-demo").code == 0
    (tmp_path / "roll.csv").write_text(roll_csv([("Ava", "Price", "2014-01-05", "NS1 3LY")]), encoding="utf-8")
    result = cli("match", str(tmp_path / "roll.csv"), "--top", "5", "--as", "ADMIN-01")
    assert result.code == 0, result.err
    assert list(csv.reader(io.StringIO(result.out)))[1:] == [["2", "match", "1", "9990001049", "1.0000"]]
    [event] = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert event["subject_refs"] == "9990001049"


# Jack Lockwood's twin, a Jack Lockwood born four years before, a brother born a day later, a
# Jack Lockwood born in September, and a Lockwod (a typo) on Jack's date: weak candidates for him.
LOCKWOODS = [
    ("Jack", "Lockwood", "2013-05-09", "SW9 8HP"),
    ("Jake", "Lockwood", "2013-05-09", "SW9 8HP"),
    ("Jack", "Lockwood", "2009-01-20", "LS6 3QT"),
    ("Jacob", "Lockwood", "2013-05-10", "SW9 8HP"),
    ("Jack", "Lockwood", "2013-09-05", "M1 2AB"),
    ("Jack", "Lockwod", "2013-05-09", ""),
]


def lockwood_store(cli: Cli, tmp: Path) -> list[str]:
    """The Lockwoods among made-up fillers; their references, in LOCKWOODS' order."""
    refs = [str(make_reference(999_100_000 + number * 7)) for number in range(len(LOCKWOODS))]
    kids = "".join(
        f"{ref},{given},{family},,{dob},M,{postcode},Northshire,false\n"
        for ref, (given, family, dob, postcode) in zip(refs, LOCKWOODS, strict=True)
    )
    (tmp / "p.csv").write_text(PRACTITIONERS, encoding="utf-8")
    (tmp / "c.csv").write_text(f"{CHILDREN_HEADER}\n{kids}{filler_children()}", encoding="utf-8")
    imported = cli("import", str(tmp / "p.csv"), str(tmp / "c.csv"))
    assert imported.code == 0, imported.err
    return refs


def test_an_ambiguous_row_lists_only_plausible_candidates_and_a_match_only_its_child(cli: Cli, tmp_path: Path) -> None:
    """Jack Lockwood on his date is ambiguous (his twin, a typo'd namesake on that date): the
    candidates listed each hold at least 0.0001 of the row's probability (one at 0.0000 was listed,
    and audited); with his postcode he is matched, and that row lists him alone (three other
    children followed him at 0.0000). The batch's subjects are exactly the children listed."""
    refs = lockwood_store(cli, tmp_path)
    rows = [("Jack", "Lockwood", "2013-05-09", ""), ("Jack", "Lockwood", "2013-05-09", "SW9 8HP")]
    (tmp_path / "roll.csv").write_text(roll_csv(rows), encoding="utf-8")
    result = cli("match", str(tmp_path / "roll.csv"), "--top", "5", "--as", "AD01")
    assert result.code == 0, result.err
    listed = list(csv.reader(io.StringIO(result.out)))[1:]
    ambiguous = [row for row in listed if row[0] == "2"]
    assert {row[1] for row in ambiguous} == {"ambiguous"} and len(ambiguous) >= 2
    assert all(float(row[4]) >= 0.0001 for row in ambiguous), ambiguous
    assert [row for row in listed if row[0] == "3"] == [["3", "match", "1", refs[0], "1.0000"]]
    [event] = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert sorted(str(event["subject_refs"]).split()) == sorted({row[3] for row in listed})
    narrow = cli("match", str(tmp_path / "roll.csv"), "--top", "1", "--as", "AD01")
    assert [row[:3] for row in list(csv.reader(io.StringIO(narrow.out)))[1:]] == [
        ["2", "ambiguous", "1"],
        ["3", "match", "1"],
    ]


@either_store  # how a roll's lines are numbered, not the store: one store shows it
def test_the_line_column_is_the_files_line_as_a_problem_names_it(cli: Cli, tmp_path: Path) -> None:
    """Problems named the file's line (roll.csv:5) and the CSV counted data rows from 1: after the
    header and an empty line, the row on line 4 is line 4 in both."""
    setup_store(cli, tmp_path)
    good = f"{CHILDREN_HEADER}\n,Amelia,Thornton,,2014-04-03,,,,\n\n,Zebedee,Quartermain,,2012-01-01,,,,\n"
    path = tmp_path / "roll.csv"
    path.write_text(good.replace("2012-01-01", "2012-13-01"), encoding="utf-8")
    bad = cli("match", str(path), "--as", "AD01")
    assert bad.code == 1 and bad.said.splitlines()[0] == "roll.csv:4: date_of_birth: is not a real date"
    path.write_text(good, encoding="utf-8")
    result = cli("match", str(path), "--as", "AD01")
    assert result.code == 0, result.err
    assert [row[:2] for row in list(csv.reader(io.StringIO(result.out)))[1:]] == [["2", "match"], ["4", "no_match"]]
    helped = " ".join(cli("match", "--help").out.split())
    assert "line in FILE.csv (the header is line 1)" in helped


@either_store  # a refusal in words: one store shows it (tests/spread.py)
def test_someone_not_an_admin_is_refused_before_the_roll_is_read(cli: Cli, tmp_path: Path) -> None:
    """A practitioner's batch with a bad roll was read and checked, its problems printed and the
    batch audited invalid, before the role was refused: now the role is refused first (one line,
    audited refused), whatever the roll holds, and even when there is no roll."""
    setup_store(cli, tmp_path)
    bad = tmp_path / "roll.csv"
    bad.write_text(f"{CHILDREN_HEADER}\n,Amy,Jones,,2014-13-03,,,,\n", encoding="utf-8")
    for roll in (bad, tmp_path / "absent.csv"):
        result = cli("match", str(roll), "--as", "P001")
        assert result.code == 2 and result.out == ""
        assert result.said == "signpost: only an active admin can run a batch match: check --as"
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["actor_id"], e["detail"]) for e in events] == [("refused", "P001", "needs admin")] * 2


@either_store  # a roll read and refused before a row is matched: one store shows it (tests/spread.py)
def test_a_bad_row_at_the_end_of_a_long_roll_refuses_it_whole(cli: Cli, tmp_path: Path) -> None:
    """The roll is streamed, but still checked in full before a row is matched: 500 good rows and
    one bad last row write no CSV, and the batch is audited invalid, as a short bad roll is."""
    setup_store(cli, tmp_path)
    text = roll_csv(ROLL * 100) + ",Amy,Jones,,2014-13-03,,,,\n"
    (tmp_path / "roll.csv").write_text(text, encoding="utf-8")
    result = cli("match", str(tmp_path / "roll.csv"), "--as", "AD01")
    assert result.code == 1 and result.out == ""
    assert result.said.splitlines() == [
        "roll.csv:502: date_of_birth: is not a real date",
        "Nothing was matched: 1 problem above.",
    ]
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["result_count"]) for e in events] == [("invalid", 0)]


@spread("written", {"a writer": True, "nothing written": False})  # a file refused unread: each on one store
def test_a_roll_from_a_pipe_is_refused_in_one_line(cli: Cli, tmp_path: Path, written: bool) -> None:
    """A roll is read twice (checked, then matched) and a pipe cannot be: it is refused, saying
    what to do, audited as refused, and nothing is matched (the writer is let go if the pipe was
    never opened to read)."""
    setup_store(cli, tmp_path)
    pipe = tmp_path / "roll.csv"
    os.mkfifo(pipe)
    done = threading.Event()

    def feed() -> None:  # each time the pipe is opened to read, the roll (or nothing) is there
        while not done.is_set():
            with contextlib.suppress(BrokenPipeError), pipe.open("w", encoding="utf-8") as out:
                out.write(roll_csv(ROLL) if written else "")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        result = cli("match", str(pipe), "--as", "AD01")
    finally:
        done.set()
        while writer.is_alive():  # a writer still waiting for a reader: one that goes at once
            os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
            writer.join(0.05)
    assert result.code == 2 and result.out == ""
    assert result.said == f"signpost: {pipe} is not a file (a pipe?): save the roll to a file and match that"
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["result_count"]) for e in events] == [("refused", 0)]


@either_store  # a roll read and refused before a row is matched: one store shows it (tests/spread.py)
def test_a_roll_that_stops_being_utf8_far_down_is_refused_whole(cli: Cli, tmp_path: Path) -> None:
    """Read as a stream, a byte that is not UTF-8 is met only after thousands of good rows: the
    roll is still refused in one line, as when it was decoded whole, audited refused, no CSV."""
    setup_store(cli, tmp_path)
    path = tmp_path / "roll.csv"
    path.write_bytes(roll_csv(ROLL * 2000).encode("utf-8") + b",Am\xe9lie,Thornton,,2014-04-03,,,,\n")
    result = cli("match", str(path), "--as", "AD01")
    assert result.code == 2 and result.out == ""
    assert result.said == f"signpost: {path} is not UTF-8 text"
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["result_count"]) for e in events] == [("refused", 0)]


@spread(
    "day", ["2014/04/03", "2014-04-03 00:00:00", "2014-04-03T00:00:00", "3 April 2014", "03-Apr-2014", "'2014-04-03"]
)
def test_a_roll_reads_the_dates_a_feed_reads(cli: Cli, tmp_path: Path, day: str) -> None:
    """A roll is in the children feed's format, but its dates were read as YYYY-MM-DD only: a
    date of birth a feed imports (year first with slashes, a midnight time, a month by its name)
    refused the whole roll. Each is read as the feed reads it, and answered as YYYY-MM-DD is."""
    setup_store(cli, tmp_path)
    path = tmp_path / "roll.csv"
    path.write_text(roll_csv(ROLL[:1]), encoding="utf-8")
    standard = cli("match", str(path), "--as", "AD01")
    assert standard.code == 0 and standard.out.splitlines()[1] == f"2,match,1,{AMELIA},1.0000"
    path.write_text(roll_csv([("Amelia", "Thornton", day, "")]), encoding="utf-8")
    result = cli("match", str(path), "--as", "AD01")
    assert (result.code, result.out) == (0, standard.out), result.err


@spread(
    "day, why",
    [
        (
            "3/4/2014",
            "has its day and month in digits, in an order the file does not say (day/month/year or month/day/year?)",
        ),
        (
            "03.04.2014",
            "has its day and month in digits, in an order the file does not say (day/month/year or month/day/year?)",
        ),
        ("41732", "is a number (a spreadsheet's serial number for a date), not a date"),
        ("03-Apr-14", "has a year of two digits"),
        ("2014-04-03T23:00:00Z", "has a time of day (a time zone may have moved its date)"),
    ],
)
def test_a_roll_refuses_a_date_that_could_be_read_wrongly_as_a_feed_does(
    cli: Cli, tmp_path: Path, day: str, why: str
) -> None:
    """Refused with the feed's guidance (what to change), quoting no date; nothing matched."""
    setup_store(cli, tmp_path)
    path = tmp_path / "roll.csv"
    path.write_text(roll_csv([("Amelia", "Thornton", day, "")]), encoding="utf-8")
    result = cli("match", str(path), "--as", "AD01")
    write_it = "write dates YYYY-MM-DD (in a spreadsheet, format the column as yyyy-mm-dd) and export again"
    assert (result.code, result.out) == (1, "")
    assert result.said.splitlines() == [
        f"roll.csv:2: date_of_birth: {why}: {write_it}",
        "Nothing was matched: 1 problem above.",
    ]
    assert day not in result.said


@either_store  # how a roll is read, not the store: one store shows it (tests/spread.py)
def test_a_roll_with_blank_lines_above_its_header_is_read_by_its_file_lines(cli: Cli, tmp_path: Path) -> None:
    """As a feed's: an empty line (or a row of empty cells) above the header was "expected the
    children feed header"; the answers and problems name the file's own lines."""
    setup_store(cli, tmp_path)
    path = tmp_path / "roll.csv"
    path.write_text("\n,,,,,,,,\n" + roll_csv(ROLL[:1]), encoding="utf-8")
    result = cli("match", str(path), "--as", "AD01")
    assert result.code == 0, result.err
    assert result.out.splitlines()[1] == f"4,match,1,{AMELIA},1.0000"


@either_store  # a roll read and refused before a row is matched: one store shows it (tests/spread.py)
def test_a_roll_reads_its_line_ends_as_a_feed_does(cli: Cli, tmp_path: Path) -> None:
    """A roll was read in universal-newline mode: a carriage return alone in a file whose lines end
    in line feeds ended a line there, so its rows were matched under line numbers the file (and an
    import of it) does not have. A feed refuses such a file at that line, saying what to do: a roll
    now does the same, in the same words, naming no one."""
    setup_store(cli, tmp_path)
    amelia, zebedee, kai = roll_csv([ROLL[0], ROLL[3], ROLL[4]]).splitlines()[1:]
    text = f"{CHILDREN_HEADER}\n{amelia}\r{zebedee}\n{kai}\n"
    (tmp_path / "roll.csv").write_bytes(text.encode("utf-8"))
    (tmp_path / "feed.csv").write_bytes(text.encode("utf-8"))
    imported = cli("import", str(tmp_path / "feed.csv"))
    assert imported.code == 1 and imported.said.splitlines()[0].startswith("feed.csv:2: row: cannot be read as CSV")
    result = cli("match", str(tmp_path / "roll.csv"), "--as", "AD01")
    assert (result.code, result.out) == (1, "")
    assert result.said.splitlines() == [
        imported.said.splitlines()[0].replace("feed.csv", "roll.csv"),
        "Nothing was matched: 1 problem above.",
    ]
    assert "Traceback" not in result.err and not any(name in result.err for name in ("Amelia", "Zebedee", "NE4"))


@spread("mark", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_a_roll_ends_a_line_only_where_a_feed_does(cli: Cli, tmp_path: Path, mark: str) -> None:
    """``str.splitlines`` also ends a line at a vertical tab, form feed, file/group/record separator,
    NEL or Unicode line or paragraph separator; a feed does not, and neither does a roll: a name
    holding one stays on its line, refused there as an import refuses it (it does not show as
    itself), and the row after it is not taken for a line of its own."""
    setup_store(cli, tmp_path)
    roll = f"{CHILDREN_HEADER}\n,Amelia{mark}Rose,Thornton,,2014-04-03,,,,\n,Zebedee,Quartermain,,2012-01-01,,,,\n"
    (tmp_path / "roll.csv").write_bytes(roll.encode("utf-8"))
    result = cli("match", str(tmp_path / "roll.csv"), "--as", "AD01")
    assert (result.code, result.out) == (1, "")
    assert result.said.splitlines() == [
        f"roll.csv:2: given_names: {NOT_SHOWN}",
        "Nothing was matched: 1 problem above.",
    ]


@spread("end", {"CRLF": "\r\n", "LF": "\n", "CR alone": "\r"})  # how a roll is read: each on one store
def test_a_roll_is_matched_by_its_file_lines_whatever_its_line_ends(cli: Cli, tmp_path: Path, end: str) -> None:
    """Read by the feed reader's code, a roll saved by Windows, Unix or Excel's "CSV (Macintosh)"
    (with or without a UTF-8 mark) is matched as the same rows, under the same line numbers."""
    setup_store(cli, tmp_path)
    path = tmp_path / "roll.csv"
    lines = roll_csv(ROLL[:2]).splitlines()
    path.write_bytes(("\ufeff" + end.join([lines[0], "", *lines[1:]]) + end).encode("utf-8"))
    result = cli("match", str(path), "--as", "AD01")
    assert result.code == 0, result.err
    assert [row[:2] for row in list(csv.reader(io.StringIO(result.out)))[1:]] == [["3", "match"], ["4", "match"]]
