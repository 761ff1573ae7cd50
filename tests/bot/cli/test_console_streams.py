"""`signpost console` started without a usable input or output, as a real process: a closed stdin
(`<&-`), a closed stdout (`>&-`) or one that cannot be written (`>/dev/full`). Each ended "stopped
by an unexpected error (AttributeError/OSError)" with a `command_crashed` traceback in the log; now
one kind line on stderr and exit 2, and nothing in the log."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.console.console import NEEDS_STREAMS
from tests.bot.process import standard_store

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


def console_with(
    env: dict[str, str], cwd: Path, *, closing: int | None = None, stdout: str | None = None
) -> tuple[int, str]:
    """`signpost console --as P001` fed "help", with file descriptor ``closing`` closed as it starts
    (0: `<&-`, 1: `>&-`) or its stdout opened on ``stdout``: its exit status and stderr."""
    with open(stdout if stdout is not None else os.devnull, "w") as out:
        result = signpost_with(
            env, cwd, "console", "--as", "P001", closing=closing, stdin="help\n", stdout=out, stderr=subprocess.PIPE
        )
    return result.returncode, result.stderr


def signpost_with(
    env: dict[str, str], cwd: Path, *args: str, closing: int | None, stdin: str, stdout: Any, stderr: Any
) -> subprocess.CompletedProcess[str]:
    """The real `signpost ARGS…` with file descriptor ``closing`` closed as it starts (0: `<&-`,
    1: `>&-`, 2: `2>&-`)."""
    close: Callable[[], None] | None = None if closing is None else lambda: os.close(closing)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=env,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=close,  # after the child's streams are set up, before Signpost starts
    )


@pytest.mark.parametrize(
    ("closing", "stdout", "said"),
    [
        (0, None, "its input is closed"),
        (1, None, "its output is closed"),
        (None, "/dev/full", "its output cannot be written (No space left on device)"),
    ],
    ids=["stdin closed", "stdout closed", "stdout full"],
)
def test_a_console_without_usable_streams_says_so_in_one_line(
    db_url: str, tmp_path: Path, closing: int | None, stdout: str | None, said: str
) -> None:
    env = standard_store(db_url, tmp_path)
    status, err = console_with(env, tmp_path, closing=closing, stdout=stdout)
    assert status == 2, err
    assert [line for line in err.splitlines() if not line.startswith("{")] == [f"signpost: {NEEDS_STREAMS}: {said}"]
    log = tmp_path / "signpost.log"  # the console's log: written only once the streams were there
    assert "command_crashed" not in (log.read_text("utf-8") if log.exists() else "")
    assert "Traceback" not in err and "Exception ignored" not in err


def test_a_command_started_with_stderr_closed_runs_without_a_traceback(db_url: str, tmp_path: Path) -> None:
    """`signpost … 2>&-`: Python leaves sys.stderr None, and setting up the log crashed every
    command with a traceback (its frames' variables shown) on stdout. It runs now, what it would
    say on stderr going nowhere, as the shell asked."""
    env = standard_store(db_url, tmp_path)
    result = signpost_with(
        env, tmp_path, "practitioner", "list", closing=2, stdin="", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout == "No practitioner has a linked chat identity.\n"  # its answer, and nothing else
