"""`signpost totp enrol|reset PRACTITIONER_ID`: an operator manages step-up credentials (audited)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bot.cli.arguments import file_path, practitioner_id
from handlers.vocabulary import Action, Role

# The store, the app and the use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).

# The secret goes only where the operator can see who reads it: their terminal, or a new file only
# they can read. A pipe or a redirected stdout is often kept (a wrapper's log file, journald), and
# the product's rule is no TOTP secret in any log line; an explicit --print-secret would only make
# that leak deliberate, so there is none.
NOT_A_TERMINAL = (
    "totp enrol shows the authenticator secret only on a terminal, and this output is not one "
    "(a pipe or file may be kept as a log), so nothing was issued: run it at a terminal, "
    "or add --secret-file PATH to write it to a new file only you can read"
)


def add_commands(sub: Any) -> None:
    group = sub.add_parser("totp", help="manage practitioners' authenticator (step-up) credentials")
    totp_sub = group.add_subparsers(dest="totp_command", required=True, metavar="TOTP_COMMAND")
    enrol = totp_sub.add_parser(
        "enrol",
        help="issue a new authenticator secret and show its QR code on this terminal (or in --secret-file); "
        "active after the first code",
    )
    enrol.add_argument("practitioner_id", type=practitioner_id, metavar="PRACTITIONER_ID")
    enrol.add_argument(
        "--replace",
        action="store_true",
        help="replace a working authenticator (a reset: the practitioner and their duty managers are told)",
    )
    enrol.add_argument(
        "--secret-file",
        type=file_path,
        metavar="PATH",
        help="write the QR code and secret to this new file (mode 0600; never over an existing file) "
        "instead of the terminal; needed when stdout is not a terminal",
    )
    enrol.set_defaults(func=enrol_command, after_switch_off=False)
    reset = totp_sub.add_parser(
        "reset",
        help="remove a credential (lost phone, locked or disabled); the practitioner enrols again "
        "(they and their duty managers are told)",
    )
    reset.add_argument("practitioner_id", type=practitioner_id, metavar="PRACTITIONER_ID")
    reset.set_defaults(func=reset_command, after_switch_off=False)


async def enrol_command(args: argparse.Namespace) -> int:
    from bot.cli.common import CommandFailed, operating
    from bot.enrol_page import terminal_enrolment
    from handlers.operator import people

    secret_file: Path | None = args.secret_file
    # Refused before the store is opened: nothing issued, so nothing to audit (as a usage error).
    if secret_file is None and not sys.stdout.isatty():
        raise CommandFailed(NOT_A_TERMINAL)
    if secret_file is not None:
        refuse_a_taken_secret_file(secret_file)
    async with operating(Action.TOTP_ENROL, args) as (app, audit):
        enrolment = await people.totp_enrol(app.ctx, audit, args.practitioner_id, replace=args.replace)
    active = (
        "It becomes active when they enter their first code: "
        f"Signpost asks for one at their first {enrolment.first_code_at}."
    )
    if enrolment.replaced:
        active += " " + replaced_told(enrolment.told)
    if secret_file is None:
        print(terminal_enrolment(enrolment.uri, colour=True))
        print(f"Give this to {enrolment.practitioner_id} privately. {active}")
        return 0
    write_secret_file(secret_file, terminal_enrolment(enrolment.uri) + "\n")
    print(
        f"Wrote {enrolment.practitioner_id}'s QR code and secret to {secret_file} (readable by you only). "
        f"Give them to {enrolment.practitioner_id} privately, then delete the file. {active}"
    )
    return 0


def also_told(role: Role | None) -> str:
    """Who heard of a reset besides the practitioner, as roles (nobody is named)."""
    if role is Role.DUTY_MANAGER:
        return "and so were their duty managers"
    if role is Role.ADMIN:
        return "and so were Signpost's admins (no duty manager of their authority could be told)"
    return "and nobody else could be told (their authority has no duty manager, and there is no admin)"


TOLD_ON_RECORD = (
    "told on every chat account on record, and an e-mail to their recorded address waits for your mailer "
    "(Signpost sends none itself)"
)
"""Who hears of a removed authenticator, said as it is: the chat notices go out through the outbox,
the e-mail only when the operator's mailer takes it (README, "E-mail")."""


def replaced_told(role: Role | None) -> str:
    return f"The authenticator it replaced no longer works: they were {TOLD_ON_RECORD}, {also_told(role)}."


def refuse_a_taken_secret_file(path: Path) -> None:
    """CommandFailed, before anything is issued, when --secret-file names a file that is there (a
    link too, dangling or not) or a folder that is not, or when the name it is written under first
    is taken by something no write of ours left there (a link to someone's file)."""
    from bot.cli.common import CommandFailed
    from store.files import refuse_a_taken_temporary, temporary_for

    if os.path.lexists(path):
        raise CommandFailed(f"--secret-file: {path} is there already; name a new file (it is never overwritten)")
    if not path.parent.is_dir():
        raise CommandFailed(f"--secret-file: the folder {path.parent} does not exist")
    try:
        refuse_a_taken_temporary(temporary_for(path))
    except OSError as exc:
        raise CommandFailed(f"--secret-file: cannot write {path}: {exc.strerror}") from None


def write_secret_file(path: Path, text: str) -> None:
    """The secret, whole, in a new file of mode 0600, never over one that appeared meanwhile."""
    from bot.cli.common import CommandFailed
    from store.files import PRIVATE_MODE, write_whole

    # Pending until the first code, so enrolling again needs no --replace.
    again = "the authenticator issued is pending: enrol again with a new --secret-file"
    try:
        written = write_whole(path, text.encode("utf-8"), mode=PRIVATE_MODE, replace=False)
    except OSError as exc:
        raise CommandFailed(f"--secret-file: cannot write {path}: {exc.strerror}; {again}") from None
    if not written:
        raise CommandFailed(f"--secret-file: {path} appeared meanwhile and was left as it was; {again}")


async def reset_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import people

    async with operating(Action.TOTP_RESET, args) as (app, audit):
        reset = await people.totp_reset(app.ctx, audit, args.practitioner_id)
    if reset.existed:
        print(
            f"Reset {reset.practitioner_id}'s authenticator. They can send enrol to set up a new one. They were "
            f"{TOLD_ON_RECORD}, {also_told(reset.told)}."
        )
    else:
        print(f"{reset.practitioner_id} had no authenticator; nothing to reset.")
    return 0
