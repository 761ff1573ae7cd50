"""CSV that people open in a spreadsheet: no cell of it is read as a formula.

A text cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets (CSV injection, CWE-1236), and such text reaches Signpost's
CSVs from outside: local authority and organisation names from the feeds, identities from the chat
platforms. Each such cell is written with a leading ``'``, which spreadsheets read as "this is
text" (OWASP's advice). And no cell holds a character that does not show as itself
(``store.characters``): a control character, an ESC sequence, a line break or a bidi override in an
audit detail or a name is written as ``?`` (``marked``), so that a spreadsheet, or a terminal showing
the file, runs or reorders nothing, and each row stays one line. Numbers are written as they are.
JSON exports are not touched: they are for programs, and keep every value exactly (JSON escapes
every control character).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from store.characters import marked

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """The value as a spreadsheet should show it: each character of text that does not show as
    itself as ``?``, and text that would then start a formula quoted."""
    if not isinstance(value, str):
        return value
    shown = marked(value)
    return "'" + shown if shown.startswith(FORMULA_STARTS) else shown


class Writer:
    """``csv.writer``, each row's cells through ``cell``."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([cell(value) for value in row])


class DictWriter:
    """``csv.DictWriter``, each value through ``cell``."""

    def __init__(self, out: TextIO, fieldnames: Sequence[str]) -> None:
        self._writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n")

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({name: cell(value) for name, value in row.items()})
