"""Synthetic children around the retention birthdays (clock starts 2 November 2026), and helpers."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from sqlalchemy import select, text

from bot.app import Signpost
from handlers.lifecycle.flows import retention_tick
from store.db import Database
from store.lifecycle.retention import RetentionReport
from store.register.feeds import Feed, ImportReport, import_feeds
from store.register.refs import make_reference
from store.tables.base import Base
from tests.factories import CHILDREN, INVOLVEMENTS, PRACTITIONERS


def ref(n: int) -> str:
    return str(make_reference(999_000_100 + n * 10))


TURNS_24 = ref(1)  # 24 on 3 November 2026: archived at its first run, destroyed on its birthday
TURNS_18 = ref(2)  # 18 on 3 November 2026
LEAP_DAY = ref(3)  # born 29 February 2008: 18 on 1 March 2026, 24 on 29 February 2032
AFTER_LEAP = ref(4)  # born 1 March 2008
OVER_24 = ref(5)  # already 26 when imported
MARKER = "Qzmarkerxyzzy"  # a family name that must never appear in clear anywhere

LIFECYCLE_CHILDREN = f"""{TURNS_24},Tara,{MARKER},Tara Vale,2002-11-03,F,M2 3CD,Northshire,false
{TURNS_18},Omar,Patel,,2008-11-03,M,M3 4EF,Northshire,false
{LEAP_DAY},Lena,Frost,,2008-02-29,F,M5 6GH,Northshire,false
{AFTER_LEAP},Marc,Frost,,2008-03-01,M,M5 6GH,Northshire,false
{OVER_24},Ivy,Stone,,2000-01-01,F,M7 8JK,Northshire,false
"""
LIFECYCLE_INVOLVEMENTS = f"""{TURNS_24},P001,Children's social care,2020-01-10,,true
{TURNS_18},P002,School nursing,2021-09-01,,false
"""
SECOND_ADMIN = "AD02,Robin,Ash,Service admin,Signpost Operations,Northshire,0161 496 0201,r.ash@ops.example,admin\n"


def feeds() -> list[Feed]:
    return [
        Feed("practitioners.csv", PRACTITIONERS + SECOND_ADMIN),
        Feed("children.csv", CHILDREN + LIFECYCLE_CHILDREN),
        Feed("involvements.csv", INVOLVEMENTS + LIFECYCLE_INVOLVEMENTS),
    ]


async def load(app: Signpost) -> ImportReport:
    return await import_feeds(app.ctx.db, app.ctx.keys, feeds(), app.ctx.clock.now())


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


async def retention_on(app: Signpost, day: date) -> RetentionReport:
    """Move the app's clock to ``day`` and run the retention tick as the scheduler would, the clock
    known to be right: ``day`` may be months or years on (``retention.ClockUnchecked``)."""
    app.ctx.clock.set(at(day))  # type: ignore[attr-defined]
    return await retention_tick(app.ctx, app.ctx.clock.now(), catch_up_to=day)


async def snapshot(db: Database) -> dict[str, str]:
    """A digest of every table's rows, to prove that something changed nothing."""
    out: dict[str, str] = {}
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table).order_by(*table.primary_key.columns))).all()
            out[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


async def scalar(db: Database, sql: str, **params: object) -> object:
    async with db.read() as session:
        return (await session.execute(text(sql), params)).scalar()
