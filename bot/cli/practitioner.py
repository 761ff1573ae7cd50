"""`signpost practitioner ...`: operators list and unlink practitioners' chat identities."""

from __future__ import annotations

import argparse
from typing import Any

from handlers.vocabulary import Action

# The store, the app and the use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).

PLATFORMS = ("slack", "teams")


def add_commands(sub: Any) -> None:
    group = sub.add_parser("practitioner", help="list practitioners' chat links, or unlink one")
    group_sub = group.add_subparsers(dest="practitioner_command", required=True, metavar="PRACTITIONER_COMMAND")
    unlink = group_sub.add_parser(
        "unlink", help="remove a practitioner's chat link (audited); re-linking needs approval"
    )
    unlink.add_argument("practitioner_id", metavar="PRACTITIONER_ID")
    unlink.add_argument("--platform", choices=PLATFORMS, help="only this platform (default: every platform)")
    unlink.set_defaults(func=unlink_command)
    listing = group_sub.add_parser(
        "list", help="practitioners with linked chat identities (ids and roles only; audited)"
    )
    listing.add_argument("--authority", help="only this local authority")
    listing.set_defaults(func=list_command)


async def unlink_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import people

    target = args.practitioner_id.strip().upper()
    async with operating(Action.UNLINK) as (app, audit):
        count = await people.unlink(app.ctx, audit, target, args.platform)
    where = args.platform or "every platform"
    print(f"Unlinked {target} on {where}: {count} identit{'y' if count == 1 else 'ies'} removed.")
    return 0


async def list_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import people

    async with operating(Action.PRACTITIONER_LIST) as (app, audit):
        links = await people.linked(app.ctx, audit, args.authority)
    if not links:
        print("No practitioner has a linked chat identity.")
    for link in links:
        print(f"{link.practitioner_id}\t{link.local_authority}\t{link.roles}\t{link.platform}")
    return 0
