"""A text giving a full date of birth, postcode or reference gets the same answer whether or not it
is the requested child's, and is not counted toward the day's hold: otherwise the answer would tell
a practitioner which of many guessed birthdays (or postcodes) is the child's, for one counted try
(handlers/access/screening.py ``screen``). Through the dispatcher on both backends."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.vocabulary import Outcome
from tests.access_helpers import audit_events, fresh_say, load_access

REF = "999 000 0050"  # the shielded child (tests.factories.SHIELDED) as typed: Mia Stone, 30/06/2015, S1 4ZZ
CALL_ME = "please call me on 0161 496 0002 about"
# Each kind: the child's own detail, and another that is not theirs.
GUESSES = {
    "date of birth": ("30/06/2015", "01/07/2015"),
    "postcode": ("S1 4ZZ", "S1 4ZY"),
    "reference": ("999 000 0050", "943 476 5919"),
}


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


@pytest.mark.parametrize("kind", sorted(GUESSES))
async def test_the_childs_own_detail_and_a_wrong_guess_get_the_same_uncounted_answer(app: Signpost, kind: str) -> None:
    right, wrong = GUESSES[kind]
    replies = [await fresh_say(app, "P002", f"message {REF} {CALL_ME} {guess}") for guess in (right, wrong) * 2]
    assert len({(r.outcome, r.text) for r in replies}) == 1, [r.text for r in replies]
    assert replies[0].outcome is Outcome.INVALID and kind.split()[-1] in replies[0].text, replies[0].text
    events = await audit_events(app, "relay_message")
    assert [e.detail for e in events] == ["details refused: message"] * 4
    # four refusals, none counted: the day's three tries are all still there
    assert (await fresh_say(app, "P002", f"message {REF} {CALL_ME} the referral")).outcome is Outcome.DONE


async def test_many_guessed_birthdays_in_one_text_tell_nothing(app: Signpost) -> None:
    """Ninety dates, one of them the child's, get the answer ninety wrong ones get."""
    wrong = " ".join(f"{d:02d}/07/2015" for d in range(1, 31))
    with_right = f"{wrong} 30/06/2015"
    with_wrong = f"{wrong} 29/06/2015"
    a = await fresh_say(app, "P002", f"message {REF} {CALL_ME} {with_right}")
    b = await fresh_say(app, "P002", f"message {REF} {CALL_ME} {with_wrong}")
    assert (a.outcome, a.text) == (b.outcome, b.text)
