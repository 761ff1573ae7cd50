"""Feed import: practitioners, children and involvements CSVs, all-or-nothing.

Every row is validated; valid rows are written inside one transaction as we go (so that
references between files are checked against exactly what the import would leave behind), and
if any row in any file is bad the whole transaction is rolled back and every problem reported.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import structlog
from sqlalchemy import BigInteger, Boolean, Column, Date, Exists, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Role, plural
from store.characters import marked, shows_as_itself
from store.db import Database, dialect_insert, mark_bulk_cache
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.lifecycle import demo, retention
from store.people import practitioners
from store.people.practitioners import InvolvementRow, PractitionerRow
from store.register import children, name_counts
from store.register.children import ChildRow
from store.register.refs import is_valid
from store.register.sealers import Sealers
from store.register.terms import Identity
from store.tables import imported_tables
from store.tables.people import Practitioner
from store.tables.register import Child, Involvement, LocalAuthority

log = structlog.get_logger("signpost.import")
NAME_COUNTS_HELD = 200_000
"""Name counts an import holds in memory before writing them (each a few dozen bytes)."""
PARALLEL_AFTER = 20_000
"""Children a feed must reach before sealing moves to worker processes (starting them costs ~1 s)."""
Sealed = tuple[list[children.SealedChild], dict[int, int]]
FlatSealed = tuple[list[children.FlatSealed], dict[int, int]]
SealerPool = Sealers[Sequence[children.FlatChild], FlatSealed]
NOT_UTF8 = "is not UTF-8 text from this line on (save the file as UTF-8 and import it again)"
SAVE_AS_UTF8 = 'save it as "CSV UTF-8 (Comma delimited)" and import it again'
WIDE = {
    "UTF-16": f'is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8: {SAVE_AS_UTF8}',
    "UTF-32": f"is UTF-32 text, not UTF-8: {SAVE_AS_UTF8}",
}
"""The problem of a file in an encoding of two or four bytes a character, by its name."""
NOT_TEXT_KINDS = {
    b"PK\x03\x04": f"is a zip file (an Excel workbook, .xlsx?), not CSV: {SAVE_AS_UTF8}",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": f"is an Excel 97-2003 workbook (.xls), not CSV: {SAVE_AS_UTF8}",
    b"\x1f\x8b": "is compressed (gzip), not CSV: decompress it (gunzip FILE) and import the file that gives",
}
"""The problem of a file that is no text, by the bytes it begins with: what an operator most often
gives for a feed by mistake (the workbook beside its CSV export, the feed still compressed)."""
NOT_TEXT = f"is not text (it holds NUL bytes: a binary file?), not CSV: {SAVE_AS_UTF8}"
EMPTY = "is empty: a feed is its header row, then its rows (export it again)"
_WIDE_CODECS = (("UTF-32", "utf-32-le"), ("UTF-32", "utf-32-be"), ("UTF-16", "utf-16-le"), ("UTF-16", "utf-16-be"))


def wide_encoding(first_line: bytes) -> str | None:
    """The encoding a file's first line is in when it is UTF-16 (Excel's "Unicode Text",
    PowerShell's ``-Encoding Unicode``) or UTF-32: its byte-order mark, or, without one, text that
    reads as such (NUL bytes beside each ASCII character: mostly ASCII, every character one that shows). UTF-32's
    little-endian mark begins as UTF-16's does, so it is asked first. None for any other bytes.
    Read as UTF-8 such a file was "not UTF-8" and, on the same line, a header no feed has."""
    if first_line.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if first_line.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    if b"\x00" not in first_line:
        return None
    head = first_line[:4096]
    for name, codec in _WIDE_CODECS:
        width = 4 if name == "UTF-32" else 2
        try:
            text = head[: len(head) - len(head) % width].decode(codec)
        except UnicodeDecodeError:
            continue
        shown = all(char.isprintable() or char in "\t\r\n" for char in text)
        if shown and sum(char.isascii() for char in text) * 2 > len(text):  # a header's names: mostly ASCII
            return name
    return None


def not_text(first_line: bytes) -> str | None:
    """The problem of a file whose first line shows it is no UTF-8 text at all (one problem, and none
    of it read): UTF-16 or UTF-32 (``WIDE``), a workbook or an archive (``NOT_TEXT_KINDS``), or other
    bytes with a NUL among them (``NOT_TEXT``: no text feed holds one). These were all told they were
    UTF-16 or UTF-32 text, an .xlsx given for its CSV export among them. None for a text file."""
    for start, problem in NOT_TEXT_KINDS.items():
        if first_line.startswith(start):
            return problem
    wide = wide_encoding(first_line)
    if wide is not None:
        return WIDE[wide]
    return NOT_TEXT if b"\x00" in first_line else None


# The longest line read: past any row the csv module can read (nine fields of at most 131,072
# characters, four bytes each), so a line this long is no row. Without it a file with no line
# break (lines ending in a carriage return alone, a binary file, /dev/zero) was read whole as one
# line: the import's memory grew with the file until it failed (MemoryError) or was killed.
LINE_LIMIT = 1 << 23
CR_ONLY = "lines ending in a carriage return alone: save the file with Windows (CRLF) or Unix (LF) line endings"
BLOCK = 1 << 20  # bytes read at a time where a file is read in blocks, not lines


def carriage_returns_alone(first: bytes) -> bool:
    """Whether a file's lines end in a carriage return alone (Excel's "CSV (Macintosh)"), from its
    first ``readline(LINE_LIMIT)``: a carriage return and no line feed in it. A file whose lines end
    in line feeds (CRLF or LF) and holds a carriage return alone elsewhere is not: that return is
    read as the csv module reads it, a problem (``CR_ONLY``), since the file means two things."""
    return b"\n" not in first and b"\r" in first


def raw_lines(handle: IO[bytes]) -> Iterator[bytes]:
    """A file's lines as bytes, each of ``LINE_LIMIT`` bytes at most (one that long and with no line
    break is no line: the reader says so and reads no further), in bounded memory. A file whose lines
    end in a carriage return alone (``carriage_returns_alone``) is split at each, its lines given
    ending in a line feed, so that it is read as any other file is."""
    first = handle.readline(LINE_LIMIT)
    if not carriage_returns_alone(first):
        if first:
            yield first
            yield from iter(lambda: handle.readline(LINE_LIMIT), b"")
        return
    buffer = first
    while True:
        start = 0
        while (end := buffer.find(b"\r", start)) >= 0:
            yield buffer[start:end] + b"\n"
            start = end + 1
        buffer = buffer[start:]
        if len(buffer) >= LINE_LIMIT:
            yield buffer[:LINE_LIMIT]
            return
        block = handle.read(BLOCK)
        if not block:
            if buffer:
                yield buffer
            return
        buffer += block


NOT_SHOWN = (
    "holds a character that is not shown as text (a line break, tab, NUL, direction mark or zero-width character)"
)


class FeedKind(StrEnum):
    PRACTITIONERS = "practitioners"
    CHILDREN = "children"
    INVOLVEMENTS = "involvements"


HEADERS: dict[FeedKind, tuple[str, ...]] = {
    FeedKind.PRACTITIONERS: (
        "practitioner_id",
        "given_name",
        "family_name",
        "role",
        "organisation",
        "local_authority",
        "phone",
        "email",
        "roles",
    ),
    FeedKind.CHILDREN: (
        "child_ref",
        "given_names",
        "family_name",
        "aliases",
        "date_of_birth",
        "sex",
        "postcode",
        "local_authority",
        "shielded",
    ),
    FeedKind.INVOLVEMENTS: ("child_ref", "practitioner_id", "service", "started", "ended", "lead_professional"),
}
ORDER = (FeedKind.PRACTITIONERS, FeedKind.CHILDREN, FeedKind.INVOLVEMENTS)

# ASCII digits only (``re.ASCII``): ``\d`` alone takes full-width and other scripts' digits, which
# no UK postcode or phone number holds.
POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?(\s*\d[A-Z]{2})?$", re.ASCII)
PHONE = re.compile(r"^\+?[\d ()-]{6,20}$", re.ASCII)
# An address and nothing else: ``[a@b.example](https://…)`` or ``a@b.example <!here>`` in a feed
# would be shown to every practitioner who finds the child (Slack links this same shape as mailto:).
EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
SEXES = {"F", "M", "X", "U"}
# A spreadsheet's yes/no or 1/0 column means one thing only, as true/false does: read, in any letter case.
BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "y": True, "n": False, "1": True, "0": False}


@dataclass(frozen=True, slots=True)
class RowProblem:
    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file  # line 0: the file as a whole
        return f"{where}: {self.field}: {self.problem}"


class Problems(list[RowProblem]):
    """An import's problems: the first ``KEPT`` found, and a count of the rest. A national feed
    with one systematic fault (every date in another form) has a problem a row: eleven million of
    them held, and each again as a line to print, took gigabytes."""

    KEPT = 10_000

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def append(self, problem: RowProblem) -> None:
        if len(self) < self.KEPT:
            super().append(problem)
        else:
            self.dropped += 1

    @property
    def total(self) -> int:
        """Every problem found, kept or not."""
        return len(self) + self.dropped


@dataclass
class ImportReport:
    problems: Problems = field(default_factory=Problems)
    rows: dict[str, int] = field(default_factory=dict)  # kind -> rows read
    changed: dict[str, int] = field(default_factory=dict)  # kind -> rows inserted or updated
    # Children 24 or over on the import date are never stored (nor their involvements): a record
    # already held is destroyed. Only counts are kept, never who.
    past_retention: int = 0
    past_retention_involvements: int = 0
    past_retention_held: int = 0  # of those, records this import found held and destroyed
    past_retention_ahead: int = 0  # of those, not yet 24: a retention run dated later destroyed their cohort
    _not_stored: set[int] = field(default_factory=set, repr=False)
    # Rows naming children whose records were destroyed (at 24, or by decommissioning): nothing of
    # them is stored again, neither the child nor an involvement.
    destroyed: int = 0
    destroyed_involvements: int = 0
    # Children this import destroyed or moved to a fresh data key (a corrected date of birth): the
    # old row versions hold what must die with them, so the import compacts after its commit.
    shredded: int = 0
    # Of those destroyed, children whose date of birth this import corrected (``--destroy-redated``):
    # their earlier date's key lives on for the other children born then, so a backup taken before
    # still opens them with this key file until a key rotation (``REDATED_NOTE``).
    redated_destroyed: int = 0
    compaction: str = ""  # what that compaction did ("" when nothing needed it)
    compaction_pending: str = ""  # why compaction did not finish: the bytes may still be there
    # Children and practitioners this import names, bad rows included: a reference to one of them
    # is not "unknown" (the row itself is reported), so every problem shows in one pass.
    named_children: RefSet = field(default_factory=lambda: RefSet(), repr=False)
    named_practitioners: set[str] = field(default_factory=set, repr=False)
    # Authority names read as one already registered, spelt otherwise (typed -> registered).
    respelt: dict[str, str] = field(default_factory=dict)
    # Children held (this import's and earlier ones') whose local authority no practitioner belongs
    # to, counted as the import leaves the register: never shown as an authority (``authority_names``).
    children_in_unknown_authorities: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def notes(self) -> list[str]:
        """Lines for the operator beyond the per-feed counts (no personal data)."""
        notes = []
        if self.past_retention:
            notes.append(
                f"{plural(self.past_retention, 'child row')} not stored: 24 or over on the import date, so due for "
                f"destruction ({plural(self.past_retention_held, 'record')} already held destroyed by this import); "
                f"{plural(self.past_retention_involvements, 'involvement row')} for them skipped."
            )
        if self.past_retention_ahead:
            notes.append(
                f"Of those, {plural(self.past_retention_ahead, 'child row')} not yet 24 on the import date: a "
                "retention run dated later than this import has already destroyed the records of their birth "
                "dates (is a clock ahead, here or where retention ran?); they are treated as past retention."
            )
        if self.redated_destroyed:
            notes.append(REDATED_NOTE.format(records=plural(self.redated_destroyed, "record")))
        if self.destroyed or self.destroyed_involvements:
            notes.append(
                f"{plural(self.destroyed, 'child row')} and {plural(self.destroyed_involvements, 'involvement row')} "
                "name children whose records were destroyed: not stored (a destroyed record is never brought back)."
            )
        for typed, registered in sorted(self.respelt.items()):
            notes.append(
                f"Local authority {typed!r} taken as {registered!r}, already registered "
                "(names that differ only in letter case, spaces or punctuation are one authority)."
            )
        if self.children_in_unknown_authorities:
            notes.append(unknown_authorities_note(self.children_in_unknown_authorities))
        if self.compaction_pending:
            notes.append(self.compaction_pending)
        return notes


REDATED_NOTE = (
    "{records} destroyed for a corrected date of birth can still be opened, with this key file, in a backup taken "
    "before this import (the earlier date's key lives on for the other children born that day): run `signpost keys "
    "rotate`, with every server stopped, so that the key file opens no earlier backup, and keep no older copy of the "
    "key file."
)
"""The operator's note after ``--destroy-redated`` destroyed a record: destruction outside retention
punctures no key, and a rotation is what takes every earlier backup out of the key file's reach."""


def _ahead(rows: Sequence[ChildRow], past: Sequence[int], today: date) -> int:
    """Of the rows left out as past retention, those not yet 24 on ``today``: their birth date's
    cohort was destroyed by a retention run whose clock was ahead of this import's."""
    gone = set(past)
    return sum(
        1 for row in rows if row.ref in gone and not keychain.due_for_destruction(row.identity.date_of_birth, today)
    )


def unknown_authorities_note(count: int) -> str:
    """The summary line for children whose authority no practitioner belongs to: a count, never a
    name (a children row out of line puts a child's name under local_authority)."""
    names = "names" if count == 1 else "name"
    return (
        f"{plural(count, 'child', 'children')} in the register {names} a local authority no practitioner belongs to: "
        "such an authority is not shown in the transparency report or in chat until a practitioner of it is "
        "imported. With the practitioners feed imported, check the children feed's local_authority column "
        "(a row out of line puts other text there)."
    )


def feed_rows(paths: Sequence[Path], kind: FeedKind) -> int:
    """How many rows the ``kind`` feeds among ``paths`` hold: a cheap count (records, read in
    blocks) for a progress total, less the records the import reads as no row (``_RowCount``).
    Files that cannot be read or are other feeds count 0; the import itself reports their problems."""
    total = 0
    for path in paths:
        try:
            with path.open("rb") as handle:
                total += _RowCount(kind).of(handle)
        except (OSError, _OtherFeed):  # unreadable, or no header of this kind: the import says why
            continue
    return total


class _OtherFeed(Exception):
    """A file being counted is not a feed of the kind counted."""


# A line break followed by anything but a digit (bare or quoted): the start of a line that may be no
# row (a blank line, the header again). A data row of children or involvements begins with its
# reference, so the count looks at almost no line itself; the search for the line break runs at
# memchr speed.
_MAYBE_NOT_A_ROW = re.compile(rb'\n(?=[^0-9"]|"[^0-9])')

# Lines that are each a record, as many as follow one another, read at regular-expression speed:
# ``_RECORD``'s fields, but a quoted one closes on its line. So a quote inside an unquoted field
# (O"Brien), a plain character to the csv module, keeps its line here; only a quoted field that
# runs on past its line is left to ``_RECORD``, and the line after that record is read here again.
_LINE_FIELD = rb'(?:"[^"\n]*+(?:""[^"\n]*+)*+"[^,\n]*+|[^,\n"][^,\n]*+|)'
_WHOLE_LINES = re.compile(rb"(?:%s(?:,%s)*+\n)*+" % (_LINE_FIELD, _LINE_FIELD))

# A record as the csv module reads one (its default dialect): a field is quoted when it begins
# with a quote, to the next quote not doubled (over lines if need be), then unquoted to the next
# comma or line break; a quote anywhere else is a character. Possessive, so that a doubled quote
# is never read as a closing one and a quote after it.
_FIELD = rb'(?:"(?:[^"]|"")*+"[^,\n]*+|[^,\n"][^,\n]*+|)'
_RECORD = re.compile(rb"%s(?:,%s)*+\n" % (_FIELD, _FIELD))


class _RowCount:
    """The rows of one ``kind`` feed, as the import reads them: its records (a quoted field may run
    over lines: one record, as the csv module reads it) after its header, but not a blank one, nor
    the header again (exports joined into one file, in any column order: the import reads it as a
    header, ``is_header``). Records before the header that hold nothing are no part of the feed."""

    def __init__(self, kind: FeedKind) -> None:
        self.kind = kind
        self.named: frozenset[str] | None = None  # the header's columns, once it is read
        self.total = 0

    def of(self, handle: IO[bytes]) -> int:
        cr_only = carriage_returns_alone(handle.readline(LINE_LIMIT))
        handle.seek(0)
        rest = b""  # the record not ended yet: at most LINE_LIMIT bytes are held
        while block := handle.read(BLOCK):
            text = rest + (block.replace(b"\r", b"\n") if cr_only else block)
            rest = text[self._records(text) :]
            if len(rest) >= LINE_LIMIT:  # no record ends in as much: the import says so and reads no further
                break
        else:
            if rest:  # a last record without its line break
                text = rest + b"\n"
                if left := text[self._records(text) :]:
                    self._record(left)  # a quoted field still open at the end: the csv module ends its row there
        if self.named is None:
            raise _OtherFeed()
        return self.total

    def _records(self, text: bytes) -> int:
        """Count the records that end in ``text`` (which begins with one); return where the first
        that does not end in it begins. Lines with no quote are records, counted by ``_lines``."""
        done = 0
        while (quote := text.find(b'"', done)) >= 0:
            begin = text.rfind(b"\n", done, quote) + 1 or done  # the line the quote is on
            whole = _WHOLE_LINES.match(text, begin)  # always matches, if only nothing
            start = whole.end() if whole else begin
            self._lines(text[done:start])
            record = _RECORD.match(text, start)
            if record is None:  # a quoted field that does not close in ``text`` (yet)
                return start
            self._record(text[start : record.end()])
            done = record.end()
        end = text.rfind(b"\n", done) + 1 or done
        self._lines(text[done:end])
        return end

    def _record(self, record: bytes) -> None:
        """Count one record (a quoted field in it runs over lines), or read it as the header."""
        cells = _cells(record)
        if not any(cell.strip() for cell in cells):
            return
        if self.named is None:
            self._header(cells)
        elif not is_header(cells, self.kind, self.named):
            self.total += 1

    def _header(self, cells: list[str]) -> None:
        header = without_unnamed_tail(cells)[0]
        if detect_kind(header) is not self.kind:
            raise _OtherFeed()
        self.named = frozenset(column_name(h) for h in header)

    def _lines(self, chunk: bytes) -> None:
        """Count the rows among ``chunk``'s lines (whole records, each on one line ending in a line feed)."""
        start = 0
        while self.named is None:  # the header, after any lines that hold nothing
            end = chunk.find(b"\n", start) + 1
            if not end:
                return
            cells = _cells(chunk[start:end])
            start = end
            if any(cell.strip() for cell in cells):
                self._header(cells)
        body = chunk[start:]
        self.total += body.count(b"\n")
        starts = [0] if _MAYBE_NOT_A_ROW.match(b"\n" + body[:2]) else []
        starts += [at for found in _MAYBE_NOT_A_ROW.finditer(body) if (at := found.start() + 1) < len(body)]
        for at in starts:
            cells = _cells(body[at : body.index(b"\n", at) + 1])
            if not any(cell.strip() for cell in cells) or is_header(cells, self.kind, self.named):
                self.total -= 1


def _cells(line: bytes) -> list[str]:
    """A line's cells as the csv module reads them; one that cannot be read is taken for a row."""
    try:
        return next(csv.reader([line.decode("utf-8", errors="replace").rstrip("\r\n")]), [])
    except csv.Error:
        return ["?"]


class FeedRejected(Exception):
    """The import applied nothing; ``report.problems`` says why, row by row."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{plural(report.problems.total, 'problem')}; nothing was imported")
        self.report = report


@dataclass(frozen=True, slots=True)
class Feed:
    """One CSV source: a name for messages, and its text or the file it is read from.

    A feed made ``from_path`` is streamed line by line (bounded memory at any size); one made from
    text or ``from_bytes`` is held whole. ``bad_line`` is the first line that was not UTF-8
    (``from_bytes``; a streamed file finds it as it reads): the import reports it as a problem,
    and checks the rest of the file as well so that one pass shows every problem. A file that is no
    UTF-8 text at all (``unread``: its problem, ``not_text``) is one problem, and none of it is read.
    """

    name: str
    text: str = ""
    bad_line: int | None = None
    path: Path | None = None
    unread: str | None = None

    @classmethod
    def from_path(cls, path: Path) -> Feed:
        return cls(path.name, path=path)

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> Feed:
        first = data[: data.find(b"\n") + 1 or len(data)][:LINE_LIMIT]
        if (unread := not_text(first)) is not None:
            return cls(name, unread=unread)
        try:
            return cls(name, data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            line = data.count(b"\r" if carriage_returns_alone(first) else b"\n", 0, exc.start) + 1
            return cls(name, data.decode("utf-8-sig", errors="replace"), bad_line=line)

    @contextmanager
    def lines(self, problems: list[RowProblem]) -> Iterator[Iterator[str]]:
        """The feed's text lines; a line that is not UTF-8 is a problem (the first one only)."""
        if self.unread is not None:
            yield _unread_file(self.name, self.unread, problems)
            return
        if self.path is None:
            if self.bad_line is not None:
                problems.append(RowProblem(self.name, self.bad_line, "file", NOT_UTF8))
            yield text_lines(self.text)
            return
        with self.path.open("rb") as handle:
            yield _decoded(self.name, handle, problems)


def text_lines(text: str) -> Iterator[str]:
    """A feed (or a roll) held as text, line by line, its line breaks read as a file's are (``raw_lines``)."""
    head = text[:LINE_LIMIT]
    if "\n" in head or "\r" not in head:
        return iter(io.StringIO(text))
    return (line.decode("utf-8", errors="replace") for line in raw_lines(io.BytesIO(text.encode("utf-8"))))


def _unread_file(name: str, problem: str, problems: list[RowProblem]) -> Iterator[str]:
    """No lines: the problem of a file that is no UTF-8 text, said as its first line is read (as
    ``_decoded`` says it)."""
    problems.append(RowProblem(name, 1, "file", problem))
    yield from ()


def numbered_lines(name: str, handle: IO[bytes], problems: list[RowProblem]) -> Iterator[tuple[int, bytes]]:
    """A file's lines as ``raw_lines`` ends them (a line feed, or a carriage return alone in a file
    whose lines all end so; never another character ``str.splitlines`` takes for a line's end), each
    with its number; a line over ``LINE_LIMIT`` bytes is one problem and ends the file (read in
    bounded memory, however long the line). A feed's lines and a roll's are read here, alike."""
    for number, raw in enumerate(raw_lines(handle), start=1):
        if len(raw) >= LINE_LIMIT and not raw.endswith(b"\n"):
            why = CR_ONLY if b"\r" in raw else f"no line break in {LINE_LIMIT >> 20} MB"
            problems.append(_unread(name, number, why))
            return
        yield number, raw


def _decoded(name: str, handle: IO[bytes], problems: list[RowProblem]) -> Iterator[str]:
    """The file's lines (``numbered_lines``), decoded; a line that is not UTF-8 is a problem (the
    first one only), and a file that is no UTF-8 text at all (``not_text``) is one problem and no line."""
    bad = False
    for number, raw in numbered_lines(name, handle, problems):
        if number == 1 and (unread := not_text(raw)) is not None:
            problems.append(RowProblem(name, 1, "file", unread))
            return
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")
            if not bad:
                bad = True
                problems.append(RowProblem(name, number, "file", NOT_UTF8))
        yield line


class RefSet:
    """A set of child references in bounded memory: one bit per nine-digit serial (a valid
    reference's check digit follows from its first nine), in 128 KiB pages made when first used.
    Eleven million consecutive references take about 1.6 MB; a Python set of them, over 600 MB."""

    PAGE_BITS = 1 << 20

    def __init__(self) -> None:
        self._pages: dict[int, bytearray] = {}

    def add(self, ref: int) -> bool:
        """Add ``ref``; whether it was new."""
        page, bit = divmod(ref // 10, self.PAGE_BITS)
        bits = self._pages.get(page)
        if bits is None:
            bits = self._pages[page] = bytearray(self.PAGE_BITS // 8)
        byte, mask = bit >> 3, 1 << (bit & 7)
        if bits[byte] & mask:
            return False
        bits[byte] |= mask
        return True

    def __contains__(self, ref: object) -> bool:
        if not isinstance(ref, int):
            return False
        page, bit = divmod(ref // 10, self.PAGE_BITS)
        bits = self._pages.get(page)
        return bits is not None and bool(bits[bit >> 3] & (1 << (bit & 7)))


_HEADER_SPACING = re.compile(r"[\s-]+")


def column_name(cell: str) -> str:
    """The column a header cell names, however an export spells it: any letter case, spaces around
    it, spaces or hyphens for underscores ("Date of Birth", "date-of-birth": exports title their
    columns for people), and format characters around it: a byte-order mark left by saving a file
    as UTF-8 twice or joining two files, a zero-width space or direction mark from a web page."""
    cell = "".join(ch for ch in cell if unicodedata.category(ch) != "Cf") if not cell.isascii() else cell
    return _HEADER_SPACING.sub("_", cell.strip().lower())


def detect_kind(header: Sequence[str]) -> FeedKind | None:
    """The feed a header names: each of its columns once, in any order. A column named twice is
    no feed: which of its two values a row meant (``shielded`` true or false?) cannot be known."""
    columns = tuple(column_name(h) for h in header)
    if len(set(columns)) != len(columns):
        return None
    for kind, expected in HEADERS.items():
        if set(columns) == set(expected):
            return kind
    return None


KNOWN_COLUMNS = frozenset(column for columns in HEADERS.values() for column in columns)


def unknown_header(header: Sequence[str]) -> str:
    """Why a header is no feed's. One that names at least half of a feed's columns is that feed's
    with columns unknown or missing: they are named (header text, cut short and shown as text).
    Anything else may be a data row taken for a header (its first line lost): it is never quoted,
    and the feeds' headers are shown instead. A header that runs into its first row (its line
    break lost: a missing column's name with more after it, then the row's fields) is said so,
    and nothing from that column on is quoted: it is the row."""
    if (separator := other_separator(header)) is not None:
        return f"its columns are separated by {separator}, not commas: {SAVE_AS_CSV}"
    written = [h.strip() for h in header]
    columns = [column_name(h) for h in header]
    kind = max(HEADERS, key=lambda k: len(set(HEADERS[k]) & set(columns)))
    expected = HEADERS[kind]
    if 2 * len(set(expected) & set(columns)) < len(expected):
        return "not a known feed; expected one of: " + " or ".join(",".join(h) for h in HEADERS.values())
    missing = [c for c in expected if c not in columns]
    fused = next(((at, m) for at, c in enumerate(columns) for m in missing if _runs_on(c, m)), None)
    if fused is not None:
        written, columns = written[: fused[0]], columns[: fused[0]]
        missing.remove(fused[1])
    else:
        fused = _row_after(columns, expected)
        if fused is not None:
            written, columns = written[: fused[0]], columns[: fused[0]]
    unknown = [_column(w) for w, c in zip(written, columns, strict=True) if c not in expected]
    # Said what to do: a feed's header names its columns and no others (an extra column is never
    # ignored: a header run into its first row is the feed's, with the row's fields after it).
    why = [f"unknown {', '.join(unknown)}: remove or rename {_them(unknown)}"] if unknown else []
    why += [f"missing {', '.join(missing)}: add {_them(missing)}"] if missing else []
    if fused is not None:
        why.append(f"the header runs into the first row after {fused[1]}: is its line break missing?")
    return f"not a known feed: {'; '.join(why)}"


def _them(columns: Sequence[str]) -> str:
    return "it" if len(columns) == 1 else "them"


SEPARATORS = {"\t": "tabs", ";": "semicolons", "|": "bars (|)"}
SAVE_AS_CSV = "save the file as CSV (comma-separated) and import it again"


def other_separator(header: Sequence[str]) -> str | None:
    """What separates a header's columns when it is not commas (Excel's "Text (Tab delimited)", a
    CSV from a locale whose decimal mark is the comma): a feed's header read as one cell. None if not."""
    if len(header) != 1:
        return None
    for separator, called in SEPARATORS.items():
        if detect_kind(header[0].split(separator)) is not None:
            return called
    return None


def _row_after(columns: list[str], expected: tuple[str, ...]) -> tuple[int, str] | None:
    """Where a whole row follows the header's last column of the feed, as its own cells: the line
    break lost after a trailing comma (``…,shielded,`` then the row), or before a row whose first
    field is empty (``…,shielded`` then ``,amy,…``). Such a tail is either an empty cell with more
    after it (no column is named nothing) or at least half a row. Where it starts and the column
    before it; None if the header has no such tail."""
    known = [at for at, column in enumerate(columns) if column in expected]
    if not known:
        return None
    last = known[-1]
    tail = columns[last + 1 :]
    if (len(tail) > 1 and not tail[0]) or len(tail) >= len(expected) // 2:
        return last + 1, columns[last]
    return None


def _runs_on(column: str, name: str) -> bool:
    """Whether header cell ``column`` is the column ``name`` with the first row's first field
    after it (no line break between them; the field may be quoted): anything but an underscore or a
    space straight after the name (``name_more`` is a column of its own, misnamed; a line break
    inside the cell is an unclosed quote's doing)."""
    if not column.startswith(name) or len(column) == len(name):
        return False
    after = column[len(name)]
    return after != "_" and not after.isspace()


_COLUMN_NAME = re.compile(r"[a-z0-9_]{1,32}")


def _column(name: str) -> str:
    """A header's column name as a problem line may show it: only a name shaped like a column, as
    written (lower-case letters, digits, underscores, at most 32). Anything else may hold a data row
    pulled into the header (an unclosed quote takes the first row into the last column name), and a
    capitalised word may be a name (a row run into the header): never quoted."""
    if not name:
        return "(an empty name)"
    return name if _COLUMN_NAME.fullmatch(name) else "(a column whose name is not a column name)"


def repeated_columns(header: Sequence[str]) -> list[str]:
    """The feed columns a header names more than once, in header order. Only Signpost's own
    column names: a data row taken for a header (its first line lost) is never quoted back."""
    counts = Counter(column_name(h) for h in header)
    return [column for column, count in counts.items() if count > 1 and column in KNOWN_COLUMNS]


ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_day(value: str) -> date | None:
    """A date written YYYY-MM-DD in ASCII digits, or None. ``date.fromisoformat`` alone also takes
    other ISO 8601 forms of the same length (``2015-W05-1``, a week date), which a feed must not
    carry: the README and every problem line promise YYYY-MM-DD."""
    if not ISO_DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# What a spreadsheet does to a feed's numbers and dates, and what to do about it: each a problem
# that says so, where "not ten digits" or "not a date in YYYY-MM-DD form" said nothing of the cause.
SCIENTIFIC = re.compile(r"[0-9]+(\.[0-9]+)?E\+?[0-9]+", re.ASCII | re.IGNORECASE)
IN_SCIENTIFIC_NOTATION = (
    "is a number in scientific notation (as a spreadsheet shows a long number), its last digits lost: "
    "format the column as text and export again from the source"
)
FORMAT_AS_TEXT = "format the column as text, write {} back and export again"
WRITE_DATES = "write dates YYYY-MM-DD (in a spreadsheet, format the column as yyyy-mm-dd) and export again"
AMBIGUOUS_DAY = "has its day and month in digits, in an order the file does not say (day/month/year or month/day/year?)"
_NUMERIC_DAY = re.compile(r"[0-9]{1,2}([./-])[0-9]{1,2}\1([0-9]{2}|[0-9]{4})", re.ASCII)
_SERIAL_DAY = re.compile(r"[0-9]{5}(\.[0-9]+)?", re.ASCII)  # 10000 is 1927-05-18, 99999 in 2173
# Year first (hyphens or slashes), and a time a database export adds: midnight is the date alone.
_YEAR_FIRST = re.compile(
    r"([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?",
    re.ASCII,
)
_DAY_MONTH_YEAR = re.compile(r"([0-9]{1,2})[- /]([A-Za-z]{3,9})\.?[- /]([0-9]+)", re.ASCII)
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]{3,9})\.? ([0-9]{1,2}),? ([0-9]+)", re.ASCII)
MONTHS = {
    name: number
    for number, full in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
    for name in {full, full[:3], *(("sept",) if number == 9 else ())}
}


def as_typed(value: str) -> str:
    """A number or date a spreadsheet was told to keep as text: ``'0012345678`` (the apostrophe
    that marks text) or ``="0012345678"`` (a formula, as exports meant for Excel write it)."""
    if value.startswith("'"):
        return value[1:].strip()
    if value.startswith('="') and value.endswith('"') and len(value) > 3:
        return value[2:-1].strip()
    return value


def reference_text(value: str) -> str:
    """A child reference as a feed writes it, as digits: spaces of any kind between them (a
    no-break space from a web page) and a spreadsheet's text marks gone."""
    return "".join(as_typed(value.strip()).split())


def feed_day(value: str) -> date | str:
    """A feed's date, or why it is none. YYYY-MM-DD; year first with slashes, or with a midnight
    time (a database's export), and a day, a month's English name and a four-digit year
    (``03-Apr-2014``, ``April 3, 2014``) can mean one day only, so are read. Digits alone in
    another order (``3/4/2014``, ``03.04.2014``) could be either of two days: refused, even when the
    day is past 12 (a file holds both, and half of it read is no help)."""
    value = as_typed(value)
    if (day := iso_day(value)) is not None:
        return day
    if ISO_DAY.fullmatch(value):
        return "is not a real date"  # 2019-02-30 is in the form: saying otherwise sends the supplier wrong
    found: tuple[str, int, str] | None = None
    if match := _YEAR_FIRST.fullmatch(value):
        year, _, month, day_, *time = match.groups()
        if any(part and int(part) for part in time):
            return f"has a time of day (a time zone may have moved its date): {WRITE_DATES}"
        found = (year, int(month), day_)
    elif (match := _DAY_MONTH_YEAR.fullmatch(value)) and match[2].lower() in MONTHS:
        found = (match[3], MONTHS[match[2].lower()], match[1])
    elif (match := _MONTH_DAY_YEAR.fullmatch(value)) and match[1].lower() in MONTHS:
        found = (match[3], MONTHS[match[1].lower()], match[2])
    elif _NUMERIC_DAY.fullmatch(value):
        return f"{AMBIGUOUS_DAY}: {WRITE_DATES}"
    elif _SERIAL_DAY.fullmatch(value):
        return f"is a number (a spreadsheet's serial number for a date), not a date: {WRITE_DATES}"
    if found is None:
        return "is not a date in YYYY-MM-DD form"
    year, month, day_ = found
    if len(year) != 4:
        return f"has a year of two digits: {WRITE_DATES}"
    try:
        return date(int(year), month, int(day_))
    except ValueError:
        return "is not a real date"


class RowChecker:
    """Collects problems for one row while converting its fields."""

    def __init__(self, file: str, line: int, row: dict[str, str], problems: list[RowProblem]) -> None:
        self.file, self.line, self.row, self.problems = file, line, row, problems
        self.bad = False
        self.failed: list[str] = []  # the fields with a problem, in the order found

    def fail(self, name: str, problem: str) -> None:
        self.bad = True
        self.failed.append(name)
        self.problems.append(RowProblem(self.file, self.line, name, problem))

    def text(self, name: str, *, required: bool = True, max_len: int = 200) -> str:
        """The field, stripped; a problem when it is empty (and required), too long, or holds a
        character that is not shown as itself (``store.characters``): then "" (nothing more checked,
        and nothing of it written anywhere: a staging table's column holds ``max_len`` at most)."""
        value = (self.row.get(name) or "").strip()
        if not shows_as_itself(value):
            self.fail(name, NOT_SHOWN)
            return ""
        if required and not value:
            self.fail(name, "is empty")
        elif len(value) > max_len:
            self.fail(name, f"is longer than {max_len} characters")
            return ""
        return value

    def day(self, name: str, *, required: bool = True) -> date | None:
        value = self.text(name, required=required)
        if not value:
            return None
        day = feed_day(value)
        if isinstance(day, str):
            self.fail(name, day)
            return None
        return day

    def boolean(self, name: str) -> bool:
        value = self.text(name).lower()
        if value and value not in BOOLEANS:
            self.fail(name, "must be true or false (or yes/no, 1/0)")
        return BOOLEANS.get(value, False)

    def reference(self, name: str) -> int:
        value = reference_text(self.text(name))
        if value and not is_valid(value):
            digits = value.isascii() and value.isdigit()
            if digits and len(value) < 10:
                lost = FORMAT_AS_TEXT.format("them")
                self.fail(name, f"has {len(value)} digits, not 10: if a spreadsheet dropped its leading zeros, {lost}")
            elif SCIENTIFIC.fullmatch(value):
                self.fail(name, IN_SCIENTIFIC_NOTATION)
            else:
                why = "check digit fails" if digits and len(value) == 10 else "not ten digits"
                self.fail(name, f"is not a valid 10-digit reference ({why})")
            return 0
        return int(value) if value else 0


ROLE_NAMES = frozenset(role.value for role in Role)


def separate(what: str) -> str:
    """How to separate two values of a ``;``-separated column (roles, aliases), said where a feed
    separated them otherwise: the one wording of it."""
    return f"(separate two {what} with ;)"


def _roles(text: str) -> set[Role] | None:
    """The roles a ``roles`` field names, in any letter case, or None when any part is not a role."""
    parts = [part.strip().lower() for part in text.split(";") if part.strip()]
    return {Role(part) for part in parts} if all(part in ROLE_NAMES for part in parts) else None


def _is_date(value: str) -> bool:
    return isinstance(feed_day(value), date)


# Columns whose values have a shape no other column's have: a row holding one under another
# column's name says the header is in another order than its rows.
SHAPES: dict[str, Callable[[str], bool]] = {
    "roles": lambda value: bool(_roles(value)),
    "email": lambda value: EMAIL.match(value) is not None,
    "child_ref": lambda value: is_valid(reference_text(value)),
    "date_of_birth": _is_date,
    "started": _is_date,
    "ended": _is_date,
    "postcode": lambda value: POSTCODE.match(" ".join(value.upper().split())) is not None,
    "shielded": lambda value: value.lower() in BOOLEANS,
    "lead_professional": lambda value: value.lower() in BOOLEANS,
}


def misplaced(row: Mapping[str, str], failed: Sequence[str]) -> tuple[str, str] | None:
    """(column, other) when a value of ``column`` failed its check and ``other`` holds one of that
    shape instead (and ``other``'s own value is not of its shape): the rows' columns are in another
    order than the header's. Column names only: a value is never returned."""
    for column in failed:
        shape = SHAPES.get(column)
        if shape is None or not (row.get(column) or "").strip():
            continue
        for other, raw in row.items():
            value = raw.strip()
            if other != column and value and shape(value) and not (other in SHAPES and SHAPES[other](value)):
                return column, other
    return None


def _practitioner(c: RowChecker) -> PractitionerRow | None:
    roles = _roles(c.text("roles"))
    if roles is None:
        # Never the value: a header in another order than its rows put given names here.
        why = "holds a role that is not one of practitioner, duty_manager, admin"
        if _roles(re.sub(r"[,|/]", ";", c.row.get("roles") or "")):
            why += " " + separate("roles")
        c.fail("roles", why)
        roles = set()
    # A signpost is how a colleague reaches the practitioner: one way is enough, none is useless.
    phone, email = c.text("phone", required=False), c.text("email", required=False, max_len=254)
    phone = re.sub(r"\s", " ", as_typed(phone))  # a no-break space is a space
    if not phone and not email and "phone" not in c.failed and "email" not in c.failed:
        why = "is empty, and so is email: a signpost needs a phone or an email to reach the practitioner by"
        c.fail("phone", why + " (give at least one)")
    if phone and SCIENTIFIC.fullmatch(phone):
        c.fail("phone", IN_SCIENTIFIC_NOTATION)
    elif phone and phone.isascii() and phone.isdigit() and 9 <= len(phone) <= 10 and not phone.startswith("0"):
        # A UK number as a spreadsheet keeps a number: stored, it rang nobody.
        lost = FORMAT_AS_TEXT.format("it")
        c.fail("phone", f"has no leading 0 or +: if a spreadsheet dropped its leading 0, {lost}")
    elif phone and not PHONE.match(phone):
        c.fail("phone", "is not a phone number")
    if email and not EMAIL.match(email):
        c.fail("email", "is not an email address")
    row = PractitionerRow(
        id=c.text("practitioner_id", max_len=64),
        given_name=c.text("given_name"),
        family_name=c.text("family_name"),
        role=c.text("role"),
        organisation=c.text("organisation"),
        local_authority=c.text("local_authority", max_len=64),
        phone=phone,
        email=email,
        roles=frozenset(roles),
    )
    return None if c.bad else row


def _child(c: RowChecker, today: date) -> ChildRow | None:
    ref = c.reference("child_ref")
    dob = c.day("date_of_birth")
    if dob is not None and dob > today:
        c.fail("date_of_birth", "is in the future")
    sex = c.text("sex", required=False).upper()
    if sex and sex not in SEXES:
        c.fail("sex", "must be F, M, X, U or empty")
    postcode = " ".join(c.text("postcode", required=False).upper().split())
    if postcode and not POSTCODE.match(postcode):
        c.fail("postcode", "is not a UK postcode")
    aliases_text = c.text("aliases", required=False, max_len=2000)
    if "," in aliases_text:
        # "Amy Jones, Amy Smith" would be one alias no search ever finds. Never the value: it is names.
        c.fail("aliases", "holds a comma " + separate("aliases"))
    aliases = tuple(a.strip() for a in aliases_text.split(";") if a.strip())
    # A child may be known by one name (the NHS records it as the family name): either field may be
    # empty, not both. Refusing one of them had no fix in the feed, and held back every other row.
    identity_fields = (c.text("given_names", required=False), c.text("family_name", required=False))
    if not any(identity_fields) and "given_names" not in c.failed and "family_name" not in c.failed:
        c.fail("family_name", "is empty, and so is given_names: a child needs at least one name")
    row_la, shielded = c.text("local_authority", max_len=64), c.boolean("shielded")
    if c.bad or dob is None:
        return None
    identity = Identity(identity_fields[0], identity_fields[1], aliases, dob, sex or None, postcode or None)
    return ChildRow(ref=ref, identity=identity, local_authority=row_la, shielded=shielded)


# How far an involvement's dates may lie from the import's day: a child is held until their 24th
# birthday (an involvement may begin up to a year before birth), so a date beyond these is no
# child's in Signpost. Such dates are exports' placeholders: 0001-01-01 or 1900-01-01 for a start
# not known, 9999-12-31 for no end (imported, it read as ended: its lead professional was never told).
STARTED_YEARS_AGO = keychain.DESTROY_AT_AGE + 1
ENDED_YEARS_AHEAD = keychain.DESTROY_AT_AGE


def _involvement(c: RowChecker, today: date) -> InvolvementRow | None:
    ref = c.reference("child_ref")
    started, ended = c.day("started"), c.day("ended", required=False)
    if started and started > today:  # an end may be planned; a start tomorrow is a slip
        c.fail("started", "is in the future")
    elif started and started < keychain.birthday(today, -STARTED_YEARS_AGO):
        c.fail("started", f"is more than {STARTED_YEARS_AGO} years ago, before any child Signpost holds was born")
    elif started and ended and ended < started:
        c.fail("ended", "is before started")
    if ended and ended > keychain.birthday(today, ENDED_YEARS_AHEAD):
        why = f"is more than {ENDED_YEARS_AHEAD} years ahead, past any child's time in Signpost"
        c.fail("ended", f"{why}: leave it empty while the involvement is current")
    row = InvolvementRow(
        child_ref=ref,
        practitioner_id=c.text("practitioner_id", max_len=64),
        service=c.text("service"),
        started=started or date.min,
        ended=ended,
        lead_professional=c.boolean("lead_professional"),
    )
    return None if c.bad else row


def _rows(
    name: str, lines: Iterator[str], problems: list[RowProblem]
) -> tuple[FeedKind | None, Iterator[tuple[int, dict[str, str]]], int]:
    """The feed's kind, its rows (each with the line it begins on) and its header's line."""
    reader = csv.reader(lines)
    before = len(problems)
    found = header_row(reader, name, problems)
    if found is None:
        if not any(p.file == name and p.field in ("row", "file") for p in problems[before:]):
            problems.append(RowProblem(name, 1, "file", EMPTY))  # no header, nor any row: not a wrong header
        return None, iter(()), 1  # else a line could not be read (``_decoded`` said why): that is all
    at, header = found
    header, unnamed = without_unnamed_tail(header)
    kind = detect_kind(header)
    repeated = repeated_columns(header)
    if kind is None and repeated:
        twice = f"names a column more than once ({', '.join(repeated)}): name each column once"
        problems.append(RowProblem(name, at, "header", twice))
        return None, iter(()), at
    if kind is None:
        problems.append(RowProblem(name, at, "header", unknown_header(header)))
        return None, iter(()), at
    columns = [column_name(h) for h in header or ()]
    named = frozenset(columns)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        nonlocal columns, unnamed
        for line, values in csv_rows(reader, name, problems):  # line: where the row begins
            if not any(v.strip() for v in values):
                continue
            if is_header(values, kind, named):
                # Exports joined into one file (``cat``): each part's header, in its own column
                # order, says how the rows after it are read. Its cells were each a problem.
                header_again, unnamed = without_unnamed_tail(values)
                columns = [column_name(h) for h in header_again]
                continue
            if unnamed and len(columns) < len(values) <= len(columns) + unnamed:
                if any(v.strip() for v in values[len(columns) :]):
                    problems.append(RowProblem(name, line, "row", UNDER_NO_NAME))
                    continue
                values = values[: len(columns)]
            if len(values) != len(columns):
                why = f"has {len(values)} fields, expected {len(columns)}"
                if reader.line_num > line and any("\n" in value or "\r" in value for value in values):
                    # A quote never closed reads the lines after it as one field: the line the
                    # row begins on shows the right number of fields, and does not say why.
                    why += f": a quoted field that opens on this line runs on to line {reader.line_num} "
                    why += "(is its closing quote missing?)"
                problems.append(RowProblem(name, line, "row", why))
                continue
            yield line, dict(zip(columns, values, strict=True))

    return kind, rows(), at


def header_row(reader: Any, name: str, problems: list[RowProblem]) -> tuple[int, list[str]] | None:
    """The first row ``reader`` (a ``csv.reader``) reads with a cell that is not blank, and the line
    it begins on: the header. Lines above it that hold nothing (an empty line, a row of empty cells,
    as an export may leave above its header) are no part of the file. None when there is no such row
    (or one the csv module cannot read comes first: a problem, ``csv_rows``)."""
    for line, values in csv_rows(reader, name, problems):
        if any(value.strip() for value in values):
            return line, values
    return None


def is_header(values: list[str], kind: FeedKind, named: frozenset[str]) -> bool:
    """Whether a row is the feed's header again (any column order). Its first cell is checked first:
    a data row's first field (a reference, an id) is no column name, so the row is not looked at further."""
    first = values[0].strip()
    if not first or first[0].isdigit() or column_name(first) not in named:
        return False
    return detect_kind(without_unnamed_tail(values)[0]) is kind


UNDER_NO_NAME = "holds a value after its last column, under the header's column with no name"


def without_unnamed_tail(header: list[str]) -> tuple[list[str], int]:
    """A header without the empty cells after its last named column, and how many there were, when
    what is left is a feed's: Excel ends every line with a comma once a column past the data was
    used. Rows may then hold as many empty fields more. Any other header is returned as it is."""
    named = len(header)
    while named and not header[named - 1].strip():
        named -= 1
    if named == len(header) or not named or detect_kind(header[:named]) is None:
        return header, 0
    return header[:named], len(header) - named


def csv_rows(reader: Any, name: str, problems: list[RowProblem]) -> Iterator[tuple[int, list[str]]]:
    """Each row ``reader`` (a ``csv.reader``) reads, with the line it begins on (a quoted field may
    run over several lines). A row the csv module cannot read is one problem, and nothing after it
    is read."""
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(unreadable(name, start, exc))
            return
        yield start, values


def unreadable(name: str, line: int, exc: csv.Error) -> RowProblem:
    """A row the csv module cannot read (a field over its 131,072-character limit, say): its
    message names the kind of fault, never the row's text. Its advice for a carriage return alone
    ("open the file in universal-newline mode") is for programmers: an operator is told what to do."""
    why = CR_ONLY if "new-line character seen in unquoted field" in str(exc) else str(exc)
    return _unread(name, line, why)


def _unread(name: str, line: int, why: str) -> RowProblem:
    return RowProblem(name, line, "row", f"cannot be read as CSV ({why}); nothing after it was read")


REDATED = (
    "changes the date of birth of a child already held to one 24 or more years ago, which would "
    "destroy their record for good: check the date (a child reaching 24 is destroyed by retention)"
)

BeforeCommit = Callable[[AsyncSession, "ImportReport"], Awaitable[None]]
Progress = Callable[[int], None]
Step = Callable[[str], None]


class ImportStep(StrEnum):
    """The steps of an import that run as one statement each, so have no count to show: told to
    ``on_step`` as each begins (a step ends when the next begins, or the import returns). At
    national scale each takes minutes; without them the operator would see nothing for that long."""

    CHECKING = "checking involvements for repeats and unknown references"
    INDEXING = "building the search index"
    LINKING = "recording the involvements"
    COMMITTING = "committing"


async def import_feeds(
    db: Database,
    keys: KeyRing,
    feeds: Sequence[Feed],
    now: datetime,
    *,
    before_commit: BeforeCommit | None = None,
    on_progress: Progress | None = None,
    on_involvements: Progress | None = None,
    on_step: Step | None = None,
    destroy_redated: bool = False,
    chunk: int = children.BULK_CHUNK,
    sealers: int | None = None,
) -> ImportReport:
    """Validate and apply feeds in one transaction; raise FeedRejected (nothing applied) on any problem.

    Feeds are read row by row and written in chunks, so memory stays bounded however large they
    are. ``before_commit`` runs last in the import's transaction when every row was good (its audit
    event, say), so that the import and what it records commit together or not at all.
    ``on_progress`` is called after each ``chunk`` of children with how many more were processed,
    ``on_involvements`` after each batch of involvement rows read, and ``on_step`` with each
    ``ImportStep`` as it begins (counts and fixed names only: nothing read from a row).
    A row that changes a held child's date of birth to one 24 or more years ago is a problem
    (``REDATED``), unless ``destroy_redated``: then it destroys the record, as any row of a child
    24 or over does.
    New children are sealed and indexed by ``sealers`` worker processes (default: one a core, once
    a children feed passes ``PARALLEL_AFTER`` rows; 0: in this process), which hold the index key
    and the term keys only; the data keys are wrapped and every row written here, in the one transaction.
    """
    report = ImportReport()
    feeds = named_apart(feeds, report.problems)
    order = {feed.name: index for index, feed in enumerate(feeds)}
    with ExitStack() as files:
        kinds: list[tuple[FeedKind, Feed, Iterator[tuple[int, dict[str, str]]]]] = []
        header_lines: dict[str, int] = {}  # each feed's header's line, for problems of the header
        for feed in feeds:
            kind, rows, header_line = _rows(
                feed.name, files.enter_context(feed.lines(report.problems)), report.problems
            )
            header_lines[feed.name] = header_line
            if kind is not None:
                kinds.append((kind, feed, rows))
        kinds.sort(key=lambda item: ORDER.index(item[0]))
        async with db.write() as session:
            await _bulk_pragmas(session)
            await demo.unmark(session)  # imported data may be real: no more dev clock (seed-demo re-marks)
            if any(kind is FeedKind.CHILDREN for kind, _, _ in kinds):
                keychain.hold_term_keys(keys, now.date())  # before sealing workers are given them
                await children.ready_for_terms(session, keys, now.date())  # an older index rebuilt; a newer refused
            step = on_step or (lambda _: None)
            run = _Run(session, keys, report, now, on_progress, on_involvements, step, chunk, sealers, destroy_redated)
            run.header_lines = header_lines
            files.callback(run.close)
            for kind, feed, rows in kinds:
                if kind is FeedKind.PRACTITIONERS:
                    await run.practitioners(feed.name, rows)
                elif kind is FeedKind.CHILDREN:
                    await run.children(feed, rows)
                else:
                    await run.involvements(feed.name, rows)
            await run.check_repeats()
            run.close()
            if report.problems:
                # In file order, then line order: checks that run after a file is read (repeats,
                # unknown references) report alongside the rows' own problems.
                report.problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line))
                raise FeedRejected(report)  # rolls the whole transaction back
            await run.merge_terms()
            await run.apply_involvements()
            report.children_in_unknown_authorities = await children_in_unknown_authorities(session)
            if before_commit is not None:
                await before_commit(session, report)
            step(ImportStep.COMMITTING)
    if report.shredded:
        await _compact(db, report)  # after the commit: the old row versions are dead only now
    if db.dialect == "postgresql" and any(report.changed.values()):
        await _analyse(db)
    return report


async def _analyse(db: Database) -> None:
    """Give PostgreSQL's planner the statistics of what the import wrote, now rather than when
    autovacuum gets round to it: a freshly loaded register had none, and retention's reads took
    85-200 ms each until then. (SQLite's planner needs none to use the indexes.) Sampled, so
    seconds even at 11 M children; a failure leaves the import committed and autovacuum to do it.
    Only the tables it writes (``store.tables.imported_tables``): a bare ANALYZE went through every table of the
    database, the system catalogs among them, and took most of a small import's time (160 of
    430 ms), or warned of each table a role that does not own it may not analyse."""
    try:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{table.name}"' for table in imported_tables()))
    except SQLAlchemyError as error:
        log.warning("import_analyse_failed", error=type(error).__name__)
    else:
        log.info("import_analysed")


NAME_SHOWN = 60
"""The longest file name a problem line shows whole; a longer one keeps its start and end."""


def shown_name(name: str) -> str:
    """A file name as problem lines show it: characters that are not shown as text (a line break,
    a direction override, bytes that are not UTF-8) as ``?``, and a long name cut in the middle."""
    name = marked(name) or "?"
    return name if len(name) <= NAME_SHOWN else f"{name[: NAME_SHOWN - 21]}…{name[-20:]}"


def named_apart(feeds: Sequence[Feed], problems: list[RowProblem]) -> list[Feed]:
    """The feeds to read, each under a name of its own for problem lines. A file given twice is one
    problem (every row of its second reading would repeat the first's) and is read once; two files
    of one name in different folders are named by their paths as given."""
    read: list[Feed] = []
    files: set[tuple[int, int]] = set()
    for feed in feeds:
        if feed.path is not None:
            try:
                stat = feed.path.stat()
            except OSError:  # reading it says why
                stat = None
            if stat is not None and (stat.st_dev, stat.st_ino) in files:
                problems.append(
                    RowProblem(shown_name(feed.name), 0, "file", "is given more than once: give each file once")
                )
                continue
            if stat is not None:
                files.add((stat.st_dev, stat.st_ino))
        read.append(feed)
    names = Counter(shown_name(feed.name) for feed in read)
    apart: list[Feed] = []
    taken: set[str] = set()
    for number, feed in enumerate(read, start=1):
        name = shown_name(feed.name)
        if names[name] > 1 and feed.path is not None:
            name = shown_name(str(feed.path))
        if name in taken:
            name = f"{name} (file {number})"
        taken.add(name)
        apart.append(replace(feed, name=name))
    return apart


async def _compact(db: Database, report: ImportReport) -> None:
    """Compact as retention does after destroying (``retention.compact_checked``): the destroyed
    children's rows, and the rows re-sealed under a fresh data key, leave their old versions (the
    old wrapped key, identity and purposes) in PostgreSQL's heap and SQLite's WAL until then."""
    result = await retention.compact_checked(db, retention.AFFECTED_TABLES, wait=retention.COMPACTION_WAIT)
    report.compaction, report.compaction_pending = result.detail, result.why
    if result.done:
        log.info("import_compacted", compaction=result.detail)
    else:
        log.warning("import_compaction_pending", compaction=result.detail)


class _Run:
    """One import's state: what it has named and written so far, in bounded memory."""

    def __init__(
        self,
        session: AsyncSession,
        keys: KeyRing,
        report: ImportReport,
        now: datetime,
        progress: Progress | None,
        involvements_read: Progress | None,
        step: Step,
        chunk: int,
        sealers: int | None,
        destroy_redated: bool,
    ) -> None:
        self.session, self.keys, self.report, self.now, self.progress = session, keys, report, now, progress
        self.involvements_read, self.step = involvements_read, step
        self.chunk = chunk
        self.sealers = (os.cpu_count() or 1) if sealers is None else sealers
        if self.sealers == 1 and sealers is None:
            self.sealers = 0  # one core: sealing in this process is as fast
        self.parallel_after = PARALLEL_AFTER if sealers is None else 0
        self.pool: SealerPool | None = None
        self.sealing: deque[tuple[list[ChildRow], asyncio.Task[FlatSealed], int]] = deque()
        self.children_seen = 0
        self.authorities: set[str] = set()
        self.spellings: dict[str, str] | None = None  # authority_key -> the name registered
        self.staged = False
        self.children_done = 0
        self.redated: set[int] = set()  # held children a row would destroy by a changed date of birth
        self.destroy_redated = destroy_redated  # destroy them as asked (else each is a problem)
        # New children's blind terms: staged on SQLite and merged in index order at the end
        # (``children.TERMS_STAGE``); PostgreSQL's COPY writes them to child_terms directly.
        self.terms_to: Table | None = None
        # New children's name counts (blind name key -> children), written at the end or when
        # this many names are held: a national register has tens of thousands of names.
        self.name_counts: Counter[int] = Counter()
        # Repeats across files are repeats: where each practitioner and child was first (children
        # by a bitset, their first file and line found by reading the files again when needed).
        self.practitioner_lines: dict[str, tuple[str, int]] = {}
        self.children_refs = RefSet()
        self.children_feeds: list[Feed] = []
        self.involvement_feeds: list[str] = []  # staged rows name their feed by its index here
        self.hinted: set[str] = set()  # files already told their header may be in another order
        self.header_lines: dict[str, int] = {}  # each file's header's line (a blank line may come first)

    def _hint(self, name: str, checker: RowChecker) -> None:
        """A bad row whose values look misplaced: one header problem for its file, column names only."""
        if name not in self.hinted and (found := misplaced(checker.row, checker.failed)) is not None:
            self.hinted.add(name)
            column, other = found
            why = f"the rows' {column} values are under {other}: is the header in the order of the rows' columns?"
            self.report.problems.append(RowProblem(name, self.header_lines.get(name, 1), "header", why))

    def _start(self, kind: FeedKind) -> None:
        self.report.rows.setdefault(kind.value, 0)
        self.report.changed.setdefault(kind.value, 0)

    async def _authorities(self, names: set[str]) -> dict[str, str]:
        """Record the authorities these rows name; returns the names to be read as an authority
        spelt otherwise, already registered or named earlier in this import ("northshire" for
        "Northshire"). A new spelling became a new authority, whose children had no duty manager,
        lead-notice setting or access grants of the one meant."""
        if self.spellings is None:
            rows = await self.session.execute(
                select(LocalAuthority.name).order_by(LocalAuthority.first_seen, LocalAuthority.name)
            )
            self.spellings = {}
            for name in rows.scalars():
                self.spellings.setdefault(authority_key(name), name)
        respelt: dict[str, str] = {}
        new: set[str] = set()
        for name in names - self.authorities:
            registered = self.spellings.setdefault(authority_key(name), name)
            if registered == name:
                new.add(name)
            else:
                respelt[name] = registered
        if new:
            await ensure_authorities(self.session, new, self.now)
        self.authorities |= new
        self.report.respelt.update(respelt)
        return respelt

    async def practitioners(self, name: str, rows: Iterator[tuple[int, dict[str, str]]]) -> None:
        """Practitioners are few (hundreds of thousands at most): checked for repeats in memory."""
        kind, report = FeedKind.PRACTITIONERS, self.report
        self._start(kind)
        seen = self.practitioner_lines
        batch: list[PractitionerRow] = []
        for line, row in rows:
            report.rows[kind.value] += 1
            checker = RowChecker(name, line, row, report.problems)
            parsed = _practitioner(checker)
            report.named_practitioners.add((row.get("practitioner_id") or "").strip())
            if parsed is None:
                self._hint(name, checker)
                continue
            if parsed.id in seen:
                checker.fail(HEADERS[kind][0], repeat_of(name, *seen[parsed.id]))
                continue
            seen[parsed.id] = (name, line)
            batch.append(parsed)
            if len(batch) >= self.chunk:
                await self._write_practitioners(batch)
                batch = []
        await self._write_practitioners(batch)

    async def _write_practitioners(self, batch: list[PractitionerRow]) -> None:
        if batch:
            respelt = await self._authorities({row.local_authority for row in batch})
            if respelt:
                batch = [_as_registered(row, respelt) for row in batch]
            changed = await practitioners.upsert_practitioners(self.session, batch, self.now)
            self.report.changed[FeedKind.PRACTITIONERS.value] += changed

    async def children(self, feed: Feed, rows: Iterator[tuple[int, dict[str, str]]]) -> None:
        """Children are checked for repeats by a bitset of references; a repeat's first line is
        found by reading the file again, only when there is one."""
        kind, report, today = FeedKind.CHILDREN, self.report, self.now.date()
        self._start(kind)
        first_load = not await children.any_stored(self.session)
        seen = self.children_refs
        self.children_feeds.append(feed)
        repeats: list[tuple[int, int]] = []  # (line, ref)
        batch: list[ChildRow] = []
        for line, row in rows:
            report.rows[kind.value] += 1
            checker = RowChecker(feed.name, line, row, report.problems)
            parsed = _child(checker, today)
            self.children_seen += 1
            value = reference_text(row.get("child_ref") or "")  # as ``RowChecker.reference`` reads it
            if is_valid(value):
                report.named_children.add(int(value))
            if parsed is None:
                self._hint(feed.name, checker)
                continue
            if not seen.add(parsed.ref):
                repeats.append((line, parsed.ref))
                continue
            batch.append(parsed)
            if len(batch) >= self.chunk:
                await self._write_children(batch, first_load)
                batch = []
        await self._write_children(batch, first_load)
        await self.drain()
        if repeats:
            wanted, firsts = {ref for _, ref in repeats}, dict[int, tuple[str, int]]()
            for earlier in self.children_feeds:  # the first row of each is in this file or an earlier one
                if wanted <= firsts.keys():
                    break
                found = _first_lines(earlier, wanted - firsts.keys(), today)
                firsts.update((ref, (earlier.name, line)) for ref, line in found.items())
            for line, ref in repeats:
                report.problems.append(
                    RowProblem(feed.name, line, HEADERS[kind][0], repeat_of(feed.name, *firsts[ref]))
                )
        if self.redated:  # rows written from this file
            lines = _first_lines(feed, self.redated, today)
            for ref in sorted(self.redated, key=lines.__getitem__):
                report.problems.append(RowProblem(feed.name, lines[ref], "date_of_birth", REDATED))
            self.redated.clear()

    async def _terms_to(self) -> Table:
        if self.terms_to is None:
            if (await self.session.connection()).dialect.name == "sqlite":
                await children.stage_terms(self.session)
                self.terms_to = children.TERMS_STAGE
            else:
                self.terms_to = children.TERMS_TABLE
        return self.terms_to

    async def merge_terms(self) -> None:
        """The staged terms into child_terms, sorted, and the name counts held (once every feed
        is known to be good)."""
        if self.terms_to is children.TERMS_STAGE:
            self.step(ImportStep.INDEXING)
            await children.merge_staged_terms(self.session)
            self.terms_to = None
        await self._write_name_counts(0)

    async def _write_name_counts(self, above: int = NAME_COUNTS_HELD) -> None:
        if len(self.name_counts) > above:
            await name_counts.add(self.session, self.name_counts)
            self.name_counts.clear()

    async def _write_children(self, batch: list[ChildRow], first_load: bool) -> None:
        if not batch:
            return
        report = self.report
        terms_to = await self._terms_to()
        respelt = await self._authorities({row.local_authority for row in batch})
        if respelt:
            batch = [_as_registered(row, respelt) for row in batch]
        if first_load:  # nothing stored before this import: every good row is new
            today = self.now.date()
            past = tuple(
                row.ref for row in batch if keychain.past_retention(self.keys, row.identity.date_of_birth, today)
            )
            gone = set(past)
            kept = [row for row in batch if row.ref not in gone]
            pool = self._pool()
            if pool is None:
                sealed = children.seal_children(self.keys, kept)
                await self._write_sealed(kept, sealed, len(batch))
            else:
                self.sealing.append((kept, asyncio.ensure_future(pool.run(children.flatten(kept))), len(batch)))
                while len(self.sealing) > self.sealers:  # keep every worker busy, and no more in memory
                    await self._write_sealed(*await self._next_sealed())
        else:
            done = await children.upsert(
                self.session, self.keys, batch, self.now, terms_to=terms_to, counts_into=self.name_counts
            )
            await self._write_name_counts()
            report.changed[FeedKind.CHILDREN.value] += done.inserted + done.updated
            report.destroyed += done.destroyed
            report.shredded += done.rekeyed
            past = done.past_retention
            if past and not self.destroy_redated:
                # A held child's date of birth changed to one 24 or more years ago is far likelier a
                # slip in the feed than a record due for destruction, and destruction cannot be
                # undone: the row is a problem (nothing is imported). Unchanged, retention is due.
                due = set(past)
                redated = await children.redated(self.session, self.keys, [r for r in batch if r.ref in due])
                self.redated |= redated
                past = tuple(ref for ref in past if ref not in redated)
            if past:
                if self.destroy_redated:
                    due = set(past)
                    moved = await children.redated(self.session, self.keys, [r for r in batch if r.ref in due])
                    report.redated_destroyed += len(moved)
                destroyed, _ = await retention.destroy(self.session, self.keys, past, self.now)  # held before
                report.shredded += destroyed
                report.past_retention_held += destroyed
            self._done(len(batch))
        report.past_retention += len(past)
        report.past_retention_ahead += _ahead(batch, past, self.now.date())
        report._not_stored.update(past)

    def _pool(self) -> SealerPool | None:
        """Sealing workers, once a feed is big enough to repay starting them (``sealers`` processes)."""
        if self.pool is None and self.sealers > 0 and self.children_seen >= self.parallel_after:
            self.pool = Sealers(
                self.sealers, children.seal_in_sealer, children.start_sealer, children.sealer_keys(self.keys)
            )
        return self.pool

    async def _next_sealed(self) -> tuple[list[ChildRow], Sealed, int]:
        rows, future, count = self.sealing.popleft()
        sealed, counts = await future
        return rows, (children.unflatten(sealed), counts), count

    async def _write_sealed(self, rows: list[ChildRow], sealed: Sealed, count: int) -> None:
        terms_to, counts = await self._terms_to(), self.name_counts
        await children.insert_sealed(
            self.session, self.keys, rows, sealed[0], sealed[1], self.now, terms_to=terms_to, counts_into=counts
        )
        await self._write_name_counts()
        self.report.changed[FeedKind.CHILDREN.value] += len(rows)
        self._done(count)

    async def drain(self) -> None:
        while self.sealing:
            await self._write_sealed(*await self._next_sealed())

    def close(self) -> None:
        """Stop the sealing workers; work still in flight (an import that failed) is dropped."""
        for _, task, _ in self.sealing:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the failure that ended the import is already raised
            task.cancel()
        self.sealing.clear()
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def _done(self, count: int) -> None:
        self.children_done += count
        if self.progress is not None:
            self.progress(count)

    async def involvements(self, name: str, rows: Iterator[tuple[int, dict[str, str]]]) -> None:
        """Involvements are staged (COPY on PostgreSQL), then checked for repeats and unknown
        children in SQL, and applied in one statement once every feed is known to be good."""
        kind, report = FeedKind.INVOLVEMENTS, self.report
        self._start(kind)
        if not self.staged:
            await _stage_create(self.session)
            self.staged = True
        known = report.named_practitioners | await practitioners.all_ids(self.session)
        index, today = len(self.involvement_feeds), self.now.date()
        self.involvement_feeds.append(name)
        batch: list[tuple[object, ...]] = []
        read = report.rows[kind.value]
        if self.involvements_read is not None:
            self.involvements_read(0)  # they begin now: rates count from here
        for line, row in rows:
            report.rows[kind.value] += 1
            checker = RowChecker(name, line, row, report.problems)
            parsed = _involvement(checker, today)
            if parsed is None:  # its references are still checked, so a second run finds nothing new
                self._hint(name, checker)
                ref, pid = _references(name, line, row)
                values: tuple[object, ...] = (None, None, None, None, False)
            else:
                ref, pid = parsed.child_ref, parsed.practitioner_id
                if ref in report._not_stored:
                    report.past_retention_involvements += 1
                    continue
                values = (parsed.service, parsed.started, parsed.ended, parsed.lead_professional, True)
            if pid and pid not in known:
                report.problems.append(RowProblem(name, line, "practitioner_id", "no practitioner with this id"))
            check = bool(ref) and ref not in report.named_children  # else this import's children feed has it
            if parsed is not None or check:
                batch.append((index, line, ref, pid, *values, check))
            if len(batch) >= self.chunk * 4:  # a few rows each
                await self._stage(batch, report.rows[kind.value] - read)
                read, batch = report.rows[kind.value], []
        await self._stage(batch, report.rows[kind.value] - read)
        self.step(ImportStep.CHECKING)
        await self._check_staged(index)

    async def _stage(self, batch: list[tuple[object, ...]], read: int) -> None:
        if batch:
            await children.copy_rows(self.session, STAGE, STAGE_COLUMNS, batch)
        if read and self.involvements_read is not None:
            self.involvements_read(read)

    async def _check_staged(self, index: int) -> None:
        """References to children that are neither stored nor named by this import."""
        report, name = self.report, self.involvement_feeds[index]
        for line, ref in await _stage_unknown_children(self.session, index):
            if ref not in report.named_children:
                report.problems.append(RowProblem(name, line, "child_ref", "no child with this reference"))

    async def check_repeats(self) -> None:
        """Involvement rows repeating an earlier row's key, in their file or an earlier one: once,
        over every involvements file staged (a national register's in one pass, however split)."""
        if self.staged:
            files = self.involvement_feeds
            for feed, line, first_feed, first_line in await _stage_repeats(self.session):
                problem = repeat_of(files[feed], files[first_feed], first_line)
                self.report.problems.append(RowProblem(files[feed], line, "child_ref", problem))

    async def apply_involvements(self) -> None:
        if self.staged:
            self.step(ImportStep.LINKING)
            self.report.destroyed_involvements += await _stage_of_destroyed(self.session)
            changed = await _stage_apply(self.session)
            self.report.changed[FeedKind.INVOLVEMENTS.value] += changed
            await self.session.execute(text(f"DROP TABLE {STAGE.name}"))


def repeat_of(name: str, first_file: str, first_line: int) -> str:
    """The problem of a row whose key an earlier row had, in this file or another of the import."""
    return (
        f"repeats the row on line {first_line}"
        if first_file == name
        else f"repeats the row at {first_file}:{first_line}"
    )


def _first_lines(feed: Feed, refs: set[int], today: date) -> dict[int, int]:
    """The first good row of each of these children in the feed (read again; only for repeats)."""
    firsts: dict[int, int] = {}
    ignored: list[RowProblem] = []
    with feed.lines(ignored) as lines:
        _, rows, _ = _rows(feed.name, lines, ignored)
        for line, row in rows:
            value = reference_text(row.get("child_ref") or "")
            ref = int(value) if is_valid(value) else 0
            if ref in refs and ref not in firsts and _child(RowChecker(feed.name, line, row, ignored), today):
                firsts[ref] = line
    return firsts


def _references(name: str, line: int, row: dict[str, str]) -> tuple[int, str]:
    """The child and practitioner a bad involvement row names (its own problems are already reported)."""
    checker = RowChecker(name, line, row, [])
    return checker.reference("child_ref"), checker.text("practitioner_id", max_len=64)


def authority_key(name: str) -> str:
    """What makes two spellings of a local authority's name one authority: its letters and digits,
    case-folded ("Stoke-on-Trent", "stoke on trent" and "STOKE ON TRENT" are one)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", name).casefold() if ch.isalnum())


_Row = TypeVar("_Row", ChildRow, PractitionerRow)


def _as_registered(row: _Row, respelt: Mapping[str, str]) -> _Row:
    registered = respelt.get(row.local_authority)
    return row if registered is None else replace(row, local_authority=registered)


def _has_practitioners() -> Exists:
    """Whether a practitioner (of any status) belongs to the ``LocalAuthority`` row at hand: one
    probe of the practitioners' authority index per authority."""
    return select(Practitioner.id).where(Practitioner.local_authority == LocalAuthority.name).exists()


async def authority_names(session: AsyncSession) -> list[str]:
    """The local authorities practitioners belong to, by name: the one list of authorities Signpost
    shows or reads a typed name against (the transparency report's columns, the chat's answer to an
    unknown authority, ``handlers.authorities``).

    Not every authority the feeds named: a children feed's ``local_authority`` is free text, and a
    row out of line puts a child's name there. It is recorded (``ensure_authorities``: the child's
    row refers to it), never listed; a practitioners feed naming the authority makes it shown.
    """
    stmt = select(LocalAuthority.name).where(_has_practitioners()).order_by(LocalAuthority.name)
    return list((await session.execute(stmt)).scalars())


async def children_in_unknown_authorities(session: AsyncSession) -> int:
    """Children held (not destroyed) whose local authority no practitioner belongs to. The
    authorities are found first (a few, or none once the practitioners feed is in), then their
    children by the authority index, so a national register is not scanned to find none."""
    unknown = select(LocalAuthority.name).where(~_has_practitioners())
    stmt = select(func.count()).select_from(Child).where(Child.local_authority.in_(unknown), Child.state != "destroyed")
    return int((await session.execute(stmt)).scalar_one())


async def ensure_authorities(session: Any, names: set[str], now: datetime) -> None:
    """Record every local authority a feed names (once), before rows that refer to it. Recorded is
    not shown: only authorities practitioners belong to are (``authority_names``)."""
    if names:
        stmt = dialect_insert(session)(LocalAuthority.__table__).on_conflict_do_nothing(index_elements=["name"])
        await session.execute(stmt, [{"name": name, "first_seen": now} for name in sorted(names)])


# Involvement rows on their way in: a temporary table of this session, gone at commit or rollback.
# It is on its own MetaData, outside store/tables, on purpose: it never persists, so retention,
# decommissioning and key rotation (which derive their tables from that registry) must not see it.
STAGE = Table(
    "import_involvements",
    MetaData(),
    Column("feed", Integer),  # the file's index among this import's involvements files (any name fits)
    Column("line", BigInteger),
    Column("child_ref", BigInteger),
    Column("practitioner_id", String(64)),
    Column("service", String(200)),
    Column("started", Date),
    Column("ended", Date),
    Column("lead_professional", Boolean),
    Column("good", Boolean),
    Column("check_child", Boolean),
    prefixes=["TEMPORARY"],
)
STAGE_COLUMNS = tuple(column.name for column in STAGE.columns)
_KEY = "child_ref, practitioner_id, service, started"


async def _stage_create(session: AsyncSession) -> None:
    await session.execute(text(f"DROP TABLE IF EXISTS {STAGE.name}"))
    await session.run_sync(lambda sync: STAGE.create(sync.connection()))


# A row's place in the import as one number, ordered as the files were read and their lines
# (lines stay far below 2^40: a file of 8 MB lines would need 8 EB), so that one MIN finds the
# first of each key across files as cheaply as within one.
_PLACE = "feed * 1099511627776 + line"


async def _stage_repeats(session: AsyncSession) -> list[tuple[int, int, int, int]]:
    """(feed, line, first feed, first line) of every good row whose key an earlier good row holds,
    in its feed or one staged before it. PostgreSQL's upsert refuses a key twice in one statement,
    and SQLite's kept the last: a repeat across files is a problem like one within."""
    result = await session.execute(
        text(
            f"SELECT feed, line, first FROM (SELECT feed, line, {_PLACE} AS place, "
            f"MIN({_PLACE}) OVER (PARTITION BY {_KEY}) AS first FROM {STAGE.name} WHERE good) AS staged "
            "WHERE place <> first"
        )
    )
    places = [(int(feed), int(line), divmod(int(first), 1 << 40)) for feed, line, first in result]
    return [(feed, line, first_feed, first_line) for feed, line, (first_feed, first_line) in places]


async def _stage_unknown_children(session: AsyncSession, feed: int) -> list[tuple[int, int]]:
    result = await session.execute(
        text(
            f"SELECT line, child_ref FROM {STAGE.name} AS s WHERE feed = :feed AND check_child "
            "AND NOT EXISTS (SELECT 1 FROM children AS c WHERE c.ref = s.child_ref)"
        ),
        {"feed": feed},
    )
    return [(int(line), int(ref)) for line, ref in result]


_OF_DESTROYED = f"EXISTS (SELECT 1 FROM children AS c WHERE c.ref = {STAGE.name}.child_ref AND c.state = 'destroyed')"


async def _stage_of_destroyed(session: AsyncSession) -> int:
    """How many good staged rows name a child whose record was destroyed (``_stage_apply`` skips them)."""
    result = await session.execute(text(f"SELECT COUNT(*) FROM {STAGE.name} WHERE good AND {_OF_DESTROYED}"))
    return int(result.scalar_one())


async def _bulk_pragmas(session: AsyncSession) -> None:
    """SQLite: a page cache large enough for the index b-trees a national load grows (256 MB at
    most, used only as pages are touched); the journal and sync settings stay as they are, so
    the import is as durable as any other write. The connection goes back to the serving cache
    size when it returns to the pool (``store.db.mark_bulk_cache``)."""
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        await session.execute(text("PRAGMA cache_size = -262144"))
        mark_bulk_cache(conn)  # the serving size again when it returns to the pool


# Involvements by practitioner: its keys follow the feed's children, so each row lands beside a
# random practitioner's; past the page cache (a national register's ~25 M involvements) every
# insert touches a random page. A first load on SQLite builds it after the rows instead (sorted,
# once), in the import's transaction: DDL is transactional there, so a failure leaves it as it was.
PRACTITIONER_INDEX = next(
    i for i in cast(Table, Involvement.__table__).indexes if i.name == "ix_involvements_practitioner_id"
)


async def _stage_apply(session: AsyncSession) -> int:
    """Insert new involvements and update changed ones in one statement; the rows it changed."""
    postgres = (await session.connection()).dialect.name == "postgresql"
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    rebuild = not postgres and (await session.execute(text("SELECT 1 FROM involvements LIMIT 1"))).first() is None
    if rebuild:
        await session.execute(text(f"DROP INDEX {PRACTITIONER_INDEX.name}"))
    result = await session.execute(
        text(
            f"INSERT INTO involvements ({_KEY}, ended, lead_professional) "
            f"SELECT {_KEY}, ended, lead_professional FROM {STAGE.name} WHERE good AND NOT {_OF_DESTROYED} "
            f"ON CONFLICT ({_KEY}) DO UPDATE SET ended = excluded.ended, "
            "lead_professional = excluded.lead_professional "
            f"WHERE involvements.ended {differs} excluded.ended "
            f"OR involvements.lead_professional {differs} excluded.lead_professional"
        )
    )
    if rebuild:
        await session.run_sync(lambda sync: PRACTITIONER_INDEX.create(sync.connection()))
    return int(result.rowcount)  # type: ignore[attr-defined]
