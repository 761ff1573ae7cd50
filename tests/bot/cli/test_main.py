"""The `signpost` command as an operator uses it, on a store of each backend: in this process
(tests/bot/cli/conftest.py), and once as the real installed executable."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyotp
import pytest

from bot.cli.main import commands, is_group, main, parser
from store.db import url_problem
from store.register.synthetic import SyntheticRegister, feeds_text
from tests.bot.cli.conftest import Cli
from tests.factories import CHILDREN, CHILDREN_HEADER, INVOLVEMENTS, PRACTITIONERS

pytestmark = [
    pytest.mark.fresh_keys,
    pytest.mark.one_store,
]  # `signpost` works to the real date (tests/conftest.py keys)


def enrol(cli: Cli, practitioner_id: str) -> str:
    """Enrol an authenticator at the terminal (as an admin would) and return its current code."""
    return pyotp.TOTP(cli.enrol(practitioner_id)).now()


def write_feeds(tmp: Path) -> list[str]:
    paths = []
    for name, text in (
        ("practitioners.csv", PRACTITIONERS),
        ("children.csv", CHILDREN),
        ("involvements.csv", INVOLVEMENTS),
    ):
        (tmp / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp / name))
    return paths


def test_the_installed_signpost_executable_imports_feeds(tmp_path: Path) -> None:
    """Smoke test of the real entry point: `signpost import` as a process, settings from its
    environment, a new SQLite store and key file, the counts on stdout and exit status 0."""
    executable = Path(sys.executable).with_name("signpost")
    environment = {
        **os.environ,
        "SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "SIGNPOST_KEY_FILE": str(tmp_path / "signpost.key"),
        "SIGNPOST_LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [str(executable), "import", *write_feeds(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "children: 6 rows read, 6 new or changed" in result.stdout


def test_import_then_scripted_console_session(cli: Cli, tmp_path: Path) -> None:
    """Import feeds, then pipe a session into `signpost console`: each line gets its reply."""
    imported = cli("import", *write_feeds(tmp_path))
    assert imported.code == 0, imported.err
    assert "children: 6 rows read, 6 new or changed" in imported.out
    code = enrol(cli, "P002")
    session = (
        f"help\n999 000 0018\n{code}\nLily Brown 20/01/2019\n9990000050\n:as NOBODY\n999 000 0018\n:quit\nnever read\n"
    )
    result = cli("console", "--as", "P002", stdin=session)
    assert result.code == 0, result.err
    out = result.out
    assert "Signposts for 999 000 0018: 3 involvements." in out
    assert "Sam Carter — Social worker, Northshire Children's Services  ★ lead professional" in out
    assert "ended 20/07/2024" in out
    assert "No record matches those details for certain, so none is shown." in out
    assert "A record exists and is shielded" in out and "[Request access]" in out
    assert "There is no practitioner with that id in the register, so still acting as P002." in out
    assert "never read" not in out


def test_console_logs_carry_no_personal_data(cli: Cli, tmp_path: Path) -> None:
    """The structured log of a demographic search has one event per command and no typed identity."""
    cli("import", *write_feeds(tmp_path))
    code = enrol(cli, "P002")
    result = cli("console", "--as", "P002", stdin=f"Amy Jones 03/04/2014 M1 2AB\n{code}\n")
    log = (tmp_path / "signpost.log").read_text("utf-8")  # the console logs to a file
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    commands = [e for e in events if e.get("event") == "command"]
    assert [(e["action"], e["outcome"]) for e in commands] == [
        ("search", "challenged"),
        ("search", "answered"),
        ("code", "answered"),
    ]
    for plain in ("Amy", "Jones", "03/04/2014", "M1 2AB"):
        assert plain not in log and plain not in result.err


def test_failing_import_applies_nothing_and_reports_every_bad_row(cli: Cli, tmp_path: Path) -> None:
    """Exit status 1, one line per problem (file:line: field: problem), and an empty store after."""
    bad = tmp_path / "children.csv"
    bad.write_text(
        f"{CHILDREN_HEADER}\n9990000019,A,B,,2014-01-01,F,,LA,false\n9990000026,,,,2014-13-01,F,,LA,false\n"
        "999000001,A,B,,2014-01-01,F,,LA,false\n"
    )
    result = cli("import", str(bad))
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert "children.csv:2: child_ref: is not a valid 10-digit reference (check digit fails)" in lines
    short = "children.csv:4: child_ref: has 9 digits, not 10: if a spreadsheet dropped its leading zeros"
    assert any(line.startswith(short) for line in lines)
    assert "children.csv:3: family_name: is empty, and so is given_names: a child needs at least one name" in lines
    assert "children.csv:3: date_of_birth: is not a real date" in lines  # 13th month
    assert lines[-1] == "Nothing was imported: 4 problems above."
    exported = cli("console", "--as", "P002", stdin="999 000 0026\n")
    assert exported.code == 2  # not even the practitioners exist, so the console does not start
    assert "There is no practitioner with that id in the register" in exported.err


def test_key_file_is_created_private(cli: Cli, tmp_path: Path) -> None:
    """The key-encryption key file appears on first use with mode 0600."""
    fresh = tmp_path / "fresh.key"
    # An empty store has nobody to act as, so the console declines (2), after opening the store and its key.
    assert cli("console", stdin=":quit\n", env={"SIGNPOST_KEY_FILE": str(fresh)}).code == 2
    mode = stat.S_IMODE(fresh.stat().st_mode)
    assert mode == 0o600


def test_bad_settings_give_one_clear_line(cli: Cli) -> None:
    """A malformed database URL is named in one line with exit status 2, no traceback."""
    result = cli("console", env={"SIGNPOST_DATABASE_URL": "mysql://nope"})
    assert result.code == 2
    assert result.err.startswith("signpost: bad setting: SIGNPOST_DATABASE_URL")
    assert "Traceback" not in result.err


BAD_URLS = [
    (
        "postgresql+asyncpg://signpost:s3cretpw@db.example:notaport/signpost",
        "the port must be a number from 1 to 65535",
    ),
    ("postgresql+asyncpg://signpost:s3cretpw@[::1/signpost", "the host is an IPv6 address without its closing ]"),
    ("postgresql+asyncpg://signpost:s3cretpw@db.example/signpost?sslmode=require", "takes no query option sslmode"),
    ("postgresql+asyncpg://signpost:s3cretpw@db.example/signpost?timeout=abc", "takes no query option timeout"),
    ("sqlite+aiosqlite://db.example/signpost.db", "a SQLite URL has no user, password, host or port"),
    ("mssql+pyodbc://signpost:s3cretpw@db.example/signpost", "the driver must be sqlite+aiosqlite or postgresql"),
]
COMMANDS_USING_THE_STORE = [
    ("run",),
    ("console",),
    ("import", "children.csv"),
    ("seed-demo",),
    ("audit", "verify"),
    ("db", "upgrade"),
    ("retention", "run", "--dry-run"),
    ("backup", "copy.db"),
    ("keys", "rotate"),
    ("practitioner", "list"),
]


@pytest.mark.parametrize("command", COMMANDS_USING_THE_STORE, ids=" ".join)
@pytest.mark.parametrize(("url", "problem"), BAD_URLS)
def test_a_bad_database_url_is_a_bad_setting_in_one_line_for_every_command(
    cli: Cli, command: tuple[str, ...], url: str, problem: str
) -> None:
    """An unparseable port or host, an unknown query option or a driver SQLAlchemy does not have stopped
    `signpost run` and `signpost import` with "stopped by an unexpected error (ValueError)" or
    (TypeError), after a SQLAlchemy traceback in the log. Every command now refuses the setting
    before anything runs: one line naming the part that is wrong, exit status 2, and neither the
    password nor the host nor the URL quoted."""
    result = cli(*command, env={"SIGNPOST_DATABASE_URL": url})
    assert (result.code, result.out) == (2, "")
    assert result.err == f"signpost: bad setting: SIGNPOST_DATABASE_URL: {url_problem(url)}\n"
    assert problem in result.err
    assert "s3cretpw" not in result.err and "db.example" not in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("command", ["console", "run"])
@pytest.mark.parametrize("as_id", ["NS-P0001\x1b[2J", "\u202eNS-P0001", "NS-P0001\udcff"])
def test_as_with_a_hidden_character_is_refused_in_one_line_before_a_store_is_made(
    cli: Cli, tmp_path: Path, command: str, as_id: str
) -> None:
    """`signpost console --as ID` and `signpost run --as ID` (no chat front end: the console) with a
    control character, a bidi override or undecodable argv bytes (a lone surrogate): one line, exit
    status 2, the id not echoed, and no store made for it."""
    store = tmp_path / "never.db"
    result = cli(command, "--as", as_id, env={"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{store}"})
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "signpost: --as: that practitioner id holds a control character or an invisible formatting mark\n"
    )
    assert not store.exists()


@pytest.mark.parametrize("command", ["console", "run"])
@pytest.mark.parametrize("as_id", ["", "   "])
def test_as_with_no_id_is_refused_in_one_line_before_a_store_is_made(
    cli: Cli, tmp_path: Path, command: str, as_id: str
) -> None:
    """`signpost console --as ""` (an unset variable in a script, say) is told to give an id, where it
    quietly acted as the demo practitioner: one line, exit status 2, and no store made."""
    store = tmp_path / "never.db"
    result = cli(command, "--as", as_id, env={"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{store}"})
    assert (result.code, result.out) == (2, "")
    assert result.err == "signpost: --as: give a practitioner id, or leave --as out to act as the demo practitioner\n"
    assert not store.exists()


def test_audit_export_is_json_lines(cli: Cli, tmp_path: Path) -> None:
    """Every command appears in `signpost audit export` as one JSON object per line, without terms."""
    cli("import", *write_feeds(tmp_path))
    code = enrol(cli, "P002")
    cli("console", "--as", "P002", stdin=f"999 000 0018\n{code}\nhelp\n")
    result = cli("audit", "export")
    events = [json.loads(line) for line in result.out.splitlines()]
    # P002's own commands (Signpost telling the child's lead professional is an event of its own)
    commands = [(e["action"], e["outcome"]) for e in events if e["actor_id"] == "P002" and e["platform"] == "console"]
    assert commands == [("lookup", "challenged"), ("lookup", "answered"), ("code", "answered"), ("help", "info")]
    assert all(e["actor_id"] in ("P002", None) for e in events)  # the rest is the scheduler's own work
    assert all("terms" not in e for e in events)


def test_seed_demo_is_idempotent_and_prints_working_examples(cli: Cli) -> None:
    """seed-demo twice changes nothing the second time; the console greets with three examples that work."""
    first = cli("seed-demo", "--children", "400")
    assert first.code == 0, first.err
    second = cli("seed-demo", "--children", "400", "--if-empty")
    assert "not seeding" in second.out
    assert [line for line in second.err.splitlines() if line.startswith("Seeding")] == [
        "Seeding demo data: nothing to do"
    ]
    greeting = cli("console", stdin="")
    examples = [line.split("(")[0].strip() for line in greeting.out.splitlines() if line.startswith("  ")][:3]
    assert len(examples) == 3
    code = enrol(cli, "NS-P0001")
    answers = cli("console", stdin="\n".join([examples[0], code, *examples[1:]]) + "\n").out
    assert answers.count("Signposts for") == 2
    assert "A record exists and is shielded" in answers


def test_signpost_alone_shows_the_commands(cli: Cli) -> None:
    """`signpost` with nothing after it said only "error: the following arguments are required:
    COMMAND" (newcomer): it lists the commands, on stderr, with the usage error's exit status."""
    run = cli()
    assert run.code == 2 and run.out == ""
    assert run.err == parser().format_help()


GROUPS = sorted(path for path, command in commands(parser()).items() if is_group(command))


@pytest.mark.parametrize("group", GROUPS)
def test_a_group_alone_shows_its_commands(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`signpost audit` (or db, keys, totp …) with nothing after it said only "error: the following
    arguments are required: AUDIT_COMMAND", naming none of them: like `signpost` alone, it lists
    them, with their examples, on stderr, with the usage error's exit status."""
    assert main(group.split()) == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err == commands(parser())[group].format_help()


def test_help_lists_the_commands() -> None:
    """`signpost --help` names the sub-commands an operator needs."""
    text = parser().format_help()
    for command in ("run", "console", "seed-demo", "import", "audit"):
        assert command in text
    # `signpost help COMMAND` works (test_signpost_help_prints_the_help) but was named nowhere in it.
    assert "signpost help COMMAND" in " ".join(text.split())


def test_seed_demo_again_with_fewer_children_writes_nothing_and_changes_nothing(cli: Cli) -> None:
    """`seed-demo --children 10` on a store seeded bigger wrote nothing, yet the console's greeting then
    offered the 10-child demo's examples, without the shielded child the store still holds (newcomer):
    a re-run that writes nothing changes nothing, the greeting included."""
    assert cli("seed-demo", "--children", "400").code == 0
    before = cli("console", stdin="").out
    assert "(a shielded child)" in before
    again = cli("seed-demo", "--children", "10")
    assert again.code == 0, again.err
    assert " 0 children" in again.out.strip().splitlines()[-1], again.out  # nothing written
    assert cli("console", stdin="").out == before


def test_seed_demo_summary_writes_counts_as_its_progress_line_does(cli: Cli) -> None:
    """The progress line said "1,000 children" and the summary under it "1000 children" (newcomer):
    every count in the summary has its thousands separator, as the progress line's has."""
    seeded = cli("seed-demo", "--children", "1000")
    assert seeded.code == 0, seeded.err
    assert "Seeding demo data: 1,000 children in " in seeded.err
    summary = seeded.out.strip().splitlines()[-1]
    assert summary.startswith("Demo data ready (") and "1,000 children" in summary
    assert not re.search(r"\d{4}", summary), summary
    again = cli("seed-demo", "--if-empty")
    assert "The store already holds 1,000 children; not seeding." in again.out


def test_import_summary_writes_counts_with_thousands_separators(cli: Cli, tmp_path: Path) -> None:
    """`signpost import`'s summary, like seed-demo's: "children: 1,000 rows read, 1,000 new or changed"."""
    texts = feeds_text(SyntheticRegister(children=1000))
    paths = []
    for name, text in texts.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    imported = cli("import", *paths)
    assert imported.code == 0, imported.err
    assert "children: 1,000 rows read, 1,000 new or changed" in imported.out.splitlines()
    assert not re.search(r"\d{4}", imported.out), imported.out


LEAVES = sorted(path for path, command in commands(parser()).items() if not is_group(command))


@pytest.mark.parametrize("command", LEAVES)
def test_an_unknown_option_shows_that_commands_usage(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`signpost console --workers 2` printed `usage: signpost [-h] COMMAND ...`, the top-level
    usage, which says nothing of console's options (newcomer): an option a command does not take
    is refused with that command's own usage, for every command."""
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), "--no-such-option"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: signpost {command} "), err
    assert err.splitlines()[-1].startswith(f"signpost {command}: error: "), err


def test_a_mistyped_option_is_told_the_nearest_one_the_command_takes(capsys: pytest.CaptureFixture[str]) -> None:
    """`retention run --dryrun` (newcomer): argparse's bare "unrecognized arguments" now names the
    option meant, as a mistyped command is told its nearest; an option like none is told nothing."""
    with pytest.raises(SystemExit) as exit_:
        main(["retention", "run", "--dryrun"])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "signpost retention run: error: unrecognized arguments: --dryrun. Did you mean '--dry-run'?"
    with pytest.raises(SystemExit):
        main(["retention", "run", "--zzzzzz"])
    assert capsys.readouterr().err.splitlines()[-1].endswith("unrecognized arguments: --zzzzzz")


def test_version_names_the_installed_signpost(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert re.fullmatch(r"signpost \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_console_with_an_option_of_run_names_it_under_consoles_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["console", "--workers", "2"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: signpost console [-h]"), err
    assert err.splitlines()[-1] == "signpost console: error: unrecognized arguments: --workers 2"


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_run_with_a_port_out_of_range_names_the_port_option_not_the_setting(
    port: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`signpost run --port 99999` said "bad setting: SIGNPOST_PORT: must be at most 65535" to
    someone who set no SIGNPOST_PORT (newcomer), and `--port 0` was dropped for the default 3000:
    the option is refused as the option, with run's usage, before anything opens."""
    monkeypatch.chdir(tmp_path)  # were it not refused, the console would make its store here
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--port", port])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: signpost run [-h]"), err
    assert err.splitlines()[-1] == "signpost run: error: argument --port: not a port: use 1 to 65535", err
    assert "SIGNPOST_PORT" not in err, err


def test_after_destruction_the_console_suggests_no_demo_people_who_are_gone(cli: Cli) -> None:
    """Decommissioned (newcomer): the admin's console greeting still listed NS-P0001 and NS-DM01 to
    act as, `:as NS-DM01` then said there was no such practitioner and suggested them again, and
    once the admins were purged too, `signpost console` suggested all three. Only those the
    register still holds are suggested: after destruction the admin (kept until the certificate
    reaches them); after the purge, nobody (the console starts, answering "switched off")."""
    assert cli("seed-demo", "--children", "300").code == 0
    today = date.today().strftime("%d/%m/%Y")
    assert cli("decommission", "schedule", "--switch-off", today, "--at-once").code == 0
    destroyed = cli("decommission", "destroy")
    assert destroyed.code == 0, destroyed.err
    admin = cli("console", "--as", "ADMIN-01", stdin=":as NS-DM01\n")
    assert admin.code == 0, admin.err
    assert "There is no practitioner with that id in the register, so still acting as ADMIN-01." in admin.out
    assert "NS-P0001" not in admin.out and "(their duty manager" not in admin.out and "Try these" not in admin.out
    # ADMIN-01 itself may be gone by then (its certificate delivered in this session, the purge ran)
    assert "NS-DM01" not in admin.out  # what was typed is not said back, nor offered as an example
    purged = cli("console", stdin="")  # the admin's certificate delivered above: the purge is due
    # It starts anyway, switched off for everyone (README: `make run` after the rehearsal), and names
    # nobody to act as.
    assert purged.code == 0 and purged.said == "", purged.err
    assert "There is no practitioner NS-P0001 in the register." in purged.out, purged.out
    assert "ADMIN-01" not in purged.out and "NS-DM01" not in purged.out and "demo data" not in purged.out


@pytest.mark.parametrize(("typed", "meant"), [(["totp", "enroll"], "enrol"), (["seed_demo"], "seed-demo")])
def test_a_mistyped_command_names_the_nearest_one(
    typed: list[str], meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`signpost totp enroll` got argparse's bare "invalid choice" and a list to read through (newcomer):
    the nearest command is named on the error line."""
    with pytest.raises(SystemExit) as exit_:
        main(typed)
    assert exit_.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert "invalid choice" in last and last.endswith(f"Did you mean '{meant}'?"), last


@pytest.mark.parametrize(("typed", "meant"), [(["help", "totp", "enroll"], "enrol"), (["help", "improt"], "import")])
def test_help_for_a_mistyped_command_names_the_nearest_one(
    typed: list[str], meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`signpost help totp enroll` printed the top-level help with exit status 0, as if nothing were
    wrong (newcomer): it is told the nearest command, as `signpost totp enroll` is."""
    with pytest.raises(SystemExit) as exit_:
        main(typed)
    assert exit_.value.code == 2
    said = capsys.readouterr()
    assert said.out == ""
    last = said.err.splitlines()[-1]
    assert "invalid choice" in last and last.endswith(f"Did you mean '{meant}'?"), last


@pytest.mark.parametrize("typed", [["help"], ["help", "totp"]])
def test_signpost_help_prints_the_help(typed: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`signpost help` was refused as an invalid choice: it prints the help `--help` prints (of the
    command named after it, if any), on stdout, with exit status 0."""
    assert main(typed) == 0
    said = capsys.readouterr()
    top = parser()
    assert said.out == (commands(top)["totp"] if typed[1:] else top).format_help(), said.out
    assert said.err == ""


@pytest.mark.parametrize(("typed", "meant"), [("--verison", "--version"), ("--hlep", "--help")])
def test_a_mistyped_top_level_option_is_told_the_nearest_one(
    typed: str, meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`signpost --verison` (newcomer) was told "the following arguments are required: COMMAND", as
    if no option had been typed: README promises the nearest option, as `retention run --dryrun` gets."""
    with pytest.raises(SystemExit) as exit_:
        main([typed])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == f"signpost: error: unrecognized arguments: {typed}. Did you mean '{meant}'?"


def test_import_help_names_the_date_forms_a_feed_is_read_in(capsys: pytest.CaptureFixture[str]) -> None:
    """`signpost import --help` said dates were YYYY-MM-DD only, where README's Feeds section (and the
    reader) take the other forms that can mean one day only: each form the help names is read."""
    from store.register.feeds import feed_day

    with pytest.raises(SystemExit):
        main(["import", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    forms = ["2014-04-03", "2014/04/03", "03-Apr-2014", "April 3, 2014"]
    for form in forms:
        assert form in shown, shown
        assert feed_day(form) == feed_day("2014-04-03"), form
    assert "3/4/2014" in shown and isinstance(feed_day("3/4/2014"), str)  # told, and refused: either of two days


def test_a_paragraph_wrapped_to_a_narrow_terminal_is_filled_not_ragged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Descriptions written wrapped at about 100 columns, each line wrapped alone at 60, alternated
    long and short lines (`keys rotate --help`, review): a paragraph too wide for the terminal is
    filled again as a whole, so no line of it ends where the next line's first word would still fit."""
    width = 60
    monkeypatch.setenv("COLUMNS", str(width))
    top = parser()
    for name, command in {"": top, **commands(top)}.items():
        description = command.format_help().split("\n\n")[1:]
        for block in description:
            lines = block.splitlines()
            if not lines or lines[0].endswith(":") or any(line[:1].isspace() for line in lines):
                continue  # "options:", "example:", an indented list: laid out as written
            for line, after in itertools.pairwise(lines):
                first = after.split()[0] if after.split() else ""
                if not first or re.match(r"(?:[-*\u2022]|\d+[.)])\s", after):  # a list item starts its own line
                    continue
                assert len(line) + 1 + len(first) > width - 2, (name, line, after)  # argparse keeps 2 spare


def test_an_option_help_wrapped_to_a_narrow_terminal_cuts_no_word(monkeypatch: pytest.MonkeyPatch) -> None:
    """`COLUMNS=60 signpost match --help` printed "CSV line,deci" and "sion,rank,…" on the next line
    (review): an option's help is wrapped at spaces only, so a word longer than the room left (a list
    of column names, a path) overflows its line whole rather than being cut where it cannot be read
    or copied."""
    monkeypatch.setenv("COLUMNS", "60")
    top = parser()
    for name, command in {"": top, **commands(top)}.items():
        shown = set(command.format_help().split())
        listed = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        for action in [*command._actions, *(each for group in listed for each in group._get_subactions())]:
            if not action.help or action.help == argparse.SUPPRESS or "%" in action.help:
                continue
            cut = [word for word in action.help.split() if word not in shown]
            assert cut == [], (name, action.dest, cut)


def test_help_paragraphs_are_wrapped_to_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """`signpost --help` and `signpost totp enrol --help` printed their opening paragraph as one line
    of hundreds of characters: a paragraph's line longer than the terminal is wrapped at spaces (an
    option's name or a date form never cut at a hyphen); an indented example keeps its line."""
    monkeypatch.setenv("COLUMNS", "80")
    top = parser()
    for name, command in {"": top, **commands(top)}.items():
        text = command.format_help()
        long = [line for line in text.splitlines() if len(line) > 80 and not line[:1].isspace()]
        assert long == [], (name, long)
    opening = " ".join(top.format_help().split("\n\n")[1].split())
    assert opening.startswith("Signpost: who else is working")
    assert "step-up" in opening  # its hyphens whole
