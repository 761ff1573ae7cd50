"""`signpost practitioner ...`: operators list and unlink chat identities, and record leavers and returns."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.cli.arguments import practitioner_id
from handlers.vocabulary import Action, platform_name

if TYPE_CHECKING:  # types only: nothing heavy is imported to build the parser
    from handlers.context import Context
    from handlers.operator.common import Audit
    from handlers.operator.people import Standing

# The store, the app and the use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).

PLATFORMS = ("slack", "teams")


def add_commands(sub: Any) -> None:
    group = sub.add_parser(
        "practitioner", help="list practitioners' chat links, unlink one, record a leaver or a return"
    )
    group_sub = group.add_subparsers(dest="practitioner_command", required=True, metavar="PRACTITIONER_COMMAND")
    unlink = group_sub.add_parser(
        "unlink", help="remove a practitioner's chat link (audited); re-linking needs approval"
    )
    unlink.add_argument("practitioner_id", type=practitioner_id, metavar="PRACTITIONER_ID")
    unlink.add_argument("--platform", choices=PLATFORMS, help="only this platform (default: every platform)")
    unlink.set_defaults(func=unlink_command, after_switch_off=False)
    leave = group_sub.add_parser(
        "leave",
        help="record that a practitioner has left (audited): their commands are refused, their "
        "signposts say they are no longer in post, their authenticator is removed",
    )
    leave.add_argument("practitioner_id", type=practitioner_id, metavar="PRACTITIONER_ID")
    leave.set_defaults(func=leave_command, after_switch_off=False)
    back = group_sub.add_parser(
        "return", help="make a practitioner who had left active again (audited); they enrol a new authenticator"
    )
    back.add_argument("practitioner_id", type=practitioner_id, metavar="PRACTITIONER_ID")
    back.set_defaults(func=return_command, after_switch_off=False)
    listing = group_sub.add_parser(
        "list", help="practitioners with linked chat identities (ids and roles only, leavers marked; audited)"
    )
    listing.add_argument("--authority", help="only this local authority (its name in any case or spacing)")
    listing.set_defaults(func=list_command, after_switch_off=True)


async def unlink_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import people

    target = args.practitioner_id.strip().upper()
    async with operating(Action.UNLINK, args) as (app, audit):
        count = await people.unlink(app.ctx, audit, target, args.platform)
    if count == 0:  # "0 identities removed" read as if something had been done
        where = platform_name(args.platform) if args.platform else "any platform"
        print(f"{target} has no linked account on {where}: nothing changed.")
        return 0
    where = args.platform or "every platform"
    print(f"Unlinked {target} on {where}: {count} identit{'y' if count == 1 else 'ies'} removed.")
    return 0


async def list_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import people
    from store.people.practitioners import ACTIVE_STATUS

    async with operating(Action.PRACTITIONER_LIST, args) as (app, audit):
        links = await people.linked(app.ctx, audit, args.authority)
    if not links:
        print("No practitioner has a linked chat identity.")
    for link in links:
        left = "\tleft" if link.status != ACTIVE_STATUS else ""  # a leaver's links stay ("not active")
        print(f"{link.practitioner_id}\t{link.local_authority}\t{link.roles}\t{link.platform}{left}")
    return 0


async def leave_command(args: argparse.Namespace) -> int:
    from handlers.operator import people

    return await _standing(
        args,
        Action.PRACTITIONER_LEAVE,
        people.leave,
        lambda who, standing: (
            f"{who} has left: their commands are refused, their signposts say they are no longer in "
            f"post{', and their authenticator is removed' if standing.authenticator_removed else ''}. "
            f"To undo: signpost practitioner return {who}"
        ),
        "{who} had already left: nothing changed.",
    )


async def return_command(args: argparse.Namespace) -> int:
    from handlers.operator import people

    return await _standing(
        args,
        Action.PRACTITIONER_RETURN,
        people.come_back,
        lambda who, _: (
            f"{who} is active again. Before they see results, enrol an authenticator: signpost totp enrol {who}"
        ),
        "{who} is active already: nothing changed.",
    )


async def _standing(
    args: argparse.Namespace,
    action: Action,
    change: Callable[[Context, Audit, str], Awaitable[Standing]],
    changed: Callable[[str, Standing], str],
    unchanged: str,
) -> int:
    """``leave`` or ``return``: the change, audited, and what it did (or that it had been done)."""
    from bot.cli.common import operating

    async with operating(action, args) as (app, audit):
        standing = await change(app.ctx, audit, args.practitioner_id)
    who = standing.practitioner_id
    print(changed(who, standing) if standing.changed else unchanged.format(who=who))
    return 0
