"""A small synthetic register for fuzzy-matching tests: children with aliases, a double-barrelled
surname, look-alike twins, a sibling and a namesake. Nobody real is in here."""

from __future__ import annotations

from datetime import date, timedelta

from bot.app import Signpost
from store.register.feeds import Feed, ImportReport, import_feeds
from store.register.refs import make_reference
from tests.factories import CHILDREN_HEADER, PRACTITIONERS

AMELIA = "9991000003"
AMELIA_SISTER = "9991000100"
AMELIA_NAMESAKE = "9991000208"
ROBERT = "9991000305"
CATHERINE = "9991000402"
KYLE = "9991000518"
JACK = "9991000607"
JAKE = "9991000704"
OLIVER = "9991000801"
ARCHIVED = "9991000909"

FUZZY_CHILDREN = f"""{CHILDREN_HEADER}
{AMELIA},Amelia Grace,Thornton,Amelia Hargreaves,2014-04-03,F,M1 2AB,Northshire,false
{AMELIA_SISTER},Grace,Thornton,,2016-01-12,F,M1 2AB,Northshire,false
{AMELIA_NAMESAKE},Amelia,Thornton,,2011-09-21,F,LS6 3QT,Northshire,false
{ROBERT},Robert,Smith-Patel,,2010-12-07,M,B15 2TT,Northshire,false
{CATHERINE},Catherine,O'Neill,,2012-06-30,F,CF10 1AA,Northshire,false
{KYLE},Kyle,Brennan,Kyle Morton;Kai Morton,2015-02-14,M,NE4 7YH,Northshire,false
{JACK},Jack,Lockwood,,2013-05-09,M,SW9 8HP,Northshire,false
{JAKE},Jake,Lockwood,,2013-05-09,M,SW9 8HP,Northshire,false
{OLIVER},Oliver,Wright,,2009-11-25,M,EX4 4QJ,Northshire,false
{ARCHIVED},Zachary,Fairweather,,2008-03-17,M,YO1 7HH,Northshire,false
"""

INVOLVEMENTS = """child_ref,practitioner_id,service,started,ended,lead_professional
""" + "".join(
    f"{ref},P001,Children's social care,2024-01-10,,false\n"
    for ref in (AMELIA, AMELIA_SISTER, AMELIA_NAMESAKE, ROBERT, CATHERINE, KYLE, JACK, JAKE, OLIVER, ARCHIVED)
)


FILLERS = 400
_SYLLABLES = ("bar", "ken", "dol", "vim", "sar", "tup", "lom", "fex", "gir", "wen", "poz", "hul", "ryd", "qua")


def _made_up(number: int, shift: int) -> str:
    """A pronounceable name no real register would hold: ``number`` written in syllables."""
    n = len(_SYLLABLES)
    digits = ((number + shift) % n, (number // n + shift) % n, (number // n // n + shift) % n)
    return "".join(_SYLLABLES[d] for d in digits).capitalize()


def filler_children() -> str:
    """Children unlike the ones under test, so that the register has a realistic size: each
    test child's name is then one among hundreds, as it would be among millions."""
    lines = []
    for number in range(FILLERS):
        ref = make_reference(999_200_000 + number * 10)
        born = date(2006, 1, 1) + timedelta(days=number * 13)
        names = f"{_made_up(number, 0)},{_made_up(number, 5)}"
        lines.append(f"{ref},{names},,{born.isoformat()},F,ZZ9 {number % 10}AA,Northshire,false")
    return "\n".join(lines) + "\n"


async def load_fuzzy(app: Signpost) -> ImportReport:
    feeds = [
        Feed("practitioners.csv", PRACTITIONERS),
        Feed("children.csv", FUZZY_CHILDREN + filler_children()),
        Feed("involvements.csv", INVOLVEMENTS),
    ]
    return await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
