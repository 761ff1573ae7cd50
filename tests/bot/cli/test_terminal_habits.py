"""What an operator sees at the terminal: settings refused in one line, unknown names warned about,
logs that stay JSON, help with a description and an example for every command, dates typed either
way, and feed problems all reported in one pass."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import structlog

from bot.cli.examples import EXAMPLES
from bot.cli.main import commands, parser
from bot.logging import configure, to_file
from handlers import transparency
from handlers.commands import all_specs
from handlers.grammar import HIDDEN_HINT
from handlers.stepup import flow as stepup
from handlers.vocabulary import Command, Reply
from store.keys.crypto import KeyRing
from store.people import standing
from store.register.synthetic import SyntheticRegister
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_main import write_feeds
from tests.factories import CHILDREN_HEADER, INVOLVEMENTS_HEADER

pytestmark = [
    pytest.mark.fresh_keys,
    pytest.mark.one_store,
]  # `signpost` works to the real date (tests/conftest.py keys)

README = (Path(__file__).parents[3] / "README.md").read_text("utf-8")
SLACK = {"SLACK_SIGNING_SECRET": "s3cret", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (("SLACK_BOT_TOKEN",), "SLACK_SIGNING_SECRET"),
        (("SLACK_SIGNING_SECRET",), "SLACK_BOT_TOKEN"),
        (("SLACK_APP_TOKEN",), "SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN"),
    ],
)
def test_partial_slack_configuration_is_refused_in_one_line(
    cli: Cli, given: tuple[str, ...], missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only some Slack settings: `signpost run` exits 2 with one line naming what is missing (no console)."""
    for name in SLACK:
        monkeypatch.delenv(name, raising=False)
    run = cli("run", env={name: SLACK[name] for name in given}, stdin="help\n")
    assert run.code == 2 and run.out == ""
    lines = [line for line in run.err.splitlines() if line.startswith("signpost:")]
    assert lines == [lines[0]] and "Slack is only partly configured" in lines[0] and lines[0].endswith(missing)
    assert "s3cret" not in run.err and "xoxb-1" not in run.err


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--port", "3917"), "--port"),
        (("--host", "0.0.0.0"), "--host"),
        (("--host", "::1", "--port", "3917"), "--host and --port"),
    ],
)
def test_run_with_host_or_port_and_no_chat_front_end_is_refused_before_the_console(
    cli: Cli, options: tuple[str, ...], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`signpost run --port 3917` with no Slack or Teams opened the console and listened nowhere,
    the option dropped without a word: now exit 2 and one line, before the console starts."""
    for name in SLACK:
        monkeypatch.delenv(name, raising=False)
    run = cli("run", *options, stdin="help\n")
    assert (run.code, run.out) == (2, "")  # no console greeting, no answer to "help"
    assert said(run.err) == [
        f"signpost: {named}: only for serving Slack or Teams over HTTP, and neither is configured (so `run` "
        f"opens the console, which listens on no port): leave {'them' if ' and ' in named else 'it'} out, "
        "or configure Slack or Teams"
    ]


def test_an_unknown_signpost_variable_is_named_with_the_closest_known_one(cli: Cli) -> None:
    """A misspelt SIGNPOST_ name gets one warning line suggesting the right name; the command still runs."""
    run = cli("decommission", "status", env={"SIGNPOST_DATABSE_URL": "sqlite+aiosqlite:///x.db"})
    assert run.code == 0
    warnings = [line for line in run.err.splitlines() if "SIGNPOST_DATABSE_URL" in line]
    assert warnings == [
        "signpost: unknown setting SIGNPOST_DATABSE_URL is ignored (did you mean SIGNPOST_DATABASE_URL?)"
    ]


def test_a_key_file_in_a_missing_folder_is_one_line(cli: Cli, tmp_path: Path) -> None:
    """SIGNPOST_KEY_FILE in a folder that does not exist: exit 2, one line, no traceback."""
    run = cli("decommission", "status", env={"SIGNPOST_KEY_FILE": str(tmp_path / "nowhere" / "signpost.key")})
    assert run.code == 2
    assert said(run.err) == [f"signpost: SIGNPOST_KEY_FILE: the folder {tmp_path / 'nowhere'} does not exist"]


@pytest.mark.parametrize("command", [("audit", "checkpoint"), ("audit", "verify"), ("decommission", "status")])
def test_a_signing_key_file_in_a_missing_folder_is_one_line(cli: Cli, tmp_path: Path, command: tuple[str, ...]) -> None:
    """SIGNPOST_SIGNING_KEY_FILE in a folder that does not exist: exit 2, one line naming the
    setting, no traceback (it was "stopped by an unexpected error (FileNotFoundError)")."""
    run = cli(*command, env={"SIGNPOST_SIGNING_KEY_FILE": str(tmp_path / "nowhere" / "signing.key")})
    assert run.code == 2, run.err
    assert said(run.err) == [f"signpost: SIGNPOST_SIGNING_KEY_FILE: the folder {tmp_path / 'nowhere'} does not exist"]


@pytest.mark.parametrize("command", [("audit", "checkpoint"), ("decommission", "status")])  # `run` opens the same way
def test_a_checkpoint_folder_under_a_missing_folder_is_one_line_and_makes_none(
    cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """SIGNPOST_CHECKPOINT_DIR with a typo in its parent: the server made every missing folder
    (mkdir -p) and wrote checkpoints where nobody shipped them. Now refused as a key file's is."""
    typo = tmp_path / "chekpoints-typo" / "signpost"
    run = cli(*command, env={"SIGNPOST_CHECKPOINT_DIR": str(typo)})
    assert run.code == 2, run.err
    assert said(run.err) == [f"signpost: SIGNPOST_CHECKPOINT_DIR: the folder {typo.parent} does not exist"]
    assert not typo.parent.exists()


def test_a_checkpoint_folder_whose_parent_exists_is_taken(cli: Cli, tmp_path: Path) -> None:
    """The checkpoint folder itself may be new (the scheduler makes it); only its parent must be there."""
    run = cli("decommission", "status", env={"SIGNPOST_CHECKPOINT_DIR": str(tmp_path / "checkpoints")})
    assert run.code == 0, run.err


@pytest.mark.parametrize("command", [("audit", "checkpoint"), ("decommission", "status")])  # `run` opens the same way
def test_a_checkpoint_folder_that_is_a_file_is_one_line(cli: Cli, tmp_path: Path, command: tuple[str, ...]) -> None:
    """SIGNPOST_CHECKPOINT_DIR naming a file was taken: `signpost run` served, and every scheduled
    checkpoint failed with an error line (FileExistsError) until someone read the log."""
    a_file = tmp_path / "checkpoints"
    a_file.write_text("not a folder\n")
    run = cli(*command, env={"SIGNPOST_CHECKPOINT_DIR": str(a_file)})
    assert run.code == 2, run.err
    assert said(run.err) == [f"signpost: SIGNPOST_CHECKPOINT_DIR: {a_file} is not a folder"]
    assert a_file.read_text() == "not a folder\n"


def test_library_logs_and_their_tracebacks_are_json_lines() -> None:
    """A standard-library logger's error (the Slack SDK's, say) with a traceback is one JSON line, and
    structlog's own events share the stream: nothing in plain text."""
    stream = io.StringIO()
    configure("json", "info", stream=stream)
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("slack_sdk.socket_mode").exception("socket_failed")
        structlog.get_logger("signpost.test").info("ours", n=1)
    finally:
        structlog.reset_defaults()
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2
    assert records[0]["event"] == "socket_failed" and records[0]["logger"] == "slack_sdk.socket_mode"
    assert records[0]["exception"][0]["exc_type"] == "builtins.RuntimeError"
    assert records[1]["event"] == "ours" and records[1]["n"] == 1


TYPED = "Ava Price 05/01/2014 NS1 3LY"


def _fails_quoting_the_search(*_: object) -> None:
    int(TYPED)  # a library's error that quotes the value it was given, as drivers' and int()'s do


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_failed_command_logs_where_it_failed_not_what_was_typed_nor_any_key(
    cli: Cli, keys: KeyRing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """A command that fails deep inside is logged with its traceback — files, lines, functions, the
    exception's type — but no frame's local variables (the search typed, the key ring) and not the
    message of another library's error, which quoted the search; the practitioner gets the
    reference. (Before: every frame's locals, the data keys and index key included.)"""
    seeded = cli("seed-demo", "--children", "300")
    assert seeded.code == 0, seeded.err
    monkeypatch.setattr(standing, "read", _fails_quoting_the_search)
    examples = SyntheticRegister(children=300).examples()
    run = cli("console", "--as", examples.practitioner_id, stdin=f"{TYPED}\nquit\n")
    assert "Sorry, something went wrong on our side. It has been logged with reference" in run.out
    with pytest.raises(ValueError) as raised:
        _fails_quoting_the_search()
    stream = io.StringIO()
    configure(fmt, "info", stream=stream)
    try:
        structlog.get_logger("signpost.test").error("failed", exc_info=raised.value)
    finally:
        structlog.reset_defaults()
    for log in ((tmp_path / "signpost.log").read_text(encoding="utf-8"), stream.getvalue()):
        for secret in (*TYPED.split(), keys.index_key.hex()[:16], repr(keys.index_key)[2:20]):
            assert secret not in log
        assert "_fails_quoting_the_search" in log and "builtins.ValueError" in log
        assert "message withheld" in log
    failed = [json.loads(line) for line in (tmp_path / "signpost.log").read_text().splitlines()]
    assert [line["event"] for line in failed if "exception" in line] == ["command_failed"]


def test_an_unexpected_error_is_one_line_and_a_log_line_that_quotes_nothing(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library error no command expects (a csv field over the module's limit, a driver refusing
    a byte) printed Python's traceback with the library's message, which quotes the value it was
    given. Now: exit 1, one line naming the error's type, and the log's traceback withholds it."""
    assert cli("seed-demo", "--children", "50").code == 0

    async def fails(*_: object, **__: object) -> None:
        _fails_quoting_the_search()

    monkeypatch.setattr(transparency, "build", fails)
    run = cli("report", "transparency")
    assert run.code == 1
    printed = [line for line in run.err.splitlines() if not line.startswith("{")]
    assert printed == ["signpost: stopped by an unexpected error (ValueError); the log says where"]
    [crashed] = [json.loads(line) for line in run.err.splitlines() if '"command_crashed"' in line]
    assert crashed["exception"][-1]["exc_type"] == "builtins.ValueError"
    for word in TYPED.split():
        assert word not in run.err


def test_log_level_setting_hides_info_lines(cli: Cli) -> None:
    """SIGNPOST_LOG_LEVEL=warning: no info line on stderr; a bad level is refused naming the setting."""
    quiet = cli("decommission", "status", env={"SIGNPOST_LOG_LEVEL": "warning"})
    assert quiet.code == 0 and '"level": "info"' not in quiet.err
    bad = cli("decommission", "status", env={"SIGNPOST_LOG_LEVEL": "loud"})
    assert bad.code == 2 and "SIGNPOST_LOG_LEVEL" in bad.err


def test_the_console_logs_to_a_private_file_not_the_conversation(cli: Cli, tmp_path: Path) -> None:
    """`signpost console` prints only the conversation; its log lines go to ./signpost.log, mode 0600."""
    assert cli("import", *write_feeds(tmp_path)).code == 0  # someone to act as
    run = cli("console", "--as", "P002", stdin="help\nquit\n")
    assert run.code == 0, run.err
    assert "correlation_id" not in run.out and "correlation_id" not in run.err
    log = tmp_path / "signpost.log"
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert any(json.loads(line).get("action") == "help" for line in log.read_text().splitlines())


def test_an_existing_log_file_others_could_read_is_made_private_and_kept(cli: Cli, tmp_path: Path) -> None:
    """A signpost.log left at 0644 (copied in, made by an older Signpost, a umask) was appended to
    and stayed world-readable: now it is tightened to 0600 when opened, its earlier lines kept."""
    assert cli("import", *write_feeds(tmp_path)).code == 0
    log = tmp_path / "signpost.log"
    log.write_text('{"event": "earlier"}\n', encoding="utf-8")
    os.chmod(log, 0o644)
    run = cli("console", "--as", "P002", stdin="help\nquit\n")
    assert run.code == 0, run.err
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    lines = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    assert lines[0] == {"event": "earlier"} and any(line.get("action") == "help" for line in lines[1:])


def test_a_log_file_that_is_not_a_regular_file_keeps_its_mode(cli: Cli, tmp_path: Path) -> None:
    """SIGNPOST_LOG_FILE naming a pipe (or /dev/null) is written to, never made 0600: as root that
    would lock every other user out of /dev/null."""
    pipe = tmp_path / "log.pipe"
    os.mkfifo(pipe, 0o644)
    os.chmod(pipe, 0o644)  # whatever the umask
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # so that opening it to write does not wait
    try:
        cli("console", "--as", "NOBODY-1", stdin=":quit\n", env={"SIGNPOST_LOG_FILE": str(pipe)})
        assert stat.S_IMODE(os.stat(pipe).st_mode) == 0o644
    finally:
        os.close(reader)


def test_every_sub_command_has_a_description_and_an_example() -> None:
    """`signpost X --help` opens with what X does and ends with an example naming X."""
    found = commands(parser())
    assert set(EXAMPLES) <= set(found), "an example for a command that does not exist"
    for path, command in found.items():
        text = command.format_help()
        assert command.description, path
        assert "example:\n  " in text and f"signpost {path}" in text, path


def test_import_help_describes_the_feeds_and_exit_codes() -> None:
    """`signpost import --help` gives each feed's columns and what exit statuses 0, 1 and 2 mean."""
    text = commands(parser())["import"].format_help()
    for header in ("practitioner_id,given_name", "child_ref,given_names", "child_ref,practitioner_id,service"):
        assert header in text
    assert re.search(r"^  0  imported", text, re.M) and re.search(r"^  1  nothing imported", text, re.M)
    assert re.search(r"^  2  ", text, re.M)


def test_readme_lists_every_command_of_signpost_help() -> None:
    """Every top-level command in `signpost --help` is in README's command list, and nothing more."""
    top = {path for path in commands(parser()) if " " not in path}
    block = README.split("## The `signpost` command", 1)[1].split("```", 2)[1]
    listed = set(re.findall(r"^signpost ([a-z-]+)", block, re.M))
    assert listed == top


async def _never_resumed(command: Command) -> Reply:
    raise AssertionError("nothing is dispatched")


def test_readme_lists_every_command_people_send_in_chat() -> None:
    """README's list of what can be sent in chat (or the console) left out `unlink` and
    `decommission`, which admins can send there: every command `help` can list is in it now."""
    paragraph = README.split("In chat (or the console), besides the searches above:", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([a-z-]+)[` ]", paragraph))
    specs = all_specs(*stepup.make_specs(_never_resumed, "https://signpost.example"))
    sent = {spec.name for spec in specs if spec.keyword and spec.summary}
    assert "help" in sent and "enrol" in sent  # the built specs are included
    assert sent <= listed, f"chat commands missing from README: {sorted(sent - listed)}"


NEXT_YEAR = date.today().year + 1  # the command's clock is the real one; a switch-off is at most 5 years ahead


@pytest.mark.parametrize("typed", [f"31/03/{NEXT_YEAR}", f"{NEXT_YEAR}-03-31"])
def test_decommission_dates_are_accepted_as_in_chat_or_iso(cli: Cli, typed: str) -> None:
    """`decommission schedule --switch-off` takes DD/MM/YYYY (as in chat) and YYYY-MM-DD alike."""
    run = cli("decommission", "schedule", "--switch-off", typed)
    assert run.code == 0, run.err
    assert f"switch-off 31/03/{NEXT_YEAR}" in run.out


def test_a_bad_date_says_both_forms(cli: Cli) -> None:
    run = cli("decommission", "schedule", "--switch-off", "31st March")
    assert run.code == 2 and "use DD/MM/YYYY or YYYY-MM-DD" in run.err


@pytest.mark.parametrize(
    ("command", "typed"),
    [
        (("decommission", "schedule", "--switch-off"), f"31/02/{NEXT_YEAR}"),
        (("retention", "run", "--dry-run", "--as-of"), f"{NEXT_YEAR}-02-30"),
        (("audit", "export", "--since"), "31/02/2026"),
    ],
)
def test_a_date_in_the_right_form_that_does_not_exist_asks_to_check_the_day_and_month(
    cli: Cli, command: tuple[str, ...], typed: str
) -> None:
    """31/02 was told "is not a date: use DD/MM/YYYY or YYYY-MM-DD", which it was typed as (newcomer)."""
    run = cli(*command, typed)
    assert run.code == 2
    assert "not a real date: check the day and the month (DD/MM/YYYY or YYYY-MM-DD)" in run.err
    assert typed not in run.err  # what was typed is not said back (bot.cli.main.unsaid)


PROGRESS = ("Importing:", "Reading involvements:")  # an import's progress lines


def said(err: str) -> list[str]:
    """stderr without log lines (JSON): what the command itself told the operator."""
    return [line for line in err.splitlines() if not line.startswith("{")]


def test_feed_problems_are_all_reported_in_one_pass(cli: Cli, tmp_path: Path) -> None:
    """A bad involvement row is checked for unknown references too, so fixing the format finds nothing
    new; one row read is "1 row"; the count of problems is a proper plural."""
    paths = write_feeds(tmp_path)
    bad = tmp_path / "involvements.csv"
    bad.write_text(f"{INVOLVEMENTS_HEADER}\n9990000018,NOPE,Education,not-a-date,,false\n", encoding="utf-8")
    run = cli("import", *paths)
    assert run.code == 1
    progress = [line for line in said(run.err) if line.startswith(PROGRESS)]
    assert progress[-1].startswith("Importing: stopped after 6 children")  # how far it got, never "done"
    assert said(run.err)[len(progress) :] == [
        "involvements.csv:2: started: is not a date in YYYY-MM-DD form",
        "involvements.csv:2: practitioner_id: no practitioner with this id",
        "Nothing was imported: 2 problems above.",
    ]


def test_a_latin1_feed_is_a_problem_with_its_first_bad_line(cli: Cli, tmp_path: Path) -> None:
    """A file that is not UTF-8: exit 1 like other bad input, naming the first bad line."""
    paths = write_feeds(tmp_path)
    latin = tmp_path / "children.csv"
    latin.write_bytes(f"{CHILDREN_HEADER}\n9990000018,Zoë,Jones,,2014-04-03,F,,Northshire,false\n".encode("latin-1"))
    run = cli("import", *paths)
    assert run.code == 1
    problems = [line for line in said(run.err) if not line.startswith(PROGRESS)]
    assert problems[0].startswith("children.csv:2: file: is not UTF-8 text")
    assert said(run.err)[-1].startswith("Nothing was imported:")


def test_one_row_is_one_row(cli: Cli, tmp_path: Path) -> None:
    """Counts read as English: "1 row read", not "1 rows read"."""
    (tmp_path / "children.csv").write_text(
        f"{CHILDREN_HEADER}\n9990000069,Noah,Wells,,2020-02-29,M,,Southvale,false\n", encoding="utf-8"
    )
    run = cli("import", str(tmp_path / "children.csv"))
    assert run.code == 0, run.err
    assert "children: 1 row read, 1 new or changed" in run.out


@pytest.mark.parametrize("where", ["missing", "a folder"])
def test_a_log_file_that_cannot_be_written_is_one_line(cli: Cli, tmp_path: Path, where: str) -> None:
    """SIGNPOST_LOG_FILE in a folder that does not exist, or naming a folder, was a traceback."""
    path = tmp_path / "nowhere" / "signpost.log" if where == "missing" else tmp_path
    run = cli("console", stdin=":quit\n", env={"SIGNPOST_LOG_FILE": str(path)})
    assert run.code == 2
    why = "No such file or directory" if where == "missing" else "Is a directory"
    assert said(run.err) == [f"signpost: SIGNPOST_LOG_FILE {path}: cannot write it ({why})"]


@pytest.mark.parametrize("target", ["a file", "nothing yet"])
def test_a_log_file_that_is_a_symbolic_link_is_refused_in_one_line(cli: Cli, tmp_path: Path, target: str) -> None:
    """SIGNPOST_LOG_FILE naming a link was followed: the file it named was made 0600 and appended
    to (or made, for a dangling link). Now exit 2 at start, one line naming the setting and the
    link, not the file it names, which is left as it was."""
    named = tmp_path / "someone-elses.txt"
    if target == "a file":
        named.write_text("theirs\n", encoding="utf-8")
        named.chmod(0o644)
    link = tmp_path / "signpost.log"
    link.symlink_to(named)
    run = cli("console", stdin="help\n:quit\n", env={"SIGNPOST_LOG_FILE": str(link)})
    assert (run.code, run.out) == (2, "")  # no console greeting: refused before it starts
    assert said(run.err) == [
        f"signpost: SIGNPOST_LOG_FILE {link}: is a symbolic link, which Signpost does not follow (the file it "
        "names would be made 0600 and written to): name the log file itself"
    ]
    assert link.is_symlink()
    if target == "a file":
        assert named.read_text("utf-8") == "theirs\n" and stat.S_IMODE(named.stat().st_mode) == 0o644
    else:
        assert not named.exists()


def test_output_cut_short_by_its_reader_ends_quietly(cli: Cli, tmp_path: Path) -> None:
    """`signpost audit export | head -1`: the reader went away, and Python printed a BrokenPipeError
    traceback. Now nothing is said and the status is the shell's for SIGPIPE."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before anything is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "audit", "verify"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ},
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr.decode()
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr


@pytest.mark.parametrize("typed", ["abc", "\uff15", "\u00b2"], ids=["letters", "full-width five", "superscript two"])
def test_a_bad_top_count_names_the_option_not_a_function(cli: Cli, tmp_path: Path, typed: str) -> None:
    """Only ASCII digits are a count: a full-width five (U+FF15) was taken as 5, and "²" (a digit to
    ``str.isdigit``, not to ``int``) was answered as argparse answers an exception it caught."""
    run = cli("match", str(tmp_path / "rows.csv"), "--as", "AD01", "--top", typed)
    assert run.code == 2
    assert "argument --top: not a number of candidates from 1 to 100" in run.err
    assert "_positive" not in run.err and "top_count" not in run.err


def test_dated_examples_in_help_are_not_yet_past() -> None:
    """`retention run --dry-run --as-of 01/12/2026` was printed by --help and refused on 02/12/2026."""
    from datetime import date

    today = date.today()
    for texts in EXAMPLES.values():
        for text in texts:
            for day, month, year in re.findall(r"--(?:as-of|switch-off|destroy-by) (\d\d)/(\d\d)/(\d{4})", text):
                assert date(int(year), int(month), int(day)) >= today, text


@pytest.mark.parametrize("args", [("audit", "export"), ("decommission", "status"), ("practitioner", "list")])
def test_a_mistyped_store_path_is_one_line_and_makes_no_store(cli: Cli, tmp_path: Path, args: tuple[str, ...]) -> None:
    """A typo in SIGNPOST_DATABASE_URL made and migrated a new, empty store, and `audit export`
    then printed an empty log (exit 0): an auditor saw nothing where there was something."""
    typo = tmp_path / "signpsot.db"
    run = cli(*args, env={"SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{typo}"})
    assert run.code == 2 and run.out == ""
    assert said(run.err) == [
        f"signpost: there is no store at {typo}: check SIGNPOST_DATABASE_URL "
        "(signpost import, signpost seed-demo or signpost db upgrade make a new one)"
    ]
    assert not typo.exists()


def test_a_hidden_character_at_the_end_of_a_console_line_gets_help_not_the_command(cli: Cli) -> None:
    """The console trimmed each line with str.strip(), which takes a form feed for a space: a pasted
    "\\x0chelp" ran help. Like any text holding a hidden character it gets usage help."""
    assert cli("seed-demo", "--children", "300").code == 0
    examples = SyntheticRegister(children=300).examples()
    run = cli("console", "--as", examples.practitioner_id, stdin="\x0chelp\nquit\n")
    assert HIDDEN_HINT in run.out and "who else is working" not in run.out


async def test_a_practitioner_id_typed_in_another_case_names_the_same_practitioner_everywhere(
    cli: Cli, tmp_path: Path
) -> None:
    """`practitioner leave p002`, `unlink` and the console's `--as` took an id in any case, but
    `totp enrol p002`, `totp reset`, `match --as ad01` and `audit export --actor p002` answered that
    there is no such practitioner (the export: "it is not a practitioner id in the register")."""
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    enrolled = await cli.run("totp", "enrol", " p002 ", "--secret-file", str(tmp_path / "p002.secret"))
    assert enrolled.code == 0 and "P002" in enrolled.out, enrolled.err
    exported = await cli.run("audit", "export", "--actor", "p002")
    assert exported.code == 0 and "no practitioner with that id" not in exported.err, exported.err
    roll = tmp_path / "roll.csv"
    roll.write_text(f"{CHILDREN_HEADER}\n,Amy,Jones,,2014-04-03,,,,\n", encoding="utf-8")
    matched = await cli.run("match", str(roll), "--as", "ad01")
    assert matched.code == 0 and matched.out.startswith("line,decision"), matched.err
    reset = await cli.run("totp", "reset", "p002")
    assert reset.code == 0, reset.err


async def test_totp_enrol_says_where_an_admin_s_first_code_is_asked_not_a_search(cli: Cli, tmp_path: Path) -> None:
    """`signpost totp enrol AD01` told the operator the admin's code is asked "at their first
    search", and admins search nothing; a practitioner's still is."""
    assert (await cli.run("import", *write_feeds(tmp_path))).code == 0
    first = "It becomes active when they enter their first code: Signpost asks for one at their first"
    admin = await cli.run("totp", "enrol", "AD01", "--secret-file", str(tmp_path / "ad01.secret"))
    assert admin.code == 0, admin.err
    assert admin.out.rstrip().endswith(
        f"{first} use of approve, deny, pending, unlink, relays, lead-notices or decommission."
    ), admin.out
    practitioner = await cli.run("totp", "enrol", "P002", "--secret-file", str(tmp_path / "p002.secret"))
    assert practitioner.code == 0 and practitioner.out.rstrip().endswith(f"{first} search."), practitioner.out
    # A duty manager who also searches is asked at whichever comes first (a newcomer's `pending`
    # asked, where the line had said "at their first search").
    manager = await cli.run("totp", "enrol", "DM01", "--secret-file", str(tmp_path / "dm01.secret"))
    assert manager.code == 0 and manager.out.rstrip().endswith(
        f"{first} search or use of approve, deny, pending, relays or reset."
    ), manager.out


# `signpost console`, with a real SIGINT (Ctrl-C) delivered to itself the moment the store's code
# begins to load, as a Ctrl-C typed in the second or so `make run` takes to start lands.
CTRL_C_WHILE_LOADING = (
    "import importlib.abc, os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "class CtrlC(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name == 'bot.app':\n"
    "            os.kill(os.getpid(), signal.SIGINT)\n"
    "        return None\n"
    "sys.meta_path.insert(0, CtrlC())\n"
    "from bot.cli.main import main\n"
    "sys.exit(main(['console']))\n"
)


def test_ctrl_c_while_signpost_is_still_loading_ends_it_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C in the first second of `make run` printed Python's KeyboardInterrupt traceback through
    the imports; it now ends as a Ctrl-C at the prompt does, with status 130."""
    root = Path(__file__).resolve().parents[3]
    environment = {
        **os.environ,
        "PYTHONPATH": str(root),
        "SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "SIGNPOST_KEY_FILE": str(tmp_path / "signpost.key"),
    }
    result = subprocess.run(
        [sys.executable, "-c", CTRL_C_WHILE_LOADING],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (130, ""), result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_a_log_file_swapped_for_a_link_after_its_handler_closed_is_not_followed(tmp_path: Path) -> None:
    """Logging opens a closed handler's file again by its name for a late line (at exit: an
    unraisable exception, a warning), with a plain open that followed a link put there since and
    wrote through it (a reviewer). It is opened without following links then too: the line is not
    written, and the file the link names is left as it was."""
    log = tmp_path / "signpost.log"
    to_file(log)
    [handler] = [
        h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler) and h.baseFilename == str(log)
    ]
    logging.getLogger("signpost.test").warning("before")
    handler.close()  # as logging.shutdown() does at exit, leaving it attached
    named = tmp_path / "someone-elses.txt"
    named.write_text("theirs\n", encoding="utf-8")
    log.unlink()
    log.symlink_to(named)
    logging.getLogger("signpost.test").warning("late")  # dropped: no error out of the call that logged it
    assert named.read_text("utf-8") == "theirs\n"
    log.unlink()
    logging.getLogger("signpost.test").warning("later")  # the link gone: a file of its own again, 0600
    assert "later" in log.read_text("utf-8") and stat.S_IMODE(log.stat().st_mode) == 0o600
