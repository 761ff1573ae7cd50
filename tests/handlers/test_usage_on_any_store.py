"""What a command's usage says when it does not fit follows the one rule help follows: the demo's
children, people, names, dates, postcodes and authority as examples only on the demo store
(`signpost seed-demo`); on any other store the forms, since there those examples name nobody (or,
a reference that happens to be valid, a real child)."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.vocabulary import Outcome, Platform, Principal
from store.register.synthetic import SyntheticRegister
from tests.factories import load_standard, say, seed_demo

UNREGISTERED = Principal(Platform.SLACK, "T0001", "U0001")  # who sends `register`: a chat account not yet linked
_DEMO = SyntheticRegister(children=3000).examples()
# Everything of the demo data an example may name (tests/bot/console/test_help_examples.py holds the
# demo store's examples to answering there).
DEMO_VALUES = (
    *(_DEMO.keyed, _DEMO.shielded, _DEMO.demographic, _DEMO.practitioner_id, _DEMO.duty_manager_id),
    *("999 000 1146", "999 000 1006", "Ava Price", "05/01/2014", "NS1 3LY", "0161 496 0002", "lead-notices Northshire"),
)
# (who sends it: a standard store's id and the demo's, what they send, the usage on a store that is
# not the demo, the demo's own example on the demo store)
CASES = (
    ("P001", "NS-P0001", "request 999 000 0018", "request REFERENCE PURPOSE (the purpose", "e.g. request 999 000 1146"),
    ("P001", "NS-P0001", "message 999 000 0018", "message REFERENCE TEXT (your purpose", "e.g. message 999 000 1146"),
    (UNREGISTERED, UNREGISTERED, "register", "register PRACTITIONER_ID (your id", "e.g. register NS-P0001"),
    ("AD01", "ADMIN-01", "unlink", "unlink PRACTITIONER_ID [slack|teams] (every", "e.g. unlink NS-P0001"),
    ("AD01", "ADMIN-01", "lead-notices", "lead-notices AUTHORITY [off|lead|all]", "e.g. lead-notices Northshire"),
    ("P001", "NS-P0001", "Amy Jones 03/04/2099", "GIVEN FAMILY DD/MM/YYYY [POSTCODE].", "e.g. Ava Price 05/01/2014"),
    ("P001", "NS-P0001", "Amy Jones 03/04/2014 M1 2A", "type it as on a letter", "e.g. NS1 3LY"),
    ("P001", "NS-P0001", "999 000 0019", "Search by reference number (10 digits).", "e.g. 999 000 1006"),
)


@pytest.mark.parametrize(("who", "demo_who", "text", "form", "example"), CASES, ids=[c[2] for c in CASES])
async def test_on_a_store_that_is_not_the_demo_a_usage_shows_the_form_and_no_demo_example(
    signpost: Signpost, who: str | Principal, demo_who: str | Principal, text: str, form: str, example: str
) -> None:
    """On a register imported from feeds, `request 999 000 0018` without a purpose was answered with
    "e.g. request 999 000 1146 section 47 enquiry", `register` with "e.g. register NS-P0001", a
    mistyped search with "e.g. Ava Price 05/01/2014 NS1 3LY": the demo's, naming nobody there. The
    usage now shows the form, and nothing of the demo."""
    await load_standard(signpost)
    reply = await say(signpost, who, text)
    assert reply.outcome is Outcome.INVALID, reply.text
    assert form in reply.text, reply.text
    assert not [value for value in DEMO_VALUES if value in reply.text], reply.text
    assert "e.g." not in reply.text, reply.text  # no example naming anything


@pytest.mark.parametrize(("who", "demo_who", "text", "form", "example"), CASES, ids=[c[2] for c in CASES])
async def test_on_the_demo_store_a_usage_keeps_the_demos_example(
    signpost: Signpost, who: str | Principal, demo_who: str | Principal, text: str, form: str, example: str
) -> None:
    """On the store `signpost seed-demo` makes, the usage keeps the example README documents."""
    await seed_demo(signpost, 20)
    reply = await say(signpost, demo_who, text.replace("999 000 0018", "999 000 1006"))
    assert reply.outcome is Outcome.INVALID, reply.text
    assert example in reply.text, reply.text
