"""`home` names no child, whatever the person's code: it is published whenever Slack's Home tab is
opened and Slack keeps the last one published (a view from while the code was fresh stayed, buttons
and all), and it stays in a Teams chat. It counts lookups and access requests and says how to see
them (`history`, `pending`, which ask for a code); registrations, which name no child, are listed
with their buttons. Through the dispatcher, on both stores."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers import home
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome, Platform, Principal, Reply
from tests.access_helpers import audit_events, fresh_say, load_access, request_access, search_as
from tests.factories import AMY, BEN, SHIELDED, say

CODE_FIRST = "Signpost asks for a code first"
OPEN = "999 000 0018"  # a record that is not shielded: its lookup is answered


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def fresh_home(app: Signpost, who: str) -> Reply:
    """``home`` just after a code (``history`` asks for one when the last is stale)."""
    assert (await fresh_say(app, who, "history")).outcome is Outcome.INFO
    return await say(app, who, "home")


def names_a_child(reply: Reply) -> bool:
    return "999 000" in " ".join((reply.text, *reply.lines, *(b.command for b in reply.buttons)))


async def test_a_duty_manager_never_enrolled_sees_how_many_wait_and_no_child(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED)
    home = await say(app, "DM02", "home")
    assert home.outcome is Outcome.INFO and not names_a_child(home), home.lines
    assert "Requests waiting for your decision: 1" in home.lines
    assert f"1 access request waits: send 'pending' to see it ({CODE_FIRST})." in home.lines
    assert home.buttons == (), "no Approve or Deny on a request its decider cannot see"


async def test_a_fresh_code_counts_as_a_stale_one_does(app: Signpost, clock: FakeClock) -> None:
    """The same counts, no reference and no access request's buttons, with the code fresh or not:
    what ``home`` shows outlives the code (Slack's Home tab, a chat)."""
    assert (await search_as(app, "P002", OPEN)).outcome is Outcome.ANSWERED
    await request_access(app, "P001", SHIELDED)
    await request_access(app, "P002", SHIELDED)
    for when in ("fresh", "stale"):
        practitioner = await (fresh_home(app, "P002") if when == "fresh" else say(app, "P002", "home"))
        assert not names_a_child(practitioner), (when, practitioner.lines)
        assert practitioner.lines == (f"Your recent lookups: 1. Send 'history' to see them ({CODE_FIRST}).",), when
        manager = await (fresh_home(app, "DM02") if when == "fresh" else say(app, "DM02", "home"))
        assert not names_a_child(manager), (when, manager.lines)
        assert f"2 access requests wait: send 'pending' to see them ({CODE_FIRST})." in manager.lines, when
        assert manager.buttons == (), when
        clock.advance(hours=13)
    assert (await say(app, "P002", "history")).outcome is Outcome.CHALLENGED, "history still asks for a code"
    events = await audit_events(app, "home")
    assert {(e.outcome, e.detail, e.result_count) for e in events} == {("info", "counts only", 0)}


async def test_ten_lookups_or_more_are_counted_as_ten_or_more(app: Signpost, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the latest ``RECENT_LIMIT`` are read: more are not counted one by one (here 1 stands for 10)."""
    monkeypatch.setattr(home, "RECENT_LIMIT", 1)
    for ref in (AMY, BEN):
        assert (await search_as(app, "P001", ref)).outcome is Outcome.ANSWERED
    shown = await say(app, "P001", "home")
    assert shown.lines == (f"Your recent lookups: 1 or more. Send 'history' to see them ({CODE_FIRST}).",)


async def test_nothing_waiting_and_no_lookups_say_so(app: Signpost) -> None:
    shown = await fresh_home(app, "DM01")
    assert shown.lines == (home.NONE_YET, "Requests waiting for your decision: 0"), shown.lines


async def test_a_registration_is_listed_with_its_buttons_and_an_access_request_only_counted(app: Signpost) -> None:
    await request_access(app, "P001", SHIELDED)
    asked = await say(app, Principal(Platform.SLACK, "T0TEST", "U0NEWHOME"), "register S001")
    assert asked.outcome is Outcome.DONE, asked.text
    manager = await fresh_home(app, "DM02")
    assert manager.lines[2:] == (
        f"1 access request waits: send 'pending' to see it ({CODE_FIRST}).",
        "• Registration R1: a Slack account asks to act as S001; waiting 0 min",
    ), manager.lines
    assert [(b.label, b.command) for b in manager.buttons] == [("Approve R1", "approve R1"), ("Deny R1", "deny R1")]


async def test_the_hidden_requests_line_survives_a_screen_full_of_registrations(
    app: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The screen lists ``WAITING_SHOWN`` lines: registrations (which name no child) filling it must
    not cut the line saying access requests wait (here one line, standing in for ten registrations)."""
    monkeypatch.setattr(home, "WAITING_SHOWN", 1)
    await request_access(app, "P001", SHIELDED)
    asked = await say(app, Principal(Platform.SLACK, "T0TEST", "U0NEWHOME"), "register S001")
    assert asked.outcome is Outcome.DONE, asked.text
    manager = await say(app, "DM02", "home")
    assert "Requests waiting for your decision: 2" in manager.lines, manager.lines
    assert f"1 access request waits: send 'pending' to see it ({CODE_FIRST})." in manager.lines, manager.lines
    assert not names_a_child(manager), manager.lines
    assert manager.buttons == (), "no Approve or Deny for a registration whose line the cut took (review)"


async def test_lookups_history_lists_are_counted_whatever_they_found(app: Signpost) -> None:
    """Home counted only lookups answered with signposts, while `history` lists every lookup and its
    outcome (review): someone whose one search matched nobody, or a shielded child, was told "No
    lookups yet" and then found them in `history`. Home counts what `history` lists."""
    for ref in (SHIELDED, "9990000077"):  # shielded; a reference nobody holds
        assert (await search_as(app, "P001", ref)).outcome is not Outcome.ANSWERED
    shown = await say(app, "P001", "home")
    assert shown.lines == (f"Your recent lookups: 2. Send 'history' to see them ({CODE_FIRST}).",), shown.lines
