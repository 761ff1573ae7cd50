"""What building the `signpost` parser needs from the commands' shared helpers: the argument types
and the help's layout. It imports nothing heavy (no store, no SQLAlchemy, no front end), so that
`signpost --help` and a usage error answer at once; what a command needs when it runs, it imports
then (bot/cli/common.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any


def day(text: str) -> date:
    """A date typed on the command line: DD/MM/YYYY (as in chat) or YYYY-MM-DD."""
    from handlers.grammar import parse_date  # the date grammar, only once a date is given

    value = parse_date(text.strip())
    if value is None:
        raise argparse.ArgumentTypeError(not_a_date(text, "is not a date: use DD/MM/YYYY or YYYY-MM-DD"))
    return value


HIDDEN_ID = "that practitioner id holds a control character or an invisible formatting mark"


def practitioner_id(text: str) -> str:
    """A practitioner id typed on the command line. One holding a character that does not show as
    itself (a NUL, a byte that is not UTF-8, which Python hands over as half a character) is no one's
    id, and no database can be asked for it (PostgreSQL cannot keep a NUL): a usage error, before
    any store is opened. Read as the console's ``--as`` and ``practitioner leave`` read it, trimmed
    and in capitals, so that ``totp enrol p002`` names the practitioner ``practitioner leave p002``
    does."""
    from handlers.grammar import hides_characters

    if hides_characters(text):
        raise argparse.ArgumentTypeError(HIDDEN_ID)
    return text.strip().upper()


def not_a_date(text: str, otherwise: str) -> str:
    """Why ``text`` is no date: written as one (31/02/2027), that it does not exist; else ``otherwise``."""
    from handlers.grammar import date_shaped

    if date_shaped(text.strip()):
        return f"{text!r} is not a real date: check the day and the month (DD/MM/YYYY or YYYY-MM-DD)"
    return f"{text!r} {otherwise}"


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


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help laid out as written (examples keep their lines); an ``InWords`` value shows as one."""

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action, InWords):
            return self._metavar_formatter(action, default_metavar)(1)[0]
        return super()._format_args(action, default_metavar)
