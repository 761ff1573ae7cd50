"""Reading a roll for ``signpost match`` (rows in the children feed format) as a stream, in
bounded memory at any size: ``read_roster`` checks every row (a bad roll is refused whole, every
problem listed, before anything is matched), then ``chunks`` reads it again, chunk by chunk, for
matching — and says when the text it read is not the text that was checked."""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, NamedTuple

from handlers.grammar import parse_postcode
from handlers.matching.terms import MAX_QUERY_TERMS, Query
from handlers.vocabulary import plural
from store.register import children
from store.register.feeds import (
    HEADERS,
    SEXES,
    FeedKind,
    RowChecker,
    RowProblem,
    column_name,
    csv_rows,
    feed_day,
    header_row,
    is_header,
    numbered_lines,
    text_lines,
)

# A chunk's terms (≤ MAX_QUERY_TERMS a row) always fit one batch probe: one IN query per chunk.
ROWS_PER_CHUNK = children.BATCH_TERMS // MAX_QUERY_TERMS


@dataclass(frozen=True, slots=True)
class Roll:
    """Where a roll is read from, as often as asked: a name for messages, and its text (held
    whole: small rolls, tests) or the file it is streamed from, line by line. Its lines end where
    a feed's do: it is read by the feed reader's own code."""

    name: str
    text: str = ""
    path: Path | None = None

    @classmethod
    def from_path(cls, path: Path) -> Roll:
        return cls(path.name, path=path)

    @contextmanager
    def lines(self, problems: list[RowProblem]) -> Iterator[Iterator[str]]:
        """The roll's text lines, as a feed's are read (``numbered_lines``: a line too long to be a
        row is a problem, and ends the roll); a file that cannot be opened or is not UTF-8 raises
        ``RollUnreadable``."""
        if self.path is None:
            yield text_lines(self.text)
            return
        not_a_file = RollUnreadable(
            f"{self.path} is not a file (a pipe?): save the roll to a file and match that", "the roll is not a file"
        )
        try:
            # Read twice (checked, then matched): a pipe would be empty the second time. Asked before
            # it is opened: opening a named pipe nobody writes to waits for ever.
            if not _file_or_folder(self.path.stat().st_mode):
                raise not_a_file
            handle = self.path.open("rb")
        except OSError as exc:
            raise RollUnreadable(f"cannot read {self.path}: {exc.strerror}", "the roll cannot be read") from None
        with handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced by a pipe since it was asked
                raise not_a_file
            yield _decoded(self.path, self.name, handle, problems)


def _file_or_folder(mode: int) -> bool:
    """A regular file, or a folder (opening it says so, as for any file that cannot be read)."""
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def _decoded(path: Path, name: str, handle: IO[bytes], problems: list[RowProblem]) -> Iterator[str]:
    """The file's lines, as a feed's (a mark of UTF-8 before the first dropped); any that is not
    UTF-8 refuses the whole roll, as one line."""
    try:
        for number, raw in numbered_lines(name, handle, problems):
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError:
        raise RollUnreadable(f"{path} is not UTF-8 text", "the roll is not UTF-8") from None
    except OSError as exc:
        raise RollUnreadable(f"cannot read {path}: {exc.strerror}", "the roll cannot be read") from None


@dataclass(frozen=True, slots=True)
class Roster:
    """A validated roll: where to read it again, its number of data rows, and a digest of its text."""

    roll: Roll
    rows: int
    digest: str

    @property
    def name(self) -> str:
        return self.roll.name


class RollRow(NamedTuple):
    """A good data row of a roll: the file line it begins on (as its problems and an import's
    name it: the header is line 1, and empty lines count) and its query."""

    line: int
    query: Query


class RosterRejected(Exception):
    """The file is not a roll we can read; ``problems`` says why, row by row. Nothing was matched."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        super().__init__(f"{plural(len(problems), 'problem')}; nothing was matched")
        self.problems = list(problems)


class RollUnreadable(Exception):
    """The roll's file cannot be opened or decoded: one line for the operator (it names the
    path), and a ``reason`` for the audit that does not."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RollChanged(Exception):
    """The roll read for matching is not the roll that was checked (written to meanwhile)."""


# ---------------------------------------------------------------------------- reading the roll


def read_roster(roll: Roll) -> Roster:
    """Check every row of a roll, streaming it; raise ``RosterRejected`` listing every problem
    (``RollUnreadable`` when the file cannot be read as text at all).

    Every identity field may be empty; the child_ref, local_authority and shielded columns are
    not used. Empty lines are skipped and not counted.
    """
    problems: list[RowProblem] = []
    digest = hashlib.sha256()
    with roll.lines(problems) as lines:
        rows = sum(1 for _ in _queries(roll.name, _hashed(lines, digest), problems))
    if problems:
        raise RosterRejected(problems)
    if not rows:
        raise RosterRejected([RowProblem(roll.name, 1, "file", "has no data rows")])
    return Roster(roll, rows, digest.hexdigest())


def chunks(roster: Roster) -> Iterator[list[RollRow]]:
    """The roster's rows (each query with its file line), read afresh from its roll,
    ``ROWS_PER_CHUNK`` at a time; after the last, ``RollChanged`` unless the text read is the text
    checked."""
    problems: list[RowProblem] = []
    digest = hashlib.sha256()
    rows = 0
    try:
        with roster.roll.lines(problems) as lines:
            queries = _queries(roster.name, _hashed(lines, digest), problems)
            while chunk := list(itertools.islice(queries, ROWS_PER_CHUNK)):
                rows += len(chunk)
                yield chunk
    except RollUnreadable:  # it was readable when checked
        raise RollChanged() from None
    if problems or rows != roster.rows or digest.hexdigest() != roster.digest:
        raise RollChanged()


def _hashed(lines: Iterable[str], digest: hashlib._Hash) -> Iterator[str]:
    """The lines, each added to ``digest``."""
    for line in lines:
        digest.update(line.encode("utf-8"))
        yield line


def _queries(name: str, lines: Iterable[str], problems: list[RowProblem]) -> Iterator[RollRow]:
    """Each good data row, in order; each problem appended to ``problems`` as it is met."""
    reader = csv.reader(lines)
    before = len(problems)
    found = header_row(reader, name, problems)  # as a feed's is found: blank lines above it are skipped
    if found is None and len(problems) > before:
        return  # a row the csv module cannot read: said
    at, cells = found or (1, [])
    header = [column_name(h) for h in cells]
    expected = HEADERS[FeedKind.CHILDREN]
    if set(header) != set(expected) or len(header) != len(expected):
        problems.append(RowProblem(name, at, "header", "expected the children feed header: " + ",".join(expected)))
        return
    for line, values in csv_rows(reader, name, problems):
        if not values:  # an empty line is no row; a row of empty fields is (it matches nobody)
            continue
        if len(values) == len(expected) and is_header(values, FeedKind.CHILDREN, frozenset(expected)):
            # Exports joined into one file: the header again, in any column order, read as an
            # import reads it (the rows after it are in its order).
            header = [column_name(h) for h in values]
            continue
        if len(values) != len(header):
            problems.append(RowProblem(name, line, "row", f"has {len(values)} fields, expected {len(header)}"))
            continue
        query = _query(name, line, dict(zip(header, values, strict=True)), problems)
        if query is not None:
            yield RollRow(line, query)


def _query(name: str, line: int, row: dict[str, str], problems: list[RowProblem]) -> Query | None:
    """The row's query, or None with its problems appended. Each field it reads is read as an
    import reads it (``RowChecker.text``): a character that does not show as itself, or a field
    longer than a feed's, is a problem naming the line and the field, never the value."""
    before = len(problems)
    checker = RowChecker(name, line, row, problems)
    given, family = checker.text("given_names", required=False), checker.text("family_name", required=False)
    dob_text = checker.text("date_of_birth", required=False)
    dob: date | None = None
    if dob_text:
        read = feed_day(dob_text)  # as a feed's date of birth is read, and refused with the same words
        if isinstance(read, date):
            dob = read
        else:
            problems.append(RowProblem(name, line, "date_of_birth", read))
    sex = checker.text("sex", required=False).upper()
    if sex and sex not in SEXES:
        problems.append(RowProblem(name, line, "sex", "must be F, M, X, U or empty"))
    typed = checker.text("postcode", required=False)
    postcode = parse_postcode(typed) if typed else None  # as a search in chat reads it: "ns13ly" is "NS1 3LY"
    if typed and postcode is None:
        problems.append(RowProblem(name, line, "postcode", "is not a UK postcode or outward code"))
    if len(problems) > before:
        return None
    return Query(given, family, dob, postcode, sex or None)
