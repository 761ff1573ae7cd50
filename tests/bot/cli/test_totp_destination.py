"""Where `signpost totp enrol` puts the authenticator secret, as the real process run by an operator's
wrapper would: only on a terminal, or in a new file only its owner reads when asked with
--secret-file; never into a pipe or a file that a wrapper may keep as a log (journald, a log file)."""

from __future__ import annotations

import os
import pty
import re
import stat
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest

from tests.bot.console.test_stepup import SECRET_LINE, secret_from
from tests.bot.process import run_signpost, standard_store
from tests.spread import either_store

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)


def on_a_terminal(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """`signpost ARGS…` with stdout a pseudo-terminal (as an operator at a terminal), stderr a pipe:
    exit status, what the terminal showed, and stderr."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *args], stdout=secondary, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    os.close(secondary)  # the child holds it now: reading ends (EIO) when the child closes its end
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert process.stderr is not None
    err = process.stderr.read().decode()
    process.stderr.close()
    return process.wait(timeout=120), shown.decode(), err


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """A clean environment on this test's database and a new key file, the standard feeds imported."""
    return standard_store(db_url, tmp_path)


def enrol_events(env: dict[str, str], cwd: Path) -> list[str]:
    """The `totp_enrol` audit events, as `signpost audit export` shows them (one JSON line each)."""
    exported = run_signpost("audit", "export", env=env, cwd=cwd)
    assert exported.returncode == 0, exported.stderr
    return [line for line in exported.stdout.splitlines() if '"action":"totp_enrol"' in line]


@either_store
def test_enrol_into_a_pipe_is_refused_and_issues_nothing(env: dict[str, str], tmp_path: Path) -> None:
    """stdout a pipe (a wrapper logging it): one kind line on stderr naming the ways on, exit status 2,
    no QR code or secret on either stream, and no authenticator issued (nothing audited as done)."""
    run = run_signpost("totp", "enrol", "P002", env=env, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    said = [line for line in run.stderr.splitlines() if not line.startswith("{")]
    assert len(said) == 1 and "terminal" in said[0] and "--secret-file" in said[0], run.stderr
    for shown in (run.stdout, run.stderr):
        assert "█" not in shown and "otpauth" not in shown and not SECRET_LINE.search(shown)
    assert enrol_events(env, tmp_path) == []


@either_store
def test_enrol_at_a_terminal_shows_the_qr_code_and_secret_there(env: dict[str, str], tmp_path: Path) -> None:
    """stdout a terminal: the QR code and secret are shown there, audited once without the secret."""
    status, shown, err = on_a_terminal("totp", "enrol", "P002", env=env, cwd=tmp_path)
    assert status == 0, err
    secret = secret_from(shown)
    assert "▀" in shown and "Give this to P002 privately" in shown
    assert secret not in err
    [event] = enrol_events(env, tmp_path)
    assert '"outcome":"done"' in event and secret not in event


@either_store
def test_enrol_with_secret_file_writes_it_for_its_owner_only(env: dict[str, str], tmp_path: Path) -> None:
    """--secret-file PATH through pipes: the QR code and secret go to a new file of mode 0600, and
    neither stdout nor stderr holds the secret; audited once, without it. The secret works."""
    path = tmp_path / "p002.secret"
    run = run_signpost("totp", "enrol", "P002", "--secret-file", str(path), env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text("utf-8")
    secret = secret_from(written)
    assert "█" in written and pyotp.TOTP(secret).now().isdigit()
    assert secret not in run.stdout and secret not in run.stderr and "otpauth" not in run.stdout + run.stderr
    assert str(path) in run.stdout and "P002" in run.stdout
    [event] = enrol_events(env, tmp_path)
    assert '"outcome":"done"' in event and secret not in event and str(path) not in event


@either_store
def test_secret_file_never_overwrites_a_file_and_issues_nothing(env: dict[str, str], tmp_path: Path) -> None:
    """--secret-file naming a file that is there: refused in one line, exit status 2, the file as it
    was, and no authenticator issued. A folder that is not there is refused the same way."""
    path = tmp_path / "notes.txt"
    path.write_text("the operator's own notes\n", encoding="utf-8")
    run = run_signpost("totp", "enrol", "P002", "--secret-file", str(path), env=env, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    assert re.search(rf"{re.escape(str(path))} is there already", run.stderr), run.stderr
    assert path.read_text("utf-8") == "the operator's own notes\n"
    missing = tmp_path / "no-such-folder" / "p002.secret"
    run = run_signpost("totp", "enrol", "P002", "--secret-file", str(missing), env=env, cwd=tmp_path)
    assert run.returncode == 2 and "does not exist" in run.stderr and not missing.parent.exists()
    assert enrol_events(env, tmp_path) == []


@either_store
def test_a_link_at_the_secret_files_temporary_name_is_refused_and_issues_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Someone able to write the folder links `.p002.secret.partial` (the name the secret is written
    under first) to a file of theirs: refused in one line naming it, exit status 2, before an
    authenticator is issued; their file gets nothing and no secret file is made."""
    theirs = tmp_path / "their-copy"
    theirs.write_bytes(b"")
    theirs.chmod(0o644)
    (tmp_path / ".p002.secret.partial").symlink_to(theirs)
    path = tmp_path / "p002.secret"
    run = run_signpost("totp", "enrol", "P002", "--secret-file", str(path), env=env, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    said = [line for line in run.stderr.splitlines() if not line.startswith("{")]
    assert len(said) == 1 and ".p002.secret.partial" in said[0], run.stderr
    assert theirs.read_bytes() == b"" and stat.S_IMODE(theirs.stat().st_mode) == 0o644
    assert not os.path.lexists(path)
    assert enrol_events(env, tmp_path) == []


@either_store
def test_a_file_left_at_the_secret_files_temporary_name_never_receives_the_secret(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A file at `.p002.secret.partial` open to everyone (0666) and held open by a reader: the secret
    goes into a new file of mode 0600 named p002.secret, never into that one."""
    left = tmp_path / ".p002.secret.partial"
    left.write_bytes(b"")
    left.chmod(0o666)
    path = tmp_path / "p002.secret"
    with left.open("rb") as reader:
        run = run_signpost("totp", "enrol", "P002", "--secret-file", str(path), env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert reader.read() == b""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not path.is_symlink()
    assert pyotp.TOTP(secret_from(path.read_text("utf-8"))).now().isdigit()
    assert not os.path.lexists(left)
