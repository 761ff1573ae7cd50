"""What building the `signpost` parser needs from the commands' shared helpers: the argument types
and the help's layout. It imports nothing heavy (no store, no SQLAlchemy, no front end), so that
`signpost --help` and a usage error answer at once; what a command needs when it runs, it imports
then (bot/cli/common.py)."""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

DATE_FORMS = "DD/MM/YYYY or YYYY-MM-DD"
"""The dates every option that takes one reads (``day``), as its help and its refusal name them."""
TIME_FORMS = "YYYY-MM-DDTHH:MM[:SS], UTC unless it ends in Z or ±HH:MM"
"""The times an option taking a moment also reads (``moment``): ISO 8601's extended form only."""
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)


def day(text: str) -> date:
    """A date typed on the command line: DD/MM/YYYY (as in chat) or YYYY-MM-DD, any year of the
    calendar in either spelling. The one reading of a date for every option that takes one."""
    from handlers.grammar import calendar_date  # the date grammar, only once a date is given

    value = calendar_date(text.strip())
    if value is None:
        raise argparse.ArgumentTypeError(not_a_date(text, f"not a date: use {DATE_FORMS}"))
    return value


def moment(text: str) -> tuple[datetime, bool]:
    """An instant typed on the command line, in UTC, and whether it named a whole day: a date as
    ``day`` reads it (its first instant), or a time in ``TIME_FORMS`` (naive is UTC). Other forms
    Python's fromisoformat would take (20261205, 2026-W49-6, a space for the T) are refused, with
    one line naming these."""
    typed = text.strip()
    try:
        return datetime.combine(day(typed), time(), UTC), True
    except argparse.ArgumentTypeError:
        if not _TIME.fullmatch(typed):
            raise argparse.ArgumentTypeError(
                not_a_date(text, f"not a date ({DATE_FORMS}) or time ({TIME_FORMS})")
            ) from None
    try:
        value = datetime.fromisoformat(typed)
    except ValueError:  # written as a time, but no such day or hour (2026-02-30T10:00, T25:00)
        raise argparse.ArgumentTypeError(
            f"not a real time: check the day, the month and the hour ({TIME_FORMS}; or a date, {DATE_FORMS})"
        ) from None
    try:  # In UTC here: an offset that carries it past year 1 or 9999 overflowed later, in the command.
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)), False
    except OverflowError:
        raise argparse.ArgumentTypeError(
            f"outside the calendar in UTC: give a date ({DATE_FORMS}) or time ({TIME_FORMS}) within it"
        ) from None


HIDDEN_ID = "that practitioner id holds a control character or an invisible formatting mark"
NO_ID = "needs a practitioner id, as in the practitioners feed (e.g. NS-DM01)"


def practitioner_id(text: str) -> str:
    """A practitioner id typed on the command line. One holding a character that does not show as
    itself (a NUL, a byte that is not UTF-8, which Python hands over as half a character) is no one's
    id, and no database can be asked for it (PostgreSQL cannot keep a NUL): a usage error, before
    any store is opened. Read as the console's ``--as`` and ``practitioner leave`` read it, trimmed
    and in capitals, so that ``totp enrol p002`` names the practitioner ``practitioner leave p002``
    does. An empty one (``unlink ''``) names no one: a usage error too, not "no practitioner  in the
    register"."""
    from handlers.grammar import hides_characters

    if hides_characters(text):
        raise argparse.ArgumentTypeError(HIDDEN_ID)
    if not text.strip():
        raise argparse.ArgumentTypeError(NO_ID)
    return text.strip().upper()


HIDDEN_REF = "that reference holds a control character or an invisible formatting mark"
NOT_A_REF = "a child's reference is ten digits, with spaces or dashes between them if you like, e.g. 999 000 0018"


def child_reference(text: str) -> int:
    """A child's reference typed on the command line (``999 000 0018``, spaces or dashes allowed), as
    chat reads one: text holding a character that does not show as itself (``999\\x07000\\x1b0018``)
    is no reference, whatever digits it holds, and is a usage error (``handlers.grammar.hides_characters``,
    the home chat and ``--actor`` refuse it in); so is text that is more than a reference
    (``999-000-0018x``, ``ref 999 000 0018``: chat reads a reference only in the shape
    ``looks_like_reference`` takes), whose digits alone would name a child; else a typo is one, by the
    check digit. The one reading for every argument that names a child."""
    from handlers.grammar import hides_characters
    from handlers.refs import InvalidReference, looks_like_reference, parse_reference

    if hides_characters(text):
        raise argparse.ArgumentTypeError(HIDDEN_REF)
    if not looks_like_reference(text.strip()):
        raise argparse.ArgumentTypeError(NOT_A_REF)
    try:
        return parse_reference(text)
    except InvalidReference as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


NO_PATH = "needs a path: an empty one names no file"


def file_path(text: str) -> Path:
    """A file or folder named on the command line. One whose path does not show as itself (ESC and
    the terminal sequence it starts, a bidi override, a tab or line break, a byte that is not UTF-8)
    is refused with the usage, before anything runs: printed, it would act on the operator's
    terminal (``\\x1b[2J`` clears it) or split a line; audited, it would reach `audit export`. So
    every path a command prints or audits shows as itself, and none needs escaping where it is used.
    Stricter than a command's text (``hides_characters``), where a tab or line break is a space: in
    a file's name it is part of the name. An empty path is refused too: ``Path("")`` is ".", the
    current folder, which no one named. The one reading for every argument that names a file."""
    from store.characters import HIDDEN_IN_PATH, shows_as_itself

    if not text:
        raise argparse.ArgumentTypeError(NO_PATH)
    if not shows_as_itself(text):
        raise argparse.ArgumentTypeError(f"that path {HIDDEN_IN_PATH}")
    return Path(text)


def not_a_date(text: str, otherwise: str) -> str:
    """Why ``text`` is no date: written as one (31/02/2027), that it does not exist; else ``otherwise``.
    Neither repeats ``text``: argparse names the option, and what was typed there may be a child's
    date of birth and name (``SignpostParser.error``, ``unsaid``)."""
    from handlers.grammar import date_shaped

    if date_shaped(text.strip()):
        return "not a real date: check the day and the month (DD/MM/YYYY or YYYY-MM-DD)"
    return otherwise


def example(*lines: str) -> str:
    """An argparse epilog: the example commands under a heading, shown as typed."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


class InWords(argparse.Action):
    """One value that may be typed in several words unquoted (a reference as printed, ``999 000
    1006``, which the shell splits in three): the words are joined with spaces, then read by the
    ``read=`` function as ``type=`` would be. Help shows one metavar (``Formatter``), not "A [A ...]",
    which would say several values are taken."""

    def __init__(self, *args: Any, read: Callable[[str], Any], **kwargs: Any) -> None:
        kwargs["nargs"] = "+"
        super().__init__(*args, **kwargs)
        self.read = read

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        words: Sequence[str] = values
        try:
            setattr(namespace, self.dest, self.read(" ".join(words)))
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None


_LIST_ITEM = re.compile(r"(?:[-*\u2022]|\d+[.)])\s")  # "- ", "* ", "• ", "1. ", "2) "


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help laid out as written (examples keep their lines); an ``InWords`` value shows as one."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # A description as written (an example, a list keeps its lines), but a paragraph with a line
        # too long for the terminal is wrapped again as a whole, at spaces, as _split_lines does (lines
        # wrapped by hand at 100 columns, wrapped each on its own, alternated long and short). An
        # indented line, an example's, is kept whole, to be copied as it is; a list item starts a paragraph.
        out: list[str] = []
        paragraph: list[str] = []

        def flush() -> None:
            if any(len(indent) + len(line) > width for line in paragraph):
                out.extend(
                    textwrap.wrap(
                        " ".join(paragraph),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                        break_long_words=False,  # a path or an address is never cut
                    )
                )
            else:
                out.extend(indent + line for line in paragraph)
            paragraph.clear()

        for line in text.splitlines():
            if not line.strip() or line[:1].isspace():
                flush()
                out.append(indent + line if line.strip() else "")
            else:
                if _LIST_ITEM.match(line):
                    flush()
                paragraph.append(line)
        flush()
        return "\n".join(out) + ("\n" if text.endswith("\n") else "")

    def _split_lines(self, text: str, width: int) -> list[str]:
        # argparse's own, but a date form (YYYY-MM-DD) or an option's name is never cut at a hyphen,
        # nor a word longer than the room left (a list of CSV columns, a path): it overflows whole.
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action, InWords):
            return self._metavar_formatter(action, default_metavar)(1)[0]
        return super()._format_args(action, default_metavar)


def signpost_version(otherwise: str = "0.1.0") -> str:
    """The installed Signpost's version (``signpost --version``; the Teams package's default
    version), or ``otherwise`` when it runs from a source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("signpost")
    except PackageNotFoundError:
        return otherwise
