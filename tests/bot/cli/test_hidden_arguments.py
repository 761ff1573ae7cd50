"""Terminal control sequences in what an operator names on the command line (a hostile review): a
file path holding ESC (`signpost backup $'x/\\x1b[2Jb.db'`) was printed raw, so the terminal ran the
sequence (here: clear the screen), and audited raw, so `audit export --format csv` wrote the ESC byte
into a spreadsheet; the SIGNPOST_KEY_FILE error did the same. A child reference with a control
character inside (`audit sar $'999\\x07000\\x1b1006'`) was read as the reference its digits make. Chat
and `--actor` refuse text that does not show as itself; so now does every path and every child
reference, with the command's usage, before any store is opened: nothing is written or audited.

These run the real `signpost` process, as an operator at a shell would. Every refusal comes before
the store is opened, so one backend shows it."""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from bot.cli.main import commands, parser
from tests.bot.process import clean_environment, run_signpost, standard_store
from tests.databases import Templates
from tests.factories import CHILDREN

pytestmark = pytest.mark.sqlite_only

CLEAR_SCREEN = "\x1b[2J"
AMY_WITH_CONTROLS = "999\x07000\x1b0018"  # 999 000 0018, a bell and an ESC between its digits
HIDDEN = "control character or an invisible formatting mark"
STORE = "store.db"


@pytest.fixture(scope="module")
def imported(templates: Templates, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a SQLite store and its key file, the standard feeds imported through a real
    `signpost import`: once for the module (that process was a quarter of each test's time), and
    each test works on copies of its own (``env``). No test here changes what it copies: every
    refusal comes before the store is opened, and each test counts the audit events it finds."""
    folder = tmp_path_factory.mktemp("imported")
    copy = templates.sqlite().split("///", 1)[1]
    shutil.copyfile(copy, folder / STORE)
    standard_store(f"sqlite+aiosqlite:///{folder / STORE}", folder)
    with sqlite3.connect(folder / STORE) as conn:  # the write-ahead log folded in: a file copy is whole
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder


@pytest.fixture
def env(backend: str, imported: Path, tmp_path: Path) -> dict[str, str]:
    """A clean environment on this test's own copy of the imported store and its key file."""
    assert backend == "sqlite"  # the module is sqlite_only: a file copy is the store's copy
    for name in (STORE, "signpost.key"):
        shutil.copy2(imported / name, tmp_path / name)  # the key file's mode too (0600)
    return clean_environment(f"sqlite+aiosqlite:///{tmp_path / STORE}", tmp_path)


def audit_events(env: dict[str, str], cwd: Path) -> list[dict[str, object]]:
    exported = run_signpost("audit", "export", env=env, cwd=cwd)
    assert exported.returncode == 0, exported.stderr
    return [json.loads(line) for line in exported.stdout.splitlines()]


def said(stderr: str) -> list[str]:
    """What the command told the operator: stderr without its JSON log lines."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def refused_with_usage(run: subprocess.CompletedProcess[str], command: str, argument: str) -> None:
    assert run.returncode == 2 and run.stdout == "", (run.stdout, run.stderr)
    lines = said(run.stderr)
    assert lines[0].startswith(f"usage: signpost {command}"), run.stderr
    assert argument in lines[-1] and HIDDEN in lines[-1], run.stderr
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "unexpected error" not in run.stderr


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("backup", ("x/" + CLEAR_SCREEN + "b.db",)),
        ("import", ("x/" + CLEAR_SCREEN + "children.csv",)),
        ("audit verify", ("--checkpoint", "x/" + CLEAR_SCREEN + "c.note")),
    ],
    ids=["backup", "import", "audit-verify"],
)
def test_a_path_holding_a_control_sequence_is_refused_with_the_usage(
    env: dict[str, str], tmp_path: Path, command: str, args: tuple[str, ...]
) -> None:
    """Refused before anything runs: no file written, nothing audited, and no ESC on the terminal."""
    (tmp_path / "x").mkdir()
    if command == "import":
        (tmp_path / "x" / (CLEAR_SCREEN + "children.csv")).write_text(CHILDREN, encoding="utf-8")
    before = audit_events(env, tmp_path)
    run = run_signpost(*command.split(), *args, env=env, cwd=tmp_path)
    refused_with_usage(run, command, "path")
    assert "hidden character" in said(run.stderr)[-1], run.stderr
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == (
        [CLEAR_SCREEN + "children.csv"] if command == "import" else []
    )
    after = audit_events(env, tmp_path)
    assert len(after) == len(before) + 1  # the export just above, and nothing else
    assert "\x1b" not in json.dumps(after, ensure_ascii=False)


def test_a_checkpoint_folder_holding_a_file_with_a_control_sequence_in_its_name_is_one_line_without_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The folder is typed plainly, but a file found in it was named in what verify printed."""
    (tmp_path / "cp").mkdir()
    (tmp_path / "cp" / f"checkpoint-{CLEAR_SCREEN}.note").write_text("not a checkpoint\n", encoding="utf-8")
    run = run_signpost("audit", "verify", "--checkpoint", "cp", env=env, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    [line] = said(run.stderr)
    assert line.startswith("signpost: cp holds a checkpoint file whose name has a hidden character"), run.stderr
    assert "\x1b" not in run.stderr


def test_a_key_file_setting_holding_a_control_sequence_is_one_line_without_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "x").mkdir()
    hostile = {**env, "SIGNPOST_KEY_FILE": str(tmp_path / "x" / (CLEAR_SCREEN + "k.key"))}
    run = run_signpost("audit", "export", env=hostile, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    [line] = said(run.stderr)
    assert line.startswith("signpost: bad setting: SIGNPOST_KEY_FILE: ") and HIDDEN in line, run.stderr
    assert "\x1b" not in run.stderr
    assert list((tmp_path / "x").iterdir()) == []  # no key file made under that name


@pytest.mark.parametrize(
    ("command", "args", "argument"),
    [
        ("audit sar", (AMY_WITH_CONTROLS,), "CHILD_REF"),
        ("audit sar", ("999\x1b000", "0018"), "CHILD_REF"),
        ("audit export", ("--child", "999\x1b000", "0018"), "--child"),
        ("audit export", ("--child", AMY_WITH_CONTROLS), "--child"),
    ],
    ids=["sar", "sar-in-words", "export-in-words", "export"],
)
def test_a_child_reference_holding_a_control_character_is_refused_with_the_usage(
    env: dict[str, str], tmp_path: Path, command: str, args: tuple[str, ...], argument: str
) -> None:
    """As chat answers such text with usage, never reads it: no report, no rows, nothing audited."""
    before = audit_events(env, tmp_path)
    run = run_signpost(*command.split(), *args, env=env, cwd=tmp_path)
    refused_with_usage(run, command, argument)
    assert "reference" in said(run.stderr)[-1]
    assert len(audit_events(env, tmp_path)) == len(before) + 1  # the export just above, and nothing else


def test_the_same_reference_typed_plainly_still_gives_its_report(env: dict[str, str], tmp_path: Path) -> None:
    """Spaces and dashes between the digits are still read, as printed (999 000 0018)."""
    run = run_signpost("audit", "sar", "999", "000-0018", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "999 000 0018" in run.stdout


@pytest.mark.parametrize(
    ("command", "args", "argument"),
    [
        ("audit sar", ("999-000-0018x",), "CHILD_REF"),
        ("audit sar", ("ref", "999", "000", "0018"), "CHILD_REF"),
        ("audit sar", ("99900000180",), "CHILD_REF"),
        ("audit export", ("--child", "#9990000018"), "--child"),
    ],
    ids=["letter-after", "word-before", "eleven-digits", "export-sign-before"],
)
def test_a_child_reference_with_more_than_its_digits_is_refused_with_the_usage(
    env: dict[str, str], tmp_path: Path, command: str, args: tuple[str, ...], argument: str
) -> None:
    """Chat reads a reference only in the shape ``looks_like_reference`` takes (ten digits, spaces or
    dashes between them): `audit sar 999-000-0018x` made Amy Jones's report from the digits it held."""
    before = audit_events(env, tmp_path)
    run = run_signpost(*command.split(), *args, env=env, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == "", (run.stdout, run.stderr)
    lines = said(run.stderr)
    assert lines[0].startswith(f"usage: signpost {command}"), run.stderr
    assert argument in lines[-1] and "ten digits" in lines[-1], run.stderr
    assert "Traceback" not in run.stderr
    assert len(audit_events(env, tmp_path)) == len(before) + 1  # the export just above, and nothing else


def test_no_command_reads_a_path_unchecked() -> None:
    """Every argument naming a file or folder is read by the one check (``bot.cli.arguments.file_path``),
    so a command added later cannot take a path that prints a control sequence: none reads a bare Path."""
    from bot.cli.arguments import file_path

    paths = {}
    for name, command in commands(parser()).items():
        for action in command._actions:
            if action.metavar in {"FILE", "KEYFILE", "PATH", "FILE.csv", "FOLDER", "DIR"} or action.type is Path:
                paths[f"{name} {'/'.join(action.option_strings) or action.metavar}"] = action.type
    assert paths and all(read is file_path for read in paths.values()), paths
    with pytest.raises(argparse.ArgumentTypeError):
        file_path("a\tb")  # a tab or line break in a file's name is not a space: it does not show as itself
