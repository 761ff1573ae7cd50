"""A shielded record found by name and date of birth: its reference reaches nothing the searching
practitioner receives (the reply, its buttons as every front end renders them, the request's
confirmation, the outcome notices, history, the relay's replies), through the real dispatcher on
both backends. The buttons carry a handle bound to the search, its asker and a day."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from bot.app import Signpost
from bot.console.render import render
from bot.slack.render import reply_blocks
from bot.teams.render import render_reply
from handlers.access import jobs
from handlers.clock import FakeClock
from handlers.vocabulary import Button, Outcome, Reply, format_ref
from tests.access_helpers import audit_events, decide, fresh_say, load_access, notices, search_as
from tests.factories import SHIELDED, say

BY_NAME = "Mia Stone 30/06/2015"  # the shielded child's name and date of birth, no reference
TYPED = f"request {SHIELDED} section 47 enquiry"


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


def everything(reply: Reply) -> str:
    """All the practitioner receives of a reply: the model and each front end's rendering."""
    model = replace(reply, audited=None)  # the event it answers for: handed back by a front end, never shown
    shown = [json.dumps(asdict(model), default=str), render(reply), json.dumps(reply_blocks(reply), default=str)]
    shown.append(json.dumps(render_reply(reply), default=str))
    return "\n".join(shown)


def reveals_the_reference(text: str) -> bool:
    return SHIELDED in text or format_ref(SHIELDED) in text or SHIELDED in text.replace(" ", "")


async def received(app: Signpost, who: str) -> str:
    """Every notice stored for ``who``: texts and buttons."""
    return json.dumps([asdict(notice) for notice in await notices(app, who)], default=str)


def button(reply: Reply, action_id: str) -> Button:
    return next(b for b in reply.buttons if b.action_id == action_id)


async def test_the_buttons_of_a_shielded_search_carry_no_reference(app: Signpost) -> None:
    found = await search_as(app, "P002", BY_NAME)
    assert found.outcome is Outcome.SHIELDED
    assert [b.action_id for b in found.buttons] == ["request_access", "relay_message"]
    assert not reveals_the_reference(everything(found))


async def test_search_request_approve_outcome_and_history_never_show_the_reference(
    app: Signpost, clock: FakeClock
) -> None:
    found = await search_as(app, "P002", BY_NAME)
    asked = await fresh_say(app, "P002", f"{button(found, 'request_access').command} section 47 enquiry")
    assert asked.outcome is Outcome.DONE and "Access request 1" in asked.text
    again = await fresh_say(app, "P002", f"{button(found, 'request_access').command} section 47 enquiry")
    assert again.outcome is Outcome.INFO and "already waiting" in again.text
    approved = await decide(app, "DM02", "approve", 1)
    assert approved.outcome is Outcome.DONE
    assert format_ref(SHIELDED) in approved.text, "the duty manager deciding still sees the reference"
    assert format_ref(SHIELDED) in await received(app, "DM02")
    history = await fresh_say(app, "P002", "history")
    granted = await fresh_say(app, "P002", f"{button(found, 'request_access').command} section 47 enquiry")
    assert "already have access" in granted.text
    for reply in (found, asked, again, history, granted):
        assert not reveals_the_reference(everything(reply)), reply
    clock.advance(hours=25)
    await jobs.expire_grants(app.ctx, clock.now())
    told = await received(app, "P002")
    assert "Access request 1 was approved" in told and "has ended" in told
    assert not reveals_the_reference(told)


async def test_a_denial_and_an_expiry_name_the_record_without_its_reference(app: Signpost, clock: FakeClock) -> None:
    found = await search_as(app, "P002", BY_NAME)
    await fresh_say(app, "P002", f"{button(found, 'request_access').command} section 47 enquiry")
    await decide(app, "DM02", "deny", 1, "ask the lead first")
    clock.advance(hours=1)
    found = await search_as(app, "P002", BY_NAME)
    await fresh_say(app, "P002", f"{button(found, 'request_access').command} section 47 enquiry")
    clock.advance(hours=25)
    await jobs.expire_requests(app.ctx, clock.now())
    told = await received(app, "P002")
    assert "was denied" in told and "expired" in told
    assert not reveals_the_reference(told)


async def test_send_a_message_round_trip_never_shows_the_reference_to_its_sender(app: Signpost) -> None:
    found = await search_as(app, "P002", BY_NAME)
    text = "section 47 enquiry; please call me on 0161 496 0002"
    sent = await fresh_say(app, "P002", f"{button(found, 'relay_message').command} {text}")
    assert sent.outcome is Outcome.DONE and "Message 1" in sent.text
    assert format_ref(SHIELDED) in await received(app, "S001"), "the lead professional is told which record"
    answered = await fresh_say(app, "S001", "reply 1 please call me this afternoon")
    assert answered.outcome is Outcome.DONE
    read = await fresh_say(app, "P002", "relay 1")
    assert read.outcome is Outcome.INFO and "please call me this afternoon" in "\n".join(read.lines)
    history = await fresh_say(app, "P002", "history")
    for reply in (found, sent, read, history):
        assert not reveals_the_reference(everything(reply)), reply
    told = await received(app, "P002")
    assert "was answered" in told
    assert not reveals_the_reference(told)


async def test_a_reason_or_an_answer_giving_the_reference_never_reaches_who_found_it_by_name(app: Signpost) -> None:
    """The reviewer's reproduction: the duty manager's denial reason and the lead professional's answer
    gave the reference the searcher was never told. Both are refused; what is sent without it arrives."""
    found = await search_as(app, "P002", BY_NAME)
    await fresh_say(app, "P002", f"{button(found, 'request_access').command} section 47 enquiry")
    leaked = await decide(app, "DM02", "deny", 1, f"record {format_ref(SHIELDED)} is held by the Zedshire refuge team")
    assert leaked.outcome is Outcome.INVALID
    text = "section 47 enquiry; please call me on 0161 496 0002"
    assert (await fresh_say(app, "P002", f"{button(found, 'relay_message').command} {text}")).outcome is Outcome.DONE
    answered = await fresh_say(app, "S001", f"reply 1 I know {format_ref(SHIELDED)} well")
    assert answered.outcome is Outcome.INVALID
    assert (await decide(app, "DM02", "deny", 1, "held by the refuge team")).outcome is Outcome.DONE
    assert (await fresh_say(app, "S001", "reply 1 please call me this afternoon")).outcome is Outcome.DONE
    read = await fresh_say(app, "P002", "relay 1")
    told = await received(app, "P002")
    assert "held by the refuge team" in told and "please call me this afternoon" in "\n".join(read.lines)
    assert not reveals_the_reference(told) and not reveals_the_reference(everything(read))


async def test_the_handle_works_only_for_whoever_searched(app: Signpost) -> None:
    found = await search_as(app, "P002", BY_NAME)
    for command in (button(found, "request_access").command, button(found, "relay_message").command):
        other = await fresh_say(app, "P001", f"{command} section 47 enquiry; call 0161 496 0002")
        assert other.outcome is Outcome.INVALID, other
        assert not reveals_the_reference(everything(other))
    assert await notices(app, "DM02") == [] and await notices(app, "S001") == []


async def test_the_handle_expires_after_a_day(app: Signpost, clock: FakeClock) -> None:
    found = await search_as(app, "P002", BY_NAME)
    clock.advance(hours=25)
    late = await fresh_say(app, "P002", f"{button(found, 'request_access').command} section 47 enquiry")
    assert late.outcome is Outcome.INVALID and "search again" in late.text
    assert not reveals_the_reference(everything(late))


async def test_a_typed_reference_is_still_named_back(app: Signpost) -> None:
    """The practitioner typed it: the confirmation and the approval may show it."""
    looked = await search_as(app, "P002", SHIELDED)
    assert button(looked, "request_access").command == f"request {SHIELDED}"
    asked = await fresh_say(app, "P002", TYPED)
    assert format_ref(SHIELDED) in asked.text
    await decide(app, "DM02", "approve", 1)
    assert format_ref(SHIELDED) in await received(app, "P002")


async def test_a_request_by_handle_waiting_for_its_code_has_terms_sealed_under_the_childs_key(
    app: Signpost, clock: FakeClock
) -> None:
    """As a request by reference stopped for a code: its purpose dies with the child, not the month
    (under its birth day's terms key: the event names no reference)."""
    found = await search_as(app, "P002", BY_NAME)
    clock.advance(minutes=31)  # the code is stale again
    stopped = await say(app, "P002", f"{button(found, 'request_access').command} section 47 enquiry")
    assert stopped.outcome is Outcome.CHALLENGED
    [event] = [e for e in await audit_events(app, "request_access") if e.outcome == "challenged"]
    assert event.terms is not None and event.terms_key is not None and event.terms_key.startswith("cohort:")
    assert str(int(SHIELDED)) not in event.terms_key
