"""Database sub-commands: `signpost db upgrade | current | history` (Alembic underneath),
`signpost db check` (can this store, or a backup of it, be trusted: bot/cli/check.py) and
`signpost db grant-runtime ROLE` (PostgreSQL).

With several replicas, run `signpost db upgrade` once per release (a deploy job), and start the
replicas with SIGNPOST_MIGRATE_ON_START=0: they then refuse to start on a database that is behind.

Each feature's migration follows 0001_core, not the one before it, so Alembic sees a head per
feature branch (a dozen): by design. What an operator reads is counted in migrations instead: how
many of those this Signpost ships are applied, the newest, and which are missing.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bot.cli.arguments import file_path
from handlers.vocabulary import Action, plural

if TYPE_CHECKING:
    from store.db import Database, Revision

# The store, the app and the use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).


def add_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="database migrations and roles")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="STEP")
    upgrade = db_sub.add_parser(
        "upgrade",
        help="apply every migration this Signpost ships (run once per release, apart from start-up)",
        description="Apply every migration this Signpost ships (it migrates on start too, unless\n"
        "SIGNPOST_MIGRATE_ON_START=0).",
    )
    upgrade.set_defaults(func=upgrade_command, after_switch_off=True)
    current = db_sub.add_parser(
        "current",
        help="the revision the database is at; exit status 1 when it is not up to date (behind, ahead or not whole)",
        description="One line: up to date, behind this Signpost (naming what is missing), ahead of it (a newer\n"
        "Signpost migrated it) or not whole (a restore that did not finish). Exit status 0 only when up to date.",
    )
    current.set_defaults(func=current_command, after_switch_off=True)
    history = db_sub.add_parser(
        "history",
        help="every migration this Signpost ships, oldest first, marking those applied",
        description="Every migration this Signpost ships, oldest first, each marked applied or pending.",
    )
    history.set_defaults(func=history_command, after_switch_off=True)
    check = db_sub.add_parser(
        "check",
        help="whether the store, or a backup, can be trusted (integrity, tables, key binding, audit chain); "
        "exit status 1 when not",
        description="Check that the store can be trusted: SQLite's integrity check, every table, key and index of "
        "this Signpost's migrations,\nthe key binding (the key file's fingerprint the store keeps) and the audit "
        "chain. One line per problem; exit status 1\nwhen there is any. The store is opened read-only: the check "
        "changes nothing in it, so it writes no audit event,\nand it works on a backup (--file, or "
        "SIGNPOST_DATABASE_URL naming a restored copy). Any account that can read the store and the key\nfile may "
        "run it (an auditor's). Run as the account that runs Signpost, it zeroes and removes a copy of the key\n"
        "file that a write cut short left beside it, as every command that takes the key file's lock does; where\n"
        "it cannot take that lock (another account's, or a read-only folder), it names such a copy as a problem.",
    )
    check.add_argument(
        "--file",
        type=file_path,
        metavar="FILE",
        help="check this SQLite file (a backup) instead of the store at SIGNPOST_DATABASE_URL; a PostgreSQL "
        "backup is checked once restored, with SIGNPOST_DATABASE_URL naming that database",
    )
    check.set_defaults(func=check_command, after_switch_off=True)
    grant = db_sub.add_parser(
        "grant-runtime",
        help="as the migration role: migrate, then create/grant the runtime role (owns nothing, audit append-only)",
    )
    grant.add_argument("role", metavar="ROLE")
    grant.set_defaults(func=grant_runtime_command, after_switch_off=True)


async def grant_runtime_command(args: argparse.Namespace) -> int:
    from bot.cli.common import CommandFailed, operating
    from store.roles import RoleRefused, grant_runtime

    async with operating(Action.GRANT_RUNTIME, args) as (app, audit):
        try:
            statements = await grant_runtime(app.ctx.db, args.role)
        except RoleRefused as refused:
            raise CommandFailed(str(refused), reason="role refused") from None
        await audit.done(f"role {args.role}")
    for statement in statements:
        print(statement + ";")
    print(f"{args.role} may now run Signpost; it owns nothing, so it cannot switch off the audit's triggers.")
    return 0


def _connect(*, create: bool = False) -> Database:
    """The store at SIGNPOST_DATABASE_URL. Only ``db upgrade`` may make one: ``current`` and
    ``history`` on a mistyped path say there is no store there, as every other command does."""
    from bot.cli.common import refuse_a_missing_store
    from bot.config import load_settings
    from store.db import Database

    settings = load_settings()
    if not create:
        refuse_a_missing_store(settings)
    return Database.connect(settings.database_url, busy_seconds=settings.sqlite_busy_seconds)


def applied_ids(heads: Iterable[str], shipped: list[Revision]) -> set[str]:
    """Every migration applied: the heads the database records and all they follow from."""
    follows = {r.id: r.follows for r in shipped}
    done: set[str] = set()
    todo = list(heads)
    while todo:  # every revision an applied head follows from is applied too (features branch off 0001)
        rev = todo.pop()
        if rev not in done:
            done.add(rev)
            todo.extend(follows.get(rev, ()))
    return done


def state_line(heads: Iterable[str], shipped: list[Revision]) -> tuple[bool, str]:
    """Whether the database is up to date with this Signpost, and one line saying so for an operator."""
    heads = list(heads)
    known = {r.id for r in shipped}
    unknown = sorted(h for h in heads if h not in known)
    if unknown:
        return False, (
            f"ahead: the database has migrations this Signpost does not ship ({', '.join(unknown)}): "
            "a newer Signpost upgraded it; run that version"
        )
    done = applied_ids(heads, shipped)
    missing = [r.id for r in shipped if r.id not in done]
    count = f"{len(done)} of {len(shipped)} migrations applied"
    if not missing:
        newest = max(done)
        return True, (
            f"up to date: {count}, newest {newest} "
            f"({len(heads)} Alembic heads: each feature's migration branches from 0001_core, by design)"
        )
    if not done:
        return False, f"empty: {count}; run: signpost db upgrade"
    return False, f"behind: {count}; missing {', '.join(missing)}; run: signpost db upgrade"


async def upgrade_command(args: argparse.Namespace) -> int:
    from bot.cli.common import store_errors
    from store.db import applied_heads, revisions, schema_gaps

    db = _connect(create=True)
    try:
        async with store_errors():
            before = await applied_heads(db)
            await db.migrate()
            after = await applied_heads(db)
            whole = (await schema_gaps(db)).whole
    finally:
        await db.close()
    if not whole:  # a migration recorded applies nothing again: a restore cut short stays so
        print(NOT_WHOLE)
        return 1
    shipped = revisions()
    added = sorted(applied_ids(after, shipped) - applied_ids(before, shipped))
    _, state = state_line(after, shipped)
    if not added:
        print(f"Nothing to apply: {state}")
    else:
        which = f" ({', '.join(added)})" if len(added) <= 3 else ""  # a new store's dozen: the count says it
        print(f"Applied {len(added)} migration{'s' if len(added) != 1 else ''}{which}; {state}")
    return 0


async def current_command(args: argparse.Namespace) -> int:
    from bot.cli.common import store_errors
    from store.db import applied_heads, revisions, schema_gaps

    db = _connect()
    try:
        async with store_errors():
            applied = await applied_heads(db)
            current, line = state_line(applied, revisions())
            gaps = await schema_gaps(db)
    finally:
        await db.close()
    if (current and not gaps.whole) or (not applied and gaps.begun):  # the record and the tables disagree
        current, line = False, NOT_WHOLE
    print(line)
    return 0 if current else 1


NOT_WHOLE = (
    "not whole: Signpost's tables are here in part, without their keys, or without the record of their "
    "migrations (a restore that did not finish?); run: signpost db check"
)


async def check_command(args: argparse.Namespace) -> int:
    from bot.cli.check import check_store
    from bot.config import load_settings

    found = await check_store(load_settings(), args.file)
    for problem in found.problems:
        print(f"FAILED: {problem}")
    for what in found.unchecked:
        print(f"NOT CHECKED: {what}")
    if not found.trusted:
        if found.passed:
            print(f"Passed: {'; '.join(found.passed)}.")
        print(f"Do not trust this store as it is: {plural(len(found.problems), 'problem')}.")
        return 1
    print(f"OK: {'; '.join(found.passed)}.")
    return 0


async def history_command(args: argparse.Namespace) -> int:
    from bot.cli.common import store_errors
    from store.db import applied_heads, revisions

    db = _connect()
    try:
        async with store_errors():
            applied = set(await applied_heads(db))
    finally:
        await db.close()
    shipped = sorted(revisions(), key=lambda r: r.id)
    done = applied_ids(applied, shipped)
    width = max((len(revision.id) for revision in shipped), default=0)
    for revision in shipped:
        mark = "applied" if revision.id in done else "pending"
        print(f"{revision.id:<{width}}  {mark:<8} {revision.title}")
    return 0
