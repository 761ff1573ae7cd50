"""Issue 18 in the console: the real Console class, each person at their own terminal turn.

What each practitioner's console prints, their notices included (the console's outbox delivers a
notice when its recipient is the one at the console): the blind relay round trip, and the lead
professional told of a lookup.
"""

from __future__ import annotations

import pytest

from bot.app import Signpost
from tests.access_helpers import load_access
from tests.bot.console.console_session import session
from tests.factories import AMY, SHIELDED
from tests.stepup_helpers import ensure_enrolled

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

MARKER = "section 47 enquiry zebrafinch, call me on 0161 496 0002"
ANSWER = "happy to talk kingfisher, ring after 3pm"
LEAD_IDENTITY = ("S001", "Lee", "Hart", "Health visitor", "Southvale NHS Trust", "0113 496 0001", "lee.hart")
CHILD_IDENTITY = ("Mia", "Stone", "2015-06-30", "30/06/2015", "S1 4ZZ", "S14ZZ")
AMY_IDENTITY = ("Amy", "Jones", "Amelia", "Smith", "2014-04-03", "03/04/2014", "M1 2AB", "M12AB")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    """The register with Southvale's duty managers; everyone here has a fresh step-up code."""
    await load_access(signpost)
    for who in ("P001", "P002", "S001"):
        await ensure_enrolled(signpost, who)
    return signpost


async def test_blind_relay_round_trip_at_the_console(app: Signpost) -> None:
    """Priya sends; Lee's console shows the notice with Read and Reply, then the message with Priya's
    contact; Lee answers; Priya's console shows 'delivered', then the 'answered' notice and the answer,
    and never who Lee is. The child's identity is printed to nobody."""
    priya = await session(app, [SHIELDED, f"message {SHIELDED} {MARKER}"], as_id="P002")
    assert "Send a message" in priya
    assert "Message 1 about 999 000 0050 delivered to the professional responsible for this child" in priya

    lee = await session(app, ["relay 1", f"reply 1 {ANSWER}"], as_id="S001")
    assert (
        "[notice] A practitioner sent you a message through Signpost about shielded record 999 000 0050, "
        "a child you are lead professional for (message 1)."
    ) in lee
    assert "[Read] type: relay 1" in lee and "[Reply through Signpost] type: reply 1 TEXT" in lee
    assert "From: Priya Shah, School nurse, Northshire School Health (0161 496 0002" in lee
    assert f"Message: {MARKER}" in lee
    assert "Your answer to message 1 was passed on" in lee

    priya_later = await session(app, ["relay 1"], as_id="P002")
    assert "[notice] Your message 1 about 999 000 0050 was answered. Send 'relay 1' to read the answer." in priya_later
    assert f"You wrote: {MARKER}" in priya_later and f"{ANSWER}" in priya_later and "Status: answered" in priya_later

    priya_saw = priya + priya_later
    assert not [word for word in LEAD_IDENTITY if word in priya_saw], "the sender never learns who answered"
    assert not [word for word in CHILD_IDENTITY if word.casefold() in (priya_saw + lee).casefold()]


async def test_the_lead_professional_reads_the_notice_at_their_console(app: Signpost) -> None:
    """Priya looks Amy up; at Sam's next turn his console prints who looked and how to reach them."""
    priya = await session(app, [AMY], as_id="P002")
    assert "Sam Carter" in priya and "[notice]" not in priya
    sam = await session(app, ["help"], as_id="P001")
    assert (
        "[notice] Priya Shah, School nurse, Northshire School Health (0161 496 0002, priya.shah@nhs.example) "
        "looked up 999 000 0018, a child you are lead professional for."
    ) in sam
    notice = [line for line in sam.splitlines() if line.startswith("[notice]")]
    assert len(notice) == 1 and not [w for w in AMY_IDENTITY if w.casefold() in notice[0].casefold()]
