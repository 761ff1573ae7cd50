"""`home` names a child only behind a fresh code, as `history` and `pending` do: it is published
whenever Slack's Home tab is opened and stays in a Teams chat, so without a code it gives counts
and says how to see more. Through the dispatcher, on both stores."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers import home
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome, Platform, Principal, Reply
from tests.access_helpers import fresh_say, load_access, request_access, search_as
from tests.factories import SHIELDED, say

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


async def test_a_stale_code_hides_lookups_and_requests_a_fresh_one_shows_them(app: Signpost, clock: FakeClock) -> None:
    assert (await search_as(app, "P002", OPEN)).outcome is Outcome.ANSWERED
    await request_access(app, "P001", SHIELDED)
    await request_access(app, "P002", SHIELDED)
    clock.advance(hours=13)
    practitioner = await say(app, "P002", "home")
    assert not names_a_child(practitioner), practitioner.lines
    assert f"Your recent lookups are not shown without a code: send 'history' to see them ({CODE_FIRST})." in (
        practitioner.lines
    )
    manager = await say(app, "DM02", "home")
    assert not names_a_child(manager), manager.lines
    assert f"2 access requests wait: send 'pending' to see them ({CODE_FIRST})." in manager.lines
    assert (await say(app, "P002", "history")).outcome is Outcome.CHALLENGED, "history's rule, the same"

    shown = await fresh_home(app, "P002")
    assert any(line.startswith("• 999 000 0018 — ") for line in shown.lines), shown.lines
    listed = await fresh_home(app, "DM02")
    requests = [line for line in listed.lines if line.startswith("• Request")]
    assert [line.split(",")[0] for line in requests] == ["• Request 1: 999 000 0050", "• Request 2: 999 000 0050"]
    assert [b.command for b in listed.buttons] == ["approve 1", "deny 1", "approve 2", "deny 2"]


async def test_nothing_waiting_and_no_lookups_say_so_without_a_code(app: Signpost) -> None:
    home = await say(app, "DM01", "home")
    assert "Requests waiting for your decision: 0" in home.lines
    assert not [line for line in home.lines if "pending" in line or "history" in line], home.lines


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
