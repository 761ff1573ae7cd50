"""`signpost audit …` as an operator runs it: its output and its exit status (in this process)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.cli.common import MAX_OPERATOR_FILE
from handlers.clock import FakeClock
from handlers.operator.audit import EXPORT_FIELDS
from handlers.vocabulary import Action, Outcome
from store.audit.log import AuditRecord, append
from store.audit.sar import DECIDING, OUTCOME_WORDS, REPEATED_WHILE_GRANTED, REPEATED_WHILE_WAITING, WITHHELD_WORD
from store.people import lead
from store.register.feeds import Feed, import_feeds
from store.register.refs import make_reference
from store.tables.audit import AuditEvent
from tests.access_helpers import decide, load_access, request_access
from tests.bot.cli.conftest import Cli, Run
from tests.factories import AMY, BEN, CHILDREN_HEADER, SHIELDED, load_standard
from tests.spread import either_store, spread
from tests.stepup_helpers import say_fresh
from tests.store.audit.tamper import rechain, run_sql, unprotect


@pytest.fixture
def signpost_cli(cli: Cli) -> Cli:
    return cli


@pytest.fixture
async def busy(signpost: Signpost, clock: FakeClock) -> Signpost:
    """P001 and P002 look up Amy and Ben over two days, stepping up with real codes as they go.

    The trail (12 events): day one, each enrols (enrol, code) then looks up (seq 1-6); day two their
    codes have lapsed, so each lookup is challenged, the code answered, and the lookup runs (the
    resumed lookup, then the code event that carried it: seq 7-12). Lead-professional notices are
    off in this authority, so the trail holds only what the two practitioners did."""
    await load_standard(signpost)
    async with signpost.ctx.db.write() as session:
        await lead.set_setting(session, "Northshire", lead.LeadNotices.OFF)
    await say_fresh(signpost, "P001", AMY)
    await say_fresh(signpost, "P002", BEN)
    clock.advance(days=1)
    await say_fresh(signpost, "P001", BEN)
    await say_fresh(signpost, "P002", "Amy Jones 03/04/2014")
    return signpost


async def test_verify_says_ok_with_the_count(busy: Signpost, signpost_cli: Cli) -> None:
    run = await signpost_cli.run("audit", "verify")
    assert run.code == 0, run.err
    assert run.out.startswith("OK: 12 events, chain intact up to seq 12")


async def test_verify_names_the_first_bad_event_and_fails(busy: Signpost, signpost_cli: Cli) -> None:
    await unprotect(busy.ctx.db)
    await run_sql(busy.ctx.db, "UPDATE audit_events SET actor_id = 'P003' WHERE seq = 3")
    run = await signpost_cli.run("audit", "verify")
    assert run.code == 1
    assert run.out.startswith("FAILED at seq 3: edited")


async def test_a_kept_checkpoint_catches_a_rewritten_log(busy: Signpost, signpost_cli: Cli, tmp_path: Path) -> None:
    made = await signpost_cli.run("audit", "checkpoint")
    assert made.code == 0, made.err
    kept = tmp_path / "kept-checkpoint.txt"
    kept.write_text(made.out)
    assert made.out.splitlines()[1] == "12"  # origin, size, head, time, last-seq; then the signature
    assert (await signpost_cli.run("audit", "verify", "--checkpoint", str(kept))).code == 0

    await unprotect(busy.ctx.db)
    await run_sql(  # the last chat event, and the two commands' own events after it
        busy.ctx.db,
        "DELETE FROM audit_checkpoints",
        "DELETE FROM audit_chain WHERE seq >= 12",
        "DELETE FROM audit_subjects WHERE seq >= 12",
        "DELETE FROM audit_events WHERE seq >= 12",
    )
    await rechain(busy.ctx.db)
    run = await signpost_cli.run("audit", "verify", "--checkpoint", str(kept))
    assert run.code == 1
    assert run.out.startswith("FAILED at seq 12: truncated")


@either_store  # a file refused before the store is read: one store shows it (tests/spread.py)
async def test_unreadable_checkpoint_file_is_one_clear_line(busy: Signpost, signpost_cli: Cli, tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("not a checkpoint\n")
    run = await signpost_cli.run("audit", "verify", "--checkpoint", str(junk))
    assert run.code == 2
    assert (  # the last line: on PostgreSQL as a superuser a start-up warning comes first
        run.err.strip().splitlines()[-1]
        == f"signpost: {junk}: not a Signpost audit checkpoint (expected origin, size, head, time, last-seq)"
    )


@spread("option", ["--checkpoint", "--public-key"])  # a file refused unread: each on one store (tests/spread.py)
async def test_a_file_that_is_not_utf8_is_said_in_plain_words(
    busy: Signpost, signpost_cli: Cli, tmp_path: Path, option: str
) -> None:
    """A checkpoint or key file saved in Latin-1 printed Python's UnicodeDecodeError ("'utf-8' codec
    can't decode byte 0xe9 in position …"): now one line saying the file is not UTF-8 text."""
    latin = tmp_path / "checkpoint-1.note"
    latin.write_bytes("signpost.example caf\xe9 zz9\n".encode("latin-1"))
    run = await signpost_cli.run("audit", "verify", option, str(latin))
    assert (run.code, run.out) == (2, "")
    assert run.said.splitlines()[-1] == f"signpost: {latin} is not UTF-8 text"
    assert "codec" not in run.err and "0xe9" not in run.err and "zz9" not in run.err


@spread("option", ["--checkpoint", "--public-key"])  # a file refused unread: each on one store (tests/spread.py)
async def test_a_file_too_large_to_be_a_key_or_checkpoint_is_one_line_unread(
    busy: Signpost, signpost_cli: Cli, tmp_path: Path, option: str
) -> None:
    """A key or checkpoint file is a few hundred bytes; any size was read whole into memory first
    (``--public-key /dev/zero`` read until memory ran out)."""
    large = tmp_path / "checkpoint-1.note"
    large.write_text("signpost.example\n" * (MAX_OPERATOR_FILE // 16))
    run = await signpost_cli.run("audit", "verify", option, str(large))
    assert (run.code, run.out) == (2, "")
    assert (
        run.said.splitlines()[-1] == f"signpost: {large} is too large for a key, checkpoint or certificate (over 1 MiB)"
    )


@spread("option", ["--checkpoint", "--public-key"])  # a file refused unread: each on one store (tests/spread.py)
async def test_a_device_or_a_pipe_named_as_a_key_or_checkpoint_is_one_line_unread(
    busy: Signpost, signpost_cli: Cli, tmp_path: Path, option: str
) -> None:
    """/dev/zero was read without end; a named pipe with no writer hung the command on opening it."""
    fifo = tmp_path / "checkpoint-1.note"
    os.mkfifo(fifo)
    for named in ("/dev/zero", str(fifo)):
        run = await asyncio.wait_for(signpost_cli.run("audit", "verify", option, named), timeout=60)
        assert (run.code, run.out) == (2, "")
        assert run.said.splitlines()[-1] == f"signpost: {named} is not a regular file"


async def test_export_filters_by_actor_child_and_time_as_json_lines(busy: Signpost, signpost_cli: Cli) -> None:
    def events(run: Run) -> list[tuple[str, str, str, str]]:
        assert run.code == 0, run.err
        return [
            (e["actor_id"], e["action"], e["outcome"], e["subject_refs"]) for e in map(json.loads, run.out.splitlines())
        ]

    # Everything P001 did, step-up events included (they name no child).
    assert events(await signpost_cli.run("audit", "export", "--actor", "P001")) == [
        ("P001", "enrol", "done", ""),
        ("P001", "code", "done", ""),
        ("P001", "lookup", "answered", AMY),
        ("P001", "lookup", "challenged", ""),
        ("P001", "lookup", "answered", BEN),
        ("P001", "code", "answered", ""),
    ]
    # The export is audited before it runs, and it touches Amy: so it lists itself last.
    by_child = await signpost_cli.run("audit", "export", "--child", AMY)
    assert events(by_child) == [
        ("P001", "lookup", "answered", AMY),
        ("P002", "search", "answered", AMY),
        (None, "export", "done", AMY),
    ]
    day_two = await signpost_cli.run("audit", "export", "--since", "2026-11-03", "--until", "2026-11-04")
    assert events(day_two) == [
        ("P001", "lookup", "challenged", ""),
        ("P001", "lookup", "answered", BEN),
        ("P001", "code", "answered", ""),
        ("P002", "search", "challenged", ""),
        ("P002", "search", "answered", AMY),
        ("P002", "code", "answered", ""),
    ]


@either_store  # the CSV's writing, not the store: one store shows it (tests/spread.py)
async def test_export_as_csv_never_gives_a_spreadsheet_a_formula(
    signpost: Signpost, clock: FakeClock, signpost_cli: Cli
) -> None:
    """An organisation or authority named in a feed, or an identity a platform sent, that begins
    like a formula (=, +, -, @) is exported as text a spreadsheet shows, not runs: a leading
    apostrophe (OWASP's advice on CSV injection). The JSON lines keep every value exactly."""
    hostile = {
        "actor_org": '=HYPERLINK("http://127.0.0.1/?"&A1,"open")',
        "actor_la": "+1+1",
        "user_id": "@SUM(1,1)",
        "detail": "-2+3",
    }
    await _append_help_by_px01(signpost, clock, hostile)
    run = await signpost_cli.run("audit", "export", "--format", "csv", "--actor", "PX01")
    assert run.code == 0, run.err
    [row] = list(csv.DictReader(io.StringIO(run.out)))
    assert {name: row[name] for name in hostile} == {name: "'" + value for name, value in hostile.items()}
    assert (row["result_count"], row["tenant"]) == ("0", "T1")  # numbers and plain text as they are
    run = await signpost_cli.run("audit", "export", "--actor", "PX01")
    [line] = [json.loads(text) for text in run.out.splitlines()]
    assert {name: line[name] for name in hostile} == hostile


@either_store  # the CSV's writing, not the store: one store shows it (tests/spread.py)
async def test_export_as_csv_never_writes_a_character_that_does_not_show(
    signpost: Signpost, clock: FakeClock, signpost_cli: Cli
) -> None:
    """A detail (or identity) holding a control sequence, a line break or a bidi override (a path
    audited before such paths were refused, or text a platform sent) is written to the CSV with each
    such character as ``?`` (``store.characters.marked``): a spreadsheet or a terminal showing the
    file runs nothing, and each event stays one line. The JSON lines keep every value exactly."""
    hostile = {
        "detail": "\x1b[2Jb.db: 4096 bytes",
        "user_id": "U1\nforged,row",
        "actor_org": "\u202eevil\x85",
        "actor_la": "\t=1+1",
    }
    await _append_help_by_px01(signpost, clock, hostile)
    run = await signpost_cli.run("audit", "export", "--format", "csv", "--actor", "PX01")
    assert run.code == 0, run.err
    lines = run.out.split("\n")
    assert len(lines) == 3 and lines[2] == ""  # the header, the one event, and the last line's end
    assert all(line.isprintable() for line in lines), run.out
    [row] = list(csv.DictReader(io.StringIO(run.out)))
    assert {name: row[name] for name in hostile} == {
        "detail": "?[2Jb.db: 4096 bytes",
        "user_id": "U1?forged,row",
        "actor_org": "?evil?",
        "actor_la": "?=1+1",
    }
    run = await signpost_cli.run("audit", "export", "--actor", "PX01")
    [line] = [json.loads(text) for text in run.out.splitlines()]
    assert {name: line[name] for name in hostile} == hostile


@either_store  # the CSV's shape, not the store: one store shows it (tests/spread.py)
async def test_export_as_csv_has_a_header_and_no_sealed_terms(busy: Signpost, signpost_cli: Cli) -> None:
    run = await signpost_cli.run("audit", "export", "--format", "csv", "--actor", "P002")
    assert run.code == 0, run.err
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert [(r["actor_id"], r["action"], r["outcome"]) for r in rows] == [
        ("P002", "enrol", "done"),
        ("P002", "code", "done"),
        ("P002", "lookup", "answered"),
        ("P002", "search", "challenged"),  # its terms are sealed like the search's own: not exported
        ("P002", "search", "answered"),
        ("P002", "code", "answered"),
    ]
    assert "terms" not in rows[0] and "Amy" not in run.out


@either_store  # usage errors, refused before the store is read (tests/spread.py)
async def test_bad_export_arguments_are_refused_kindly(busy: Signpost, signpost_cli: Cli) -> None:
    run = await signpost_cli.run("audit", "export", "--since", "yesterday")
    assert run.code == 2 and "argument --since: not a date (DD/MM/YYYY or YYYY-MM-DD)" in run.err
    run = await signpost_cli.run("audit", "export", "--child", "1234567890")
    assert run.code == 2 and "reference number is not valid" in run.err
    run = await signpost_cli.run("audit", "export", "--since", "02/12/2026", "--until", "01/12/2026")
    assert run.code == 2 and run.out == ""
    assert run.said == "signpost: --since must be before --until: nothing could match"


@either_store  # the report's formats, not the store: one store shows it (tests/spread.py)
async def test_sar_as_text_and_json(busy: Signpost, signpost_cli: Cli) -> None:
    text = await signpost_cli.run("audit", "sar", AMY)
    assert text.code == 0, text.err
    assert "Subject access report for the child with reference 999 000 0018" in text.out
    assert "Social worker, Northshire Children's Services (Northshire)" in text.out
    assert "Sam Carter" not in text.out
    named = json.loads((await signpost_cli.run("audit", "sar", AMY, "--with-names", "--format", "json")).out)
    assert named["entries"][0]["practitioner"] == "Sam Carter (P001)"


@either_store  # the terminal's wording, not the store's: one store shows it (tests/spread.py)
async def test_sar_as_json_says_every_action_in_the_plain_words_of_the_text_report(
    signpost: Signpost, signpost_cli: Cli
) -> None:
    """README: "Every action is in plain words, never its internal name". The JSON report gave
    `"action": "lead_professional_informed"`, `"lookup"`, `"export"`, `"sar"` (and outcomes such as
    `"answered"`) to a family; now each entry says what the text report's line says, word for word."""
    await load_standard(signpost)
    await say_fresh(signpost, "P002", AMY)  # and Amy's lead professional, P001, is told of it
    assert (await signpost_cli.run("audit", "export", "--child", AMY)).code == 0
    assert (await signpost_cli.run("audit", "sar", AMY)).code == 0  # a report is in the next one
    as_json = await signpost_cli.run("audit", "sar", AMY, "--format", "json")
    as_text = await signpost_cli.run("audit", "sar", AMY)  # every entry of the JSON report, and one more
    assert as_json.code == 0 and as_text.code == 0, as_json.err + as_text.err
    entries = json.loads(as_json.out)["entries"]
    internal = {str(name) for name in (*Action, *Outcome)} - set(OUTCOME_WORDS.values())  # "done" is a word
    for entry in entries:
        assert entry["action"] not in internal and entry["outcome"] not in internal, entry
        assert f"    {entry['action']}; {entry['outcome']}; purpose: {entry['purpose']}\n" in as_text.out
    assert [e["action"] for e in entries] == [
        "notice to the lead professional queued (who looked this record up)",
        "looked up by reference",
        "exported the audit",
        "a subject access report about this reference was produced (a list like this one)",
    ]


async def test_a_date_given_to_until_includes_that_whole_day(busy: Signpost, signpost_cli: Cli) -> None:
    """`audit export --until 03/11/2026` left out the events of 03/11/2026: --until was exclusive,
    which only --help said. A date given to --until now includes the whole of that day, in either
    spelling (so --since and --until may name the same day); a time stays exact, the events before it."""

    async def export(*bounds: str) -> list[tuple[str, str]]:
        run = await signpost_cli.run("audit", "export", *bounds)
        assert run.code == 0, run.err
        return [(e["at"], e["action"]) for e in map(json.loads, run.out.splitlines())]

    trail = await export("--until", "2026-11-04")  # the busy trail, without the exports' own events
    day = {at[:10] for at, _ in trail}
    assert day == {"2026-11-02", "2026-11-03"} and len(trail) == 12
    day_two = [(at, action) for at, action in trail if at.startswith("2026-11-03")]
    assert await export("--since", "2026-11-03", "--until", "03/11/2026") == day_two
    assert await export("--since", "03/11/2026", "--until", "2026-11-03") == day_two
    assert await export("--until", "02/11/2026") == trail[: len(trail) - len(day_two)]
    first_on_day_two = day_two[0][0]
    assert await export("--until", first_on_day_two) == trail[: len(trail) - len(day_two)]  # exact: before it
    assert await export("--until", "9999-12-31") != []  # the calendar's last day has no next day: still whole
    helped = " ".join((await signpost_cli.run("audit", "export", "--help")).out.split())
    assert "a date includes that whole day" in helped and "exclusive" not in helped


async def test_export_and_sar_are_themselves_audited(busy: Signpost, signpost_cli: Cli) -> None:
    await signpost_cli.run("audit", "sar", AMY)
    await signpost_cli.run("audit", "export", "--actor", "P001")
    async with busy.ctx.db.read() as session:
        rows = (
            await session.execute(
                select(AuditEvent.platform, AuditEvent.action, AuditEvent.subject_refs, AuditEvent.detail)
                .where(AuditEvent.platform == "terminal")
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("terminal", "sar", AMY, "organisations and roles"),
        ("terminal", "export", "", "actor P001"),
    ]
    assert (await signpost_cli.run("audit", "verify")).code == 0


async def test_an_actor_filter_not_in_the_register_is_not_kept_in_the_audit(busy: Signpost, signpost_cli: Cli) -> None:
    """The export's event named its actor filter as typed: a child's name and date of birth typed
    there by a slip stayed in the append-only audit for good (nothing destroys it), and showed in
    every later export. An id in the register is still named."""
    run = await signpost_cli.run("audit", "export", "--actor", "Amy Jones 03/04/2014")
    assert run.code == 0 and run.out == ""
    await signpost_cli.run("audit", "export", "--actor", "P002")
    async with busy.ctx.db.read() as session:
        details = (
            await session.execute(
                select(AuditEvent.detail).where(AuditEvent.action == "export").order_by(AuditEvent.seq)
            )
        ).scalars()
        assert list(details) == ["an actor not in the register", "actor P002"]
    everything = (await signpost_cli.run("audit", "export")).out
    assert "Amy" not in everything and "03/04/2014" not in everything


@either_store  # help text: one store shows it (tests/spread.py)
async def test_help_lists_the_audit_commands(signpost_cli: Cli) -> None:
    run = await signpost_cli.run("audit", "--help")
    for name in ("export", "verify", "checkpoint", "sar"):
        assert name in run.out


async def test_auditor_check_with_a_folder_of_exported_checkpoints_and_the_published_key(
    busy: Signpost, signpost_cli: Cli, tmp_path: Path
) -> None:
    """The README's auditor's check: `audit verify --checkpoint FOLDER --public-key KEYFILE`. After the
    end is cut, the stored checkpoints deleted and the chain re-hashed, the database alone verifies;
    the shipped checkpoint file says events were removed."""
    published = tmp_path / "signpost.pub"
    published.write_text((await signpost_cli.run("audit", "checkpoint", "--public-key")).out)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "checkpoint-1.note").write_text((await signpost_cli.run("audit", "checkpoint")).out)
    await unprotect(busy.ctx.db)
    await run_sql(
        busy.ctx.db,
        "DELETE FROM audit_checkpoints",
        "DELETE FROM audit_subjects WHERE seq > 10",
        "DELETE FROM audit_chain WHERE seq > 10",
        "DELETE FROM audit_events WHERE seq > 10",
    )
    await rechain(busy.ctx.db)
    assert (await signpost_cli.run("audit", "verify", "--public-key", str(published))).code == 0
    run = await signpost_cli.run("audit", "verify", "--checkpoint", str(shipped), "--public-key", str(published))
    assert run.code == 1
    assert run.out.startswith("FAILED at seq 11: truncated")


@either_store  # the key file (none read or made), not the store (tests/spread.py)
async def test_the_auditor_verifies_elsewhere_with_no_key_file_at_all(
    busy: Signpost, signpost_cli: Cli, tmp_path: Path
) -> None:
    """The README: it "needs no secret … on another machine". With a key file path where nothing
    is, the check ran the key-file binding and refused; now no key file is read or made."""
    published = tmp_path / "signpost.pub"
    published.write_text((await signpost_cli.run("audit", "checkpoint", "--public-key")).out)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "checkpoint-2026-12-02.txt").write_text((await signpost_cli.run("audit", "checkpoint")).out)
    # A key file where nothing is, and one in a folder this machine does not have (the first was
    # refused by the key-file binding, the second by the settings, before the check ran at all).
    for nowhere in (tmp_path / "no.key", tmp_path / "no-folder" / "signpost.key"):
        env = {"SIGNPOST_KEY_FILE": str(nowhere)}
        run = await signpost_cli.run(
            "audit", "verify", "--checkpoint", str(shipped), "--public-key", str(published), env=env
        )
        assert run.code == 0, run.err
        assert run.out.startswith("OK: ") and "checkpoints agree" in run.out
        assert not nowhere.exists()


@either_store  # a file refused before the store is read: one store shows it (tests/spread.py)
async def test_a_checkpoint_folder_holding_no_checkpoint_is_refused(
    busy: Signpost, signpost_cli: Cli, tmp_path: Path
) -> None:
    """An empty folder (or one of files named otherwise) said "OK … checkpoints agree": the stored ones."""
    empty = tmp_path / "shipped"
    empty.mkdir()
    (empty / "notes.md").write_text("not a checkpoint\n")
    run = await signpost_cli.run("audit", "verify", "--checkpoint", str(empty))
    assert run.code == 2
    assert run.said == f"signpost: {empty} holds no checkpoint file (checkpoint-*.note or checkpoint-*.txt)"


@either_store  # the SQLite URL it names is its store, whichever the fixture made
def test_a_database_sqlite_cannot_open_is_one_line(cli: Cli, tmp_path: Path) -> None:
    """SQLite's "unable to open database file" came out as a 190-line SQLAlchemy traceback (a store
    in a folder that does not exist; now refused before opening, as every missing store is). Here
    the path names a folder, which SQLite cannot open either."""
    folder = tmp_path / "a-folder"
    folder.mkdir()
    url = f"sqlite+aiosqlite:///{folder}"
    for args in (("audit", "verify"), ("audit", "verify", "--public-key", str(tmp_path / "signpost.pub"))):
        (tmp_path / "signpost.pub").write_text("x ed25519 AAAA\n")
        run = cli(*args, env={"SIGNPOST_DATABASE_URL": url})
        assert run.code == 2
        assert run.err.strip().splitlines() == [
            "signpost: cannot open the database (OperationalError): check SIGNPOST_DATABASE_URL and its folder"
        ]
        missing = cli(*args, env={"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}"})
        assert missing.code == 2 and len(missing.err.strip().splitlines()) == 1
        assert "there is no store at" in missing.err
    for step in ("current", "history", "upgrade"):  # `signpost db` opens the store its own way: the same one line
        run = cli("db", step, env={"SIGNPOST_DATABASE_URL": url})
        assert run.code == 2
        assert run.err.strip().splitlines() == [
            "signpost: cannot open the database (OperationalError): check SIGNPOST_DATABASE_URL and its folder"
        ]


@pytest.mark.postgres_only
def test_a_postgresql_database_or_role_refused_is_named_by_its_part(cli: Cli, db_url: str, tmp_path: Path) -> None:
    """A database that does not exist, or a role the server does not know, said "cannot open the
    database (Error): check SIGNPOST_DATABASE_URL and its folder": no part named, and a folder
    that PostgreSQL does not have. Now the line names the part of the URL that is wrong, the
    same wherever the store is opened (`signpost run` included), and quotes nothing from it."""
    (tmp_path / "signpost.pub").write_text("x ed25519 AAAA\n")
    server, database = db_url.rsplit("/", 1)
    scheme, host = server.split("://", 1)
    host = host.split("@", 1)[1]
    wrong = {
        "the database named in SIGNPOST_DATABASE_URL does not exist": f"{server}/{database}_nosuchdb",
        "the role named in SIGNPOST_DATABASE_URL does not exist or may not connect from here": (
            f"{scheme}://nosuchuser_pgfix@{host}/{database}"
        ),
    }
    for part, url in wrong.items():
        for args in (
            ("practitioner", "list"),
            ("audit", "verify", "--public-key", "signpost.pub"),
            ("db", "current"),
            ("run",),
        ):
            run = cli(*args, env={"SIGNPOST_DATABASE_URL": url})
            assert run.code == 2, (args, run.err)
            assert run.said == f"signpost: cannot open the database: {part}", args
            assert "nosuch" not in run.err and "127.0.0.1" not in run.err, args


async def test_a_possible_match_is_in_the_childs_export_and_sar_until_it_is_destroyed(
    signpost: Signpost, signpost_cli: Cli
) -> None:
    """A brother's name on Ben's date: Ben is the search's one (weak) candidate. `audit export
    --child` and `audit sar` for Ben show the search, as a possible match not answered; once Ben is
    destroyed neither does, the chain still verifies, and the whole export never names him."""
    await load_standard(signpost)
    await say_fresh(signpost, "P003", "Sam Okafor 12/09/2016")

    def searches(run: Run) -> list[tuple[str, str, str]]:
        assert run.code == 0, run.err
        lines = map(json.loads, run.out.splitlines())
        return [(e["actor_id"], e["outcome"], e["subject_refs"]) for e in lines if e["action"] == "search"]

    assert searches(await signpost_cli.run("audit", "export", "--child", BEN)) == [("P003", "ambiguous", "")]
    sar = await signpost_cli.run("audit", "sar", BEN)
    assert "Teacher, Hill Primary School (Northshire)" in sar.out
    assert "searched for by name and date of birth; a possible match, not answered" in sar.out

    redated = Feed("children.csv", f"{CHILDREN_HEADER}\n{BEN},Ben,Okafor,,2000-09-12,M,M4 5CD,Northshire,false\n")
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [redated], signpost.ctx.clock.now(), destroy_redated=True)

    assert searches(await signpost_cli.run("audit", "export", "--child", BEN)) == []
    gone = await signpost_cli.run("audit", "sar", BEN)
    assert gone.code == 0 and "searched for" not in gone.out and "Teacher" not in gone.out
    everything = await signpost_cli.run("audit", "export")
    assert searches(everything) == [("P003", "ambiguous", "")]
    assert BEN not in "\n".join(e for e in everything.out.splitlines() if '"search"' in e)
    assert (await signpost_cli.run("audit", "verify")).code == 0


async def test_a_possible_match_is_still_in_the_childs_export_and_sar_after_a_corrected_date_of_birth(
    signpost: Signpost, signpost_cli: Cli
) -> None:
    """Ben is a search's one weak candidate; a feed then corrects his date of birth (a fresh data
    key, so a new tag, while the event keeps the old one). `audit export --child` and `audit sar`
    for Ben still show the search, and the chain verifies."""
    await load_standard(signpost)
    await say_fresh(signpost, "P003", "Sam Okafor 12/09/2016")
    corrected = Feed("children.csv", f"{CHILDREN_HEADER}\n{BEN},Ben,Okafor,,2016-09-21,M,M4 5CD,Northshire,false\n")
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [corrected], signpost.ctx.clock.now())

    export = await signpost_cli.run("audit", "export", "--child", BEN)
    assert export.code == 0, export.err
    found = [json.loads(line) for line in export.out.splitlines()]
    assert [(e["actor_id"], e["action"], e["outcome"]) for e in found] == [
        ("P003", "search", "ambiguous"),
        (None, "export", "done"),  # the export itself, audited before it ran
    ]
    sar = await signpost_cli.run("audit", "sar", BEN)
    assert "Teacher, Hill Primary School (Northshire)" in sar.out
    assert "searched for by name and date of birth; a possible match, not answered" in sar.out
    assert (await signpost_cli.run("audit", "verify")).code == 0


@either_store  # the terminal's wording, not the store's: one store shows it (tests/spread.py)
async def test_an_export_that_finds_nothing_says_so_on_stderr_and_still_writes_a_valid_file(
    busy: Signpost, signpost_cli: Cli
) -> None:
    """`audit export --actor NOBODY` printed nothing at all, as if it had hung or failed silently.
    Nothing found is an answer (exit 0, as an empty `practitioner list`): one line on stderr, and
    stdout stays a valid file (a CSV's header alone), so a script's output is still readable."""
    async with busy.ctx.db.write() as session:  # DM01 is in the register and has done nothing
        assert not (await session.execute(select(AuditEvent).where(AuditEvent.actor_id == "DM01"))).first()
    run = await signpost_cli.run("audit", "export", "--actor", "DM01", "--format", "csv")
    assert (run.code, run.said) == (0, "signpost: no audit events for actor DM01")
    assert list(csv.reader(io.StringIO(run.out))) == [list(EXPORT_FIELDS)]
    run = await signpost_cli.run("audit", "export", "--actor", "DM01")
    assert (run.code, run.out, run.said) == (0, "", "signpost: no audit events for actor DM01")


@either_store  # the terminal's wording, not the store's: one store shows it (tests/spread.py)
async def test_an_export_for_an_actor_not_in_the_register_says_so_without_repeating_what_was_typed(
    busy: Signpost, signpost_cli: Cli
) -> None:
    """An --actor that is no practitioner id may be a child's name typed by a slip: not echoed."""
    for typed in ("NOBODY", "Amy Jones 03/04/2014"):
        run = await signpost_cli.run("audit", "export", "--actor", typed)
        assert (run.code, run.out) == (0, "")
        assert (
            run.said
            == "signpost: no audit events for that actor: there is no practitioner with that id in the register"
        )
    run = await signpost_cli.run("audit", "export", "--since", "01/01/2030")
    assert (run.code, run.out, run.said) == (0, "", "signpost: no audit events match")
    run = await signpost_cli.run("audit", "export", "--actor", "P001")
    assert run.code == 0 and run.out and run.said == ""


async def test_a_report_for_a_reference_not_in_the_register_and_later_in_its_childs_report(
    signpost: Signpost, signpost_cli: Cli
) -> None:
    """`audit sar` for a reference no child holds said "No one has looked up this record": it says
    the reference is not in the register (audited so). A child imported under it later finds that
    report in their own, in words that say what it was: a report about this reference."""
    await load_standard(signpost)
    absent = str(make_reference(999_000_900))
    first = await signpost_cli.run("audit", "sar", absent)
    assert first.code == 0, first.err
    assert "No child with reference 999 000 9007 is in the register: check the reference." in first.out
    assert "No event in the audit log mentions this reference." in first.out and "No one has" not in first.out
    async with signpost.ctx.db.read() as session:
        found = await session.execute(select(AuditEvent.detail).where(AuditEvent.action == "sar"))
        assert list(found.scalars()) == ["organisations and roles; not in the register"]
    child = Feed("children.csv", f"{CHILDREN_HEADER}\n{absent},Noor,Ahmed,,2015-02-02,F,M1 2AB,Northshire,false\n")
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [child], signpost.ctx.clock.now())
    later = await signpost_cli.run("audit", "sar", absent)
    assert "not in the register" not in later.out
    [entry] = [line.strip() for line in later.out.splitlines() if "; purpose:" in line]
    assert entry.startswith(
        "a subject access report about this reference was produced (a list like this one); "
        "it shows who reached the record and when, nothing else of it; purpose: operating Signpost"
    )


@either_store  # argument parsing: one store shows it (tests/spread.py)
async def test_a_reference_typed_with_its_spaces_unquoted_is_read_whole(busy: Signpost, signpost_cli: Cli) -> None:
    """`signpost audit sar 999 000 0018`, as the reference is printed everywhere, without quotes: the
    shell splits it in three, and "999" alone was refused as "not valid: please check the digits",
    which is untrue of the reference typed. `--child` reads it so too."""
    spaced = ("999", "000", "0018")
    sar = await signpost_cli.run("audit", "sar", *spaced, "--format", "json")
    assert sar.code == 0, sar.err
    assert json.loads(sar.out)["child_ref"] == "999 000 0018"
    quoted = await signpost_cli.run("audit", "export", "--child", AMY, "--format", "csv")
    export = await signpost_cli.run("audit", "export", "--child", *spaced, "--format", "csv")
    assert export.code == 0, export.err
    # the same events (and the first export's own, audited about the child in between)
    assert len(quoted.out.splitlines()) > 1 and set(quoted.out.splitlines()) <= set(export.out.splitlines())
    wrong = await signpost_cli.run("audit", "sar", "999", "000", "0019")
    assert wrong.code == 2 and "argument CHILD_REF: that reference number is not valid" in wrong.err, wrong.err


@either_store  # the terminal's wording, not the store's: one store shows it (tests/spread.py)
async def test_sar_tells_a_request_repeated_while_waiting_or_granted_from_one_for_a_record_not_shielded(
    signpost: Signpost, signpost_cli: Cli
) -> None:
    """A practitioner asking again for a shielded record, while their request waits and then while
    access granted is in force, read in `audit sar` as "the record is not shielded: no request was
    made", with the first request's purpose. Each says what happened; the purpose given then is
    withheld, as every purpose typed about a shielded child (the store's tests check which it is)."""
    await load_access(signpost)
    first, waiting, granted = "Joint home visit with police tomorrow", "still need it for the visit", "follow-up visit"
    assert (await request_access(signpost, "S001", SHIELDED, first)).outcome is Outcome.DONE
    assert (await request_access(signpost, "S001", SHIELDED, waiting)).outcome is Outcome.INFO
    assert (await decide(signpost, "DM02", "approve", 1)).outcome is Outcome.DONE
    again = await request_access(signpost, "S001", SHIELDED, granted)
    assert again.outcome is Outcome.INFO and "already have access" in again.text
    text = await signpost_cli.run("audit", "sar", SHIELDED)
    assert text.code == 0, text.err
    said = [line.strip() for line in text.out.splitlines() if line.startswith("    ")]
    shown = "information given, nothing of the record shown"
    assert said == [
        f"requested access (purpose given); done; purpose: {WITHHELD_WORD}",
        f"{REPEATED_WHILE_WAITING}; {shown}; purpose: {WITHHELD_WORD}",
        f"approved an access request; done; purpose: {DECIDING}",
        f"{REPEATED_WHILE_GRANTED}; {shown}; purpose: {WITHHELD_WORD}",
    ]
    entries = json.loads((await signpost_cli.run("audit", "sar", SHIELDED, "--format", "json")).out)["entries"]
    assert [(e["action"], e["purpose"]) for e in entries][1::2] == [
        (REPEATED_WHILE_WAITING, WITHHELD_WORD),
        (REPEATED_WHILE_GRANTED, WITHHELD_WORD),
    ]
    assert not [said for said in (first, waiting, granted) if said in text.out]


async def _append_help_by_px01(signpost: Signpost, clock: FakeClock, hostile: dict[str, str]) -> None:
    """An audited `help` by PX01 whose actor organisation, authority, user id and detail are ``hostile``'s."""
    record = AuditRecord(
        at=clock.now(),
        actor_id="PX01",
        platform="slack",
        tenant="T1",
        channel="direct",
        action="help",
        outcome="info",
        subject_refs=(),
        result_count=0,
        correlation_id="c1",
        actor_role="practitioner",
        actor_org=hostile["actor_org"],
        actor_la=hostile["actor_la"],
        user_id=hostile["user_id"],
        detail=hostile["detail"],
    )
    # A user id not shaped like one is recorded "unrecognised" now (``store.audit.log.recorded_id``);
    # an earlier Signpost kept any as sent, and those events are exported still: written as it did.
    object.__setattr__(record, "user_id", hostile["user_id"])
    async with signpost.ctx.db.write() as session:
        await append(session, [record])


@either_store  # what the report withholds is its own writing (store.audit.sar): one store shows it
async def test_a_shielded_childs_sar_withholds_organisations_areas_names_and_purposes(
    signpost: Signpost, signpost_cli: Cli
) -> None:
    """`audit sar` for a shielded child said "Health visitor, Southvale NHS Trust (Southvale)": the
    child's area and services, to a requester who may be the person they are shielded from. Text and
    JSON, with names or without, withhold them and say so first; the operator's event says it too."""
    await load_access(signpost)
    purpose = "Joint home visit with police at Southvale Road tomorrow"
    assert (await request_access(signpost, "S001", SHIELDED, purpose)).outcome is Outcome.DONE
    assert (await decide(signpost, "DM02", "approve", 1)).outcome is Outcome.DONE
    assert (await say_fresh(signpost, "S001", SHIELDED)).outcome is Outcome.ANSWERED
    sent = await say_fresh(signpost, "P002", f"message {SHIELDED} section 47 enquiry, please call me")
    assert sent.outcome is Outcome.DONE
    secrets = ("Southvale", "Northshire", "Lee Hart", "Priya Shah", "Jo Bell", "S001", "P002", "DM02", purpose)
    for extra in ((), ("--with-names",), ("--format", "json"), ("--with-names", "--format", "json")):
        run = await signpost_cli.run("audit", "sar", SHIELDED, *extra)
        assert run.code == 0, run.err
        assert not [s for s in secrets if s in run.out], (extra, run.out)
        assert "This record is shielded" in run.out and "data protection officer" in run.out
        assert "Health visitor" in run.out
    async with signpost.ctx.db.read() as session:
        details = (
            await session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "sar").order_by(AuditEvent.seq))
        ).all()
    assert (
        details
        == [
            "organisations and roles; shielded: organisations, areas, names and purposes withheld",
            "with names; shielded: organisations, areas, names and purposes withheld",
        ]
        * 2
    )
