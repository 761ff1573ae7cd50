"""Free text screened for a child's details is screened before Signpost asks for a code, so that what
the refusal promises ("Nothing was passed on or kept") is true whoever asks and however fresh their
last code: nothing of the text is parked for the code, nor sealed in the audit event of the code
asked for (handlers/access/screening.py ``details_first``). A purpose refused for naming the child,
which only the handler can tell once the code is given, is in no audit event either: a command stopped
for a code keeps there only the record it names (``Spec.stopped_terms``); the command parked meanwhile
is sealed under that child's key (tests/handlers/stepup/test_parked_keys.py). Through the dispatcher,
with real codes, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import Outcome, Reply
from store.audit.sar import subject_access
from store.register.refs import make_reference
from store.tables.people import AccessRequest, ParkedCommand
from tests.access_helpers import audit_events, fresh_say, load_access, request_access, step_up
from tests.factories import SHIELDED, say
from tests.stepup_helpers import answer_challenges

# A child's identity as a practitioner might type it into a purpose (synthetic).
TYPED = "section 47 enquiry about Zelphine Quorrington born 07/08/2015 at ZX9 9QQ"
IDENTITY = ("Zelphine", "Quorrington", "07/08/2015", "ZX9", "9QQ")
KEPT_NOTHING = "Nothing was passed on or kept"


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def _opened_terms(app: Signpost) -> list[str]:
    """Every audit event's sealed terms, opened."""
    opened = []
    async with app.ctx.db.read() as session:
        for event in await audit_events(app):
            if event.terms is not None and event.terms_key is not None:
                opened.append(await app.ctx.sealer.open(session, event.terms, event.terms_key) or "")
    return opened


async def _parked(app: Signpost) -> int:
    async with app.ctx.db.read() as session:
        return len(list((await session.execute(select(ParkedCommand.challenge_id))).all()))


async def _kept_nowhere(app: Signpost, words: tuple[str, ...] = IDENTITY) -> None:
    for terms in await _opened_terms(app):
        for word in words:
            assert word.lower() not in terms.lower(), (word, terms)


async def _stale(app: Signpost, who: str, minutes: int) -> None:
    """``who`` has an authenticator, and their last code is ``minutes`` old: a code is asked first."""
    await step_up(app, who)
    app.ctx.clock.advance(minutes=minutes)  # type: ignore[attr-defined]  # tests run on FakeClock


def _refused_before_any_code(reply: Reply) -> None:
    assert reply.challenge is None and reply.outcome is Outcome.INVALID, reply.text
    assert KEPT_NOTHING in reply.text, reply.text


async def test_a_purpose_with_a_date_of_birth_and_postcode_is_refused_before_a_code_and_kept_nowhere(
    app: Signpost,
) -> None:
    await _stale(app, "P002", 70)
    reply = await say(app, "P002", f"request 999 000 0050 {TYPED}")
    _refused_before_any_code(reply)
    assert await _parked(app) == 0
    assert (await answer_challenges(app, "P002", reply)) is reply  # nothing to answer
    await _kept_nowhere(app)
    [event] = await audit_events(app, "request_access")
    assert (event.outcome, event.detail, event.terms) == ("invalid", "details refused: purpose", None)
    async with app.ctx.db.read() as session:
        assert list((await session.execute(select(AccessRequest.id))).all()) == []


async def test_a_denial_reason_with_a_childs_details_is_refused_before_a_code_and_kept_nowhere(
    app: Signpost,
) -> None:
    assert (await request_access(app, "P002", SHIELDED)).outcome is Outcome.DONE
    await _stale(app, "DM02", 6)  # decisions want a code at most 5 minutes old
    reply = await say(app, "DM02", "deny 1 Zelphine Quorrington 07/08/2015 ZX9 9QQ")
    _refused_before_any_code(reply)
    assert await _parked(app) == 0
    await _kept_nowhere(app)
    denied = await audit_events(app, "deny")
    assert [(e.outcome, e.detail, e.terms) for e in denied] == [
        ("invalid", "details refused: reason for request 1", None)
    ]


async def test_a_message_with_a_childs_details_is_not_parked_for_a_code(app: Signpost) -> None:
    await _stale(app, "P003", 70)
    reply = await say(app, "P003", f"message {SHIELDED} call me on 01632 960 123, sibling at ZX9 9QQ")
    _refused_before_any_code(reply)
    assert await _parked(app) == 0


async def test_a_purpose_naming_the_child_refused_after_the_code_is_in_no_audit_event(app: Signpost) -> None:
    """Only the handler can tell a purpose names this child (Mia Stone), once the code is given: the
    code asked for first kept the record the request named in its event, not the purpose."""
    await _stale(app, "P002", 70)
    asked = await say(app, "P002", "request 999 000 0050 section 47 enquiry about Mia Stone")
    assert asked.outcome is Outcome.CHALLENGED, asked.text
    reply = await answer_challenges(app, "P002", asked)
    assert reply.outcome is Outcome.INVALID and "leave out the child's name" in reply.text, reply.text
    await _kept_nowhere(app, ("Mia", "Stone", "enquiry"))
    assert "999 000 0050" in await _opened_terms(app)  # the challenged event still says which record
    assert await _parked(app) == 0


async def test_a_purpose_taken_after_the_code_is_kept_once_with_its_request(app: Signpost) -> None:
    await _stale(app, "P002", 70)
    reply = await fresh_say(app, "P002", "request 999 000 0050 section 47 enquiry, call 01632 960 123")
    assert reply.outcome is Outcome.DONE, reply.text
    # The code asked for first: the record; the request made: its purpose, kept once.
    assert sorted(await _opened_terms(app)) == ["999 000 0050", "section 47 enquiry, call 01632 960 123"]


@pytest.mark.parametrize(
    "command",
    (f"request {SHIELDED} {TYPED}", f"message {SHIELDED} about a sibling, call me on 01632 960 123 at ZX9 9QQ"),
    ids=("request", "message"),
)
async def test_a_text_refused_before_a_code_names_the_typed_record_for_the_familys_report(
    app: Signpost, command: str
) -> None:
    """Refused from the text alone, before any code, the event still names the record the text was
    about, as when the handler refused it: the family's subject access report and the export by
    practitioner show it (the answer did not depend on the record, so naming it tells nothing)."""
    await _stale(app, "P002", 70)
    _refused_before_any_code(await say(app, "P002", command))
    [event] = [e for e in await audit_events(app) if (e.detail or "").startswith("details refused")]
    assert (event.subject_refs, event.terms) == (SHIELDED, None)
    report = await subject_access(app.ctx.db, app.ctx.sealer, int(SHIELDED), app.ctx.clock.now())
    assert [(e.action, e.outcome) for e in report.entries] == [(event.action, "invalid")]


async def test_a_text_refused_before_a_code_names_a_reference_no_child_has(app: Signpost) -> None:
    """A well-formed reference registered nowhere is named all the same: the check reads no register."""
    nobody = str(make_reference(999_000_990))
    _refused_before_any_code(await say(app, "P002", f"request {nobody} {TYPED}"))
    [event] = await audit_events(app, "request_access")
    assert event.subject_refs == nobody
    report = await subject_access(app.ctx.db, app.ctx.sealer, int(nobody), app.ctx.clock.now())
    assert (report.in_register, [e.outcome for e in report.entries]) == (False, ["invalid"])
