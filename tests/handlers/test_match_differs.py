"""An accepted match whose names or date of birth differ from what was typed says so, without
saying what differs (nothing the practitioner did not type is echoed); an exact one does not."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.search import DIFFERS
from handlers.vocabulary import Outcome, Reply
from tests.factories import load_standard, ready, say


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    await ready(signpost, "P002")
    return signpost


def warned(reply: Reply) -> bool:
    return any(DIFFERS in line for line in reply.lines) or DIFFERS in reply.text


@pytest.mark.parametrize(
    "typed",
    [
        "Amy Jones 03/04/2014",
        "amy jones 2014-04-03 M1 2AB",
        "Jones, Amy 03/04/2014",
        "Amelia Jones 03/04/2014",  # a registered alias, as registered
        "Mia Stone 30/06/2015",  # shielded: no warning either
    ],
)
async def test_an_exact_match_has_no_warning(app: Signpost, typed: str) -> None:
    reply = await say(app, "P002", typed)
    assert reply.outcome in (Outcome.ANSWERED, Outcome.SHIELDED), reply
    assert not warned(reply)


@pytest.mark.parametrize(
    "typed",
    [
        "Amy Jomes 03/04/2014 M1 2AB",  # a slip in the family name
        "Ami Jones 03/04/2014 M1 2AB",  # a slip in the given name
        "Amy Jones 04/03/2014 M1 2AB",  # day and month swapped
    ],
)
async def test_a_match_that_differs_from_what_was_typed_says_so(app: Signpost, typed: str) -> None:
    reply = await say(app, "P002", typed)
    assert reply.outcome in (Outcome.ANSWERED, Outcome.SHIELDED), reply
    assert warned(reply)
    for field in ("Jones", "Stone", "03/04/2014", "30/06/2015", "2014-04-03"):
        assert field in typed or field not in str(reply.lines) + reply.text


@pytest.mark.parametrize(
    "typed",
    ["Mia Stone 30/06/2015", "Mia Stome 30/06/2015 S1 4ZZ", "Mia Stone 2015-06-30 S1 4ZZ", "Mya Stone 30/06/2015"],
)
async def test_a_shielded_match_says_the_same_whether_what_was_typed_is_exact_or_not(app: Signpost, typed: str) -> None:
    """A shielded match says only that a record exists and is shielded (PRODUCT.md): a warning on an
    inexact one told its finder, by trying variants, which spelling, alias or date of birth is the
    registered one (review). Every variant gets the same answer."""
    reply = await say(app, "P002", typed)
    exact = await say(app, "P002", "Mia Stone 30/06/2015")
    assert reply.outcome is Outcome.SHIELDED, reply
    assert (reply.text, reply.lines) == (exact.text, exact.lines) and not warned(reply)
