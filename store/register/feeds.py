"""Feed import: practitioners, children and involvements CSVs, all-or-nothing.

Every row is validated; valid rows are written inside one transaction as we go (so that
references between files are checked against exactly what the import would leave behind), and
if any row in any file is bad the whole transaction is rolled back and every problem reported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Role, plural
from store.db import Database, dialect_insert
from store.keys.crypto import KeyRing
from store.lifecycle import demo, retention
from store.people import practitioners
from store.people.practitioners import InvolvementRow, PractitionerRow
from store.register import children
from store.register.children import ChildRow
from store.register.refs import is_valid
from store.register.terms import Identity
from store.tables.register import Child, LocalAuthority

BATCH = 2000
NOT_UTF8 = "is not UTF-8 text from this line on (save the file as UTF-8 and import it again)"


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

POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?(\s*\d[A-Z]{2})?$")
PHONE = re.compile(r"^\+?[\d ()-]{6,20}$")
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
SEXES = {"F", "M", "X", "U"}
BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class RowProblem:
    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.problem}"


@dataclass
class ImportReport:
    problems: list[RowProblem] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # kind -> rows read
    changed: dict[str, int] = field(default_factory=dict)  # kind -> rows inserted or updated
    # Children 24 or over on the import date are never stored (nor their involvements): a record
    # already held is destroyed. Only counts are kept, never who.
    past_retention: int = 0
    past_retention_involvements: int = 0
    _not_stored: set[int] = field(default_factory=set, repr=False)
    # Children and practitioners this import names, bad rows included: a reference to one of them
    # is not "unknown" (the row itself is reported), so every problem shows in one pass.
    named_children: set[int] = field(default_factory=set, repr=False)
    named_practitioners: set[str] = field(default_factory=set, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def notes(self) -> list[str]:
        """Lines for the operator beyond the per-feed counts (no personal data)."""
        if not self.past_retention:
            return []
        return [
            f"{self.past_retention} child row(s) not stored: 24 or over on the import date, so due for "
            f"destruction (any record already held was destroyed); {self.past_retention_involvements} "
            "involvement row(s) for them skipped."
        ]


class FeedRejected(Exception):
    """The import applied nothing; ``report.problems`` says why, row by row."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{plural(len(report.problems), 'problem')}; nothing was imported")
        self.report = report


@dataclass(frozen=True, slots=True)
class Feed:
    """One CSV source: a name for messages and its text.

    ``bad_line`` is the first line that was not UTF-8 (``from_bytes``): the import reports it as a
    problem, and checks the rest of the file as well so that one pass shows every problem.
    """

    name: str
    text: str
    bad_line: int | None = None

    @classmethod
    def from_path(cls, path: Path) -> Feed:
        return cls.from_bytes(path.name, path.read_bytes())

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> Feed:
        try:
            return cls(name, data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            return cls(name, data.decode("utf-8-sig", errors="replace"), bad_line=line)


def detect_kind(header: Sequence[str]) -> FeedKind | None:
    columns = tuple(h.strip().lower() for h in header)
    for kind, expected in HEADERS.items():
        if set(columns) == set(expected):
            return kind
    return None


class _RowChecker:
    """Collects problems for one row while converting its fields."""

    def __init__(self, file: str, line: int, row: dict[str, str], problems: list[RowProblem]) -> None:
        self.file, self.line, self.row, self.problems = file, line, row, problems
        self.bad = False

    def fail(self, name: str, problem: str) -> None:
        self.bad = True
        self.problems.append(RowProblem(self.file, self.line, name, problem))

    def text(self, name: str, *, required: bool = True, max_len: int = 200) -> str:
        value = (self.row.get(name) or "").strip()
        if required and not value:
            self.fail(name, "is empty")
        elif len(value) > max_len:
            self.fail(name, f"is longer than {max_len} characters")
        return value

    def day(self, name: str, *, required: bool = True) -> date | None:
        value = self.text(name, required=required)
        if not value:
            return None
        try:
            return date.fromisoformat(value) if len(value) == 10 else _raise()
        except ValueError:
            self.fail(name, "is not a date in YYYY-MM-DD form")
            return None

    def boolean(self, name: str) -> bool:
        value = self.text(name).lower()
        if value and value not in BOOLEANS:
            self.fail(name, "must be true or false")
        return BOOLEANS.get(value, False)

    def reference(self, name: str) -> int:
        value = self.text(name).replace(" ", "")
        if value and not is_valid(value):
            self.fail(name, "is not a valid 10-digit reference (check digit fails)")
            return 0
        return int(value) if value else 0


def _raise() -> date:
    raise ValueError


def _short(value: str) -> str:
    """Quote at most a few characters of a bad value (feeds carry personal data)."""
    return value if len(value) <= 12 else value[:12] + "…"


def _practitioner(c: _RowChecker) -> PractitionerRow | None:
    roles_text = c.text("roles")
    roles: set[Role] = set()
    for part in filter(None, (p.strip() for p in roles_text.split(";"))):
        try:
            roles.add(Role(part))
        except ValueError:
            c.fail("roles", f"'{_short(part)}' is not one of practitioner, duty_manager, admin")
    phone, email = c.text("phone"), c.text("email", max_len=254)
    if phone and not PHONE.match(phone):
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


def _child(c: _RowChecker, today: date) -> ChildRow | None:
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
    aliases = tuple(a.strip() for a in c.text("aliases", required=False, max_len=2000).split(";") if a.strip())
    identity_fields = (c.text("given_names"), c.text("family_name"))
    row_la, shielded = c.text("local_authority", max_len=64), c.boolean("shielded")
    if c.bad or dob is None:
        return None
    identity = Identity(identity_fields[0], identity_fields[1], aliases, dob, sex or None, postcode or None)
    return ChildRow(ref=ref, identity=identity, local_authority=row_la, shielded=shielded)


def _involvement(c: _RowChecker) -> InvolvementRow | None:
    ref = c.reference("child_ref")
    started, ended = c.day("started"), c.day("ended", required=False)
    if started and ended and ended < started:
        c.fail("ended", "is before started")
    row = InvolvementRow(
        child_ref=ref,
        practitioner_id=c.text("practitioner_id", max_len=64),
        service=c.text("service"),
        started=started or date.min,
        ended=ended,
        lead_professional=c.boolean("lead_professional"),
    )
    return None if c.bad else row


def _rows(feed: Feed, problems: list[RowProblem]) -> tuple[FeedKind | None, Iterator[tuple[int, dict[str, str]]]]:
    if feed.bad_line is not None:
        problems.append(RowProblem(feed.name, feed.bad_line, "file", NOT_UTF8))
    reader = csv.reader(io.StringIO(feed.text))
    header = next(reader, None)
    kind = detect_kind(header) if header else None
    if kind is None:
        expected = " or ".join(",".join(h) for h in HEADERS.values())
        problems.append(RowProblem(feed.name, 1, "header", f"not a known feed; expected one of: {expected}"))
        return None, iter(())
    columns = [h.strip().lower() for h in header or ()]

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                problems.append(
                    RowProblem(feed.name, line, "row", f"has {len(values)} fields, expected {len(columns)}")
                )
                continue
            yield line, dict(zip(columns, values, strict=True))

    return kind, rows()


BeforeCommit = Callable[[AsyncSession, "ImportReport"], Awaitable[None]]


async def import_feeds(
    db: Database,
    keys: KeyRing,
    feeds: Sequence[Feed],
    now: datetime,
    *,
    before_commit: BeforeCommit | None = None,
) -> ImportReport:
    """Validate and apply feeds in one transaction; raise FeedRejected (nothing applied) on any problem.

    ``before_commit`` runs last in the import's transaction when every row was good (its audit
    event, say), so that the import and what it records commit together or not at all.
    """
    report = ImportReport()
    kinds: list[tuple[FeedKind, Iterator[tuple[int, dict[str, str]]], str]] = []
    for feed in feeds:
        kind, rows = _rows(feed, report.problems)
        if kind is not None:
            kinds.append((kind, rows, feed.name))
    kinds.sort(key=lambda item: ORDER.index(item[0]))
    async with db.write() as session:
        await demo.unmark(session)  # imported data may be real: no more dev clock (seed-demo re-marks)
        if any(kind is FeedKind.CHILDREN for kind, _, _ in kinds):
            await children.ensure_terms_current(session, keys)  # terms of an older index version
        for kind, rows, name in kinds:
            await _apply(session, keys, kind, name, rows, report, now)
        if report.problems:
            raise FeedRejected(report)  # rolls the whole transaction back
        if before_commit is not None:
            await before_commit(session, report)
    return report


async def _apply(
    session: Any,
    keys: KeyRing,
    kind: FeedKind,
    name: str,
    rows: Iterator[tuple[int, dict[str, str]]],
    report: ImportReport,
    now: datetime,
) -> None:
    seen: dict[object, int] = {}
    batch: list[tuple[int, Any]] = []
    unchecked: list[tuple[int, int, str]] = []  # (line, child_ref, practitioner_id) of bad rows
    report.rows.setdefault(kind.value, 0)
    report.changed.setdefault(kind.value, 0)
    for line, row in rows:
        report.rows[kind.value] += 1
        checker = _RowChecker(name, line, row, report.problems)
        parsed: Any
        if kind is FeedKind.PRACTITIONERS:
            parsed = _practitioner(checker)
        elif kind is FeedKind.CHILDREN:
            parsed = _child(checker, now.date())
        else:
            parsed = _involvement(checker)
        _name(report, kind, row)
        if parsed is None:
            if kind is FeedKind.INVOLVEMENTS:
                unchecked.append((line, *_references(name, line, row)))
            continue
        key = _identity_key(kind, parsed)
        if key in seen:
            checker.fail(HEADERS[kind][0], f"repeats the row on line {seen[key]}")
            continue
        seen[key] = line
        batch.append((line, parsed))
        if len(batch) >= BATCH:
            await _write(session, keys, kind, name, batch, report, now)
            batch = []
    if batch:
        await _write(session, keys, kind, name, batch, report, now)
    if unchecked:  # bad rows' references too, so that a second run finds nothing new
        await _check_references(session, name, unchecked, report)


def _name(report: ImportReport, kind: FeedKind, row: dict[str, str]) -> None:
    """Remember the child or practitioner a row names, whether or not the row is good."""
    if kind is FeedKind.PRACTITIONERS:
        report.named_practitioners.add((row.get("practitioner_id") or "").strip())
    elif kind is FeedKind.CHILDREN:
        value = (row.get("child_ref") or "").replace(" ", "").strip()
        if is_valid(value):
            report.named_children.add(int(value))


def _references(name: str, line: int, row: dict[str, str]) -> tuple[int, str]:
    """The child and practitioner a bad involvement row names (its own problems are already reported)."""
    checker = _RowChecker(name, line, row, [])
    return checker.reference("child_ref"), checker.text("practitioner_id", max_len=64)


def _identity_key(kind: FeedKind, parsed: Any) -> object:
    if kind is FeedKind.PRACTITIONERS:
        return parsed.id
    if kind is FeedKind.CHILDREN:
        return parsed.ref
    return (parsed.child_ref, parsed.practitioner_id, parsed.service, parsed.started)


async def _write(
    session: Any,
    keys: KeyRing,
    kind: FeedKind,
    name: str,
    batch: list[tuple[int, Any]],
    report: ImportReport,
    now: datetime,
) -> None:
    rows = [parsed for _, parsed in batch]
    if kind is not FeedKind.INVOLVEMENTS:
        await ensure_authorities(session, {row.local_authority for row in rows}, now)
    if kind is FeedKind.PRACTITIONERS:
        report.changed[kind.value] += await practitioners.upsert_practitioners(session, rows, now)
    elif kind is FeedKind.CHILDREN:
        done = await children.upsert(session, keys, rows, now)
        report.changed[kind.value] += done.inserted + done.updated
        if done.past_retention:
            report.past_retention += len(done.past_retention)
            report._not_stored.update(done.past_retention)
            await retention.destroy(session, keys, done.past_retention, now)  # a record held before
    else:
        kept = [(line, row) for line, row in batch if row.child_ref not in report._not_stored]
        report.past_retention_involvements += len(batch) - len(kept)
        ok = await _check_references(
            session, name, [(line, r.child_ref, r.practitioner_id) for line, r in kept], report
        )
        good = [row for line, row in kept if line in ok]
        report.changed[kind.value] += await practitioners.upsert_involvements(session, good)


async def ensure_authorities(session: Any, names: set[str], now: datetime) -> None:
    """Record every local authority a feed names (once), before rows that refer to it."""
    if names:
        stmt = dialect_insert(session)(LocalAuthority.__table__).on_conflict_do_nothing(index_elements=["name"])
        await session.execute(stmt, [{"name": name, "first_seen": now} for name in sorted(names)])


async def _check_references(
    session: Any, name: str, named: list[tuple[int, int, str]], report: ImportReport
) -> set[int]:
    """Involvements must name a child and a practitioner that exist once this import is applied.

    ``named`` is (line, child_ref, practitioner_id); returns the lines whose child and practitioner
    are stored (the rows that may be written). A reference to a bad row of this import is not
    reported again, nor is a bad or empty field (0 or ""): those rows' own problems say why.
    """
    refs = sorted({ref for _, ref, _ in named if ref})
    stored_children: set[int] = set()
    for start in range(0, len(refs), children.CHUNK):
        result = await session.execute(select(Child.ref).where(Child.ref.in_(refs[start : start + children.CHUNK])))
        stored_children.update(result.scalars())
    stored_people = set(await practitioners.existing_ids(session, sorted({pid for _, _, pid in named if pid})))
    ok: set[int] = set()
    for line, ref, pid in named:
        if ref and ref not in stored_children and ref not in report.named_children:
            report.problems.append(RowProblem(name, line, "child_ref", "no child with this reference"))
        if pid and pid not in stored_people and pid not in report.named_practitioners:
            report.problems.append(RowProblem(name, line, "practitioner_id", "no practitioner with this id"))
        if ref in stored_children and pid in stored_people:
            ok.add(line)
    return ok
