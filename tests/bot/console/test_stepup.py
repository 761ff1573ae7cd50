"""End to end in the terminal: the real `signpost` process, codes computed by pyotp as an app would."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import sys
import tty
from collections.abc import Mapping
from pathlib import Path

import pyotp
import pytest

from bot.app import Signpost
from bot.console.console import NOT_A_TERMINAL, PIPED_ENROL
from handlers.stepup import flow as stepup
from store.keys.crypto import KeyRing
from tests.factories import AMY, load_standard

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

SECRET_LINE = re.compile(r"Secret \(if you can't scan\): ([A-Z2-7 ]+)")
ANSWER = "Signposts for 999 000 0018: 3 involvements."


@pytest.fixture
async def env(signpost: Signpost, db_url: str, keys: KeyRing, tmp_path: Path) -> Mapping[str, str]:
    """Settings for a `signpost` process on this test's database and key file (no .env: cwd is empty)."""
    await load_standard(signpost)
    assert keys.path is not None
    return {
        **os.environ,
        "SIGNPOST_DATABASE_URL": db_url,
        "SIGNPOST_KEY_FILE": str(keys.path),
        "SIGNPOST_LOG_FORMAT": "json",
    }


class Process:
    """A running `signpost` command fed lines on a pipe, its stdout a (pseudo-)terminal read line by
    line: the console issues an authenticator secret only to a terminal, never into a pipe."""

    def __init__(self, process: asyncio.subprocess.Process, screen: int) -> None:
        self.process = process
        self.screen = screen  # the terminal's master side: what the console prints
        self.pending = b""
        self.seen: list[str] = []

    @classmethod
    async def start(cls, env: Mapping[str, str], cwd: Path, *args: str) -> Process:
        screen, terminal = pty.openpty()
        tty.setraw(terminal)  # lines as printed, "\n" not turned into "\r\n"
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                *args,
                env=dict(env),
                cwd=cwd,
                stdin=asyncio.subprocess.PIPE,
                stdout=terminal,
                stderr=asyncio.subprocess.PIPE,
            )
        finally:
            os.close(terminal)  # the process holds the only copy: reading ends when it exits
        return cls(process, screen)

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())
        await self.process.stdin.drain()

    def _line(self) -> bytes:
        """The next line printed (b"" once the process has closed the terminal), within 60 seconds."""
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.screen], [], [], 60)
            if not ready:
                raise AssertionError("nothing printed for 60 seconds:\n" + "\n".join(self.seen))
            try:
                chunk = os.read(self.screen, 4096)
            except OSError:  # EIO: the terminal's other side has closed (Linux)
                chunk = b""
            if not chunk:
                line, self.pending = self.pending, b""
                return line
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line + b"\n"

    async def expect(self, pattern: str) -> re.Match[str]:
        """Read output until a line matches; fail with everything seen if it never does."""
        while True:
            raw = await asyncio.to_thread(self._line)
            if not raw:
                raise AssertionError(f"output ended before {pattern!r}:\n" + "\n".join(self.seen))
            line = raw.decode().rstrip("\n")
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    async def finish(self) -> tuple[int, str]:
        assert self.process.stdin is not None and self.process.stderr is not None
        self.process.stdin.close()
        try:
            err = await asyncio.wait_for(self.process.stderr.read(), timeout=60)
            await asyncio.wait_for(self.process.wait(), timeout=60)
            while raw := await asyncio.to_thread(self._line):
                self.seen.append(raw.decode().rstrip("\n"))
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            os.close(self.screen)
        return self.process.returncode or 0, err.decode()


async def run(env: Mapping[str, str], cwd: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


def secret_from(text: str) -> str:
    found = SECRET_LINE.search(text)
    assert found is not None, text
    return found.group(1).replace(" ", "")


async def test_console_user_enrols_and_searches_with_an_authenticator_code(
    env: Mapping[str, str], tmp_path: Path
) -> None:
    """A demo user with no credential: search → told to enrol → QR and secret → code → results."""
    console = await Process.start(env, tmp_path, "console", "--as", "P001")
    await console.expect(r"acting as P001")
    await console.send(AMY)
    await console.expect(r"Send: enrol")
    await console.send("enrol")
    await console.expect("▀")  # the QR code, drawn in the terminal
    secret = secret_from((await console.expect(SECRET_LINE.pattern)).group(0))
    await console.expect(r"Enter the 6-digit code .* to finish setting it up")
    code = pyotp.TOTP(secret).now()
    await console.send(code)
    await console.expect(r"You're set up")
    await console.send(AMY)
    await console.expect(re.escape(ANSWER))
    await console.expect(r"Sam Carter")
    await console.send(":quit")
    status, stderr = await console.finish()
    assert status == 0
    logs = (tmp_path / "signpost.log").read_text("utf-8")  # the console's log file, not the conversation
    assert '"action": "code"' in logs and secret not in logs and code not in logs
    assert secret not in stderr and code not in stderr


async def test_a_piped_console_refuses_to_enrol_and_prints_no_secret(env: Mapping[str, str], tmp_path: Path) -> None:
    """The newcomer's `printf 'enrol\\n' | signpost console | cat`: no QR code, no secret, the reason
    and what to do instead; the console carries on (a later search says how to set one up where a
    pipe cannot: not "Send: enrol", refused here)."""
    status, out, err = await run(env, tmp_path, "console", "--as", "P001", stdin=f"enrol\n{AMY}\n:quit\n")
    assert status == 0, err
    instead = stepup.NOT_ENROLLED.instead(PIPED_ENROL.format(id="P001", at="search"))
    assert NOT_A_TERMINAL in out and instead in out and "send: enrol" not in out.lower()
    assert "Secret" not in out and "otpauth" not in out and not {"▀", "▄", "█"} & set(out)


async def test_operator_enrols_then_the_first_console_code_confirms_and_answers(
    env: Mapping[str, str], tmp_path: Path
) -> None:
    """`signpost totp enrol --secret-file` writes the secret; the practitioner's first search asks for a
    code and runs."""
    status, out, _ = await run(env, tmp_path, "totp", "enrol", "P002", "--secret-file", "p002.secret")
    written = (tmp_path / "p002.secret").read_text("utf-8")
    assert status == 0 and "█" in written and "P002" in out
    code = pyotp.TOTP(secret_from(written)).now()
    script = f"Amy Jones 03/04/2014\n{code}\n:quit\n"
    status, out, logs = await run(env, tmp_path, "console", "--as", "P002", stdin=script)
    assert status == 0, logs
    assert "to finish setting it up" in out and ANSWER in out
    assert code not in logs and "Amy" not in logs

    status, _, err = await run(env, tmp_path, "totp", "enrol", "P002", "--secret-file", "again.secret")
    assert status == 2 and "--replace" in err and not (tmp_path / "again.secret").exists()


async def test_operator_reset_is_audited_and_the_practitioner_must_enrol_again(
    env: Mapping[str, str], tmp_path: Path
) -> None:
    """`signpost totp reset` removes the credential, says so, is audited, and search asks to enrol."""
    await run(env, tmp_path, "totp", "enrol", "P003", "--secret-file", "p003.secret")
    status, out, _ = await run(env, tmp_path, "totp", "reset", "P003")
    assert status == 0 and "Reset P003's authenticator" in out
    status, out, _ = await run(env, tmp_path, "console", "--as", "P003", stdin=f"{AMY}\n:quit\n")
    assert status == 0 and "has not run" in out and PIPED_ENROL.format(id="P003", at="search") in out
    status, out, _ = await run(env, tmp_path, "audit", "export")
    assert status == 0
    actions = re.findall(r'"action":"(totp_\w+)"', out)
    assert actions == ["totp_enrol", "totp_reset"]
    assert '"detail":"credential removed for P003"' in out


async def test_operator_commands_refuse_an_unknown_practitioner(env: Mapping[str, str], tmp_path: Path) -> None:
    """A mistyped id is one clear line and exit status 2, and nothing is written."""
    for command in (("enrol", "NOPE", "--secret-file", "nope.secret"), ("reset", "NOPE")):
        status, out, err = await run(env, tmp_path, "totp", *command)
        assert status == 2 and "no practitioner with that id in the register" in err and "█" not in out
    assert not (tmp_path / "nope.secret").exists()


async def test_a_code_typed_after_leaving_the_code_prompt_finishes_the_enrolment(
    env: Mapping[str, str], tmp_path: Path
) -> None:
    """`help` typed at the enrolment's code prompt left it; the code typed next at the console's
    prompt was answered "none was asked for just now", and the enrolment stayed unfinished. Now it
    answers the prompt that was left."""
    console = await Process.start(env, tmp_path, "console", "--as", "P001")
    await console.expect(r"acting as P001")
    await console.send("enrol")
    secret = secret_from((await console.expect(SECRET_LINE.pattern)).group(0))
    await console.expect(r"Enter the 6-digit code .* to finish setting it up")
    await console.send("help")
    await console.expect(r"No code entered, so nothing was sent")
    await console.expect(r"In this console also")
    await console.send(pyotp.TOTP(secret).now())
    await console.expect(r"You're set up")
    await console.send(AMY)
    await console.expect(re.escape(ANSWER))
    await console.send(":quit")
    status, _ = await console.finish()
    assert status == 0 and not any("none was asked for" in line for line in console.seen)
