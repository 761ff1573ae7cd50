"""Lifecycle sub-commands: retention run, backup, keys rotate, decommission.

These run as the operator who holds the key file; each is audited as ``cli:operator``.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from bot.app import Signpost
from bot.cli.common import CommandFailed, opened
from handlers.lifecycle import flows as use_cases
from store.audit.log import append
from store.keys.backup import BackupFailed, backup
from store.keys.rotation import RotationFailed, rotate
from store.lifecycle import decommission
from store.lifecycle import retention as lifecycle
from store.lifecycle.decommission import ScheduleError

WHO = "operator"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def add_commands(sub: Any) -> None:
    ret = sub.add_parser("retention", help="archive records at 18 and destroy them at 24 (also runs daily)")
    ret_sub = ret.add_subparsers(dest="retention_command", required=True, metavar="RETENTION_COMMAND")
    run = ret_sub.add_parser("run", help="process every day since the last run, then seal in and compact")
    run.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    run.add_argument("--as-of", type=_date, metavar="DATE", help="with --dry-run: as if run on DATE (YYYY-MM-DD)")
    run.set_defaults(func=retention_command)

    bak = sub.add_parser("backup", help="write a consistent backup of the store (wrapped keys only)")
    bak.add_argument("file", type=Path, metavar="FILE", help="a new file (SQLite copy, or pg_dump custom format)")
    bak.set_defaults(func=backup_command)

    keys = sub.add_parser("keys", help="manage the key file")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    rot = keys_sub.add_parser("rotate", help="new key-encryption keys; every wrapped key re-wrapped; old keys removed")
    rot.set_defaults(func=rotate_command)

    dec = sub.add_parser("decommission", help="switch Signpost off and destroy its personal data")
    dec_sub = dec.add_subparsers(dest="decommission_command", required=True, metavar="DECOMMISSION_COMMAND")
    sched = dec_sub.add_parser("schedule", help="set the switch-off date (admins are notified)")
    sched.add_argument("--switch-off", type=_date, required=True, metavar="DATE", help="YYYY-MM-DD")
    sched.add_argument(
        "--destroy-by", type=_date, metavar="DATE", help="YYYY-MM-DD (default: 60 days after switch-off)"
    )
    sched.set_defaults(func=schedule_command)
    dec_sub.add_parser("status", help="what is scheduled and how far it has got").set_defaults(func=status_command)
    dec_sub.add_parser("cancel", help="cancel before the switch-off date").set_defaults(func=cancel_command)
    cert = dec_sub.add_parser("certificate", help="the signed destruction certificate (JSON)")
    cert.add_argument("--out", type=Path, metavar="FILE", help="write it to FILE instead of stdout")
    cert.set_defaults(func=certificate_command)
    dec_sub.add_parser("destroy", help="after switch-off: destroy everything now").set_defaults(func=destroy_command)


async def retention_command(args: argparse.Namespace) -> int:
    if args.as_of is not None and not args.dry_run:
        raise CommandFailed("--as-of only works with --dry-run (a real run always uses today)")
    async with opened() as app:
        today = app.ctx.clock.now().date()
        if args.dry_run:
            as_of = args.as_of or today
            if as_of < today:
                raise CommandFailed("--as-of must be today or later")
            print((await lifecycle.preview(app.ctx.db, app.ctx.keys, today, as_of)).summary())
            return 0
        report = await use_cases.retention_tick(app.ctx, app.ctx.clock.now(), max_days=366, who=WHO)
        while report.pending_days:
            report = await use_cases.retention_tick(app.ctx, app.ctx.clock.now(), max_days=366, who=WHO)
        print(report.summary())
    return 0


async def _audit(app: Signpost, action: str, detail: str) -> None:
    async with app.ctx.db.write() as session:
        await append(session, [use_cases.system_record(app.ctx.clock.now(), action, detail, who=WHO, tenant="cli")])


async def backup_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        try:
            size = await backup(app.ctx.db, args.file)
        except BackupFailed as exc:
            raise CommandFailed(str(exc)) from None
        await _audit(app, "backup", f"{size} bytes")
    print(f"Backup written to {args.file} ({size} bytes). It holds wrapped keys only: keep the key file apart from it.")
    return 0


async def rotate_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        try:
            report = await rotate(app.ctx.db, app.ctx.keys, app.ctx.clock.now().date())
        except RotationFailed as exc:
            raise CommandFailed(str(exc)) from None
        counts = ", ".join(f"{table}: {n}" for table, n in report.rewrapped.items())
        await _audit(app, "keys_rotate", f"generation {report.new_generation}")
    print(f"Keys rotated to generation {report.new_generation}; re-wrapped {counts}. Restart every running replica.")
    return 0


async def schedule_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        now = app.ctx.clock.now()
        try:
            async with app.ctx.db.write() as session:
                row = await use_cases.schedule_with_notices(
                    app.ctx, session, args.switch_off, args.destroy_by, WHO, now
                )
                await append(
                    session,
                    [use_cases.system_record(now, "decommission", f"scheduled {row.id}", who=WHO, tenant="cli")],
                )
        except ScheduleError as exc:
            raise CommandFailed(str(exc)) from None
    print(f"Scheduled: switch-off {row.switch_off:%d/%m/%Y}, destroy by {row.destroy_by:%d/%m/%Y}. Admins notified.")
    return 0


async def status_command(args: argparse.Namespace) -> int:
    async with opened() as app, app.ctx.db.read() as session:
        print(await use_cases.status_text(session, app.ctx.clock.now().date()))
    return 0


async def cancel_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        now = app.ctx.clock.now()
        try:
            async with app.ctx.db.write() as session:
                row = await use_cases.cancel_with_notices(app.ctx, session, WHO, now)
                record = use_cases.system_record(now, "decommission", f"cancelled {row.id}", who=WHO, tenant="cli")
                await append(session, [record])
        except ScheduleError as exc:
            raise CommandFailed(str(exc)) from None
    print("Decommissioning cancelled. Admins notified.")
    return 0


async def certificate_command(args: argparse.Namespace) -> int:
    async with opened() as app, app.ctx.db.read() as session:
        row = await decommission.current(session)
    if row is None or row.certificate is None:
        raise CommandFailed("there is no destruction certificate yet: it is produced when destruction completes")
    text = json.dumps(json.loads(row.certificate), indent=2, sort_keys=True)
    if args.out is not None:
        args.out.write_text(text + "\n", "utf-8")
        print(f"Certificate written to {args.out}.")
    else:
        print(text)
    return 0


async def destroy_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        now = app.ctx.clock.now()
        async with app.ctx.db.read() as session:
            row = await decommission.current(session)
        if row is None or not decommission.is_switched_off(row.switch_off, now.date()):
            raise CommandFailed("destruction comes after the switch-off date: schedule one, or wait for it")
        if row.state == "destroyed":
            raise CommandFailed("everything has already been destroyed: see `signpost decommission certificate`")
        cert = await use_cases.destroy_now(app.ctx, now, row.id, who=WHO)
        if cert is None:
            raise CommandFailed("another Signpost process is destroying the data right now; check the status shortly")
    print(decommission.certificate_text(cert))
    return 0
