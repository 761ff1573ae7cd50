"""A script driving `signpost console` over pipes, line by line (README: it "prints each reply"): each
reply can be read before the next line is sent, without PYTHONUNBUFFERED (the review's newcomer saw
nothing until the console exited)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.bot.cli.conftest import Cli

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

META_HELP_LAST = "  quit or exit          leave (Ctrl-D or Ctrl-C too)"
GIVE_UP = 300.0
"""Seconds after which a console that never answers is killed, so a reply held in its buffer fails
the test (readline sees the end) instead of hanging the run: a bound on a hang, not a timing."""


async def test_each_reply_is_read_before_the_next_line_is_sent(cli: Cli, tmp_path: Path) -> None:
    assert (await cli.run("seed-demo", "--if-empty", "--children", "10")).code == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    console = subprocess.Popen(
        [sys.executable, "-m", "bot", "console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        text=True,
    )
    assert console.stdin is not None and console.stdout is not None
    watchdog = threading.Timer(GIVE_UP, console.kill)
    watchdog.start()
    try:
        for typed in ("help", "?"):
            console.stdin.write(typed + "\n")
            console.stdin.flush()  # stdin stays open: the reply must come while the console waits
            while (line := console.stdout.readline()) and line.rstrip("\n") != META_HELP_LAST:
                pass
            assert line, f"the console ended before answering {typed!r}"
        console.stdin.write("quit\n")
        console.stdin.close()
        assert console.wait() == 0
    finally:
        watchdog.cancel()
        if console.poll() is None:
            console.kill()
            console.wait()
