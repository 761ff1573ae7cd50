"""A few named children imported through the real feeds beside the filler register
(tests/fuzzy_register.py), for asking a name that is not quite theirs: the registers of
test_households.py, test_name_slips.py and test_phonetic_names.py."""

from __future__ import annotations

from datetime import date

from bot.app import Signpost
from store.register.feeds import Feed, import_feeds
from store.register.refs import make_reference
from store.register.terms import Identity
from tests.factories import CHILDREN_HEADER, PRACTITIONERS, ready
from tests.fuzzy_register import filler_children

Child = tuple[str, str, date, str, str]
"""Given names, family name, date of birth, sex, postcode."""


def references(children: dict[str, Child], first: int) -> dict[str, str]:
    """A valid reference for each child, ``first`` (a 9-digit stem) onwards, ten apart."""
    return {name: str(make_reference(first + number * 10)) for number, name in enumerate(children)}


def identities(children: dict[str, Child]) -> dict[str, Identity]:
    return {name: Identity(g, f, (), born, sex, code) for name, (g, f, born, sex, code) in children.items()}


async def load(app: Signpost, children: dict[str, Child], refs: dict[str, str]) -> None:
    """Import the children (P001 working with each) beside the filler register; P002 ready to search."""
    rows = "".join(
        f"{refs[name]},{g},{f},,{born.isoformat()},{sex},{code},Northshire,false\n"
        for name, (g, f, born, sex, code) in children.items()
    )
    involvements = "child_ref,practitioner_id,service,started,ended,lead_professional\n" + "".join(
        f"{ref},P001,Children's social care,2024-01-10,,false\n" for ref in refs.values()
    )
    feeds = [
        Feed("practitioners.csv", PRACTITIONERS),
        Feed("children.csv", f"{CHILDREN_HEADER}\n{rows}" + filler_children()),
        Feed("involvements.csv", involvements),
    ]
    await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
    await ready(app, "P002")


def spaced(ref: str) -> str:
    """A reference as an answer shows it: ``999 400 0001``."""
    return f"{ref[:3]} {ref[3:6]} {ref[6:]}"
