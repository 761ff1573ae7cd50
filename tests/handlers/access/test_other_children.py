"""Free text that Signpost passes on or keeps (an access request's purpose, a denial reason, a relayed
message or its answer) must not carry ANY child's reference, a full date that could be a child's date
of birth, or a full postcode: another child's details would reach the duty manager and, masked, this
family's subject-access report (handlers/privacy.py ``other_details``, applied once in
handlers/access/screening.py). Through the dispatcher on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.access.requests import REQUEST_USAGE
from handlers.examples import for_any_store
from handlers.vocabulary import Outcome, Platform, Principal
from store.tables.people import AccessRequest, RegistrationRequest, RelayMessage
from tests.access_helpers import audit_events, decide, fresh_say, load_access, notices, request_access
from tests.factories import SHIELDED, say

# The brief's own example: a brother's reference, birthday and postcode.
SIBLING = "s47 enquiry; her brother 943 476 5919 born 03/04/2016 at NS1 3LY also open to us"
# Each gives one detail of another child (the clock stands at 2 November 2026).
SLIPS = {
    "reference": "s47 enquiry, her brother is 943-476-5919",
    "date": "s47 enquiry, brother born 2016-04-03",
    "postcode": "s47 enquiry, brother lives at ns13ly",
}
# What a purpose may well hold that is none of those.
FINE = (
    "section 47 enquiry, child in need review 14:30 on Monday, call 01632 960 123",
    "CP plan review on 14/12/2026, case 12345678, costs £1,250.50, 09:00-10:30",
    "s47 2nd strategy discussion at 3pm in room B2, ref CIN/2026/0457",
)


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def _rows(app: Signpost, table: type[AccessRequest] | type[RelayMessage]) -> list[object]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(table))).scalars())


async def test_a_purpose_giving_another_childs_details_is_refused_and_kept_nowhere(app: Signpost) -> None:
    """No request row, no notice, and the audit says it was refused without keeping the text. Refused
    from the text alone, before any code is asked or the record read (test_screened_before_code.py);
    the event names the record typed, for the family's report, and nothing of the text."""
    reply = await request_access(app, "P002", SHIELDED, SIBLING)
    assert reply.outcome is Outcome.INVALID, reply.text
    for said in ("reference", "date of birth", "postcode"):
        assert said in reply.text, (said, reply.text)
    for detail in ("943", "5919", "2016", "NS1", "3LY"):
        assert detail not in reply.text
    assert reply.text.endswith(for_any_store(REQUEST_USAGE))  # not the demo store: the form alone
    assert await _rows(app, AccessRequest) == []
    assert await notices(app) == []
    [event] = await audit_events(app, "request_access")
    assert (event.outcome, event.detail, event.subject_refs, event.terms) == (
        "invalid",
        "details refused: purpose",
        SHIELDED,
        None,
    )


@pytest.mark.parametrize("kind", sorted(SLIPS))
async def test_each_kind_of_detail_is_refused_and_named(app: Signpost, kind: str) -> None:
    """The refusal says what the text held, so the writer knows what to leave out."""
    reply = await request_access(app, "P002", SHIELDED, SLIPS[kind])
    assert reply.outcome is Outcome.INVALID, reply.text
    held = reply.text.split(":")[0]
    assert {"reference": "reference", "date": "date", "postcode": "postcode"}[kind] in held, reply.text
    assert await _rows(app, AccessRequest) == []


@pytest.mark.parametrize("purpose", FINE)
async def test_purposes_with_times_phones_and_case_numbers_are_taken(app: Signpost, purpose: str) -> None:
    reply = await request_access(app, "P002", SHIELDED, purpose)
    assert reply.outcome is Outcome.DONE, reply.text


async def test_refusals_for_details_do_not_use_up_the_days_tries(app: Signpost) -> None:
    """The screen reads only the text (never the child's record), so it answers no guess about the
    child and is not counted toward the day's hold: a fourth text is still read, and taken. The
    requested child's own date of birth, postcode and reference are no different (Mia Stone's)."""
    own = ("s47 enquiry, born 30/06/2015", "s47 enquiry at S1 4ZZ", "s47 enquiry re 999 000 0050")
    for purpose in (SIBLING, *own):
        reply = await request_access(app, "P002", SHIELDED, purpose)
        assert reply.outcome is Outcome.INVALID and "perhaps another child's" in reply.text, reply.text
    assert (await request_access(app, "P002", SHIELDED, FINE[0])).outcome is Outcome.DONE


async def test_a_denial_reason_giving_another_childs_details_is_not_sent(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED)
    reply = await decide(app, "DM02", "deny", 1, "sibling 943 476 5919 is already open to us")
    assert reply.outcome is Outcome.INVALID and "reference" in reply.text, reply.text
    assert "5919" not in reply.text
    assert await notices(app, "P002") == []
    [event] = await audit_events(app, "deny")
    assert (event.detail, event.terms) == ("details refused: reason for request 1", None)
    assert (await decide(app, "DM02", "deny", 1, "please ask the lead professional")).outcome is Outcome.DONE


async def test_a_relayed_message_and_its_answer_giving_another_childs_details_are_not_passed_on(
    app: Signpost,
) -> None:
    refused = await fresh_say(app, "P003", f"message {SHIELDED} call me on 01632 960 123, sibling at NS1 3LY")
    assert refused.outcome is Outcome.INVALID and "postcode" in refused.text, refused.text
    assert await _rows(app, RelayMessage) == []
    sent = await fresh_say(app, "P003", f"message {SHIELDED} call me on 01632 960 123 please")
    assert sent.outcome is Outcome.DONE, sent.text
    answer = await fresh_say(app, "S001", "reply 1 yes, and her brother born 03/04/2016 too")
    assert answer.outcome is Outcome.INVALID and "date" in answer.text, answer.text
    assert [n for n in await notices(app, "P003") if n.kind == "relay_answered"] == []
    events = await audit_events(app, "relay_message")
    assert [(e.detail, e.terms) for e in events if e.detail.startswith("details")] == [
        ("details refused: message", None),
        ("details refused: reply", None),
    ]


async def test_a_registration_denial_reason_giving_a_childs_details_is_not_sent(app: Signpost) -> None:
    """A registration's denial reason goes to the account that asked: the same screen holds it."""
    await say(app, Principal(Platform.SLACK, "T0001", "U0009"), "register P003")
    async with app.ctx.db.read() as session:
        [row] = list((await session.execute(select(RegistrationRequest))).scalars())
    reply = await decide(app, "DM01", "deny", f"R{row.id}", "you are not the teacher of 943 476 5919")
    assert reply.outcome is Outcome.INVALID and "reference" in reply.text, reply.text
    assert [n for n in await notices(app) if n.kind == "registration_denied"] == []
