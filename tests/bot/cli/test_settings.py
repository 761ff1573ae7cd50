"""Bad settings as the operator meets them: `signpost` refuses to start with one kind line per bad
setting, naming it and what it expects, never pydantic's dump and never the value given."""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.config import (
    DOTENV_BAD_LINE,
    DOTENV_NOT_A_FILE,
    LEVELS,
    LOG_FORMATS,
    OTHER_NAMES,
    Settings,
    SettingsError,
    known_names,
    load_settings,
)
from bot.logging import WITHHELD
from bot.serve import front_ends
from store.characters import HIDDEN_IN_PATH
from tests.bot.cli.conftest import Cli

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NOT_HTTPS = [
    "signpost.example.org",  # no scheme: pasted without https://
    "/enrol",  # a path, not a URL
    "ftp://signpost.example.org",
    "https://",  # no host
    "https://signpost.example.org?x=1",
    "https://signpost.example.org:port/",
    "http://signpost.example.org",  # plain http off this machine: set-up links would travel in clear
    "https://ops:hunter2@signpost.example.org",  # a password would go into every enrolment link
]


@pytest.mark.parametrize("url", NOT_HTTPS)
def test_a_public_url_that_is_not_absolute_https_is_refused_in_one_line(cli: Cli, url: str) -> None:
    """SIGNPOST_PUBLIC_URL goes into every enrolment link: anything but an absolute https:// URL
    (http:// only for localhost) was taken as it was, and the links led nowhere."""
    result = cli("practitioner", "list", env={"SIGNPOST_PUBLIC_URL": url})
    assert (result.code, result.out) == (2, "")
    [line] = result.err.splitlines()
    assert line.startswith("signpost: bad setting: SIGNPOST_PUBLIC_URL: must ")
    assert "https://" in line and "localhost" in line
    assert "Traceback" not in result.err and "hunter2" not in result.err


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://signpost.example.org/", "https://signpost.example.org"),
        ("https://gateway.example.org/signpost", "https://gateway.example.org/signpost"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("", "http://127.0.0.1:3000"),  # empty: unset, the server's own address
    ],
)
def test_an_absolute_https_or_loopback_http_public_url_is_taken(url: str, base: str) -> None:
    assert load_settings(SIGNPOST_PUBLIC_URL=url).base_url == base


def test_several_bad_settings_give_one_kind_line_each_naming_what_is_expected(cli: Cli) -> None:
    """Every bad setting was crammed into one "bad setting: …; …" line in pydantic's words
    ("Input should be greater than or equal to 1"); now a line each, in the operator's."""
    env = {
        "SIGNPOST_PORT": "zz9-port",
        "SIGNPOST_MAX_IN_FLIGHT": "0",
        "SIGNPOST_DRAIN_SECONDS": "-1",
        "SIGNPOST_MIGRATE_ON_START": "zz9-maybe",
        "SIGNPOST_SLACK_ANSWER_BUDGET": "9",
        "SIGNPOST_TEAMS_ANONYMOUS": "zz9-secretish",
    }
    result = cli("practitioner", "list", env=env)
    assert (result.code, result.out) == (2, "")
    assert result.err.splitlines() == [
        "signpost: bad setting: SIGNPOST_PORT: must be a whole number",
        "signpost: bad setting: SIGNPOST_MAX_IN_FLIGHT: must be at least 1",
        "signpost: bad setting: SIGNPOST_DRAIN_SECONDS: must be at least 0",
        "signpost: bad setting: SIGNPOST_MIGRATE_ON_START: must be true or false (1 or 0)",
        "signpost: bad setting: SIGNPOST_SLACK_ANSWER_BUDGET: must be at most 2.5",
        "signpost: bad setting: SIGNPOST_TEAMS_ANONYMOUS: must be true or false (1 or 0)",
    ]
    assert "zz9" not in result.err and "Input should" not in result.err and "pydantic" not in result.err


def test_a_settings_error_never_quotes_the_value_given() -> None:
    """A value pasted into the wrong setting may be a secret (a token in SIGNPOST_PORT)."""
    with pytest.raises(SettingsError) as refused:
        load_settings(SIGNPOST_PORT="xoxb-0000-pasted-token", SIGNPOST_LOG_LEVEL="xoxb-0000-pasted-token")
    assert "xoxb" not in str(refused.value)
    assert str(refused.value).count("\n") == 1


NOT_IN_RANGE = [
    ("SIGNPOST_DRAIN_SECONDS", "inf", "must be a finite number"),  # a SIGTERM waited for ever
    ("SIGNPOST_DRAIN_SECONDS", "-inf", "must be a finite number"),
    ("SIGNPOST_DRAIN_SECONDS", "nan", "must be a finite number"),  # was "must be at least 0"
    ("SIGNPOST_DRAIN_SECONDS", "1e999", "must be a finite number"),  # read as inf
    ("SIGNPOST_DRAIN_SECONDS", "1e300", "must be at most 3600"),
    ("SIGNPOST_SLACK_ANSWER_BUDGET", "nan", "must be a finite number"),  # was "must be at most 2.5"
    ("SIGNPOST_MAX_IN_FLIGHT", "1" + "0" * 30, "must be at most 10000"),  # a pool of 10^30 connections
    ("SIGNPOST_PORT", "inf", "must be a whole number"),
]


@pytest.mark.parametrize(("name", "value", "expected"), NOT_IN_RANGE, ids=[f"{n}={v[:8]}" for n, v, _ in NOT_IN_RANGE])
def test_a_numeric_setting_that_is_not_finite_or_out_of_range_is_refused_in_one_line(
    name: str, value: str, expected: str
) -> None:
    """SIGNPOST_DRAIN_SECONDS=inf (or 1e300) was taken, and so was a max in flight of 10^30: every
    number a setting takes is finite and within bounds, refused in one line naming the setting."""
    with pytest.raises(SettingsError) as refused:
        load_settings(**{name: value})
    assert str(refused.value) == f"bad setting: {name}: {expected}"


def test_every_numeric_setting_has_a_floor_and_a_ceiling_and_no_infinity() -> None:
    """The one home for the bounds: Settings refuses inf and nan for every float, and each number
    it reads is declared with both bounds, so a new numeric setting cannot come without them."""
    assert Settings.model_config.get("allow_inf_nan") is False
    numeric = {f.alias: f for f in Settings.model_fields.values() if f.annotation in (int, float)}
    assert {"SIGNPOST_PORT", "SIGNPOST_DRAIN_SECONDS", "SIGNPOST_MAX_IN_FLIGHT"} <= set(numeric)
    for alias, field in numeric.items():
        bounds = {type(m).__name__ for m in field.metadata}
        assert {"Ge", "Le"} <= bounds, alias


# A URL Signpost itself calls: the Slack Web API (with the bot token) and the Teams signing keys.
CALLED_URLS = ("SIGNPOST_SLACK_API_URL", "SIGNPOST_TEAMS_JWKS_URL")
NOT_CALLABLE = [
    "http://[zz9-bad/api/",  # an IPv6 host without its ]: every Slack command was answered 500
    "zz9 not a url",
    "ftp://127.0.0.1/api/",
    "http://127.0.0.1:99999/api/",  # no such port
    "http://ops:zz9hunter2@127.0.0.1:1/api/",  # a password in it: every Slack command was answered 500
    "http://zz9-proxy.example.org/api/",  # plain http off this machine: the bot token in clear
]


@pytest.mark.parametrize("url", NOT_CALLABLE)
@pytest.mark.parametrize("name", CALLED_URLS)
def test_a_url_signpost_calls_that_it_cannot_call_is_refused_in_one_line(cli: Cli, name: str, url: str) -> None:
    """Neither was checked: a malformed SIGNPOST_SLACK_API_URL (or one with a password) answered
    every signed Slack command with HTTP 500 (the Web API client's ValueError), and a malformed
    SIGNPOST_TEAMS_JWKS_URL stopped `signpost run` with "an unexpected error" and a traceback."""
    result = cli("practitioner", "list", env={name: url})
    assert (result.code, result.out) == (2, "")
    [line] = result.err.splitlines()
    assert line.startswith(f"signpost: bad setting: {name}: must ")
    assert "https://" in line and "localhost" in line
    assert "zz9" not in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("name", CALLED_URLS)
@pytest.mark.parametrize(
    ("url", "taken"),
    [
        ("https://slack-proxy.example.org/api/", "https://slack-proxy.example.org/api/"),
        ("http://127.0.0.1:8123/api/", "http://127.0.0.1:8123/api/"),
        ("http://localhost:8123/keys", "http://localhost:8123/keys"),
        ("", None),  # empty: unset, the platform's own
    ],
)
def test_a_url_signpost_calls_is_taken_when_https_or_on_this_machine(name: str, url: str, taken: str | None) -> None:
    field = {"SIGNPOST_SLACK_API_URL": "slack_api_url", "SIGNPOST_TEAMS_JWKS_URL": "teams_jwks_url"}[name]
    assert getattr(load_settings(**{name: url}), field) == taken


SECRETS = (
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET",
)


@pytest.mark.parametrize("value", ["xoxb-zz9 secret", "xoxb-zz9secret\n", "\txoxb-zz9", "xoxb-zz9\x01"])
@pytest.mark.parametrize("name", SECRETS)
def test_a_secret_with_a_space_or_control_character_is_refused_without_quoting_it(
    cli: Cli, name: str, value: str
) -> None:
    """No secret or token holds a space, a line break or a control character: one pasted with one
    was taken, and sent in a header the HTTP client refused (every Slack call failed) or used as a
    key no sender holds."""
    result = cli("practitioner", "list", env={name: value})
    assert (result.code, result.out) == (2, "")
    assert result.err.splitlines() == [
        f"signpost: bad setting: {name}: holds a space, a line break or a control character"
    ]
    assert "zz9" not in result.err


PATH_SETTINGS = (
    "SIGNPOST_KEY_FILE",
    "SIGNPOST_SIGNING_KEY_FILE",
    "SIGNPOST_CHECKPOINT_DIR",
    "SIGNPOST_LOG_FILE",
    "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CERTPFXFILE",
)


@pytest.mark.parametrize("value", ["x/\x1b[2Jzz9.key", "zz9\n.key", "zz9\u202e.key", "zz9\udcff.key"])
@pytest.mark.parametrize("name", PATH_SETTINGS)
def test_a_path_setting_holding_a_hidden_character_is_refused_without_quoting_it(
    cli: Cli, name: str, value: str
) -> None:
    """A path that does not show as itself (ESC and the sequence it starts, a line break, a bidi
    override, a byte that is not UTF-8) acted on the terminal when an error named it
    (`SIGNPOST_KEY_FILE /…/\\x1b[2Jk.key does not exist…`): refused as a path typed on the command
    line is (bot.cli.arguments.file_path), in one line that does not repeat it."""
    result = cli("practitioner", "list", env={name: value})
    assert (result.code, result.out) == (2, "")
    assert result.err.splitlines() == [f"signpost: bad setting: {name}: {HIDDEN_IN_PATH}"]
    assert "zz9" not in result.err


def test_an_empty_signing_secret_is_unset_not_a_key_anyone_can_sign_with() -> None:
    """SLACK_SIGNING_SECRET= (left empty in a .env) turned Slack on with the empty string as the key:
    Signpost's own signature check passed any request signed with it. Empty is unset, and Slack
    half configured is refused (`signpost run` says it in one line), naming what is missing."""
    assert load_settings(SLACK_SIGNING_SECRET="", SLACK_APP_TOKEN="").slack_signing_secret is None
    with pytest.raises(SettingsError) as refused:
        front_ends(load_settings(SLACK_SIGNING_SECRET="", SLACK_BOT_TOKEN="xoxb-zz9"))
    assert str(refused.value) == "Slack is only partly configured (SLACK_BOT_TOKEN set): also set SLACK_SIGNING_SECRET"


NOT_UTF8_DOTENV = b"SIGNPOST_LOG_LEVEL=info\nSLACK_BOT_TOKEN=xoxb-zz9\xff\xfe caf\xe9\n"  # saved as Latin-1


def test_a_dotenv_file_that_is_not_utf8_is_one_line_not_a_traceback(cli: Cli, tmp_path: Path) -> None:
    """A .env with a byte that is not UTF-8 crashed every command with Python's UnicodeDecodeError
    (which quotes the bytes around it): now one line, exit 2 as for any bad setting."""
    (tmp_path / ".env").write_bytes(NOT_UTF8_DOTENV)
    result = cli("practitioner", "list")
    assert (result.code, result.out) == (2, "")
    assert result.err.splitlines() == ["signpost: the .env file is not UTF-8 text (save it as UTF-8)"]


def test_a_dotenv_line_that_is_no_setting_stops_the_command_instead_of_running_on_the_default_store(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .env naming another store, its closing quote missing: the settings library passed over the
    line with a warning and the command ran, and was audited, on ./signpost.db. It is refused now,
    in one line naming the line by its number only (it may hold a password), and nothing is run."""
    elsewhere = tmp_path / "elsewhere" / "signpost.db"
    (tmp_path / ".env").write_text(
        f'# the store\n\nSIGNPOST_LOG_LEVEL=info\n\n\nSIGNPOST_DATABASE_URL="sqlite+aiosqlite:///{elsewhere}\n'
        "SIGNPOST_LOG_FORMAT=json\n",
        "utf-8",
    )
    monkeypatch.delenv("SIGNPOST_DATABASE_URL")  # the .env is where the store is named
    result = cli("audit", "verify")
    assert (result.code, result.out) == (2, "")
    assert result.err.splitlines() == [
        "signpost: the .env file's line 6 is not NAME=value (a quote not closed?): mend it; nothing was run"
    ]
    made = {path.name for path in tmp_path.iterdir()} - {".env", "test.key"}
    assert made == set()  # no ./signpost.db, no log, no lock: nothing was run


def test_settings_read_from_a_dotenv_with_a_line_that_is_no_setting_are_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands that read settings again (the console, `teams package`, serving) get the same words."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("SIGNPOST_SLACK_SIGNING_SECRET='s3cr3t-not-closed\n", "utf-8")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == DOTENV_BAD_LINE.format(line=1)
    assert "s3cr3t" not in str(refused.value)


def test_settings_read_from_a_dotenv_file_that_is_not_utf8_are_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands that read settings again (the console, `teams package`, serving) get the same words."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(NOT_UTF8_DOTENV)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == "the .env file is not UTF-8 text (save it as UTF-8)"
    assert refused.value.__context__ is None or refused.value.__suppress_context__


@contextmanager
def named_pipe(path: Path) -> Iterator[None]:
    """A named pipe at ``path`` with no writer. Whoever opens it to read is let go at once, with
    nothing in it (a thread opens it to write, which waits for a reader, and closes it, again and
    again), so that a reading that would hang for ever fails the test instead."""
    os.mkfifo(path)
    done = threading.Event()

    def let_readers_go() -> None:
        while not done.is_set():
            os.close(os.open(path, os.O_WRONLY))

    writer = threading.Thread(target=let_readers_go, daemon=True)
    writer.start()
    try:
        yield
    finally:
        done.set()
        while writer.is_alive():  # it waits for a reader: be one, until it has seen it is done
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            writer.join(0.05)


def test_a_dotenv_that_is_a_named_pipe_is_refused_in_one_line_without_reading_it(cli: Cli, tmp_path: Path) -> None:
    """A .env that is a named pipe with no writer held every command for ever, waiting to read it.
    It is refused now, in one line (exit 2, as a bad setting), and never opened."""
    with named_pipe(tmp_path / ".env"):
        result = cli("practitioner", "list")
    assert (result.code, result.out) == (2, "")
    assert result.err.splitlines() == [f"signpost: {DOTENV_NOT_A_FILE}"]


def test_settings_read_from_a_dotenv_that_is_not_a_regular_file_are_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands that read settings again (the console, `teams package`, serving) get the same words."""
    monkeypatch.chdir(tmp_path)
    with named_pipe(tmp_path / ".env"), pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == DOTENV_NOT_A_FILE


README = Path(__file__).resolve().parents[3] / "README.md"


def settings_table() -> list[str]:
    """Every variable named in the first column of README.md's table under "### Settings"."""
    lines = README.read_text("utf-8").split("\n### Settings\n", 1)[1].splitlines()
    rows = [line for line in itertools.dropwhile(lambda line: not line.startswith("|"), lines)]
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), rows))[2:]  # header and rule
    assert rows, "no settings table under ### Settings"
    return [name for row in rows for name in re.findall(r"`([A-Z_][A-Z0-9_]*)`", row.split("|")[1])]


def test_the_readme_settings_table_names_every_setting_signpost_reads_and_no_other() -> None:
    """A newcomer following the README found SIGNPOST_DEV_CLOCK and the SIGNPOST_TEAMS_* settings
    missing from its table: the table and the settings model are now held equal, both ways."""
    named = settings_table()
    assert len(named) == len(set(named)), "a setting is listed twice"
    read = {field.alias for field in Settings.model_fields.values() if field.alias} | OTHER_NAMES
    assert set(named) == read, (sorted(read - set(named)), sorted(set(named) - read))


ROOT = README.parent
SIGNPOST_NAME = re.compile(r"SIGNPOST_[A-Z0-9_]+")


def names_read_or_set(path: Path) -> set[str]:
    """SIGNPOST_* names a module reads or sets: ``environ.get("X")``, ``getenv("X")``,
    ``environ.setdefault("X", …)``, ``environ["X"]``, ``env["X"] = …``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in {
            "get",
            "getenv",
            "pop",
            "setdefault",
        }:
            key = node.args[0] if node.args else None
        elif isinstance(node, ast.Subscript):
            key = node.slice
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and SIGNPOST_NAME.fullmatch(key.value):
            found.add(key.value)
    return found


def test_every_signpost_variable_the_code_tests_or_makefile_use_is_known_and_in_the_readme() -> None:
    """`make fuzz` set SIGNPOST_FUZZ_EXAMPLES, read by tests/hostile, which neither the README's table
    named nor `signpost` knew: a developer who exported it was told it was a misspelling of
    SIGNPOST_LOG_FILE. Every SIGNPOST_* name read or set anywhere is now one Signpost knows."""
    used: dict[str, str] = {}
    for folder in ("bot", "handlers", "store", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            used.update(dict.fromkeys(names_read_or_set(path), str(path.relative_to(ROOT))))
    makefile = (ROOT / "Makefile").read_text("utf-8")
    used.update(dict.fromkeys(re.findall(r"\b(SIGNPOST_[A-Z0-9_]+)=", makefile), "Makefile"))
    assert "SIGNPOST_DATABASE_URL" in used and "SIGNPOST_TEST_POSTGRES_URL" in used  # the scan finds reads
    unknown = {name: where for name, where in used.items() if name not in known_names()}
    assert unknown == {}, f"SIGNPOST_* names used but neither known nor in README's table: {unknown}"


@pytest.mark.parametrize(("name", "values"), [("SIGNPOST_LOG_FORMAT", LOG_FORMATS), ("SIGNPOST_LOG_LEVEL", LEVELS)])
def test_the_readme_settings_table_names_every_value_a_choice_setting_takes(name: str, values: tuple[str, ...]) -> None:
    """README gave `console` and "JSON lines" for SIGNPOST_LOG_FORMAT but never the value `json`."""
    lines = README.read_text("utf-8").split("\n### Settings\n", 1)[1].splitlines()
    [row] = [line for line in lines if line.startswith(f"| `{name}` |")]
    assert [value for value in values if f"`{value}`" not in row] == []


def test_a_failure_reading_the_settings_is_logged_on_signposts_path_with_no_frames_variables(
    cli: Cli, tmp_path: Path
) -> None:
    """A failure before the settings are read (a .env the disk cannot read: EIO) was logged by
    structlog's default, not Signpost's: rich's traceback, with every frame's local variables (the
    command line, the parsed arguments) and the library's message, as boxes of text in the log."""
    (tmp_path / ".env").symlink_to("/proc/self/mem")  # a regular file whose first byte cannot be read: EIO
    result = cli("audit", "verify")
    assert (result.code, result.out) == (1, "")
    *logged, said = result.err.splitlines()
    assert said == "signpost: stopped by an unexpected error (OSError); the log says where"
    [crash] = [json.loads(line) for line in logged]  # JSON, as SIGNPOST_LOG_FORMAT's default gives off a terminal
    assert crash["event"] == "command_crashed" and crash["exception"][0]["exc_value"] == WITHHELD
    assert "locals" not in result.err and "Namespace(" not in result.err


TEAMS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


@pytest.mark.parametrize("given", ["a folder", "no such file"])
def test_a_teams_certificate_that_cannot_be_read_is_refused_at_start(tmp_path: Path, given: str) -> None:
    """A CERTPFXFILE naming a folder, or nothing, was taken: `signpost run` started and served, and
    every answer to Teams failed later, when the certificate was first read for a token. Now
    `signpost run` stops at start (a SettingsError: one line), naming the setting and the path."""
    certificate = tmp_path / "bot-pfx"
    if given == "a folder":
        certificate.mkdir()
    values = {
        TEAMS + "CLIENTID": "6c1f4b1e-0b7e-4a47-9d8f-5a8f7e3c2b10",
        TEAMS + "TENANTID": "5a1d7c2e-3f4b-4e6a-8b9c-0d1e2f3a4b5c",
        TEAMS + "CERTPFXFILE": str(certificate),
    }
    with pytest.raises(SettingsError) as refused:
        front_ends(load_settings(**values))
    [line] = str(refused.value).splitlines()
    assert line.startswith(f"{TEAMS}CERTPFXFILE {certificate} ")
