"""`signpost totp enrol|reset PRACTITIONER_ID`: an operator manages step-up credentials (audited)."""

from __future__ import annotations

import argparse
import getpass
import os
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import CommandFailed, opened
from bot.enrol_page import terminal_enrolment
from handlers.stepup import totp
from handlers.vocabulary import Actor, Notice
from store.audit.log import AuditRecord, append
from store.people import credentials, practitioners
from store.people.credentials import ACTIVE

RESET_NOTICE = "Your Signpost authenticator was reset by an administrator. To see results again, send: enrol"


def add_commands(sub: Any) -> None:
    group = sub.add_parser("totp", help="manage practitioners' authenticator (step-up) credentials")
    totp_sub = group.add_subparsers(dest="totp_command", required=True, metavar="TOTP_COMMAND")
    enrol = totp_sub.add_parser(
        "enrol",
        help="issue a new authenticator secret and show its QR code here; active after the first code",
    )
    enrol.add_argument("practitioner_id", metavar="PRACTITIONER_ID")
    enrol.add_argument("--replace", action="store_true", help="replace a working authenticator")
    enrol.set_defaults(func=enrol_command)
    reset = totp_sub.add_parser(
        "reset", help="remove a credential (lost phone, locked or disabled); the practitioner enrols again"
    )
    reset.add_argument("practitioner_id", metavar="PRACTITIONER_ID")
    reset.set_defaults(func=reset_command)


def operator() -> str:
    """Who ran the command, for the audit event (the local account; never a secret)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


def operator_record(actor: Actor, action: str, outcome: str, detail: str, at: datetime) -> AuditRecord:
    return AuditRecord(
        at=at,
        actor_id=None,
        platform="cli",
        tenant="local",
        user_id=operator(),
        actor_role=None,
        actor_org=None,
        actor_la=actor.local_authority,
        channel="terminal",
        action=action,
        outcome=outcome,
        subject_refs=(),
        result_count=0,
        correlation_id=uuid.uuid4().hex,
        detail=f"{detail} for {actor.practitioner_id}",
    )


async def _actor(session: AsyncSession, practitioner_id: str) -> Actor:
    actor = await practitioners.get_actor(session, practitioner_id)
    if actor is None:
        raise CommandFailed(f"no practitioner with id {practitioner_id}")
    return actor


async def enrol_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        now = app.ctx.clock.now()
        seed = totp.new_seed()
        async with app.ctx.db.write() as session:
            actor = await _actor(session, args.practitioner_id)
            existing = await credentials.get(session, actor.practitioner_id)
            if existing is not None and existing.state == ACTIVE and not args.replace:
                raise CommandFailed(
                    f"{actor.practitioner_id} already has a working authenticator; "
                    "add --replace to issue a new one (the old one stops working)"
                )
            await credentials.enrol(session, app.ctx.keys, actor.practitioner_id, seed, now)
            await append(session, [operator_record(actor, "totp_enrol", "done", "enrolment started", now)])
    print(terminal_enrolment(totp.provisioning_uri(seed, actor.practitioner_id)))
    print(
        f"Give this to {actor.practitioner_id} privately. It becomes active when they enter their first "
        "code: Signpost asks for one at their first search."
    )
    return 0


async def reset_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        now = app.ctx.clock.now()
        async with app.ctx.db.write() as session:
            actor = await _actor(session, args.practitioner_id)
            existed = await credentials.reset(session, actor.practitioner_id)
            detail = "credential removed" if existed else "nothing to reset"
            await append(session, [operator_record(actor, "totp_reset", "done", detail, now)])
            if existed:
                notice = Notice(actor.practitioner_id, "stepup_reset", RESET_NOTICE)
                await app.ctx.notices.enqueue(session, [notice], now)
    if existed:
        print(f"Reset {actor.practitioner_id}'s authenticator. They can send enrol to set up a new one.")
    else:
        print(f"{actor.practitioner_id} had no authenticator; nothing to reset.")
    return 0
