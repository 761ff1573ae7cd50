"""Text holding a character that does not show as itself is answered with help by ``grammar.parse``,
whatever command it names: never acted on, sealed, relayed or sent to anyone, never an error."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.app import Signpost
from handlers.grammar import HIDDEN_HINT
from handlers.vocabulary import Outcome
from store.tables.people import AccessRequest, RelayMessage
from tests.access_helpers import audit_events, fresh_say, load_access, notices
from tests.bot.log_stream import logged_at
from tests.factories import SHIELDED
from tests.spread import spread

USAGE_WITH_HINT = f"Sorry, I didn't understand that. {HIDDEN_HINT} You can send:"
PURPOSE = "section 47 enquiry kingfisher"

HIDDEN = [
    pytest.param(f"request {SHIELDED} {PURPOSE}\x00", id="NUL in a purpose"),
    pytest.param(f"request {SHIELDED} {PURPOSE}\ud800", id="lone surrogate in a purpose"),
    pytest.param(f"request {SHIELDED} \u202e{PURPOSE}", id="RTL override in a purpose"),
    pytest.param(f"message {SHIELDED} {PURPOSE}, call 0161 496 0002\x1b[2J", id="ESC in a relayed message"),
    pytest.param(f"message {SHIELDED} {PURPOSE}\x1f call 0161 496 0002", id="unit separator (whitespace to split)"),
    pytest.param(f"message {SHIELDED} {PURPOSE}\x85 call 0161 496 0002", id="C1 next line"),
    pytest.param("deny 1 please ask the lead\u2066 professional", id="bidi isolate in a reason"),
    pytest.param("relay 1\u200b", id="zero-width space after an id"),
    pytest.param("999 000 0018\ufeff", id="byte-order mark after a reference"),
    pytest.param("Amy\u00adJones 03/04/2014", id="soft hyphen in a name"),
    pytest.param("history\x7f", id="DEL after a keyword"),
    pytest.param("\U000e0041help", id="a tag character"),
    pytest.param(f"request {SHIELDED} {PURPOSE} \u200d", id="a joiner that joins nothing"),
    pytest.param("relay 1\ue000", id="a private-use character"),
]


# A matrix of texts refused by grammar.parse before the store: each on one store, half on each (tests/spread.py).
@spread("typed", {param.id: param.values[0] for param in HIDDEN})
async def test_a_hidden_character_gets_help_and_nothing_is_done(signpost: Signpost, typed: str) -> None:
    """NUL, a lone surrogate, bidi overrides and isolates, zero-width and other format characters,
    C0 and C1 controls and DEL: usage help saying what to fix, one ``usage`` event, no request,
    no relayed message, no notice, and nothing of the text in the log. Before, an access request's
    purpose with a NUL was sent to the duty managers, and one with a lone surrogate answered
    "something went wrong" (it cannot be encoded to be sealed)."""
    await load_access(signpost)
    before = len(await notices(signpost))
    with logged_at("info") as log:
        reply = await fresh_say(signpost, "P002", typed)
    assert (reply.outcome, reply.text) == (Outcome.INVALID, USAGE_WITH_HINT)
    assert reply.lines  # what can be sent, as for any text not understood
    event = (await audit_events(signpost))[-1]
    assert (event.actor_id, event.action, event.outcome, event.terms) == ("P002", "usage", "invalid", None)
    async with signpost.ctx.db.read() as session:
        for table in (AccessRequest, RelayMessage):
            assert (await session.execute(select(func.count()).select_from(table))).scalar_one() == 0
    assert len(await notices(signpost)) == before
    assert "kingfisher" not in log.text and "command_failed" not in log.events()


@pytest.mark.parametrize(
    "typed",
    [
        f"request {SHIELDED}\n{PURPOSE}",
        f"request {SHIELDED}\t{PURPOSE}",
        f"request {SHIELDED}\r\n{PURPOSE}",
        f"request {SHIELDED} {PURPOSE} \U0001f469\u200d\U0001f4bb",  # a joiner in an emoji sequence
    ],
)
async def test_line_breaks_tabs_and_joiners_are_read_as_typed(signpost: Signpost, typed: str) -> None:
    """A Slack or Teams message, or a form's reason, may hold line breaks and tabs: they are spaces.
    A joiner that joins (an emoji sequence, a Persian name: store.characters) is text: the command is read."""
    await load_access(signpost)
    reply = await fresh_say(signpost, "P002", typed)
    assert reply.outcome is Outcome.DONE and reply.text.startswith("Access request 1 for 999 000 0050 sent")
