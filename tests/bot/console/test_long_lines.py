"""A line piped into the console is read at most a command's length at a time: one too long is
answered kindly as too long (its rest skipped), and an input with no line end at all
(``< /dev/zero``, read until memory ran out) is answered once and ends."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bot.app import Signpost
from bot.console.console import Console
from handlers.grammar import MAX_COMMAND_TEXT
from tests.access_helpers import audit_events
from tests.bot.cli.test_console_piped import META_HELP_LAST as HELP_LAST
from tests.bot.process import run_signpost, standard_store
from tests.factories import seed_demo

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

TOO_LONG = "That message is too long for a command"


async def test_a_line_too_long_is_answered_as_too_long_and_the_next_line_is_read(signpost: Signpost) -> None:
    await seed_demo(signpost)
    out = io.StringIO()
    typed = io.StringIO("A " * (2 * MAX_COMMAND_TEXT) + "\nhelp\n")
    assert await Console(signpost, "NS-P0001", typed, out).run() == 0
    said = out.getvalue()
    assert said.count(TOO_LONG) == 1 and "A A" not in said
    assert [(e.action, e.detail) for e in await audit_events(signpost) if e.platform == "console"][-2:] == [
        ("usage", "too long"),
        ("help", ""),
    ]


async def test_an_input_with_no_line_end_is_answered_once_and_ends(signpost: Signpost) -> None:
    """/dev/zero: one "too long" answer, then the console ends, saying the rest of its input was not
    read (it ended at the end of its input, exit 0, saying nothing), exit 1."""
    await seed_demo(signpost)
    out = io.StringIO()
    with open("/dev/zero", encoding="utf-8") as zeros:
        assert await Console(signpost, "NS-P0001", zeros, out).run() == 1
    assert out.getvalue().count(TOO_LONG) == 1
    assert out.getvalue().endswith("No line end in the 64 MB after that line, so the rest of the input was not read.\n")


def test_a_piped_line_of_megabytes_is_answered_and_the_lines_after_it_run(db_url: str, tmp_path: Path) -> None:
    """A real `signpost console` fed a line of 2 MB: it skipped a megabyte looking for the line's end,
    then ended the session, exit 0, saying nothing of the commands after it, which never ran. The
    line is answered as too long, and the next lines are read and answered."""
    env = standard_store(db_url, tmp_path)
    typed = "x" * (2 * 1024 * 1024) + "\nhelp\nquit\n"
    done = run_signpost("console", "--as", "P001", cwd=tmp_path, env=env, stdin=typed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(TOO_LONG) == 1 and "xxxx" not in done.stdout
    assert done.stdout.index(TOO_LONG) < done.stdout.index(HELP_LAST)
    exported = run_signpost("audit", "export", cwd=tmp_path, env=env)
    console = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(e["action"], e["detail"]) for e in console if e["platform"] == "console"][-2:] == [
        ("usage", "too long"),
        ("help", ""),
    ]
