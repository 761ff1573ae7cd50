"""Whether an involvement is current as of a moment: the one rule, as one SQL expression.

A feed's ``ended`` is the involvement's end date, past or planned (the import takes one up to 24
years ahead). The involvement is current while there is none or it is still to come, and ended
from that day on: so a planned end needs no re-import to take effect, and the date a signpost
shows ("current, ends 31/07/2027", then "ended 31/07/2027") is the same day both ways.

Every reader asks it in SQL (``current``), with the day bound from the caller's clock (``as_of``),
never the database's or the process's own clock: the signposts' ``current`` column (the keyed
enquiry's one statement, ``children.enquire``, and a granted shielded child's ``children.signposts``),
who is told of a lookup and who holds a relayed message (``store.people.lead``). It stays a filter
on the rows an index already found (a child's involvements, by ``child_ref``), never a scan, and
never a query of its own.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ColumnElement, Date, bindparam, or_
from sqlalchemy.orm import InstrumentedAttribute

from handlers.vocabulary import UK

TODAY = "as_of_day"
"""The bound parameter ``current`` compares with: give it ``as_of(now)``."""


def current(ended: ColumnElement[date | None] | InstrumentedAttribute[date | None]) -> ColumnElement[bool]:
    """Whether the involvement whose end date is ``ended`` is current on the bound day (``TODAY``):
    no end date, or one after that day."""
    return or_(ended.is_(None), ended > bindparam(TODAY, type_=Date))


def as_of(now: datetime) -> dict[str, date]:
    """The parameter ``current`` needs, from the request's or the job's clock: the day of ``now``
    in the UK, as a feed's end date is a day there (at 00:30 BST on its end date, 23:30 UTC the day
    before, the involvement has ended; found by review)."""
    return {TODAY: now.astimezone(UK).date()}
