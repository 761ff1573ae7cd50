"""Lifecycle sub-commands: retention run, backup, keys rotate, decommission.

These run as the operator who holds the key file; each is audited with the terminal origin and the
local account (handlers/operator/lifecycle.py), but for `decommission certificate --verify`, which
checks a file against a published key without the store.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.cli.arguments import DATE_FORMS, day, file_path
from handlers.vocabulary import Action

# The store, the app and the use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).

# Days due beyond which a run waits for --catch-up-to: store.lifecycle.retention.UNCHECKED_DAYS,
# which enforces it; named here for the help, and held equal by a test.
UNCHECKED_DAYS = 31

# How far ahead a dry run may look: handlers.operator.lifecycle.PREVIEW_YEARS, which enforces it
# (the ages it is made of are the store's); named here for the help, and held equal by a test.
PREVIEW_YEARS = 7


def add_commands(sub: Any) -> None:
    ret = sub.add_parser("retention", help="archive records at 18 and destroy them at 24 (also runs daily)")
    ret_sub = ret.add_subparsers(dest="retention_command", required=True, metavar="RETENTION_COMMAND")
    run = ret_sub.add_parser(
        "run",
        help="process every day since the last run (archive at 18, destroy at 24), then seal in and compact",
        description="Process every day since the last run: archive at 18, destroy at 24. Then seal in (wrap under\n"
        "its child's birth-date key any data key an older Signpost wrote otherwise) and compact the files.\n"
        "Exit status 1 when "
        "compaction could not finish: what was due is archived and destroyed, and the last line\nsays why "
        "the files may still hold it and what to do.",
    )
    run.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    run.add_argument(
        "--as-of",
        type=day,
        metavar="DATE",
        help=f"with --dry-run: as if run on DATE ({DATE_FORMS}), from today up to {PREVIEW_YEARS} years ahead",
    )
    run.add_argument(
        "--catch-up-to",
        type=day,
        metavar="DATE",
        help=f"today's date ({DATE_FORMS}), once you have checked the host's clock: needed when more than "
        f"{UNCHECKED_DAYS} days are due, so that a clock set wrong never destroys a record early",
    )
    run.add_argument(
        "--accept-key-file",
        action="store_true",
        help="first record the key file's chains as the store's when nothing stored can check them "
        "(a backup whose every child was destroyed since; never for one that 'does not match')",
    )
    run.set_defaults(func=retention_command, after_switch_off=True)

    bak = sub.add_parser(
        "backup",
        help="write a consistent backup of the store (keys wrapped; practitioners and involvements in clear)",
        description=(
            "Write a consistent backup of the store (keys wrapped; practitioners and involvements in clear). "
            "Refused once Signpost is switched off: a copy made then would only outlive the destruction."
        ),
    )
    bak.add_argument(
        "file",
        type=file_path,
        metavar="FILE",
        help="a new file in a folder that exists (SQLite copy, or pg_dump custom format)",
    )
    # Not once switched off: a copy made then would only outlive the destruction (practitioners in clear).
    bak.set_defaults(func=backup_command, after_switch_off=False)

    keys = sub.add_parser("keys", help="manage the key file")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    rot = keys_sub.add_parser(
        "rotate",
        help="new key-encryption keys; every wrapped key re-wrapped; old keys removed",
        description="New key-encryption keys; every wrapped key re-wrapped; old keys removed.\n"
        "Stop every replica first (`signpost run`, the console): each holds the keys in memory. While one on\n"
        "this host is serving with the key file, the rotation is refused (exit status 2) and changes nothing;\n"
        "replicas on other hosts hold their own copy of the key file: stop them yourself, and give them the\n"
        "new key file before starting them again.",
    )
    rot.set_defaults(func=rotate_command, after_switch_off=False)

    dec = sub.add_parser("decommission", help="switch Signpost off and destroy its personal data")
    dec_sub = dec.add_subparsers(dest="decommission_command", required=True, metavar="DECOMMISSION_COMMAND")
    sched = dec_sub.add_parser("schedule", help="set the switch-off date (admins are notified)")
    sched.add_argument("--switch-off", type=day, required=True, metavar="DATE", help=DATE_FORMS)
    sched.add_argument(
        "--destroy-by", type=day, metavar="DATE", help=f"{DATE_FORMS} (default: 60 days after switch-off)"
    )
    sched.add_argument(
        "--at-once",
        action="store_true",
        help="confirm a switch-off today: it takes effect at once and cannot be cancelled (a later date needs no flag)",
    )
    sched.set_defaults(func=schedule_command, after_switch_off=False)
    dec_sub.add_parser("status", help="what is scheduled and how far it has got").set_defaults(
        func=status_command, after_switch_off=True
    )
    dec_sub.add_parser("cancel", help="cancel before the switch-off date").set_defaults(
        func=cancel_command, after_switch_off=False
    )
    cert = dec_sub.add_parser("certificate", help="the signed destruction certificate (JSON), or check one")
    cert.add_argument(
        "--out",
        type=file_path,
        metavar="FILE",
        help="write it to FILE, a new file (one that exists is refused), instead of stdout",
    )
    cert.add_argument(
        "--verify",
        type=file_path,
        metavar="FILE",
        help="check this certificate's signature (needs --public-key); needs no store and changes nothing, "
        "so it is not audited",
    )
    cert.add_argument(
        "--public-key",
        type=file_path,
        metavar="KEYFILE",
        help="the key published before (`signpost audit checkpoint --public-key` > KEYFILE)",
    )
    cert.set_defaults(func=certificate_command, after_switch_off=True)
    dec_sub.add_parser(
        "destroy",
        help="after switch-off: destroy everything now",
        description="After switch-off: destroy everything now.\nWhen storage compaction cannot be done, it "
        "stops before the certificate (exit status 2) and says why;\nrun it again and it carries on from there.",
    ).set_defaults(func=destroy_command, after_switch_off=True)


async def retention_command(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from bot.cli.common import CommandFailed, accept_key_file, operating
    from bot.cli.progress import progress
    from handlers.operator import lifecycle

    if args.accept_key_file:
        if args.dry_run:
            raise CommandFailed("--accept-key-file only works without --dry-run (it records the key file's chains)")
        if args.as_of is not None:  # refused before the chains are recorded by a run that would not run
            raise CommandFailed("--as-of only works with --dry-run (a real run always uses today)")
        lifecycle.refuse_unless_today(args.catch_up_to, datetime.now(UTC).date())  # as accept_key_file's clock
        await accept_key_file()
    async with operating(Action.RETENTION_RUN, args) as (app, audit):
        if args.as_of is not None and not args.dry_run:
            raise CommandFailed("--as-of only works with --dry-run (a real run always uses today)", reason="--as-of")
        if args.catch_up_to is not None and args.dry_run:
            raise CommandFailed("--catch-up-to only works without --dry-run", reason="--catch-up-to")
        if args.dry_run:
            report = await lifecycle.retention_preview(app.ctx, audit, args.as_of)
        else:
            if args.accept_key_file:
                audit.detail = "the key file's chains accepted as the store's (--accept-key-file)"
            due = await lifecycle.retention_due(app.ctx)
            with (
                progress("Retention: days", due.days, unit="day") as days,
                progress("Retention: sealing in", due.keys, unit="key") as sealing,
            ):
                report = await lifecycle.retention_run(
                    app.ctx, audit, on_day=days.advance, on_sealed=sealing.advance, catch_up_to=args.catch_up_to
                )
    print(report.summary())
    # Destroyed records are destroyed (committed, audited) but compaction did not finish: their
    # bytes may still be in the files, so the run is not a success a scheduler may take as one.
    return 1 if report.compaction_pending else 0


async def backup_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from bot.cli.progress import BYTES, progress
    from handlers.operator import lifecycle

    async with operating(Action.BACKUP, args) as (app, audit):
        with progress("Writing the backup", unit=BYTES) as bar:
            written = await lifecycle.backup_to(
                app.ctx, audit, args.file, on_progress=bar.advance, on_total=bar.set_total
            )
    # The audit names it by its label and SHA-256 only (never the file's name): said here, to be kept with it.
    known = f"audited as {written.label}, sha256 {written.sha256}"
    if written.recorded_late:
        print(
            f"{args.file} ({written.size} bytes, {known}) is whole: {lifecycle.BACKUP_RECORDED_LATE} "
            "(nothing written now)."
        )
    else:
        print(
            f"Backup written to {args.file} ({written.size} bytes, {known}). "
            f"{lifecycle.BACKUP_HOLDS}: keep the key file apart from it, and delete it at decommissioning."
        )
    return 0


async def rotate_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from bot.cli.progress import progress
    from handlers.operator import lifecycle

    async with operating(Action.KEYS_ROTATE, args) as (app, audit):
        with progress("Re-wrapping keys", unit="key") as bar:
            report = await lifecycle.rotate_keys(app.ctx, audit, on_progress=bar.advance, on_total=bar.set_total)
    counts = ", ".join(f"{table}: {n}" for table, n in report.rewrapped.items())
    done = (
        f"The rotation to generation {report.new_generation} that was cut short is finished"
        if report.finishing
        else f"Keys rotated to generation {report.new_generation}"
    )
    again = "Start the replicas again (one on another host needs this new key file first)."
    print(f"{done}; re-wrapped {counts or 'nothing more'}. {again}")
    return 0


# Said when the register holds no active admin, so a schedule's or cancellation's notice went to nobody.
NOBODY_TOLD = (
    "No admin is in the register, so nobody was told: add one (practitioners feed, roles admin) for the "
    "notices still to come."
)


def told(admins: int) -> str:
    return "Admins notified." if admins else NOBODY_TOLD


async def schedule_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import lifecycle

    async with operating(Action.DECOMMISSION, args) as (app, audit):
        row = await lifecycle.decommission_schedule(
            app.ctx, audit, args.switch_off, args.destroy_by, at_once=args.at_once
        )
        today = app.ctx.clock.now().date()
    if row.switch_off <= today:  # a switch-off today (--at-once): it has happened
        said = f"Switched off now, at once ({row.switch_off:%d/%m/%Y}); personal data destroyed by"
    else:
        said = f"Scheduled: switch-off {row.switch_off:%d/%m/%Y}, destroy by"
    print(f"{said} {row.destroy_by:%d/%m/%Y}. {told(row.admins_told)}")
    return 0


async def status_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import lifecycle

    async with operating(Action.DECOMMISSION, args) as (app, audit):
        status = await lifecycle.decommission_status(app.ctx, audit)
    print(status)
    return 0


async def cancel_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import lifecycle

    async with operating(Action.DECOMMISSION, args) as (app, audit):
        admins = await lifecycle.decommission_cancel(app.ctx, audit)
    print(f"Decommissioning cancelled. {told(admins)}")
    return 0


async def certificate_command(args: argparse.Namespace) -> int:
    from bot.cli.common import CommandFailed, operating, read_text_file, write_file
    from handlers.operator import lifecycle

    if args.verify is not None or args.public_key is not None:
        if args.verify is None or args.public_key is None:
            raise CommandFailed("--verify FILE needs --public-key KEYFILE (the key published before), and vice versa")
        check = lifecycle.verify_certificate(read_text_file(args.verify), read_text_file(args.public_key))
        if not check.valid:
            print(f"INVALID: {args.verify} is not signed by the key in {args.public_key}. Do not rely on it.")
            return 1
        print(f"VALID: signed by the published key in {args.public_key}.")
        print(check.text)
        return 0
    async with operating(Action.DECOMMISSION, args) as (app, audit):
        document = await lifecycle.decommission_certificate(app.ctx, audit, args.out)
    text = json.dumps(document, indent=2, sort_keys=True)
    if args.out is not None:
        write_file(args.out, (text + "\n").encode("utf-8"))
        print(f"Certificate written to {args.out}.")
    else:
        print(text)
    return 0


async def destroy_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import lifecycle

    async with operating(Action.DECOMMISSION_DESTROY, args) as (app, audit):
        certificate = await lifecycle.decommission_destroy(app.ctx, audit)
    print(certificate)
    return 0
