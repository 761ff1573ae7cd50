"""Names as a real local authority or NHS export spells them, found through the real chat search as
a practitioner types them: on an English keyboard, or pasted from a letter or an email."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.vocabulary import Outcome
from store.register.feeds import Feed, import_feeds
from tests.factories import CHILDREN_HEADER, PRACTITIONERS, ready, say
from tests.fuzzy_register import filler_children

PAWEL = "9993000000"
ZOE = "9993000019"
SIAN = "9993000027"
CLAIR = "9993000035"

CHILDREN = f"""{CHILDREN_HEADER}
{PAWEL},Paweł,Łęcki,,2014-04-06,M,M1 1AE,Northshire,false
{ZOE},Zoë,Smith-Jones,,2015-03-04,F,M1 1AE,Northshire,false
{SIAN},Siân,ap Dafydd,,2013-05-06,F,CF10 1AA,Northshire,false
{CLAIR},Amy,St Clair,,2012-02-03,F,LS6 3QT,Northshire,false
"""
INVOLVEMENTS = "child_ref,practitioner_id,service,started,ended,lead_professional\n" + "".join(
    f"{ref},P001,Children's social care,2024-01-10,,false\n" for ref in (PAWEL, ZOE, SIAN, CLAIR)
)


async def setup(app: Signpost) -> None:
    feeds = [
        Feed("practitioners.csv", PRACTITIONERS),
        Feed("children.csv", CHILDREN + filler_children()),
        Feed("involvements.csv", INVOLVEMENTS),
    ]
    report = await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
    assert report.ok
    await ready(app, "P002")


TYPED = {
    # Letters that do not come apart into a base letter and an accent (Ł, Ø, Đ, Æ…) were kept as
    # they are, so a Polish name typed on an English keyboard matched no name of the child's.
    "Polish letters typed without their strokes": ("Pawel Lecki 06/04/2014", PAWEL),
    "Polish letters as registered": ("Paweł Łęcki 06/04/2014", PAWEL),
    # Word and Outlook write a non-breaking hyphen (U+2011) or an en dash; a PDF, a hyphen (U+2010):
    # each was refused as "names may contain letters, hyphens and apostrophes only".
    "an en dash in a double-barrelled name": ("Zoe Smith\u2013Jones 04/03/2015", ZOE),
    "a non-breaking hyphen": ("Zoe Smith\u2011Jones 04/03/2015", ZOE),
    "a Unicode hyphen": ("Zoë Smith\u2010Jones 04/03/2015", ZOE),
    "the hyphen left out": ("zoe smith jones 04/03/2015 m11ae", ZOE),
    "a Welsh name without its circumflex, hyphenated": ("Sian ap-Dafydd 06/05/2013", SIAN),
    # "St. Clair" as a letter writes it was refused as not a name.
    "a full stop after an abbreviation": ("Amy St. Clair 03/02/2012", CLAIR),
    "full stops between the parts": ("Amy St.Clair 03/02/2012", CLAIR),
}


@pytest.mark.parametrize("typed", list(TYPED))
async def test_a_name_spelt_as_a_keyboard_or_a_document_writes_it_finds_the_child(
    signpost: Signpost, typed: str
) -> None:
    """The one child the feed spells so is answered, however the practitioner's keyboard wrote it."""
    await setup(signpost)
    text, ref = TYPED[typed]
    reply = await say(signpost, "P002", text)
    assert reply.outcome is Outcome.ANSWERED, (typed, reply.text)
    assert reply.child_ref == f"{ref[:3]} {ref[3:6]} {ref[6:]}"
