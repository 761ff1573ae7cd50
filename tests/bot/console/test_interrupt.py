"""Ctrl-C ends the console at once, says so, and exits with status 130: at the prompt on a real
(pseudo-)terminal, at the code prompt, and when a pipe that stays open feeds it. The real `signpost`
process of this checkout, waited on by what it prints (never by sleeping), with generous timeouts."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.app import Signpost
from store.keys.crypto import KeyRing
from tests.factories import AMY, load_standard

pytestmark = pytest.mark.one_store  # a terminal's keys and signals: one store shows them (tests/spread.py)

ROOT = Path(__file__).resolve().parents[3]  # this checkout, not whichever one is installed
PATIENCE = 60.0  # seconds: long enough for a loaded machine; the old console never ended at all
# `signpost console --as P002`, with SIGINT handled as at an interactive shell (a test runner may have
# been started with it ignored) and, on a terminal, that terminal as its controlling terminal, so
# that Ctrl-C typed there reaches it as it does at a real terminal.
LAUNCH = (
    "import fcntl, os, runpy, signal, sys, termios\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "if os.isatty(0):\n"
    "    fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "sys.argv = ['signpost', 'console', '--as', 'P002']\n"
    "runpy.run_module('bot', run_name='__main__')\n"
)


@pytest.fixture
async def env(signpost: Signpost, db_url: str, keys: KeyRing) -> Mapping[str, str]:
    """Settings for a `signpost` process on this test's store, running this checkout's code."""
    await load_standard(signpost)
    assert keys.path is not None
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
        "SIGNPOST_DATABASE_URL": db_url,
        "SIGNPOST_KEY_FILE": str(keys.path),
        "SIGNPOST_LOG_FORMAT": "json",
    }


class Terminal:
    """`signpost console` on a pseudo-terminal of its own: keys typed in, the screen read back."""

    def __init__(self, env: Mapping[str, str], cwd: Path, launch: str = LAUNCH) -> None:
        self.master, slave = pty.openpty()
        self.stderr = cwd / "stderr.txt"
        with self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", launch],
                stdin=slave,
                stdout=slave,
                stderr=err,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        os.close(slave)  # the process holds the only copy: reading the master ends when it exits
        self.screen = b""

    def expect(self, text: str) -> None:
        """Read the screen until ``text`` is on it; fail with the screen if it never comes."""
        while text.encode() not in self.screen:
            ready, _, _ = select.select([self.master], [], [], PATIENCE)
            chunk = self._read() if ready else b""
            if not chunk:
                raise AssertionError(f"{text!r} never appeared:\n{self.screen.decode(errors='replace')}")
            self.screen += chunk

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self) -> int:
        """The exit status, once the process ends by itself (killed after PATIENCE seconds)."""
        try:
            status = self.process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"still running after Ctrl-C:\n{self.screen.decode(errors='replace')}") from None
        while chunk := self._read():  # the rest of what it printed
            self.screen += chunk
        return status

    def modes(self) -> int:
        """The terminal's local modes (ECHO, ICANON…) as the process left them."""
        return int(termios.tcgetattr(self.master)[3])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)

    def _read(self) -> bytes:
        try:
            return os.read(self.master, 4096)
        except OSError:  # EIO: the terminal's other side has closed (Linux)
            return b""


async def interrupted(env: Mapping[str, str], cwd: Path, *steps: tuple[str, str]) -> tuple[Terminal, int, int]:
    """The console on a terminal, each step's keys typed once its text is on the screen (the last
    ends it); the terminal, the exit status and the modes it left."""
    terminal = Terminal(env, cwd)
    try:
        for shown, keys in steps:
            await asyncio.to_thread(terminal.expect, shown)
            terminal.type(keys)
        status = await asyncio.to_thread(terminal.finish)
        return terminal, status, terminal.modes()
    finally:
        terminal.close()


async def test_ctrl_c_at_the_prompt_ends_the_console_at_once(env: Mapping[str, str], tmp_path: Path) -> None:
    """Ctrl-C at `P002> ` ends the console without waiting for Enter: a new line, "Bye.", status 130,
    the terminal's echo and line editing back as they were, and no traceback."""
    terminal, status, modes = await interrupted(env, tmp_path, ("P002> ", "\x03"))
    assert status == 130
    assert re.search(r"P002> (\^C)?\r\nBye\.\r\n\Z", terminal.screen.decode())  # ^C: if the terminal echoes it
    assert modes & termios.ECHO and modes & termios.ICANON
    assert "Traceback" not in terminal.stderr.read_text("utf-8")


async def test_ctrl_c_at_the_code_prompt_ends_the_console_and_sends_no_code(
    env: Mapping[str, str], tmp_path: Path
) -> None:
    """Ctrl-C at the hidden `Code: ` prompt ends the console too, with echo back on, and nothing is
    sent as a code."""
    terminal, status, modes = await interrupted(env, tmp_path, ("P002> ", "enrol\r"), ("Code: ", "\x03"))
    assert status == 130
    assert re.search(r"Code: (\^C)?\r\nBye\.\r\n\Z", terminal.screen.decode())
    assert modes & termios.ECHO and modes & termios.ICANON
    assert '"action": "code"' not in (tmp_path / "signpost.log").read_text("utf-8")


async def test_sigint_ends_a_piped_console_waiting_for_a_code(env: Mapping[str, str], tmp_path: Path) -> None:
    """SIGINT to a scripted console waiting for a code on a pipe that stays open ends it with "Bye."
    and status 130. (The code is read straight after the challenge is printed, so the console is
    surely waiting on its input when the signal comes.) The code asked for is the first one of an
    authenticator the operator issued: a piped console issues none itself."""
    enrolled = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "totp",
        "enrol",
        "P002",
        "--secret-file",
        "p002.secret",
        env=dict(env),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, enrol_err = await asyncio.wait_for(enrolled.communicate(), timeout=PATIENCE)
    assert enrolled.returncode == 0, enrol_err.decode()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LAUNCH,
        env=dict(env),
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    try:
        process.stdin.write(f"{AMY}\n".encode())
        await process.stdin.drain()
        seen: list[str] = []
        while not seen or "to finish setting it up" not in seen[-1]:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=PATIENCE)
            assert line, "output ended early:\n" + "\n".join(seen)
            seen.append(line.decode().rstrip("\n"))
        process.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(process.stdout.read(), timeout=PATIENCE)  # stdin stays open
        await asyncio.wait_for(process.wait(), timeout=PATIENCE)
        err = await process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130
    assert rest.decode().splitlines() == ["Bye."]
    assert "Traceback" not in err.decode()
    assert '"action": "code"' not in (tmp_path / "signpost.log").read_text("utf-8")


@pytest.mark.parametrize("prompt", ["P002> ", "Code: "])
async def test_ctrl_d_on_a_terminal_leaves_on_a_line_of_its_own(
    env: Mapping[str, str], tmp_path: Path, prompt: str
) -> None:
    """Ctrl-D at a prompt ended the console with the cursor still after `P002> ` (or `Code: `), so
    the shell's own prompt followed it on that line; it now ends that line first (status 0, as quit)."""
    steps = [("P002> ", "\x04")] if prompt == "P002> " else [("P002> ", "enrol\r"), ("Code: ", "\x04")]
    terminal, status, modes = await interrupted(env, tmp_path, *steps)
    assert status == 0
    assert re.search(re.escape(prompt) + r"(\^D)?\r\n\Z", terminal.screen.decode()), terminal.screen[-80:]
    assert modes & termios.ECHO and modes & termios.ICANON


# As LAUNCH, with the hang-up signal ignored: closing the terminal then ends only its reads and
# writes, as when the signal has not come yet (a shell that got it passes it on after, or `nohup`),
# so that the console itself meets the terminal gone (an SSH connection dropped, a window closed).
SIGINT_LINE = "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
NO_HANGUP_SIGNAL = LAUNCH.replace(SIGINT_LINE, SIGINT_LINE + "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n")


@pytest.mark.parametrize("prompt", ["P002> ", "Code: "])
async def test_a_closed_terminal_ends_the_console_quietly(env: Mapping[str, str], tmp_path: Path, prompt: str) -> None:
    """The terminal closed at a prompt (its master side, as a terminal window or sshd does) ends the
    console as Ctrl-D does: status 0, and no crash or traceback in the log nor on stderr. It had
    written the new line that ends the prompt's line to the dead terminal, failed, and logged
    `command_crashed` with an OSError's traceback."""
    assert NO_HANGUP_SIGNAL != LAUNCH
    terminal = Terminal(env, tmp_path, NO_HANGUP_SIGNAL)
    try:
        await asyncio.to_thread(terminal.expect, "P002> ")
        if prompt == "Code: ":
            terminal.type("enrol\r")
            await asyncio.to_thread(terminal.expect, "Code: ")
        os.close(terminal.master)
        status = await asyncio.to_thread(terminal.process.wait, PATIENCE)
    finally:
        if terminal.process.poll() is None:
            terminal.process.kill()
            terminal.process.wait()
    log = (tmp_path / "signpost.log").read_text("utf-8")
    assert "command_crashed" not in log and "Traceback" not in log, log
    said = [json.loads(line) for line in log.splitlines()]
    # Nor a warning (getpass's, that it could not hide the code); the store's own are no matter here.
    assert [entry for entry in said if entry["logger"] in ("signpost.cli", "signpost.stray")] == [], log
    closed = [entry for entry in said if entry["event"] == "console_terminal_closed"]
    assert [entry["level"] for entry in closed] == ["info"]
    assert "Traceback" not in terminal.stderr.read_text("utf-8")
    assert status == 0
