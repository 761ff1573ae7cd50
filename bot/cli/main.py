"""The `signpost` command: wiring only. Each feature adds its sub-commands from bot/cli/; they call
the use cases in handlers/operator/ and print what those return."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bot.cli import audit, core, db, lifecycle, match, practitioner, report, totp
from bot.cli import teams as teams_commands
from bot.cli.common import CommandFailed
from bot.config import SettingsError
from bot.logging import configure
from handlers.operator.common import Refused
from store.keys.crypto import KeyFileError

COMMAND_GROUPS = (
    core,
    audit,
    db,
    lifecycle,
    match,
    practitioner,
    report,
    teams_commands,
    totp,
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="signpost",
        description=(
            "Signpost: who else is working, or has worked, with this child? Contact signposts only, "
            "after a step-up check; every query audited. Settings come from the environment or .env: "
            "SIGNPOST_DATABASE_URL, SIGNPOST_KEY_FILE, and SLACK_* / CONNECTIONS__* for the chat front ends."
        ),
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure(getattr(args, "log_format", "auto"))
    try:
        result: int = asyncio.run(args.func(args))
        return result
    except (SettingsError, KeyFileError, CommandFailed, Refused) as exc:
        print(f"signpost: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
