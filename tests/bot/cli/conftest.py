"""Run `signpost ARGS…` in this process, as an operator would at the terminal: settings from the
environment, what it prints, and its exit status. Much faster than a process per command; one
smoke test (tests/bot/cli/test_main.py) still runs the real `signpost` executable."""

from __future__ import annotations

import asyncio
import io
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from bot.cli.main import main
from store.keys.crypto import KeyRing
from tests.bot.console.test_stepup import secret_from
from tests.databases import drop_role


def clock_checked() -> tuple[str, str]:
    """`retention run --catch-up-to` today's date (a command's own, the real one): a store a test
    wrote at its fake clock's date, or restored from an old backup, has more than a month of days
    due, which a run acts on only once the operator has checked the clock
    (``store.lifecycle.retention.ClockUnchecked``)."""
    return ("--catch-up-to", f"{datetime.now(UTC).date():%d/%m/%Y}")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        """What the command told the operator on stderr, without structured log lines (for example
        the warning that the test database is reached as a PostgreSQL superuser)."""
        return "\n".join(line for line in self.err.splitlines() if not line.startswith("{")).strip()


class Cli:
    """`signpost` against the test's store and key file, from a directory without a .env."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch

    def __call__(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Run:
        """Run one command (from synchronous code: it runs its own event loop)."""
        with self._monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            patch.setattr(sys, "stdin", io.StringIO(stdin))
            self._capsys.readouterr()  # what came before is not this command's output
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse refuses bad arguments (and answers --help) this way
                code = exit_.code if isinstance(exit_.code, int) else 2
            captured = self._capsys.readouterr()
        structlog.reset_defaults()  # main() bound logging to this command's captured stderr
        return Run(code, captured.out, captured.err)

    async def run(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Run:
        """Run one command from an async test (in a thread: the command runs its own event loop)."""
        return await asyncio.to_thread(self, *args, stdin=stdin, env=env)

    def enrol(self, practitioner_id: str, env: dict[str, str] | None = None) -> str:
        """`signpost totp enrol ID --secret-file FILE` (stdout here is no terminal, so the secret goes to a
        new file, as an operator's script would send it): the secret it wrote."""
        path = Path(f"{uuid.uuid4().hex}.secret")  # in the test's folder, a new name each time
        enrolled = self("totp", "enrol", practitioner_id, "--secret-file", str(path), env=env)
        assert enrolled.code == 0, enrolled.err
        return secret_from(path.read_text("utf-8"))


@pytest.fixture
def cli(
    db_url: str, keys: KeyRing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGNPOST_DATABASE_URL", db_url)
    monkeypatch.setenv("SIGNPOST_KEY_FILE", str(keys.path))
    monkeypatch.setenv("SIGNPOST_LOG_FORMAT", "json")
    yield Cli(capsys, monkeypatch)
    structlog.reset_defaults()


@pytest.fixture
def runtime_role(db_url: str) -> Iterator[str]:
    """A role name no one has (for `signpost db grant-runtime`); dropped, with its grants, afterwards."""
    role = f"signpost_rt_{uuid.uuid4().hex[:10]}"
    yield role
    asyncio.run(drop_role(db_url, role))
