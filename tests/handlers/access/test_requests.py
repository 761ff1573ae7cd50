"""Shielded records, access requests, approvals and grants, through the dispatcher on both backends."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Signpost, build
from bot.console.render import render
from bot.slack.render import reply_blocks
from bot.teams.render import render_reply
from handlers.access import jobs as access_jobs
from handlers.access.requests import APPROVE_USAGE, DENY_USAGE, REQUEST_USAGE, UNLINK_USAGE
from handlers.access.screening import CODE_REFUSED, MAX_TEXT
from handlers.clock import FakeClock
from handlers.examples import for_any_store
from handlers.operator import people
from handlers.operator.common import audited
from handlers.vocabulary import Action, Origin, Outcome, Platform, Principal
from store.db import Database
from store.delivery.notices import DECIDED
from store.keys.crypto import KeyRing
from store.people import access as store
from store.people import practitioners
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import AccessGrant, AccessRequest
from tests.access_helpers import (
    audit_count,
    audit_events,
    bodies,
    decide,
    fresh_say,
    load_access,
    notices,
    request_access,
    search_as,
)
from tests.factories import AMY, CHILDREN, SHIELDED, say
from tests.stepup_helpers import code_now, ensure_enrolled


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def test_shielded_search_shows_signposts_only_while_a_grant_is_in_force(app: Signpost, clock: FakeClock) -> None:
    """Shielded before the grant, signposts with it, shielded again once it has expired."""
    before = await search_as(app, "P002", SHIELDED)
    assert before.outcome is Outcome.SHIELDED and before.signposts == ()
    assert [b.action_id for b in before.buttons] == ["request_access", "relay_message"]

    requested = await request_access(app, "P002", SHIELDED)
    assert requested.outcome is Outcome.DONE and "Access request 1" in requested.text
    approved = await decide(app, "DM02", "approve", 1)
    assert approved.outcome is Outcome.DONE

    during = await search_as(app, "P002", SHIELDED)
    assert during.outcome is Outcome.ANSWERED
    assert [s.practitioner_name for s in during.signposts] == ["Lee Hart"]
    other = await search_as(app, "P001", SHIELDED)
    assert other.outcome is Outcome.SHIELDED, "a grant is for its requester only"

    clock.advance(hours=24)
    after = await search_as(app, "P002", SHIELDED)
    assert after.outcome is Outcome.SHIELDED and after.signposts == ()


async def test_demographic_search_of_a_shielded_child_follows_the_grant(app: Signpost) -> None:
    """The same grant opens the name-and-date-of-birth search too."""
    await request_access(app, "P002", SHIELDED)
    await decide(app, "DM02", "approve", 1)
    reply = await search_as(app, "P002", "Mia Stone 30/06/2015")
    assert reply.outcome is Outcome.ANSWERED and reply.signposts


async def test_signposts_under_a_grant_say_in_one_line_the_record_is_shielded_and_when_access_ends(
    app: Signpost,
) -> None:
    """The answer seen with a grant says so, with the expiry the approval gave, on every front end."""
    await request_access(app, "P002", SHIELDED)
    approved = await decide(app, "DM02", "approve", 1, "3d")
    [until] = re.findall(r"until (\d\d/\d\d/\d{4} \d\d:\d\d [A-Z]+)", approved.text)
    line = f"This record is shielded: your access ends at {until}."
    during = await search_as(app, "P002", SHIELDED)
    assert during.outcome is Outcome.ANSWERED and during.signposts
    assert during.lines == (line,)
    assert render(during).count(line) == 1
    assert json.dumps(reply_blocks(during)).count(line) == 1
    assert json.dumps(render_reply(during)).count(line) == 1
    plain_record = await search_as(app, "P002", AMY)
    assert plain_record.outcome is Outcome.ANSWERED and plain_record.lines == (), "only a shielded record says so"


async def test_request_needs_a_purpose(app: Signpost) -> None:
    reply = await request_access(app, "P002", SHIELDED, purpose="")
    assert reply.outcome is Outcome.INVALID and "purpose" in reply.text
    assert await notices(app) == []


async def test_a_purpose_or_reason_too_long_to_keep_is_refused_with_help_and_changes_nothing(app: Signpost) -> None:
    """Free text that would be kept (sealed, shown to a duty manager, sent to the requester) has the
    forms' limit in chat too: over it, the sender is told the limit and nothing is opened or decided."""
    long = "section 47 enquiry " * 60  # 1,140 characters
    assert len(long.strip()) > MAX_TEXT
    too_long = await request_access(app, "P002", SHIELDED, purpose=long)
    assert too_long.outcome is Outcome.INVALID and f"at most {MAX_TEXT:,} characters" in too_long.text
    assert await notices(app) == [] and await _requests(app) == []

    await request_access(app, "P002", SHIELDED)
    denied = await decide(app, "DM02", "deny", 1, "please ask the lead first " * 45)
    assert denied.outcome is Outcome.INVALID and "reason" in denied.text and f"{MAX_TEXT:,}" in denied.text
    assert [row.state for row in await _requests(app)] == [store.PENDING]
    at_limit = await decide(app, "DM02", "deny", 1, "x" * MAX_TEXT)
    assert at_limit.outcome is Outcome.DONE


async def _requests(app: Signpost) -> list[AccessRequest]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(AccessRequest).order_by(AccessRequest.id))).scalars())


async def test_request_accepts_a_spaced_reference_and_the_button_form(app: Signpost) -> None:
    """'request 999 000 0050 …' typed, and 'request 9990000050 …' from the button, both work."""
    typed = await fresh_say(app, "P002", "request 999 000 0050 school admission check")
    assert typed.outcome is Outcome.DONE
    clicked = await fresh_say(app, "P003", "request 9990000050 school admission check", channel="button")
    assert clicked.outcome is Outcome.DONE


async def test_request_for_a_record_that_is_not_shielded_says_to_search(app: Signpost) -> None:
    reply = await request_access(app, "P002", AMY)
    assert reply.outcome is Outcome.INFO and "not shielded" in reply.text
    assert await notices(app) == []


async def test_asking_twice_points_at_the_waiting_request_without_new_notices(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED)
    sent = len(await notices(app))
    again = await request_access(app, "P002", SHIELDED)
    assert again.outcome is Outcome.INFO and "request 1" in again.text
    assert len(await notices(app)) == sent


async def test_request_notice_goes_to_the_first_duty_manager_with_approve_and_deny(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED)
    [notice] = await notices(app)
    assert notice.recipient_id == "DM02"
    assert [(b.action_id, b.command) for b in notice.buttons] == [
        ("approve", "approve 1"),
        ("deny", "deny 1"),
    ]
    deny = notice.buttons[1]
    assert deny.input is not None and deny.input.name == "reason" and not deny.input.required


async def test_duty_managers_see_who_asked_and_how_long_it_has_waited(app: Signpost, clock: FakeClock) -> None:
    """The notice, an escalation and `pending` name the requester (name, role, organisation, authority),
    and the escalation and `pending` say how long the request has waited: nobody decides blind."""
    await request_access(app, "P002", SHIELDED)
    who = "Priya Shah, School nurse, Northshire School Health (Northshire)"
    [first] = await notices(app)
    assert f"from {who} needs a decision" in first.text
    clock.advance(minutes=30)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 1
    escalated = [n for n in await notices(app) if n.text.startswith("Escalated")]
    assert len(escalated) == 1 and f"from {who} is still waiting for a decision after 30 min" in escalated[0].text
    clock.advance(minutes=95)
    pending = await decide(app, "DM03", "pending", "")
    assert pending.outcome is Outcome.INFO
    [line] = [line for line in pending.lines if line.startswith("• 1:")]
    assert f"from {who}, asked " in line and "waiting 2 h 5 min; purpose: " in line


async def test_nobody_approves_their_own_request(app: Signpost) -> None:
    """A duty manager asking for access cannot decide it; the next one on the list can."""
    await request_access(app, "DM02", SHIELDED)
    [notice] = await notices(app)
    assert notice.recipient_id == "DM03", "the requester is left off the list"
    own = await decide(app, "DM02", "approve", 1)
    assert own.outcome is Outcome.REFUSED and "own" in own.text
    assert (await decide(app, "DM03", "approve", 1)).outcome is Outcome.DONE


async def test_duty_manager_of_another_authority_cannot_decide(app: Signpost) -> None:
    """Refused in the words said for a request that does not exist: another authority's duty
    manager learns neither that it exists nor how many there are (a tester read the difference)."""
    await request_access(app, "P002", SHIELDED)
    none = await decide(app, "DM01", "approve", 2)
    assert none.outcome is Outcome.INVALID
    for verb in ("approve", "deny"):
        reply = await decide(app, "DM01", verb, 1)
        assert reply.outcome is Outcome.REFUSED and reply.text == none.text.replace("2", "1")
    async with app.ctx.db.read() as session:
        row = await store.get_request(session, app.ctx.keys, 1)
    assert row is not None and row.state == store.PENDING


async def test_second_decision_changes_nothing_and_is_told_so(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED)
    assert (await decide(app, "DM02", "approve", 1)).outcome is Outcome.DONE
    late = await decide(app, "DM03", "deny", 1, "not needed")
    assert late.outcome is Outcome.REFUSED and "already approved by DM02" in late.text
    again = await decide(app, "DM02", "approve", 1)
    assert again.outcome is Outcome.REFUSED
    assert (await search_as(app, "P002", SHIELDED)).outcome is Outcome.ANSWERED
    assert [n.kind for n in await notices(app, "P002")] == ["access_approved"]


async def test_decision_after_the_request_expired_changes_nothing(app: Signpost, clock: FakeClock) -> None:
    await request_access(app, "P002", SHIELDED)
    clock.advance(hours=24, seconds=1)
    reply = await decide(app, "DM02", "approve", 1)
    assert reply.outcome is Outcome.REFUSED and "expired" in reply.text
    assert (await search_as(app, "P002", SHIELDED)).outcome is Outcome.SHIELDED


async def test_a_decision_on_a_leavers_request_says_they_left_not_that_it_expired(app: Signpost) -> None:
    """Priya (P002) asks, then leaves (`signpost practitioner leave P002`), which closes her request
    undecided: the duty manager's Approve was told it "expired before anyone decided it … the
    requester can ask again", which a leaver cannot. It says she left, and changes nothing."""
    await request_access(app, "P002", SHIELDED)
    async with audited(app.ctx, "operator", Action.PRACTITIONER_LEAVE) as audit:
        assert (await people.leave(app.ctx, audit, "P002")).changed
    reply = await decide(app, "DM02", "approve", 1)
    assert (reply.outcome, reply.text) == (
        Outcome.REFUSED,
        "Request 1 was closed undecided when P002 left their post. Nothing changed.",
    )
    [event] = await audit_events(app, "approve")
    assert (event.outcome, event.detail) == ("refused", "request 1 closed: P002 has left")
    async with app.ctx.db.read() as session:
        assert [g.id for g in (await session.execute(select(AccessGrant))).scalars()] == []


async def test_approver_chooses_the_grant_length_up_to_seven_days(app: Signpost, clock: FakeClock) -> None:
    await request_access(app, "P002", SHIELDED)
    too_long = await decide(app, "DM02", "approve", 1, "8d")
    assert too_long.outcome is Outcome.INVALID and "7 days" in too_long.text
    assert (await decide(app, "DM02", "approve", 1, "3d")).outcome is Outcome.DONE
    clock.advance(days=2, hours=23)
    assert (await search_as(app, "P002", SHIELDED)).outcome is Outcome.ANSWERED
    clock.advance(hours=1)
    assert (await search_as(app, "P002", SHIELDED)).outcome is Outcome.SHIELDED


async def test_requester_is_told_privately_of_approval_and_of_denial_with_the_reason(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED)
    await request_access(app, "P003", SHIELDED)
    await decide(app, "DM02", "approve", 1)
    denied = await decide(app, "DM02", "deny", 2, "please ask the lead professional first")
    assert denied.outcome is Outcome.DONE
    [approved] = await notices(app, "P002")
    assert approved.kind == "access_approved" and "approved" in approved.text
    [refused] = await notices(app, "P003")
    assert refused.kind == "access_denied" and "please ask the lead professional first" in refused.text


async def test_a_denial_reason_naming_the_child_is_refused(app: Signpost) -> None:
    """The reason is sent as a notice, so it may not carry the child's name, birth date or postcode."""
    await request_access(app, "P002", SHIELDED)
    for reason in ("Mia is known to us", "born 30 June", "the Stone family"):
        reply = await decide(app, "DM02", "deny", 1, reason)
        assert reply.outcome is Outcome.INVALID, reason
    async with app.ctx.db.read() as session:
        row = await store.get_request(session, app.ctx.keys, 1)
    assert row is not None and row.state == store.PENDING
    assert await notices(app, "P002") == []
    refusals = [e for e in await audit_events(app, "deny")]
    assert [(e.outcome, e.detail, e.subject_refs) for e in refusals] == [
        ("invalid", "identity refused: reason for request 1", SHIELDED)
    ] * 3


async def test_a_denial_reason_with_the_child_in_any_spelling_is_refused_kindly(app: Signpost) -> None:
    """Month names, ordinals, accents: none goes out, and the refusal says what to leave out (every
    spelling the filter knows is in tests/handlers/test_privacy.py; refusals are limited to 3 a day)."""
    await request_access(app, "P002", SHIELDED)
    for reason in ("30th of June", "June the 30th", "a sibling of Stóne"):
        reply = await decide(app, "DM02", "deny", 1, reason)
        assert reply.outcome is Outcome.INVALID, reason
        assert "please leave out the child's name, date of birth, postcode and reference" in reply.text, reason
    async with app.ctx.db.read() as session:
        row = await store.get_request(session, app.ctx.keys, 1)
    assert row is not None and row.state == store.PENDING
    assert await notices(app, "P002") == []
    fine = await decide(app, "DM03", "deny", 1, "please ask the lead professional after 30 July")
    assert fine.outcome is Outcome.DONE
    [denied] = await notices(app, "P002")
    assert "please ask the lead professional after 30 July" in denied.text


# The shielded child's reference (999 000 0050) as a person might type it into free text.
REFERENCE_SLIPS = (
    "record 999 000 0050 is held by the Zedshire refuge team",
    "see 999-000-0050 and 999.000.0050",
    "9 9 9 0 0 0 0 0 5 0 is held elsewhere",
)


async def test_a_denial_reason_giving_the_childs_reference_is_refused_and_a_phone_number_is_not(
    app: Signpost,
) -> None:
    """Whoever found a shielded record by name and date of birth is never told its reference
    (handlers/access/found.py), so a reason giving it in any spelling is refused: nothing sent, nothing
    stored in a notice. A phone number is no reference and goes out as written."""
    await request_access(app, "P002", SHIELDED)
    for reason in REFERENCE_SLIPS:
        reply = await decide(app, "DM02", "deny", 1, reason)
        assert reply.outcome is Outcome.INVALID, reason
        assert "reference" in reply.text, reason
    assert await notices(app, "P002") == []
    refusals = await audit_events(app, "deny")
    # refused as any child's reference is, uncounted, so the answer answers no guess
    assert [(e.outcome, e.detail) for e in refusals] == [("invalid", "details refused: reason for request 1")] * 3
    fine = await decide(app, "DM03", "deny", 1, "please call the refuge team on 01632 960 001")
    assert fine.outcome is Outcome.DONE
    [denied] = await notices(app, "P002")
    assert "01632 960 001" in denied.text


async def test_a_purpose_giving_the_childs_reference_is_refused_and_kept_nowhere(app: Signpost) -> None:
    """The reference goes before the purpose; a purpose that repeats it is refused, one with a phone
    number is taken."""
    for slip in REFERENCE_SLIPS:
        reply = await request_access(app, "P002", SHIELDED, f"section 47 enquiry, {slip}")
        assert reply.outcome is Outcome.INVALID, slip
        assert "reference" in reply.text and reply.text.endswith(for_any_store(REQUEST_USAGE)), slip
    async with app.ctx.db.read() as session:
        assert (await session.execute(select(AccessRequest))).scalars().all() == []
    assert await notices(app) == []
    taken = await request_access(app, "P003", SHIELDED, "section 47 enquiry, call me on 01632 960 001")
    assert taken.outcome is Outcome.DONE


async def test_after_three_refused_reasons_any_reason_gets_the_same_answer_and_deny_without_one_works(
    app: Signpost,
) -> None:
    """A duty manager cannot use the reason filter as an oracle: after 3 refusals about the child in
    24 hours a right guess and a wrong one are answered alike, unread; denying without a reason still works."""
    await request_access(app, "P002", SHIELDED)
    for reason in ("Mia is known to us", "born 30 June", "the Stone family"):
        assert (await decide(app, "DM02", "deny", 1, reason)).outcome is Outcome.INVALID
    right = await decide(app, "DM02", "deny", 1, "sibling of Stone")
    wrong = await decide(app, "DM02", "deny", 1, "sibling of Price")
    assert (right.outcome, right.text) == (wrong.outcome, wrong.text)
    assert right.outcome is Outcome.REFUSED and "deny it without a reason: deny 1" in right.text
    assert await notices(app, "P002") == []
    denied = await decide(app, "DM02", "deny", 1)
    assert denied.outcome is Outcome.DONE
    [told] = await notices(app, "P002")
    assert "No reason was given" in told.text


async def test_a_purpose_naming_the_child_is_refused_kindly_and_kept_nowhere(app: Signpost) -> None:
    """The purpose is shown to duty managers and quoted in subject-access reports, so a purpose that
    names the child is refused with what to leave out: no request, no notice, no sealed terms."""
    for slip in ("re Mia Stone", "dob 30.06", "the Stone family"):
        reply = await request_access(app, "P002", SHIELDED, f"section 47 enquiry {slip}")
        assert reply.outcome is Outcome.INVALID, slip
        assert "please leave out the child's name, date of birth, postcode and reference" in reply.text
        assert reply.text.endswith(for_any_store(REQUEST_USAGE))
    async with app.ctx.db.read() as session:
        assert (await session.execute(select(AccessRequest))).scalars().all() == []
    assert await notices(app) == []
    events = await audit_events(app, "request_access")
    assert [(e.outcome, e.detail, e.subject_refs, e.terms) for e in events] == [
        ("invalid", "identity refused: purpose", SHIELDED, None)
    ] * 3


async def test_after_three_refused_purposes_any_purpose_gets_the_same_answer(app: Signpost, clock: FakeClock) -> None:
    """Bounded like the relay: a 4th purpose about the child that day is refused unread, right guess or not."""
    for slip in ("re Mia", "dob 30/06", "the Stone family"):
        assert (await request_access(app, "P002", SHIELDED, f"section 47 {slip}")).outcome is Outcome.INVALID
    right = await request_access(app, "P002", SHIELDED, "section 47 re Stone family")
    wrong = await request_access(app, "P002", SHIELDED, "section 47 re Price family")
    clean = await request_access(app, "P002", SHIELDED, "section 47 enquiry")
    assert (right.outcome, right.text) == (wrong.outcome, wrong.text) == (clean.outcome, clean.text)
    assert right.outcome is Outcome.REFUSED and "contact your duty manager" in right.text
    assert await notices(app) == []
    clock.advance(hours=25)
    assert (await request_access(app, "P002", SHIELDED, "section 47 enquiry")).outcome is Outcome.DONE


async def test_refusals_about_one_child_are_counted_across_commands(app: Signpost) -> None:
    """Two refused relay messages and one refused purpose use up the day's checks for every command."""
    for slip in ("re Mia", "dob 30/06"):
        assert (await fresh_say(app, "P002", f"message {SHIELDED} s47, call 0161 496 0002 {slip}")).outcome is (
            Outcome.INVALID
        )
    assert (await request_access(app, "P002", SHIELDED, "s47 re the Stone family")).outcome is Outcome.INVALID
    request = await request_access(app, "P002", SHIELDED, "section 47 enquiry")
    message = await fresh_say(app, "P002", f"message {SHIELDED} section 47, please call me on 0161 496 0002")
    assert (request.outcome, message.outcome) == (Outcome.REFUSED, Outcome.REFUSED)
    other_child = await request_access(app, "P002", AMY, "section 47 enquiry")
    assert other_child.outcome is Outcome.INFO, "an open record is not shielded: only its own answer"


async def test_concurrent_guesses_cannot_be_screened_past_the_limit(app: Signpost, second: Signpost) -> None:
    """Eight guesses at once through two replicas: exactly three are screened (the practitioner's row is
    held while the count stands, until the refusal's event is written), the rest get the limit's answer."""
    await request_access(app, "P002", AMY, "step up first")  # fresh for step-up, nothing counted
    guesses = [f"request {SHIELDED} section 47 re Mia {n}" for n in range(8)]
    replies = await asyncio.gather(*(say((app, second)[n % 2], "P002", text) for n, text in enumerate(guesses)))
    assert sorted(r.outcome.value for r in replies) == ["invalid"] * 3 + ["refused"] * 5, replies


async def test_pending_lists_own_authority_requests_with_their_purpose(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED, "child protection enquiry")
    mine = await fresh_say(app, "DM02", "pending")
    assert mine.outcome is Outcome.INFO
    assert any("child protection enquiry" in line and "999 000 0050" in line for line in mine.lines)
    assert [b.command for b in mine.buttons] == ["approve 1", "deny 1"]
    other = await fresh_say(app, "DM01", "pending")
    assert other.outcome is Outcome.INFO and other.lines == ()


async def test_home_counts_the_requests_waiting_for_this_duty_manager_and_names_no_child(
    app: Signpost, clock: FakeClock
) -> None:
    """Even with a fresh code: how many wait and to send 'pending' (which lists them with Approve and
    Deny), no reference, purpose or button (tests/handlers/test_home.py); another authority's duty
    manager counts none."""
    await request_access(app, "P002", SHIELDED, "child protection enquiry")
    clock.advance(minutes=42)
    await fresh_say(app, "DM02", "history")  # a fresh code: home still names no child
    home = await say(app, "DM02", "home")
    assert home.outcome is Outcome.INFO
    assert "Requests waiting for your decision: 1" in home.lines
    assert "1 access request waits: send 'pending' to see it (Signpost asks for a code first)." in home.lines
    assert home.buttons == ()
    shown = " ".join(home.lines)
    for private in ("999 000 0050", "9990000050", "child protection enquiry", "Mia", "Stone", "30/06/2015", "S1 4ZZ"):
        assert private not in shown
    other = await say(app, "DM01", "home")
    assert "Requests waiting for your decision: 0" in other.lines and other.buttons == ()
    await decide(app, "DM02", "approve", 1)
    assert "Requests waiting for your decision: 0" in (await say(app, "DM03", "home")).lines


ROLE_CASES = [
    ("P002", "pending"),
    ("P002", "approve 1"),
    ("P002", "deny 1"),
    ("DM01", "unlink P001"),
    ("P001", "unlink P001 slack"),
    ("nobody", "request 9990000050 child protection"),
]


@pytest.mark.parametrize(("who", "text"), ROLE_CASES)
async def test_every_command_is_refused_without_its_role_and_the_refusal_audited_once(
    app: Signpost, who: str, text: str
) -> None:
    await request_access(app, "P003", SHIELDED)
    before = await audit_count(app)
    reply = await say(app, who, text)
    assert reply.outcome is Outcome.REFUSED
    events = await audit_events(app)
    assert len(events) == before + 1
    assert events[-1].outcome == "refused"


async def test_every_decision_and_refusal_is_audited_exactly_once(app: Signpost) -> None:
    # Everyone sets up their authenticator (and steps up) first, as they would before their first
    # search; the clock then stands still, so every code stays fresh (decisions: under 5 minutes)
    # and each command below adds exactly its own event, with no challenge or code event between.
    for who in ("P002", "P003", "DM01", "DM02", "DM03"):
        await ensure_enrolled(app, who)
    steps = [
        ("P002", f"request {SHIELDED} child protection", "request_access", "done", SHIELDED),
        ("DM01", "approve 1", "approve", "refused", SHIELDED),
        ("P002", "approve 1", "approve", "refused", ""),  # refused by role: before the request is read
        ("DM02", "deny 1 Mia", "deny", "invalid", SHIELDED),
        ("P003", f"request {SHIELDED} re Mia", "request_access", "invalid", SHIELDED),
        ("DM02", "approve 1", "approve", "done", SHIELDED),
        ("DM03", "deny 1", "deny", "refused", SHIELDED),
    ]
    for who, text, action, outcome, subjects in steps:
        before = await audit_count(app)
        if text.startswith(("approve", "deny")):
            verb, _, rest = text.partition(" ")
            reply = await decide(app, who, verb, *rest.split(" "))
        else:
            reply = await say(app, who, text)
        assert reply.challenge is None, text
        events = await audit_events(app)
        assert len(events) == before + 1, text
        assert (events[-1].action, events[-1].outcome, events[-1].actor_id) == (action, outcome, who)
        assert events[-1].subject_refs == subjects


async def test_unlink_in_chat_is_for_admins_and_removes_the_link(app: Signpost) -> None:
    from handlers.vocabulary import Platform, Principal

    slack = Principal(Platform.SLACK, "T1", "U1")
    await say(app, slack, "register P001")
    await decide(app, "DM01", "approve", "R1")
    # P001 enrols (console) and steps up: step-up is per practitioner, so the Slack account is fresh.
    await ensure_enrolled(app, "P001")
    assert (await say(app, slack, f"request {AMY} check")).outcome is Outcome.INFO
    refused = await fresh_say(app, "P001", "unlink P001 slack")
    assert refused.outcome is Outcome.REFUSED, "only admins unlink"
    assert (await say(app, slack, f"request {AMY} check")).outcome is Outcome.INFO, "still linked"
    done = await fresh_say(app, "AD01", "unlink P001 slack")
    assert done.outcome is Outcome.DONE
    assert (await say(app, slack, f"request {SHIELDED} x-check")).outcome is Outcome.REFUSED
    # Nothing left to unlink: the answer says where it looked ("there" named no place without a platform).
    again = await fresh_say(app, "AD01", "unlink P001")
    assert (again.outcome, again.text) == (Outcome.INFO, "P001 has no linked account on any platform.")
    again = await fresh_say(app, "AD01", "unlink P001 teams")
    assert (again.outcome, again.text) == (Outcome.INFO, "P001 has no linked account on Teams.")


async def test_unlink_of_a_practitioner_not_in_the_register_says_so(app: Signpost) -> None:
    """In chat, unlinking an unknown id answered "NOBODY1 has no linked account on any platform.",
    as if it were a practitioner with nothing linked; `signpost practitioner unlink` says there is
    no such practitioner, and so does the chat now (audited, nothing changed)."""
    reply = await fresh_say(app, "AD01", "unlink NOBODY1 slack")
    assert (reply.outcome, reply.text) == (Outcome.INVALID, "There is no practitioner with that id in the register.")
    event = (await audit_events(app, "unlink"))[-1]
    assert (event.actor_id, event.outcome, event.detail) == ("AD01", "invalid", "no such practitioner")


async def test_a_decided_request_s_undelivered_notices_are_dropped_and_nobody_else_is_asked(
    app: Signpost, clock: FakeClock
) -> None:
    """A request escalated to a second duty manager, then decided by the first (who read it with
    `pending`) before either notice went out: the notices asking for a decision were still
    delivered, with Approve / Deny, for a request nobody could decide any more. Now they are
    dropped, recorded as decided; the requester's answer still goes."""
    await request_access(app, "P002", SHIELDED)
    clock.advance(minutes=30)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 1
    assert (await decide(app, "DM02", "approve", "1")).outcome is Outcome.DONE
    async with app.ctx.db.read() as session:
        rows = list((await session.execute(select(NoticeRow).order_by(NoticeRow.id))).scalars())
    asking = [(r.recipient_id, r.dropped_at is not None, r.last_error) for r in rows if r.kind == "access_request"]
    assert asking == [("DM02", True, DECIDED), ("DM03", True, DECIDED)]
    told = [r for r in rows if r.kind == "access_approved"]
    assert [(r.recipient_id, r.dropped_at) for r in told] == [("P002", None)]


async def test_undecided_request_escalates_down_the_list_then_to_admins_then_expires(
    app: Signpost, clock: FakeClock
) -> None:
    """30 minutes undecided: the next duty manager; then the admins; 24 hours: expired, requester told."""
    start = clock.now()
    await request_access(app, "P002", SHIELDED)
    assert [n.recipient_id for n in await notices(app)] == ["DM02"]
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 0, "not yet due"

    clock.advance(minutes=30)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 1
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 0, "one step per period"
    clock.advance(minutes=30)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 1
    clock.advance(minutes=30)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 0, "nobody after the admins"
    recipients = [n.recipient_id for n in await notices(app) if n.kind == "access_request"]
    assert recipients == ["DM02", "DM03", "AD01"]
    assert all("Escalated" in n.text for n in (await notices(app))[1:])

    clock.set(start + timedelta(hours=23, minutes=59))
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 0
    clock.advance(minutes=1)
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 1
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 0
    [told] = await notices(app, "P002")
    assert told.kind == "access_expired"
    assert [e.action for e in await audit_events(app) if e.platform == Origin.SCHEDULER] == [
        "request_escalated",
        "request_escalated",
        "request_expired",
    ]
    late = await decide(app, "DM03", "approve", 1)
    assert late.outcome is Outcome.REFUSED and "expired" in late.text


async def test_grant_expiry_is_marked_audited_and_told_once(app: Signpost, clock: FakeClock) -> None:
    await request_access(app, "P002", SHIELDED)
    await decide(app, "DM02", "approve", 1, "2h")
    clock.advance(hours=1)
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 0
    clock.advance(hours=1)
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 1
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 0
    assert [n.kind for n in await notices(app, "P002")] == ["access_approved", "grant_expired"]
    [event] = await audit_events(app, "grant_expired")
    assert event.subject_refs == SHIELDED and event.outcome == "done"
    assert (await search_as(app, "P002", SHIELDED)).outcome is Outcome.SHIELDED


async def test_no_child_identity_in_any_notice_body(app: Signpost, clock: FakeClock) -> None:
    """Requests, escalations, decisions and expiries: only ids and references leave as notices."""
    slipped = await request_access(app, "P002", SHIELDED, "Mia Stone 30/06/2015 S1 4ZZ needs checking")
    assert slipped.outcome is Outcome.INVALID, "a purpose naming the child is refused before any notice"
    await request_access(app, "P002", SHIELDED, "section 47 enquiry")
    await request_access(app, "P003", SHIELDED, "child protection")
    clock.advance(minutes=30)
    await access_jobs.escalate_requests(app.ctx, clock.now())
    await decide(app, "DM02", "approve", 1, "1h")
    await decide(app, "DM03", "deny", 2, "ask the lead professional")
    clock.advance(hours=2)
    await access_jobs.expire_grants(app.ctx, clock.now())
    await request_access(app, "P001", SHIELDED, "health check")
    clock.advance(hours=25)
    await access_jobs.expire_requests(app.ctx, clock.now())

    texts = bodies(await notices(app))
    assert {n.kind for n in await notices(app)} >= {
        "access_request",
        "access_approved",
        "access_denied",
        "grant_expired",
        "access_expired",
    }
    forbidden = _identity_strings()
    for text in texts:
        for word in forbidden:
            assert word.casefold() not in text.casefold(), (word, text)


def _identity_strings() -> set[str]:
    """Every synthetic child's names, dates of birth (three spellings) and postcode."""
    found: set[str] = set()
    for line in CHILDREN.strip().splitlines()[1:]:
        _, given, family, aliases, dob, _, postcode, _, _ = line.split(",")
        found.update(w for w in f"{given} {family} {aliases.replace(';', ' ')}".split() if w)
        y, m, d = dob.split("-")
        found.update({dob, f"{d}/{m}/{y}", f"{d}.{m}.{y}"})
        if postcode:
            found.add(postcode)
    return found


@pytest.fixture
async def second(db_url: str, keys: KeyRing, clock: FakeClock) -> AsyncIterator[Signpost]:
    """Another replica: its own engine and dispatcher on the same database."""
    db = Database.connect(db_url)
    other = build(db, keys, clock)
    yield other
    await other.close()


async def test_concurrent_approve_and_deny_have_exactly_one_outcome(app: Signpost, second: Signpost) -> None:
    """Two replicas decide the same request at the same moment: one wins, the other is told."""
    for requester in ("P001", "P002", "P003", "S001", "DM01"):
        await request_access(app, requester, SHIELDED, "child protection enquiry")
        rid = (await _latest_request(app)).id
        approve, deny = await asyncio.gather(
            decide(app, "DM02", "approve", rid), decide(second, "DM03", "deny", rid, "not needed")
        )
        outcomes = sorted([approve.outcome.value, deny.outcome.value])
        assert outcomes == ["done", "refused"], (approve, deny)
        row = await _latest_request(app)
        winner = store.APPROVED if approve.outcome is Outcome.DONE else store.DENIED
        assert row.state == winner
        async with app.ctx.db.read() as session:
            grants = (await session.execute(select(AccessGrant).where(AccessGrant.request_id == rid))).all()
        assert len(grants) == (1 if winner == store.APPROVED else 0)
        told = [n for n in await notices(app, row.requester_id) if f"request {rid} " in n.text]
        assert len(told) == 1
        decisions = [
            e
            for e in await audit_events(app)
            if e.action in ("approve", "deny") and f"request {rid} " in e.detail + " "
        ]
        assert sorted(e.outcome for e in decisions) == ["done", "refused"]


async def _latest_request(app: Signpost) -> AccessRequest:
    async with app.ctx.db.read() as session:
        row = (await session.execute(select(AccessRequest).order_by(AccessRequest.id.desc()).limit(1))).scalar_one()
    return row


async def test_two_replicas_running_the_jobs_at_once_change_and_tell_everything_once(
    app: Signpost, second: Signpost, clock: FakeClock
) -> None:
    await request_access(app, "P002", SHIELDED)
    await decide(app, "DM02", "approve", 1, "1h")
    await request_access(app, "P003", SHIELDED)
    clock.advance(minutes=30)
    escalated = await asyncio.gather(
        access_jobs.escalate_requests(app.ctx, clock.now()),
        access_jobs.escalate_requests(second.ctx, clock.now()),
    )
    clock.advance(hours=1)
    expired = await asyncio.gather(
        access_jobs.expire_grants(app.ctx, clock.now()), access_jobs.expire_grants(second.ctx, clock.now())
    )
    assert sum(escalated) == 1 and sum(expired) == 1
    assert len(await audit_events(app, "grant_expired")) == 1
    assert len(await audit_events(app, "request_escalated")) == 1
    assert [n.kind for n in await notices(app, "P002")] == ["access_approved", "grant_expired"]
    assert [n.recipient_id for n in await notices(app) if n.kind == "access_request"] == [
        "DM02",
        "DM02",
        "DM03",
    ]


NOT_A_REQUEST_ID = "Please give the request id, e.g. 12 (or R4 for a registration)."


@pytest.mark.parametrize(
    ("typed", "usage"),
    [
        ("approve 9223372036854775808", APPROVE_USAGE),
        ("approve R9223372036854775808", APPROVE_USAGE),
        ("approve " + "9" * 3980 + " 3d", APPROVE_USAGE),  # near the longest a command may be (4,000)
        ("deny 9223372036854775808 please ask the lead professional first", DENY_USAGE),
        ("deny r" + "1" * 40, DENY_USAGE),
        ("deny \u00b9\u00b2", DENY_USAGE),
        ("approve R", APPROVE_USAGE),
    ],
)
async def test_a_request_id_no_database_can_hold_gets_the_usage(app: Signpost, typed: str, usage: str) -> None:
    """Access and registration request ids are read by the one strict number parser, up to 2**63 - 1:
    anything larger is the command's usage, audited once, never a database error."""
    reply = await fresh_say(app, "DM02", typed)
    assert (reply.outcome, reply.text) == (Outcome.INVALID, f"{NOT_A_REQUEST_ID}\n\n{usage}")
    event = (await audit_events(app, typed.split()[0]))[-1]
    assert (event.actor_id, event.outcome, event.detail) == ("DM02", "invalid", "usage")


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        ("approve 9223372036854775807", "There is no access request 9223372036854775807 for you to decide."),
        ("deny 0009223372036854775807 no", "There is no access request 9223372036854775807 for you to decide."),
    ],
)
async def test_the_largest_request_id_is_looked_up(app: Signpost, typed: str, answer: str) -> None:
    """2**63 - 1 fits both databases' id columns, so it is looked up (it was refused past 12 digits)."""
    reply = await fresh_say(app, "DM02", typed)
    assert (reply.outcome, reply.text) == (Outcome.INVALID, answer)


@pytest.mark.parametrize("typed", ["P" * 65, "P" * 3_900])  # a command may be 4,000 characters
async def test_unlink_of_an_id_longer_than_any_practitioner_s_is_its_usage_not_said_back(
    app: Signpost, typed: str
) -> None:
    """`unlink` answered "PPPP… has no linked account there." with all 10,000 letters (a command may now
    hold 4,000); an id longer than the register's 64 characters is now the usage, and nothing typed
    is repeated."""
    reply = await fresh_say(app, "AD01", f"unlink {typed} slack")
    assert (reply.outcome, reply.text) == (
        Outcome.INVALID,
        f"Please give the practitioner id.\n\n{for_any_store(UNLINK_USAGE)}",
    )
    event = (await audit_events(app, "unlink"))[-1]
    assert (event.actor_id, event.outcome, event.detail) == ("AD01", "invalid", "usage")


async def test_pending_leaves_out_a_duty_managers_own_request_as_home_does(app: Signpost) -> None:
    """Nobody decides their own request: `pending` listed it with Approve and Deny that could only
    refuse, while the Home tab left it out. Another duty manager of the authority sees it."""
    await request_access(app, "DM02", SHIELDED, "child protection enquiry")
    own = await fresh_say(app, "DM02", "pending")
    assert (own.outcome, own.text) == (Outcome.INFO, "Nothing is waiting for a decision.")
    assert (own.lines, own.buttons) == ((), ())
    other = await fresh_say(app, "DM03", "pending")
    assert [b.command for b in other.buttons] == ["approve 1", "deny 1"]


async def test_a_purpose_holding_the_requesters_current_code_is_refused_and_never_pending(app: Signpost) -> None:
    """An access request's purpose is shown to the duty managers in 'pending': the code the requester's
    app shows now (however grouped) is refused with it, and no request is made."""
    authenticator = await ensure_enrolled(app, "P002")
    code = code_now(app, authenticator)
    for purpose in (f"section 47, verification {code}", f"s47 code {code[:3]} {code[3:]}"):
        reply = await request_access(app, "P002", SHIELDED, purpose)
        assert reply.outcome is Outcome.INVALID and reply.text.startswith(CODE_REFUSED), reply.text
        assert code not in reply.text and reply.text.endswith(for_any_store(REQUEST_USAGE))
    assert await notices(app) == []
    waiting = await fresh_say(app, "DM02", "pending")
    assert waiting.lines == () and code not in repr(waiting)
    events = [e for e in await audit_events(app, "request_access") if e.actor_id == "P002"]
    assert [(e.outcome, e.detail) for e in events] == [("invalid", "code refused: purpose")] * 2


async def test_a_denial_reason_holding_the_deciders_current_code_is_refused(app: Signpost) -> None:
    """A denial reason goes to the requester: the duty manager's own code may not go with it. The
    refusal is not counted toward the day's hold (it says nothing of the child)."""
    await request_access(app, "P002", SHIELDED)
    authenticator = await ensure_enrolled(app, "DM02")
    code = code_now(app, authenticator)
    reply = await decide(app, "DM02", "deny", 1, f"not enough detail {code}")
    assert reply.outcome is Outcome.INVALID and reply.text.startswith(CODE_REFUSED), reply.text
    assert code not in reply.text and await notices(app, "P002") == []
    slip = await decide(app, "DM02", "deny", 1, "Mia is known to us")
    assert "2 more tries today" in slip.text, slip.text
    denied = await decide(app, "DM02", "deny", 1, "please ask the lead professional first")
    assert denied.outcome is Outcome.DONE


async def test_an_approval_from_a_chat_account_linked_after_the_managers_code_asks_for_its_own(
    app: Signpost, clock: FakeClock
) -> None:
    """A tester's report: a duty manager typed a code at the console; a Slack account linked to them
    seconds later approved a request with no code of its own. It is asked for one, and nothing is
    decided until it is given."""
    await request_access(app, "P002", SHIELDED)
    authenticator = await ensure_enrolled(app, "DM02")  # a code at the console, now
    slack = Principal(Platform.SLACK, "T1", "U-newly-linked")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, "DM02", clock.now() + timedelta(seconds=1))
    clock.advance(seconds=30)
    asked = await say(app, slack, "approve 1")
    assert asked.outcome is Outcome.CHALLENGED and asked.challenge is not None, asked
    async with app.ctx.db.read() as session:
        assert (await session.execute(select(AccessGrant))).first() is None
    decided = await say(
        app, slack, "code", code=code_now(app, authenticator), challenge_id=asked.challenge.challenge_id
    )
    assert decided.outcome is Outcome.DONE and "approved" in decided.text, decided
    async with app.ctx.db.read() as session:
        assert len((await session.execute(select(AccessGrant))).all()) == 1
