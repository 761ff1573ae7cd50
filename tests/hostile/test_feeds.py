"""Hostile feed files through `signpost import`, on SQLite and PostgreSQL: headers in any order or
wrong, over-long and hidden-character fields, unicode, empty files, byte-order marks, huge
references, rows repeated within and across files, a file given twice, odd file names.

Each import either succeeds (and the same import again changes nothing) or is refused: exit status
1, problem lines and the one closing line, its audit outcome ``invalid`` saying nothing changed, and
every table as it was; or, for a file name holding a hidden character (a control character, an
invisible mark, a byte that is not UTF-8), refused before it is read with the usage and the reason
(exit status 2, every table as it was). Never a traceback or a database's error text, never a feed's identity value
(names, dates of birth, postcodes) in what the command printed or logged. Feeds changed only in
ways that keep them good (columns reordered with their rows, rows split over files, a byte-order
mark, CRLF, blank lines) must import.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hypothesis import example, given
from sqlalchemy import func, select

from store.characters import HIDDEN_IN_PATH, shows_as_itself
from store.db import Database
from store.tables.audit import AuditEvent
from store.tables.people import Practitioner
from store.tables.register import Child, ChildTerm, Involvement, LocalAuthority
from tests.bot.cli.conftest import Cli, Run, cli  # noqa: F401  (the fixture, for this suite too)
from tests.hostile import strategies as hs
from tests.hostile.observe import ACCEPTED_WRONGLY, CRASHED, TRACEBACK, UNAUDITED, Check

# What a database or its driver says when something reached it that should have been a row problem.
DATABASE_TEXT = re.compile(
    r"sqlalchemy|asyncpg|psycopg|sqlite3|IntegrityError|DataError|DBAPIError|ProgrammingError|"
    r"value too long|character varying|ON CONFLICT|violates|CardinalityViolation|StringDataRightTruncation",
    re.IGNORECASE,
)
TABLES = (Practitioner, Child, ChildTerm, Involvement, LocalAuthority)


async def counts(db: Database) -> dict[str, int]:
    async with db.read() as session:
        return {
            table.__tablename__: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table in TABLES
        }


async def last_import(db: Database) -> AuditEvent | None:
    async with db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == "import").order_by(AuditEvent.seq.desc()).limit(1)
        return (await session.execute(query)).scalar_one_or_none()


def written(feeds: hs.FeedImport, tmp: Path) -> list[str]:
    """The files in a folder of their own, as the paths given to `signpost import`."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    paths = []
    for name, data in feeds.files:
        path = folder / name
        path.write_bytes(data)
        paths.append(str(path))
    return [paths[i] for i in feeds.given]


def said_kindly(check: Check, run: Run) -> None:
    """No traceback, no database error text, no identity value in anything the command wrote."""
    check.logs(run.out + run.err)
    found = DATABASE_TEXT.search(run.err)
    if found:
        check.fail(TRACEBACK, f"database text {found.group(0)!r}: {run.err[max(found.start() - 100, 0) :][:300]}")


async def audited(check: Check, db: Database, run: Run) -> None:
    event = await last_import(db)
    if event is None:
        check.fail(UNAUDITED, "no import event")
    elif run.code == 0:
        check.expect(event.outcome == "done", UNAUDITED, f"imported, audited {event.outcome}")
    elif event.outcome != "invalid" or event.result_count != 0 or "nothing changed" not in event.detail:
        check.fail(UNAUDITED, f"refused, audited {event.outcome} {event.result_count}: {event.detail}")


def standard(kind: str, header: list[str] | None = None, rows: int | None = None) -> hs.FeedFile:
    return hs.FeedFile(kind, header or list(hs.FEED_COLUMNS[kind]), [list(r) for r in hs.FEED_ROWS[kind][:rows]])


def feeds_of(*files: hs.FeedFile, names: tuple[str, ...] = (), given: tuple[int, ...] = ()) -> hs.FeedImport:
    """An import of these files, for the examples every run tries first."""
    named = [names[i] if i < len(names) else f"{file.kind}-{i}.csv" for i, file in enumerate(files)]
    picked = list(given or range(len(files)))
    return hs.FeedImport([(n, f.data()) for n, f in zip(named, files, strict=True)], picked, False, ["example"])


ALL = ("practitioners", "children", "involvements")
SWAPPED = ["practitioner_id", "roles", *hs.FEED_COLUMNS["practitioners"][2:-1], "given_name"]


@given(feeds=hs.feed_import())
@example(feeds=feeds_of(standard("practitioners", SWAPPED), standard("children")))  # given names under roles
@example(feeds=feeds_of(*map(standard, ALL), standard("involvements", rows=2)))  # repeats across files
@example(feeds=feeds_of(*map(standard, ALL), given=(0, 1, 2, 1)))  # a file given twice
@example(feeds=feeds_of(*map(standard, ALL), names=("p" * 240 + ".csv", "c\n\u202e.csv", "i\udcff.csv")))
async def test_hostile_feeds_import_whole_or_are_refused_kindly(
    cli: Cli,  # noqa: F811
    db: Database,
    tmp_path: Path,
    feeds: hs.FeedImport,
) -> None:
    check = Check("feed-import", repr(feeds))
    paths = written(feeds, tmp_path)
    before, last = await counts(db), await last_import(db)
    run = await cli.run("import", *paths)
    said_kindly(check, run)
    if run.code == 2 and not all(shows_as_itself(path) for path in paths):
        # Refused as the command line is read, before any file is opened: nothing runs, so nothing is audited.
        check.expect(HIDDEN_IN_PATH in run.said, CRASHED, f"refused without saying why: {run.said[-300:]}")
        check.expect(await counts(db) == before, ACCEPTED_WRONGLY, "refused, but the store changed")
        now = await last_import(db)
        check.expect(now is None or (last is not None and now.seq == last.seq), UNAUDITED, "refused, yet audited")
        check.settle()
        return
    await audited(check, db, run)
    if run.code == 1:
        check.expect(run.said.splitlines()[-1].startswith("Nothing was imported:"), CRASHED, run.said[-300:])
        check.expect(await counts(db) == before, ACCEPTED_WRONGLY, "refused, but the store changed")
        check.expect(not feeds.good, ACCEPTED_WRONGLY, f"good feeds refused: {run.said[-600:]}")
    elif run.code == 0:
        held = await counts(db)
        again = await cli.run("import", *paths)
        said_kindly(check, again)
        # Its counts say nothing changed (a note, e.g. an authority name read as a registered one, is
        # said again as it was the first time: it is no change).
        counted = [line for line in again.out.splitlines() if "new or changed" in line]
        changed = [line for line in counted if not line.endswith(", 0 new or changed")]
        check.expect(bool(counted), ACCEPTED_WRONGLY, "the same import again printed no counts")
        check.expect(again.code == 0 and not changed, ACCEPTED_WRONGLY, f"again: {again.code} {changed}")
        check.expect(await counts(db) == held, ACCEPTED_WRONGLY, "the same import again changed the store")
    else:
        check.fail(CRASHED, f"exit status {run.code}: {run.said[-300:]}")
    for path in set(paths):
        os.unlink(path)
    check.settle()
