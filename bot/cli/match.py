"""`signpost match FILE.csv [--top K] --as ADMIN_ID`: reconcile a roll against the register."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from bot.cli.arguments import file_path, practitioner_id
from handlers.vocabulary import Action, Origin, format_ref, plural

if TYPE_CHECKING:
    from handlers.reconcile import LineAnswer

# The store, the app and the use cases are imported by the commands as they run, not here:
# building the parser (`signpost --help`, a usage error) stays light (bot/cli/arguments.py).

HEADER = ("line", "decision", "rank", "candidate_ref", "confidence")
SHIELDED_REF = "shielded"
DEFAULT_TOP = 5  # candidates listed for an ambiguous row when --top is not given


def add_commands(sub: Any) -> None:
    match = sub.add_parser(
        "match",
        help="match a roll (children feed format: child_ref is ignored, and any identity field may be empty) against "
        "the register: CSV line,decision,rank,candidate_ref,confidence on stdout, line being the row's line "
        "in FILE.csv (the header is line 1), as a problem names it; audited as one batch event",
    )
    match.add_argument(
        "file",
        type=file_path,
        metavar="FILE.csv",
        help="the roll: a file, read twice (checked whole, then matched), not a pipe",
    )
    match.add_argument(
        "--top",
        type=top_count,
        default=DEFAULT_TOP,
        metavar="K",
        help="candidates listed for an ambiguous row, best first, only those with a confidence of at least "
        f"0.0001 (default {DEFAULT_TOP}); a match lists only its child, no match none",
    )
    match.add_argument(
        "--as",
        dest="as_id",
        type=practitioner_id,
        required=True,
        metavar="ADMIN_ID",
        help="the admin running the match (recorded in the audit log when the register holds them; "
        "otherwise the refusal is recorded under your local account)",
    )
    match.set_defaults(func=match_command, after_switch_off=False)


def top_count(text: str) -> int:
    typed = text.strip()
    value = int(typed) if typed.isascii() and typed.isdigit() else 0  # never a full-width five, nor "²"
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("not a number of candidates from 1 to 100")
    return value


async def match_command(args: argparse.Namespace) -> int:
    from bot.cli.common import operating
    from bot.cli.progress import progress
    from handlers.operator.register import match_roll
    from handlers.roll import Roll, RosterRejected

    try:
        async with operating(Action.MATCH_BATCH, args, acting_as=args.as_id, origin=Origin.BATCH) as (app, audit):
            with progress("Matching rows", unit="row") as bar:
                answers = await match_roll(
                    app.ctx,
                    audit,
                    Roll.from_path(args.file),
                    args.top,
                    uuid.uuid4().hex,
                    on_progress=bar.advance,
                    on_total=bar.set_total,
                )
    except RosterRejected as rejected:
        for problem in rejected.problems:
            print(problem, file=sys.stderr)
        print(f"Nothing was matched: {plural(len(rejected.problems), 'problem')} above.", file=sys.stderr)
        return 1
    with answers:  # the batch's audit event is durable: its answers may be shown
        write_csv(answers, sys.stdout)
    return 0


def write_csv(answers: Iterable[LineAnswer], out: TextIO) -> None:
    """One row per candidate (rank 1..K, best first; a match has one); one row with empty candidate
    fields when none. ``line`` is the row's line in the roll's file.

    A shielded child's reference is not shown (as in chat): its rows say ``shielded`` instead.
    """
    from bot import spreadsheet

    writer = spreadsheet.Writer(out)
    writer.writerow(HEADER)
    for answer in answers:
        if not answer.candidates:
            writer.writerow((answer.line, answer.decision.value, "", "", ""))
        for rank, candidate in enumerate(answer.candidates, start=1):
            ref = SHIELDED_REF if candidate.shielded else format_ref(candidate.ref).replace(" ", "")
            writer.writerow((answer.line, answer.decision.value, rank, ref, f"{candidate.confidence:.4f}"))
