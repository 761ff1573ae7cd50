"""`signpost totp enrol|reset PRACTITIONER_ID`: an operator manages step-up credentials (audited)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.cli.arguments import practitioner_id
from handlers.vocabulary import Action

# The store, the app and the use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).


def add_commands(sub: Any) -> None:
    group = sub.add_parser("totp", help="manage practitioners' authenticator (step-up) credentials")
    totp_sub = group.add_subparsers(dest="totp_command", required=True, metavar="TOTP_COMMAND")
    enrol = totp_sub.add_parser(
        "enrol",
        help="issue a new authenticator secret and show its QR code here; active after the first code",
    )
    enrol.add_argument("practitioner_id", type=practitioner_id, metavar="PRACTITIONER_ID")
    enrol.add_argument("--replace", action="store_true", help="replace a working authenticator")
    enrol.set_defaults(func=enrol_command)
    reset = totp_sub.add_parser(
        "reset", help="remove a credential (lost phone, locked or disabled); the practitioner enrols again"
    )
    reset.add_argument("practitioner_id", type=practitioner_id, metavar="PRACTITIONER_ID")
    reset.set_defaults(func=reset_command)


async def enrol_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from bot.enrol_page import terminal_enrolment
    from handlers.operator import people

    async with operating(Action.TOTP_ENROL) as (app, audit):
        enrolment = await people.totp_enrol(app.ctx, audit, args.practitioner_id, replace=args.replace)
    print(terminal_enrolment(enrolment.uri, colour=sys.stdout.isatty()))
    print(
        f"Give this to {enrolment.practitioner_id} privately. It becomes active when they enter their first "
        "code: Signpost asks for one at their first search."
    )
    return 0


async def reset_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import people

    async with operating(Action.TOTP_RESET) as (app, audit):
        reset = await people.totp_reset(app.ctx, audit, args.practitioner_id)
    if reset.existed:
        print(f"Reset {reset.practitioner_id}'s authenticator. They can send enrol to set up a new one.")
    else:
        print(f"{reset.practitioner_id} had no authenticator; nothing to reset.")
    return 0
