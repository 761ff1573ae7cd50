"""`signpost audit …`: export, verify, checkpoint, sar. Exports and reports are themselves audited."""

from __future__ import annotations

import argparse
import csv
import getpass
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.app import Signpost
from bot.cli.common import CommandFailed, opened
from handlers.refs import InvalidReference, parse_reference
from store.audit import chain as audit_chain
from store.audit import log as audit
from store.audit import sar
from store.audit.log import AuditRecord, EventFilter
from store.audit.verify import verify


def add_commands(sub: Any) -> None:
    aud = sub.add_parser("audit", help="read, verify and checkpoint the audit log; subject access reports")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")

    export = aud_sub.add_parser("export", help="audit events on stdout (sealed query terms are never included)")
    export.add_argument("--since", type=moment, help="from this date or time (ISO 8601, UTC), inclusive")
    export.add_argument("--until", type=moment, help="up to this date or time (ISO 8601, UTC), exclusive")
    export.add_argument("--actor", metavar="PRACTITIONER_ID", help="only this practitioner's events")
    export.add_argument("--child", type=child_ref, metavar="CHILD_REF", help="only events that touched this child")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="JSON lines (default) or CSV")
    export.set_defaults(func=audit_export)

    check = aud_sub.add_parser("verify", help="re-walk the hash chain; exit 1 and name the first bad event if altered")
    check.add_argument("--checkpoint", type=Path, metavar="FILE", help="also check against a checkpoint kept outside")
    check.set_defaults(func=audit_verify)

    point = aud_sub.add_parser("checkpoint", help="sign a checkpoint of the chain now and print it, to keep elsewhere")
    point.add_argument(
        "--public-key", action="store_true", help="print the public key that verifies checkpoints, instead"
    )
    point.set_defaults(func=audit_checkpoint)

    report = aud_sub.add_parser("sar", help="subject access report: who (organisation, role) touched a child, when")
    report.add_argument("child", type=child_ref, metavar="CHILD_REF", help="the child's 10-digit reference")
    report.add_argument("--with-names", action="store_true", help="include each practitioner's name")
    report.add_argument("--format", choices=("text", "json"), default="text", help="plain text (default) or JSON")
    report.set_defaults(func=audit_sar)


def moment(text: str) -> datetime:
    """A date or date-time from the command line; naive values are UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or date-time (ISO 8601)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def child_ref(text: str) -> int:
    try:
        return parse_reference(text)
    except InvalidReference as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def record_operator_action(app: Signpost, action: str, subjects: tuple[int, ...], detail: str) -> None:
    """Audit what an operator did at the terminal, before the output is produced (fail closed)."""
    record = AuditRecord(
        at=app.ctx.clock.now(),
        actor_id=None,
        platform="cli",
        tenant="local",
        user_id=getpass.getuser(),
        actor_role=None,
        actor_org=None,
        actor_la=None,
        channel="terminal",
        action=action,
        outcome="done",
        subject_refs=subjects,
        result_count=0,
        correlation_id=uuid.uuid4().hex,
        detail=detail[:200],
    )
    async with app.ctx.db.write() as session:
        await audit.append(session, [record])


def _filter_detail(where: EventFilter) -> str:
    parts = [
        f"since {where.since.isoformat()}" if where.since else "",
        f"until {where.until.isoformat()}" if where.until else "",
        f"actor {where.actor_id}" if where.actor_id else "",
        "one child" if where.child_ref else "",
    ]
    return ", ".join(p for p in parts if p) or "everything"


async def audit_export(args: argparse.Namespace) -> int:
    where = EventFilter(since=args.since, until=args.until, actor_id=args.actor, child_ref=args.child)
    async with opened() as app:
        await record_operator_action(app, "export", (args.child,) if args.child else (), _filter_detail(where))
        writer = None
        if args.format == "csv":
            writer = csv.DictWriter(sys.stdout, fieldnames=audit.EXPORT_FIELDS, lineterminator="\n")
        if writer is not None:
            writer.writeheader()
        async for event in audit.iter_events(app.ctx.db, where):
            if writer is not None:
                writer.writerow(event)
            else:
                sys.stdout.write(audit.to_json_line(event) + "\n")
    return 0


async def audit_verify(args: argparse.Namespace) -> int:
    supplied = []
    if args.checkpoint is not None:
        try:
            supplied.append(audit_chain.parse_note(args.checkpoint.read_text("utf-8")))
        except OSError as exc:
            raise CommandFailed(f"cannot read {args.checkpoint}: {exc.strerror}") from None
        except (audit_chain.CheckpointError, UnicodeDecodeError) as exc:
            raise CommandFailed(f"{args.checkpoint}: {exc}") from None
    async with opened() as app:
        verdict = await verify(app.ctx.db, app.ctx.keys, supplied)
    if verdict.finding is not None:
        found = verdict.finding
        print(f"FAILED at seq {found.seq}: {found.problem} — {found.message}")
        print(f"({verdict.count} events verified before it.)")
        return 1
    agreed = f"; {verdict.checkpoints} checkpoint(s) agree" if verdict.checkpoints else "; no checkpoint to compare"
    print(f"OK: {verdict.count} events, chain intact up to seq {verdict.last_seq}{agreed}.")
    print(f"head {verdict.head_hash.hex()}")
    return 0


async def audit_checkpoint(args: argparse.Namespace) -> int:
    async with opened() as app:
        public = audit_chain.public_key_bytes(app.ctx.keys)
        if args.public_key:
            print(f"{audit_chain.origin_for(app.ctx.keys)} ed25519 {audit_chain.b64(public)}")
            return 0
        checkpoint = await audit_chain.make_checkpoint(app.ctx.db, app.ctx.keys, app.ctx.clock.now())
    sys.stdout.write(checkpoint.to_note(public))
    return 0


async def audit_sar(args: argparse.Namespace) -> int:
    async with opened() as app:
        detail = "with names" if args.with_names else "organisations and roles"
        await record_operator_action(app, "sar", (args.child,), detail)
        report = await sar.subject_access(
            app.ctx.db, app.ctx.sealer, args.child, app.ctx.clock.now(), with_names=args.with_names
        )
    sys.stdout.write(report.to_json() + "\n" if args.format == "json" else report.to_text())
    return 0
