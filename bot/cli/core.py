"""Core sub-commands: run, console, seed-demo, import. (`audit …` lives in bot/cli/audit.py.)"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.cli.arguments import file_path
from handlers.vocabulary import Action, plural

# The store, the app and the front ends are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).

IMPORT_DESCRIPTION = """\
Import feed CSVs into the register, all or nothing. Each file is UTF-8 CSV with a header row; its
kind is recognised from the header, so files may be given in any order:

  practitioners: practitioner_id,given_name,family_name,role,organisation,local_authority,phone,
                 email,roles   (roles: ;-separated from practitioner, duty_manager, admin)
  children:      child_ref,given_names,family_name,aliases,date_of_birth,sex,postcode,
                 local_authority,shielded   (aliases: ;-separated full names; date_of_birth
                 as below; sex F, M, X, U or empty; shielded true or false, yes or no,
                 y or n, 1 or 0)
  involvements:  child_ref,practitioner_id,service,started,ended,lead_professional
                 (dates as below; ended empty while current, or a planned end: current
                 until that day; lead_professional as shielded)

Dates: YYYY-MM-DD (2014-04-03), or another form that can mean one day only: year first with
slashes (2014/04/03), or with a midnight time, or the month by its English name (03-Apr-2014,
April 3, 2014). Digits alone in another order (3/4/2014, 03.04.2014) could be either of two
days: a problem.

Rows are upserted by child_ref, practitioner_id, and (child, practitioner, service, started), so
importing the same rows again changes nothing; a row repeating another's key, in its file or
another file of the import, is a problem. An involvement cannot start after today. If any row of
any file is bad, nothing is written and the problems are listed on stderr as FILE:LINE: FIELD:
PROBLEM (no personal data quoted; the first 100, then how many more). Files are read row by row,
so memory stays bounded whatever their size. Where there was no store yet, a refused import
leaves none (nor a key file).

exit status:
  0  imported; rows read and new or changed, per kind, on stdout
  1  nothing imported: the problems are listed on stderr
  2  a file could not be read, or a setting is wrong (one line on stderr)
  3  imported, but it destroyed records and storage compaction did not finish, so they may still
     be recoverable from the database files: the last line on stdout says why and what to do"""


def add_commands(sub: Any) -> None:
    run = sub.add_parser("run", help="serve the configured front ends (the console when none is configured)")
    run.add_argument(
        "--host",
        help="listen address of Slack or Teams over HTTP (default SIGNPOST_HOST or 127.0.0.1; refused for the console)",
    )
    run.add_argument(
        "--port",
        type=parse_port,
        help="listen port of Slack or Teams over HTTP (default SIGNPOST_PORT or 3000; refused for the console)",
    )
    run.add_argument("--as", dest="as_id", help="console identity when no chat front end is configured")
    run.add_argument(
        "--workers",
        type=parse_workers,
        default=1,
        metavar="N",
        help=(
            "worker processes sharing the port (SO_REUSEPORT), or auto for one per CPU (default 1). "
            "Above 1: Slack HTTP mode and Teams only, on PostgreSQL; the store is migrated once first, "
            "SIGTERM drains every worker, and if a worker dies the rest are stopped and the exit status is "
            "non-zero, for the service manager to restart"
        ),
    )
    run.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    run.set_defaults(func=run_command, after_switch_off=True)

    con = sub.add_parser("console", help="the terminal front end (scriptable: one message per line on stdin)")
    con.add_argument("--as", dest="as_id", help="practitioner id to act as (default: the demo practitioner)")
    con.set_defaults(func=console_command, after_switch_off=True)

    seed = sub.add_parser("seed-demo", help="load the deterministic synthetic demo data (idempotent)")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when the store already holds children")
    seed.add_argument("--children", type=int, default=3000, help="how many synthetic children (default 3000)")
    seed.set_defaults(func=seed_demo, after_switch_off=False)

    imp = sub.add_parser(
        "import",
        help="import feed CSVs (kind recognised from the header); all or nothing",
        description=IMPORT_DESCRIPTION,
    )
    imp.add_argument("files", nargs="+", type=file_path, metavar="FILE", help="feed CSV files, in any order")
    imp.add_argument(
        "--destroy-redated",
        action="store_true",
        help="a row that changes a held child's date of birth to one 24 or more years ago destroys their "
        "record (without this, such a row is a problem and nothing is imported: destruction cannot be undone)",
    )
    imp.set_defaults(func=import_command, after_switch_off=False)


def parse_workers(text: str) -> int:
    """``--workers``: a count from 1 up, or ``auto`` (one per CPU this process may use)."""
    if text.strip().lower() == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("not a number of workers: use 1, 2, … or auto")
    return value


def parse_port(text: str) -> int:
    """``--port``: 1 to 65535, refused as the option (load_settings would name SIGNPOST_PORT, which
    was not set, and a 0 read as no port at all would listen on the default)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("not a port: use 1 to 65535")
    return value


async def run_command(args: argparse.Namespace) -> int:
    from bot import serve  # the web app and every front end

    return await serve.run_command(args)


async def console_command(args: argparse.Namespace) -> int:
    from bot.console import console

    return await console.console_command(args)


async def seed_demo(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from bot.cli.progress import progress
    from handlers.operator import register
    from handlers.operator.common import Refused
    from handlers.operator.decommissioned import SWITCHED_OFF

    try:
        async with operating(Action.SEED_DEMO, args, create=True) as (app, audit):
            with progress("Seeding demo data", unit="child", end_at_total=False) as bar:
                seeded = await register.seed_demo(
                    app.ctx,
                    audit,
                    args.children,
                    if_empty=args.if_empty,
                    on_progress=bar.advance,
                    on_total=bar.set_total,
                )
    except Refused as refused:
        if not (args.if_empty and refused.reason == SWITCHED_OFF):
            raise
        # `make run` seeds only an empty store: a decommissioned one is no store to seed, and the
        # console that follows answers "switched off" itself. Said, audited refused, not a failure.
        print(f"{str(refused).rstrip('.')}; not seeding.")
        return 0
    if not seeded.seeded:
        print(f"The store already holds {seeded.existing:,} children; not seeding.")
        return 0
    if not seeded.marked:
        print("This store held data before seeding: it is not marked as a disposable demo store.")
    changed = ", ".join(f"{n:,} {kind}" for kind, n in seeded.changed.items())
    print(f"Demo data ready ({changed or 'nothing new'} written).")
    return 0


def _readable(path: Path) -> None:
    """A feed file the import can read: a regular file that opens. Each file is read twice (counted
    for the progress, then imported), so a pipe (``<(zcat feed.csv.gz)``, a named pipe) is refused
    before it is opened: the count drained it, and one nobody writes to would hang the open."""
    import stat

    from bot.cli.common import CommandFailed

    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):  # a folder: opening it says so
            raise CommandFailed(
                f"{path} is not a file (a pipe?): save the feed to a file and import that",
                reason="a file is not a regular file",
            )
        with path.open("rb"):
            pass
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}", reason="a file cannot be read") from None


class Leftovers:
    """What a first import makes where there was no store: the SQLite file and the files SQLite
    keeps beside it, the key file and its lock; which of them were there before. A refused import
    removes those it made (``remove``), so that it leaves the machine as it found it: an empty
    store and a key file left behind were taken for the register by the next `make run`, and
    deleting one of the two alone left a store no new key file may open. Only those exact names
    are ever removed, never another file that happens to share their beginning.

    A store file that was there already empty (made beforehand, ``install -m 600 /dev/null``) is
    emptied again rather than removed, keeping its owner and mode; one that was there holding
    something (a hot journal that rolled back to nothing) is left with its key file as they are:
    removing only the key file left a store sealed under a key file no longer there."""

    STORE_FILES = ("", "-wal", "-shm", "-journal")
    KEY_FILES = ("", ".lock")

    def __init__(self, store: Path | None = None, key_files: Sequence[Path] = ()) -> None:
        self._empty: Path | None = None
        self._new: list[Path] = []
        if store is not None and (store.exists() or store.is_symlink()):
            if store.is_symlink() or not store.is_file() or store.stat().st_size > 0:
                return  # not made here, nor empty: the store and its key file are kept together
            self._empty = store
        places = [] if store is None else [store.with_name(store.name + end) for end in self.STORE_FILES]
        places += [key.with_name(key.name + end) for key in key_files for end in self.KEY_FILES]
        self._new = [place for place in places if not place.exists() and not place.is_symlink()]

    def remove(self) -> None:
        """Remove the files made since (the store is closed by now: nothing holds them open), and
        empty again a store file that was there empty."""
        for path in self._new:
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
        if self._empty is not None and self._empty.is_file() and not self._empty.is_symlink():
            with self._empty.open("r+b") as emptied:
                emptied.truncate(0)


PROBLEMS_SHOWN = 100
"""The problem lines a refused import prints: a file whose every row is bad (a copy of another,
or a national feed in the wrong order) would otherwise print millions of lines."""


def print_refused(problems: Sequence[str], total: int) -> None:
    """The problems in file and line order, the first ``PROBLEMS_SHOWN``, then how many more."""
    for problem in problems[:PROBLEMS_SHOWN]:
        print(problem, file=sys.stderr)
    count = plural(total, "problem")
    if total > PROBLEMS_SHOWN:
        print(f"… and {plural(total - PROBLEMS_SHOWN, 'more problem')}.", file=sys.stderr)
        print(f"Nothing was imported: {count} ({PROBLEMS_SHOWN} shown above).", file=sys.stderr)
    else:
        print(f"Nothing was imported: {count} above.", file=sys.stderr)


async def import_command(args: argparse.Namespace) -> int:
    import asyncio

    from bot.cli.common import operating
    from bot.cli.progress import progress, steps
    from bot.config import load_settings
    from handlers.operator import register
    from handlers.operator.common import Refused
    from store.db import missing_store_file

    settings = load_settings()  # once: the store asked about is the store opened
    new_store = missing_store_file(settings.database_url)
    made = Leftovers()
    if new_store is not None:
        for path in args.files:  # a new store and key file only for an import that can run
            _readable(path)
        made = Leftovers(new_store, [settings.key_file, *filter(None, [settings.signing_key_file])])
    try:
        async with operating(Action.IMPORT, args, create=True, settings=settings) as (app, audit):
            for path in args.files:  # every file readable before the import begins
                _readable(path)
            with (
                progress("Importing", unit="child", end_at_total=False) as bar,
                progress("Reading involvements", unit="row") as involvements,
                steps("Importing") as step,
            ):
                imported = await register.import_paths(
                    app.ctx,
                    audit,
                    args.files,
                    on_progress=bar.advance,
                    on_total=bar.set_total,
                    on_involvements=involvements.advance,
                    on_involvements_total=involvements.set_total,
                    on_step=step.begin,
                    destroy_redated=args.destroy_redated,
                )
    except register.ImportRefused as refused:
        made.remove()
        print_refused(refused.problems, refused.total)
        return 1
    except Refused:
        made.remove()
        raise
    except asyncio.CancelledError:  # Ctrl-C: the transaction is rolled back
        print("Nothing was imported: stopped before the end (an import is all or nothing).", file=sys.stderr)
        raise
    for kind, rows in imported.rows.items():
        print(f"{kind}: {plural(rows, 'row')} read, {imported.changed.get(kind, 0):,} new or changed")
    for note in imported.notes:
        print(note)
    return 3 if imported.compaction_pending else 0
