"""`signpost practitioner ...`: operators list and unlink practitioners' chat identities."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from sqlalchemy import select

from bot.cli.common import CommandFailed, opened
from handlers.access.requests import unlink_identities
from store.audit.log import AuditRecord, append
from store.people import practitioners
from store.tables.people import ChatIdentity, Practitioner

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
    listing = group_sub.add_parser("list", help="practitioners with linked chat identities (ids and roles only)")
    listing.add_argument("--authority", help="only this local authority")
    listing.set_defaults(func=list_command)


def cli_event(action: str, detail: str, at: Any) -> AuditRecord:
    """The audit event of an operator command run on the server (no chat identity)."""
    return AuditRecord(
        at=at,
        actor_id=None,
        platform="cli",
        tenant="local",
        user_id="operator",
        actor_role=None,
        actor_org=None,
        actor_la=None,
        channel="cli",
        action=action,
        outcome="done",
        subject_refs=(),
        result_count=0,
        correlation_id=uuid.uuid4().hex,
        detail=detail,
    )


async def unlink_command(args: argparse.Namespace) -> int:
    target = args.practitioner_id.strip().upper()
    async with opened() as app:
        now = app.ctx.clock.now()
        async with app.ctx.db.write() as session:
            if await practitioners.get_actor(session, target) is None:
                raise CommandFailed(f"no practitioner {target} in the register")
            count = await unlink_identities(session, target, args.platform)
            await append(session, [cli_event("unlink", f"{target} {args.platform or 'all'} {count}", now)])
    where = args.platform or "every platform"
    print(f"Unlinked {target} on {where}: {count} identit{'y' if count == 1 else 'ies'} removed.")
    return 0


async def list_command(args: argparse.Namespace) -> int:
    async with opened() as app, app.ctx.db.read() as session:
        stmt = (
            select(Practitioner.id, Practitioner.local_authority, Practitioner.roles, ChatIdentity.platform)
            .join(ChatIdentity, ChatIdentity.practitioner_id == Practitioner.id)
            .order_by(Practitioner.id, ChatIdentity.platform)
        )
        if args.authority:
            stmt = stmt.where(Practitioner.local_authority == args.authority)
        rows = (await session.execute(stmt)).all()
    if not rows:
        print("No practitioner has a linked chat identity.")
    for pid, la, roles, platform in rows:
        print(f"{pid}\t{la}\t{roles}\t{platform}")
    return 0
