"""What building the `signpost` parser needs from the commands' shared helpers: the argument types
and the help's layout. It imports nothing heavy (no store, no SQLAlchemy, no front end), so that
`signpost --help` and a usage error answer at once; what a command needs when it runs, it imports
then (bot/cli/common.py)."""

from __future__ import annotations

import argparse
from datetime import date


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
