"""Core sub-commands: run, console, seed-demo, import. (`audit …` lives in bot/commands/audit.py.)"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot import serve
from bot.cli.common import CommandFailed, opened
from bot.console import console
from store.register.feeds import Feed, FeedRejected, import_feeds
from store.register.synthetic import SyntheticRegister, feeds_text
from store.tables.lifecycle import Meta
from store.tables.register import Child


def add_commands(sub: Any) -> None:
    run = sub.add_parser("run", help="serve the configured front ends (the console when none is configured)")
    run.add_argument("--host", help="listen address (default SIGNPOST_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default SIGNPOST_PORT or 3000)")
    run.add_argument("--as", dest="as_id", help="console identity when no chat front end is configured")
    run.set_defaults(func=serve.run_command)

    con = sub.add_parser("console", help="the terminal front end (scriptable: one message per line on stdin)")
    con.add_argument("--as", dest="as_id", help="practitioner id to act as (default: the demo practitioner)")
    con.set_defaults(func=console.console_command)

    seed = sub.add_parser("seed-demo", help="load the deterministic synthetic demo data (idempotent)")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when the store already holds children")
    seed.add_argument("--children", type=int, default=3000, help="how many synthetic children (default 3000)")
    seed.set_defaults(func=seed_demo)

    imp = sub.add_parser("import", help="import feed CSVs (kind recognised from the header); all or nothing")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.set_defaults(func=import_command)


async def seed_demo(args: argparse.Namespace) -> int:
    async with opened() as app:
        async with app.ctx.db.read() as session:
            existing = (await session.execute(select(func.count()).select_from(Child))).scalar_one()
        if existing and args.if_empty:
            print(f"The store already holds {existing} children; not seeding.")
            return 0
        register = SyntheticRegister(children=args.children)
        feeds = [Feed(name, text) for name, text in feeds_text(register).items()]
        report = await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
        async with app.ctx.db.write() as session:
            await session.merge(Meta(key="demo_children", value=str(args.children)))
        changed = ", ".join(f"{n} {kind}" for kind, n in report.changed.items())
        print(f"Demo data ready ({changed or 'nothing new'} written).")
    return 0


async def import_command(args: argparse.Namespace) -> int:
    feeds = []
    for path in args.files:
        try:
            feeds.append(Feed.from_path(path))
        except OSError as exc:
            raise CommandFailed(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandFailed(f"{path} is not UTF-8 text") from None
    async with opened() as app:
        try:
            report = await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
        except FeedRejected as rejected:
            for problem in rejected.report.problems:
                print(problem, file=sys.stderr)
            print(f"Nothing was imported: {len(rejected.report.problems)} problem(s) above.", file=sys.stderr)
            return 1
    for kind, rows in report.rows.items():
        print(f"{kind}: {rows} rows read, {report.changed.get(kind, 0)} new or changed")
    for note in report.notes():
        print(note)
    return 0
