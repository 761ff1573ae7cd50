"""`signpost report transparency`: the public transparency report on stdout (HTML, CSV or JSON).

The same report as the /transparency page, for publishing elsewhere or checking before it goes out.
It holds no personal data (counts from 1 to 4 are suppressed); producing it here is audited, as
every operator command is.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.cli.common import CommandFailed, operating
from bot.transparency_page import RENDERERS
from handlers.transparency import ReportError, build
from handlers.vocabulary import Action


def add_commands(sub: Any) -> None:
    report = sub.add_parser("report", help="reports for the public")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    transparency = report_sub.add_parser(
        "transparency",
        help="the monthly transparency report, no personal data, small numbers suppressed (stdout)",
    )
    transparency.add_argument(
        "--month",
        metavar="YYYY-MM",
        help="the month (default: the last complete month; the running month is shown here, marked so far, "
        "but not published on the page until it is over)",
    )
    transparency.add_argument(
        "--format", choices=tuple(RENDERERS), default="csv", help="csv (default), html (the page) or json"
    )
    transparency.set_defaults(func=transparency_report)


async def transparency_report(args: argparse.Namespace) -> int:
    async with operating(Action.TRANSPARENCY_REPORT) as (app, audit):
        try:
            report = await build(app.ctx.db, app.ctx.clock.now(), args.month, so_far=True)  # admins may check it
        except ReportError as exc:
            raise CommandFailed(str(exc), reason="not a month it can report") from None
        await audit.done(f"{report.month} {args.format}")
    sys.stdout.write(RENDERERS[args.format](report))
    return 0
