"""`signpost report transparency`: the public transparency report on stdout (HTML, CSV or JSON).

The same report as the /transparency page, for publishing elsewhere or checking before it goes out.
It holds no personal data (counts from 1 to 4 are suppressed); producing it here is audited, as
every operator command is.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from handlers.vocabulary import Action

# The store, the app and the use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).

# The formats bot.transparency_page.RENDERERS writes, in its order (a test holds them equal): named
# here for the parser's choices, which importing the page (the web app with it) would slow down.
FORMATS = ("html", "csv", "json")


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
        help="the month (default: the last complete month). The running month can be asked for here, to check, "
        'not to publish: it is marked so far (every CSV row\'s month reads "YYYY-MM (so far)"), and the page '
        "does not publish it until it is over",
    )
    transparency.add_argument("--format", choices=FORMATS, default="csv", help="csv (default), html (the page) or json")
    transparency.set_defaults(func=transparency_report, after_switch_off=True)


async def transparency_report(args: argparse.Namespace) -> int:
    from bot.cli.common import CommandFailed, operating
    from bot.transparency_page import RENDERERS
    from handlers.transparency import ReportError, build

    async with operating(Action.TRANSPARENCY_REPORT, args) as (app, audit):
        try:
            report = await build(app.ctx.db, app.ctx.clock.now(), args.month, so_far=True)  # admins may check it
        except ReportError as exc:
            raise CommandFailed(str(exc), reason="not a month it can report") from None
        await audit.done(f"{report.month} {args.format}")
    sys.stdout.write(RENDERERS[args.format](report))
    return 0
