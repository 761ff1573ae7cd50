"""Database sub-commands: `signpost db grant-runtime ROLE` (PostgreSQL)."""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli.common import CommandFailed, opened
from store.roles import RoleRefused, grant_runtime


def add_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="database roles (PostgreSQL)")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="STEP")
    grant = db_sub.add_parser(
        "grant-runtime",
        help="as the migration role: migrate, then create/grant the runtime role (owns nothing, audit append-only)",
    )
    grant.add_argument("role", metavar="ROLE")
    grant.set_defaults(func=grant_runtime_command)


async def grant_runtime_command(args: argparse.Namespace) -> int:
    async with opened() as app:
        try:
            statements = await grant_runtime(app.ctx.db, args.role)
        except RoleRefused as refused:
            raise CommandFailed(str(refused)) from None
    for statement in statements:
        print(statement + ";")
    print(f"{args.role} may now run Signpost; it owns nothing, so it cannot switch off the audit's triggers.")
    return 0
