"""A children feed whose row is misaligned: the child's name sits under ``local_authority``.

The import takes it (a feed may arrive before the practitioners feed that names its authority), so
"Zqxmarker Vvtest" is recorded as an authority no practitioner belongs to. It is a child's name: it
must never be shown as an authority, on the transparency report or in the chat.
"""

from __future__ import annotations

from bot.app import Signpost
from store.register.feeds import Feed, ImportReport, import_feeds
from store.register.refs import make_reference
from tests.factories import CHILDREN_HEADER, INVOLVEMENTS_HEADER

NAME_AS_AUTHORITY = "Zqxmarker Vvtest"
# Every part of it that a reader could recognise the child by.
NAME_PARTS = (NAME_AS_AUTHORITY, "Zqxmarker", "Vvtest", "zqxmarker", "ZQXMARKER")
REF = str(make_reference(999_000_090))
CHILD_ROW = f"{REF},Zqxmarker,Vvtest,,2015-03-03,F,M1 2AB,{NAME_AS_AUTHORITY},false\n"


def feeds() -> list[Feed]:
    """The misaligned child, with Northshire's social worker P001 as its lead professional."""
    return [
        Feed("children.csv", f"{CHILDREN_HEADER}\n{CHILD_ROW}"),
        Feed("involvements.csv", f"{INVOLVEMENTS_HEADER}\n{REF},P001,Children's social care,2024-01-01,,true\n"),
    ]


async def import_misaligned(app: Signpost) -> ImportReport:
    return await import_feeds(app.ctx.db, app.ctx.keys, feeds(), app.ctx.clock.now())


def shown_parts(text: str) -> list[str]:
    """The parts of the child's name that ``text`` shows (none, when it is safe)."""
    return [part for part in NAME_PARTS if part in text]
