"""`signpost audit …`: export, verify, checkpoint, sar. Each is itself audited, but for the
auditor's `audit verify --public-key`, which reads a copy of the store and changes nothing."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.cli.arguments import DATE_FORMS, TIME_FORMS, InWords, child_reference, file_path, moment, practitioner_id
from handlers.vocabulary import Action, plural

# The store, the app and the audit use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).


def add_commands(sub: Any) -> None:
    aud = sub.add_parser("audit", help="read, verify and checkpoint the audit log; subject access reports")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")

    export = aud_sub.add_parser("export", help="audit events on stdout (sealed query terms are never included)")
    export.add_argument(
        "--since",
        type=since_moment,
        metavar="DATE",
        help=f"from this date ({DATE_FORMS}) or time ({TIME_FORMS}), inclusive",
    )
    export.add_argument(
        "--until",
        type=until_moment,
        metavar="DATE",
        help=f"up to this date ({DATE_FORMS}): a date includes that whole day; "
        f"or up to this time ({TIME_FORMS}), the events before it",
    )
    export.add_argument(
        "--actor", type=practitioner_id, metavar="PRACTITIONER_ID", help="only this practitioner's events"
    )
    export.add_argument(
        "--child", action=InWords, read=child_reference, metavar="CHILD_REF", help="only events that touched this child"
    )
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="JSON lines (default) or CSV")
    export.set_defaults(func=audit_export, after_switch_off=True)

    check = aud_sub.add_parser("verify", help="re-walk the hash chain; exit 1 and name the first bad event if altered")
    check.add_argument(
        "--checkpoint",
        type=file_path,
        action="append",
        default=[],
        metavar="FILE",
        help="also check against a checkpoint kept outside (repeatable; a folder: its checkpoint-*.note and .txt)",
    )
    check.add_argument(
        "--public-key",
        type=file_path,
        metavar="KEYFILE",
        help="check signatures with this published key (as `audit checkpoint --public-key` printed it), "
        "not the one on this host. This check needs no key file and changes nothing, so it works on a copy "
        "elsewhere; it is the one audit command that writes no audit event (without it, the check is audited)",
    )
    check.set_defaults(func=audit_verify, after_switch_off=True)

    point = aud_sub.add_parser("checkpoint", help="sign a checkpoint of the chain now and print it, to keep elsewhere")
    point.add_argument(
        "--public-key", action="store_true", help="print the public key that verifies checkpoints, instead"
    )
    point.set_defaults(func=audit_checkpoint, after_switch_off=True)

    report = aud_sub.add_parser(
        "sar",
        help="subject access report: who (role, and organisation unless the child is shielded) touched a child, when",
    )
    report.add_argument(
        "child",
        action=InWords,
        read=child_reference,
        metavar="CHILD_REF",
        help="the child's 10-digit reference (spaces allowed)",
    )
    report.add_argument(
        "--with-names", action="store_true", help="include each practitioner's name (withheld for a child shielded now)"
    )
    report.add_argument("--format", choices=("text", "json"), default="text", help="plain text (default) or JSON")
    report.set_defaults(func=audit_sar, after_switch_off=True)


def since_moment(text: str) -> datetime:
    """The inclusive start of ``--since``: a date's first instant, or a time exactly (``moment``)."""
    return moment(text)[0]


def until_moment(text: str) -> datetime:
    """The exclusive end of ``--until``: after the whole of a date (DD/MM/YYYY or YYYY-MM-DD), as
    people read "until 05/12/2026"; a time exactly, the events before it (``moment``)."""
    start, whole_day = moment(text)
    if not whole_day:
        return start
    try:
        return start + timedelta(days=1)
    except OverflowError:  # the calendar's last day: nothing is after it
        return datetime.max.replace(tzinfo=UTC)


async def audit_export(args: argparse.Namespace) -> int:
    from bot import spreadsheet
    from bot.cli.common import operating
    from handlers.operator import audit

    async with operating(Action.EXPORT, args) as (app, audited):
        found = await audit.export(
            app.ctx, audited, since=args.since, until=args.until, actor_id=args.actor, child_ref=args.child
        )
        writer = None
        if args.format == "csv":
            writer = spreadsheet.DictWriter(sys.stdout, audit.EXPORT_FIELDS)
            writer.writeheader()  # nothing found is still a CSV: its header alone
        written = 0
        async for event in found.events:
            written += 1
            if writer is not None:
                writer.writerow(event)
            else:
                sys.stdout.write(audit.to_json_line(event) + "\n")
    if not written:  # an answer, not a failure (exit 0, as an empty `practitioner list`): said on stderr
        print(f"signpost: {found.nothing_found(args.actor)}", file=sys.stderr)
    return 0


CHECKPOINT_FILES = ("checkpoint-*.note", "checkpoint-*.txt")  # as exported, and as saved by hand


def _checkpoint_files(paths: list[Path]) -> list[tuple[str, str]]:
    from bot.cli.common import CommandFailed, read_text_file
    from store.characters import shows_as_itself

    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted({f for pattern in CHECKPOINT_FILES for f in path.glob(pattern)})
        if not found:  # checking nothing must not read as "checked"
            raise CommandFailed(
                f"{path} holds no checkpoint file ({' or '.join(CHECKPOINT_FILES)})", reason="no checkpoint file"
            )
        if not all(shows_as_itself(f.name) for f in found):  # named in what verify prints: never run on the terminal
            raise CommandFailed(
                f"{path} holds a checkpoint file whose name has a hidden character (a control character or an "
                "invisible formatting mark): rename it",
                reason="a checkpoint file's name has a hidden character",
            )
        files += found
    return [read_text_file(path) for path in files]


async def audit_verify(args: argparse.Namespace) -> int:
    from bot.cli.common import opened_database, operating, read_text_file
    from handlers.operator import audit

    if args.public_key is not None:  # the auditor's check needs the store and the published key only
        supplied = _checkpoint_files(args.checkpoint)
        public_key = read_text_file(args.public_key)
        async with opened_database() as db:
            verdict = await audit.verify_published(db, supplied, public_key)
    else:
        async with operating(Action.AUDIT_VERIFY, args) as (app, audited):
            verdict = await audit.verify_chain(app.ctx, audited, _checkpoint_files(args.checkpoint))
    if verdict.finding is not None:
        found = verdict.finding
        print(f"FAILED at seq {found.seq}: {found.problem} — {found.message}")
        print(f"({plural(verdict.count, 'event')} verified before it.)")
        return 1
    agrees = "agrees" if verdict.checkpoints == 1 else "agree"
    agreed = (
        f"; {plural(verdict.checkpoints, 'checkpoint')} {agrees}"
        if verdict.checkpoints
        else "; no checkpoint to compare"
    )
    print(f"OK: {plural(verdict.count, 'event')}, chain intact up to seq {verdict.last_seq}{agreed}.")
    print(f"head {verdict.head_hash.hex()}")
    return 0


async def audit_checkpoint(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import audit

    async with operating(Action.AUDIT_CHECKPOINT, args) as (app, audited):
        if args.public_key:
            text = await audit.public_key_line(app.ctx, audited) + "\n"
        else:
            text = await audit.checkpoint_note(app.ctx, audited)
    sys.stdout.write(text)
    return 0


async def audit_sar(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from handlers.operator import audit

    async with operating(Action.SAR, args) as (app, audited):
        report = await audit.subject_access(app.ctx, audited, args.child, with_names=args.with_names)
    sys.stdout.write(report.to_json() + "\n" if args.format == "json" else report.to_text())
    return 0
