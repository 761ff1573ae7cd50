"""`signpost --help` and a usage error answer at once: building the parser imports no store, no
SQLAlchemy, no web server and no chat front end (once it did, and took over a second to say how
to type a command). What the help says is still what the commands enforce."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.cli.main import commands, parser
from bot.transparency_page import RENDERERS
from handlers.operator import lifecycle
from store.lifecycle import retention

ROOT = Path(__file__).resolve().parents[3]

# Whole packages the running commands need and the parser must not: the store and its drivers,
# the web server and the app it serves, the chat SDKs, settings and logging.
HEAVY = (
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "aiohttp",
    "slack_bolt",
    "slack_sdk",
    "microsoft_agents",
    "msal",
    "pydantic",
    "pydantic_settings",
    "structlog",
    "rich",
    "cryptography",
    "bot.app",
    "bot.config",
    "store",
)

# In a fresh interpreter (this one has imported everything already): `signpost --help`, a group's
# --help and a usage error, through main() as the executable runs it; then what they imported.
PROBE = f"""
import contextlib, io, json, sys
from bot.cli.main import main
exits = []
for argv in (["--help"], ["audit", "--help"], ["no-such-command"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exit_:
            exits.append(exit_.code)
heavy = {HEAVY!r}
imported = sorted(n for n in sys.modules if any(n == h or n.startswith(h + ".") for h in heavy))
print(json.dumps({{"exits": exits, "imported": imported}}))
"""


def test_help_and_a_usage_error_import_nothing_heavy(tmp_path: Path) -> None:
    """Help and a usage error exit as before (0, 0, 2) having imported none of the store, its
    drivers, the web server, the app, the chat SDKs, settings or logging."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["exits"] == [0, 0, 2]
    assert found["imported"] == []


def test_the_help_states_the_limits_the_commands_enforce() -> None:
    """The figures the parser names without importing their homes: how far ahead a retention dry
    run may look, and the transparency report's formats (in the page's order)."""
    found = commands(parser())
    retention_help = " ".join(found["retention run"].format_help().split())
    assert f"up to {lifecycle.PREVIEW_YEARS} years ahead" in retention_help
    assert f"more than {retention.UNCHECKED_DAYS} days are due" in retention_help
    [fmt] = [action for action in found["report transparency"]._actions if action.dest == "format"]
    assert tuple(fmt.choices or ()) == tuple(RENDERERS)


# In a fresh interpreter: commands that work on the store and serve no one, through main() as the
# executable runs it, on a new SQLite store; then whether any of them imported a web server.
STORE_PROBE = """
import contextlib, io, json, sys
from bot.cli.main import main
exits = []
for argv in (["db", "upgrade"], ["practitioner", "list"], ["db", "current"], ["db", "check"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            exits.append(main(argv))
        except SystemExit as exit_:
            exits.append(exit_.code)
imported = sorted(n for n in sys.modules if n == "aiohttp" or n.startswith("aiohttp."))
print(json.dumps({"exits": exits, "imported": imported}))
"""


def test_a_command_that_serves_no_one_imports_no_web_server(tmp_path: Path) -> None:
    """`signpost db check` and the like start no web server, so they import none (aiohttp and its
    TLS set-up were a fifth of the time every such command took to start); `signpost run` still
    serves (tests/bot/slack/test_run.py)."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SIGNPOST_", "SLACK_", "CONNECTIONS__"))},
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "SIGNPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'signpost.db'}",
        "SIGNPOST_KEY_FILE": str(tmp_path / "signpost.key"),
    }
    result = subprocess.run(
        [sys.executable, "-c", STORE_PROBE], capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["exits"] == [0, 0, 0, 0], found
    assert found["imported"] == []
