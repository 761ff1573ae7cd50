"""The `signpost` command as an operator uses it: real subprocesses on a temporary SQLite store."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pyotp

from tests.bot.console.test_stepup import secret_from
from tests.factories import CHILDREN, CHILDREN_HEADER, INVOLVEMENTS, PRACTITIONERS


def signpost(
    tmp: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'store.db'}",
        "SIGNPOST_KEY_FILE": str(tmp / "signpost.key"),
        "SIGNPOST_LOG_FORMAT": "json",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp,
        timeout=120,
    )


def enrol(tmp: Path, practitioner_id: str) -> str:
    """Enrol an authenticator at the terminal (as an admin would) and return its current code."""
    enrolled = signpost(tmp, "totp", "enrol", practitioner_id)
    assert enrolled.returncode == 0, enrolled.stderr
    return pyotp.TOTP(secret_from(enrolled.stdout)).now()


def write_feeds(tmp: Path) -> list[str]:
    paths = []
    for name, text in (
        ("practitioners.csv", PRACTITIONERS),
        ("children.csv", CHILDREN),
        ("involvements.csv", INVOLVEMENTS),
    ):
        (tmp / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp / name))
    return paths


def test_import_then_scripted_console_session(tmp_path: Path) -> None:
    """Import feeds, then pipe a session into `signpost console`: each line gets its reply."""
    imported = signpost(tmp_path, "import", *write_feeds(tmp_path))
    assert imported.returncode == 0, imported.stderr
    assert "children: 6 rows read, 6 new or changed" in imported.stdout
    code = enrol(tmp_path, "P002")
    session = (
        f"help\n999 000 0018\n{code}\nLily Brown 20/01/2019\n9990000050\n:as NOBODY\n999 000 0018\n:quit\nnever read\n"
    )
    result = signpost(tmp_path, "console", "--as", "P002", stdin=session)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Signposts for 999 000 0018: 3 involvements." in out
    assert "Sam Carter — Social worker, Northshire Children's Services  ★ lead professional" in out
    assert "ended 20/07/2024" in out
    assert "More than one record could match" in out
    assert "A record exists and is shielded" in out and "[Request access]" in out
    assert "Now acting as NOBODY." in out and "not registered" in out
    assert "never read" not in out


def test_console_logs_carry_no_personal_data(tmp_path: Path) -> None:
    """The structured log of a demographic search has one event per command and no typed identity."""
    signpost(tmp_path, "import", *write_feeds(tmp_path))
    code = enrol(tmp_path, "P002")
    result = signpost(tmp_path, "console", "--as", "P002", stdin=f"Amy Jones 03/04/2014 M1 2AB\n{code}\n")
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    commands = [e for e in events if e.get("event") == "command"]
    assert [(e["action"], e["outcome"]) for e in commands] == [
        ("search", "challenged"),
        ("search", "answered"),
        ("code", "answered"),
    ]
    for plain in ("Amy", "Jones", "03/04/2014", "M1 2AB"):
        assert plain not in result.stderr


def test_failing_import_applies_nothing_and_reports_every_bad_row(tmp_path: Path) -> None:
    """Exit status 1, one line per problem (file:line: field: problem), and an empty store after."""
    bad = tmp_path / "children.csv"
    bad.write_text(
        f"{CHILDREN_HEADER}\n9990000019,A,B,,2014-01-01,F,,LA,false\n9990000026,,B,,2014-13-01,F,,LA,false\n"
    )
    result = signpost(tmp_path, "import", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "children.csv:2: child_ref: is not a valid 10-digit reference (check digit fails)" in lines
    assert "children.csv:3: given_names: is empty" in lines
    assert "children.csv:3: date_of_birth: is not a date in YYYY-MM-DD form" in lines
    assert lines[-1] == "Nothing was imported: 3 problem(s) above."
    exported = signpost(tmp_path, "console", "--as", "P002", stdin="999 000 0026\n")
    assert "not registered" in exported.stdout  # not even the practitioners exist


def test_key_file_is_created_private(tmp_path: Path) -> None:
    """The key-encryption key file appears on first use with mode 0600."""
    signpost(tmp_path, "console", stdin=":quit\n")
    mode = stat.S_IMODE((tmp_path / "signpost.key").stat().st_mode)
    assert mode == 0o600


def test_bad_settings_give_one_clear_line(tmp_path: Path) -> None:
    """A malformed database URL is named in one line with exit status 2, no traceback."""
    result = signpost(tmp_path, "console", env={"SIGNPOST_DATABASE_URL": "mysql://nope"})
    assert result.returncode == 2
    assert result.stderr.startswith("signpost: bad setting: SIGNPOST_DATABASE_URL")
    assert "Traceback" not in result.stderr


def test_audit_export_is_json_lines(tmp_path: Path) -> None:
    """Every command appears in `signpost audit export` as one JSON object per line, without terms."""
    signpost(tmp_path, "import", *write_feeds(tmp_path))
    code = enrol(tmp_path, "P002")
    signpost(tmp_path, "console", "--as", "P002", stdin=f"999 000 0018\n{code}\nhelp\n")
    result = signpost(tmp_path, "audit", "export")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    commands = [(e["action"], e["outcome"]) for e in events if e["actor_id"] == "P002"]
    assert commands == [("lookup", "challenged"), ("lookup", "answered"), ("code", "answered"), ("help", "info")]
    assert all(e["actor_id"] in ("P002", None) for e in events)  # the rest is the scheduler's own work
    assert all("terms" not in e for e in events)


def test_seed_demo_is_idempotent_and_prints_working_examples(tmp_path: Path) -> None:
    """seed-demo twice changes nothing the second time; the console greets with three examples that work."""
    first = signpost(tmp_path, "seed-demo", "--children", "400")
    assert first.returncode == 0, first.stderr
    second = signpost(tmp_path, "seed-demo", "--children", "400", "--if-empty")
    assert "not seeding" in second.stdout
    greeting = signpost(tmp_path, "console", stdin="")
    examples = [line.split("(")[0].strip() for line in greeting.stdout.splitlines() if line.startswith("  ")]
    assert len(examples) == 3
    code = enrol(tmp_path, "NS-P0001")
    answers = signpost(tmp_path, "console", stdin="\n".join([examples[0], code, *examples[1:]]) + "\n").stdout
    assert answers.count("Signposts for") == 2
    assert "A record exists and is shielded" in answers


def test_help_lists_the_commands(tmp_path: Path) -> None:
    """`signpost --help` names the sub-commands an operator needs."""
    result = signpost(tmp_path, "--help")
    for command in ("run", "console", "seed-demo", "import", "audit"):
        assert command in result.stdout
