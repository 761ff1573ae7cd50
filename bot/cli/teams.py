"""`signpost teams package`: the Teams app package to upload (manifest, command list, icons)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.arguments import file_path, signpost_version
from handlers.vocabulary import Command, Reply

if TYPE_CHECKING:
    from bot.teams.package import AppDetails

# Settings, the package builder and the command list are imported by the command as it runs, not
# here: building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).


def add_commands(sub: Any) -> None:
    teams = sub.add_parser("teams", help="Microsoft Teams set-up")
    teams_sub = teams.add_subparsers(dest="teams_command", required=True, metavar="TEAMS_COMMAND")
    pack = teams_sub.add_parser(
        "package",
        help="write the Teams app package (a zip to upload in Teams: manifest.json, color.png, outline.png)",
    )
    pack.add_argument(
        "--out",
        type=file_path,
        default=Path("signpost-teams.zip"),
        metavar="FILE",
        help="where to write the zip (default signpost-teams.zip)",
    )
    pack.add_argument("--bot-id", help="the Azure bot's app (client) id (default CONNECTIONS__…__CLIENTID)")
    pack.add_argument("--website-url", help="https URL of your Signpost service (default SIGNPOST_PUBLIC_URL)")
    pack.add_argument("--privacy-url", help="https URL of the privacy notice (default WEBSITE/privacy)")
    pack.add_argument("--terms-url", help="https URL of the terms of use (default WEBSITE/terms)")
    pack.add_argument(
        "--developer-name", default="Signpost", help="shown in Teams as the publisher (at most 32 characters)"
    )
    pack.add_argument("--app-version", help="the app package version, e.g. 1.0.0 (default Signpost's version)")
    pack.add_argument("--app-id", help="the Teams app id (default: derived from the bot id, stable)")
    pack.set_defaults(func=package_command, after_switch_off=True)


def details_from(args: argparse.Namespace) -> AppDetails:
    from bot.cli.common import CommandFailed
    from bot.config import load_settings
    from bot.teams.package import AppDetails

    settings = load_settings()
    bot_id = args.bot_id or settings.teams_client_id
    website = (args.website_url or settings.public_url or "").rstrip("/")
    missing = [
        *([] if bot_id else ["no bot id: pass --bot-id or set CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID"]),
        *([] if website else ["no website URL: pass --website-url or set SIGNPOST_PUBLIC_URL (https)"]),
    ]
    if missing:  # every value still wanted, in one line: not one run per missing value
        raise CommandFailed("; ".join(missing))
    assert bot_id  # checked above
    return AppDetails(
        bot_id=bot_id,
        version=args.app_version or signpost_version(),
        website_url=website,
        privacy_url=args.privacy_url or f"{website}/privacy",
        terms_url=args.terms_url or f"{website}/terms",
        developer_name=args.developer_name,
        app_id=args.app_id,
    )


async def _never_resumed(command: Command) -> Reply:
    """Packaging only reads the commands' names and summaries; nothing is ever dispatched."""
    raise RuntimeError("packaging dispatches no command")


async def package_command(args: argparse.Namespace) -> int:
    from bot.cli.common import CommandFailed, write_file
    from bot.teams.package import PackageError, package
    from handlers.commands import all_specs
    from handlers.stepup import flow as stepup

    try:
        details = details_from(args)
        data = package(details, all_specs(*stepup.make_specs(_never_resumed, details.website_url)))
    except PackageError as exc:
        raise CommandFailed(f"cannot build the Teams package: {exc}") from None
    write_file(args.out, data)
    print(f"Wrote {args.out}. Upload it in Teams: Apps → Manage your apps → Upload an app.")
    return 0
