"""`signpost match` as an admin runs it (in this process, on each backend): its CSV on stdout, one
audit event; and the batch use case, decision for decision equal to chat."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import threading
from pathlib import Path

from sqlalchemy import select, update

from bot.app import Signpost
from bot.cli.match import write_csv
from handlers.reconcile import run_batch
from handlers.roll import Roll, read_roster
from handlers.vocabulary import Outcome
from store.tables.audit import AuditEvent
from store.tables.register import Child
from tests.bot.cli.conftest import Cli
from tests.factories import CHILDREN_HEADER, PRACTITIONERS, ready, say
from tests.fuzzy_register import AMELIA, ARCHIVED, FUZZY_CHILDREN, JACK, JAKE, KYLE, ROBERT, load_fuzzy
from tests.fuzzy_register import INVOLVEMENTS as FUZZY_INVOLVEMENTS

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
    assert sorted(by_line) == [1, 2, 3, 4, 5]
    assert [by_line[n][0][1] for n in range(1, 6)] == EXPECTED_DECISIONS
    assert by_line[1][0][2:4] == ["1", AMELIA] and float(by_line[1][0][4]) > 0.999
    assert by_line[2][0][3] == ROBERT and by_line[5][0][3] == KYLE
    twins = by_line[3]
    assert [r[2] for r in twins] == ["1", "2"] and {r[3] for r in twins} == {JACK, JAKE}
    assert float(twins[0][4]) >= float(twins[1][4])
    assert by_line[4] == [["4", "no_match", "", "", ""]]
    assert all(len(rows_) <= 3 for rows_ in by_line.values())
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert len(events) == 1
    (event,) = events
    facts = (event["outcome"], event["result_count"], event["actor_id"], event["channel"])
    assert facts == ("answered", 5, "AD01", "batch")
    assert AMELIA in str(event["subject_refs"]) and "Amelia" not in json.dumps(event)


def test_a_bad_roll_is_explained_and_nothing_is_audited_as_answered(cli: Cli, tmp_path: Path) -> None:
    """Every bad row is named (file:line: field: problem), exit status 1, no CSV, no answered event;
    each try is audited (a roll that cannot be opened as refused)."""
    setup_store(cli, tmp_path)
    bad = tmp_path / "roll.csv"
    bad.write_text(f"{CHILDREN_HEADER}\n,Amy,Jones,,2014-13-03,,,,\n,Ben,Okafor,,2016-09-12,Q,M4,,\n,too,few\n")
    result = cli("match", str(bad), "--as", "AD01")
    assert result.code == 1 and result.out == ""
    lines = result.err.strip().splitlines()
    assert "roll.csv:2: date_of_birth: is not a date in YYYY-MM-DD form" in lines
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


def test_only_an_admin_may_run_a_batch_match(cli: Cli, tmp_path: Path) -> None:
    """A practitioner is refused with one clear line, and the refusal is audited."""
    setup_store(cli, tmp_path)
    (tmp_path / "roll.csv").write_text(roll_csv(ROLL[:1]), encoding="utf-8")
    result = cli("match", str(tmp_path / "roll.csv"), "--as", "P001")
    assert result.code == 2 and result.out == ""
    assert result.said == "signpost: only an active admin can run a batch match: check --as"
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["actor_id"]) for e in events] == [("refused", "P001")]


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
    from tests.handlers.test_search_fuzzy import statements_on_child_terms

    await load_fuzzy(signpost)
    roster = read_roster(Roll("roll.csv", roll_csv(ROLL * 60)))
    with (
        statements_on_child_terms(signpost) as seen,
        await run_batch(signpost.ctx, "AD01", roster, 5, "corr-2") as spooled,
    ):
        answers = list(spooled)
    assert len(answers) == 300 and [a.line for a in answers] == list(range(1, 301))
    assert [a.decision.value for a in answers[:5]] == EXPECTED_DECISIONS
    assert len(seen) == 3


def test_a_matched_row_lists_no_candidate_the_chat_would_not_weigh(cli: Cli, tmp_path: Path) -> None:
    """On the demo data, `--top 5` and the console's example row (matched to one child) listed four
    unrelated children at 0.0000 too, each recorded as a subject of the batch in the audit. Only
    candidates at or above the chat's `consider` weight are listed and audited."""
    assert cli("seed-demo").code == 0
    (tmp_path / "roll.csv").write_text(roll_csv([("Ava", "Price", "2014-01-05", "NS1 3LY")]), encoding="utf-8")
    result = cli("match", str(tmp_path / "roll.csv"), "--top", "5", "--as", "ADMIN-01")
    assert result.code == 0, result.err
    rows = list(csv.reader(io.StringIO(result.out)))[1:]
    assert rows[0][1:4] == ["match", "1", "9990001049"]
    assert len(rows) < 5  # the namesake the chat weighs too may follow; no unrelated child does
    [event] = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert sorted(str(event["subject_refs"]).split()) == sorted(row[3] for row in rows)  # exactly those listed


def test_a_bad_row_at_the_end_of_a_long_roll_refuses_it_whole(cli: Cli, tmp_path: Path) -> None:
    """The roll is streamed, but still checked in full before a row is matched: 500 good rows and
    one bad last row write no CSV, and the batch is audited invalid, as a short bad roll is."""
    setup_store(cli, tmp_path)
    text = roll_csv(ROLL * 100) + ",Amy,Jones,,2014-13-03,,,,\n"
    (tmp_path / "roll.csv").write_text(text, encoding="utf-8")
    result = cli("match", str(tmp_path / "roll.csv"), "--as", "AD01")
    assert result.code == 1 and result.out == ""
    assert result.said.splitlines() == [
        "roll.csv:502: date_of_birth: is not a date in YYYY-MM-DD form",
        "Nothing was matched: 1 problem above.",
    ]
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["result_count"]) for e in events] == [("invalid", 0)]


def test_a_roll_from_a_pipe_is_refused_in_one_line(cli: Cli, tmp_path: Path) -> None:
    """A roll is read twice (checked, then matched) and a pipe cannot be: it is refused, saying
    what to do, audited as refused, and nothing is matched."""
    setup_store(cli, tmp_path)
    pipe = tmp_path / "roll.csv"
    os.mkfifo(pipe)

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), pipe.open("w", encoding="utf-8") as out:
            out.write(roll_csv(ROLL))

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        result = cli("match", str(pipe), "--as", "AD01")
    finally:
        writer.join(timeout=10)
    assert result.code == 2 and result.out == ""
    assert result.said == f"signpost: {pipe} is not a file (a pipe?): save the roll to a file and match that"
    events = [e for e in audit_events(cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["result_count"]) for e in events] == [("refused", 0)]


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
