"""Feed import: practitioners, children and involvements CSVs, all-or-nothing.

Every row is validated; valid rows are written inside one transaction as we go (so that
references between files are checked against exactly what the import would leave behind), and
if any row in any file is bad the whole transaction is rolled back and every problem reported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select

from handlers.vocabulary import Role
from store.db import Database, dialect_insert
from store.keys.crypto import KeyRing
from store.lifecycle import demo
from store.people import practitioners
from store.people.practitioners import InvolvementRow, PractitionerRow
from store.register import children
from store.register.children import ChildRow
from store.register.refs import is_valid
from store.register.terms import Identity
from store.tables.register import Child, LocalAuthority

BATCH = 2000


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

    @property
    def ok(self) -> bool:
        return not self.problems


class FeedRejected(Exception):
    """The import applied nothing; ``report.problems`` says why, row by row."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len(report.problems)} problem(s); nothing was imported")
        self.report = report


@dataclass(frozen=True, slots=True)
class Feed:
    """One CSV source: a name for messages and its text."""

    name: str
    text: str

    @classmethod
    def from_path(cls, path: Path) -> Feed:
        return cls(path.name, path.read_text("utf-8-sig"))


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


async def import_feeds(db: Database, keys: KeyRing, feeds: Sequence[Feed], now: datetime) -> ImportReport:
    """Validate and apply feeds in one transaction; raise FeedRejected (nothing applied) on any problem."""
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
        if parsed is None:
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
        inserted, updated = await children.upsert(session, keys, rows, now)
        report.changed[kind.value] += inserted + updated
    else:
        good = await _check_references(session, name, batch, report)
        report.changed[kind.value] += await practitioners.upsert_involvements(session, good)


async def ensure_authorities(session: Any, names: set[str], now: datetime) -> None:
    """Record every local authority a feed names (once), before rows that refer to it."""
    if names:
        stmt = dialect_insert(session)(LocalAuthority.__table__).on_conflict_do_nothing(index_elements=["name"])
        await session.execute(stmt, [{"name": name, "first_seen": now} for name in sorted(names)])


async def _check_references(
    session: Any, name: str, batch: list[tuple[int, InvolvementRow]], report: ImportReport
) -> list[InvolvementRow]:
    """Involvements must name a child and a practitioner that exist once this import is applied."""
    refs = sorted({row.child_ref for _, row in batch})
    known_children: set[int] = set()
    for start in range(0, len(refs), children.CHUNK):
        result = await session.execute(select(Child.ref).where(Child.ref.in_(refs[start : start + children.CHUNK])))
        known_children.update(result.scalars())
    known_people = await practitioners.existing_ids(session, sorted({row.practitioner_id for _, row in batch}))
    good = []
    for line, row in batch:
        ok = True
        if row.child_ref not in known_children:
            report.problems.append(RowProblem(name, line, "child_ref", "no child with this reference"))
            ok = False
        if row.practitioner_id not in known_people:
            report.problems.append(RowProblem(name, line, "practitioner_id", "no practitioner with this id"))
            ok = False
        if ok:
            good.append(row)
    return good
