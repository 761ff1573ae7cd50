"""Approve and Deny clicked through the real Slack front end by someone who may not decide.

A Slack client can send any button value, and a button stays in a DM after its clicker's standing
has changed: whoever clicks, the decision is re-checked against the store as it is at the click
(their role, their status, the child's authority now), never trusted from the button.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.slack.render import notice_message
from handlers.vocabulary import Outcome
from store.people import access as store
from store.people import practitioners
from store.register.feeds import Feed, import_feeds
from tests.access_helpers import EXTRA_PRACTITIONERS, audit_events, load_access, notices, request_access
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, buttons_in, link_with_authenticator
from tests.factories import CHILDREN, SHIELDED

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NORTH = SlackUser("U0NORTH")  # DM01, Northshire's duty manager
SOUTH = SlackUser("U0SOUTH")  # DM02, one of Southvale's


async def southvale_request(app: SlackHarness) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """P001 asks about the Southvale child; DM02's real Approve and Deny buttons, as posted to Slack."""
    await load_access(app.signpost)
    await link_with_authenticator(app.signpost, "DM01", NORTH)
    await link_with_authenticator(app.signpost, "DM02", SOUTH)
    await request_access(app.signpost, "P001", SHIELDED)
    [notice] = [n for n in await notices(app.signpost, "DM02") if n.kind == "access_request"]
    [(block_id, approve), (_, deny)] = buttons_in(notice_message(notice)["blocks"])
    return block_id, approve, deny


async def click(
    app: SlackHarness, user: SlackUser, button: dict[str, Any], block_id: str, message_ts: str = "1700000000.000100"
) -> str:
    """The click's answer as shown in its modal (a decision asks for a code, so it opens one).
    ``message_ts``: which copy of the notice (the same button in one message is one click)."""
    before = len(app.fake.of("views.update"))
    await app.slack.interactive(app.slack.block_action_from_message(user, button, block_id, message_ts=message_ts))
    await app.front.idle()
    return json.dumps([call.body for call in app.fake.of("views.update")[before:]])


async def still_pending(app: SlackHarness) -> bool:
    async with app.signpost.ctx.db.read() as session:
        row = await store.get_request(session, app.signpost.ctx.keys, 1)
    told = [n for n in await notices(app.signpost, "P001") if n.kind in ("access_approved", "access_denied")]
    return row is not None and row.state == store.PENDING and not told


async def test_another_authoritys_manager_clicking_a_copied_approve_changes_nothing(slack_app: SlackHarness) -> None:
    block_id, approve, _ = await southvale_request(slack_app)
    shown = await click(slack_app, NORTH, approve, block_id)
    assert "There is no access request 1 for you to decide." in shown and "approved" not in shown  # said as for none
    assert await still_pending(slack_app)
    [event] = [e for e in await audit_events(slack_app.signpost, "approve") if e.actor_id == "DM01"]
    assert event.outcome == Outcome.REFUSED.value and event.detail == "request 1 other authority"


async def reimport(slack_app: SlackHarness, feed: Feed) -> None:
    """A feed imported again with one change (a role taken away, a child moved)."""
    signpost = slack_app.signpost
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [feed], signpost.ctx.clock.now())


async def test_a_manager_who_lost_the_role_or_left_cannot_use_their_old_buttons(slack_app: SlackHarness) -> None:
    block_id, approve, _ = await southvale_request(slack_app)
    demoted = EXTRA_PRACTITIONERS.replace(
        "jo.bell@southvale.example,duty_manager;practitioner", "jo.bell@southvale.example,practitioner"
    )
    assert demoted != EXTRA_PRACTITIONERS
    await reimport(slack_app, Feed("practitioners.csv", demoted))
    assert "duty manager or an admin" in await click(slack_app, SOUTH, approve, block_id)
    assert await still_pending(slack_app)

    async with slack_app.signpost.ctx.db.write() as session:
        await practitioners.set_status(session, "DM02", "inactive")
    assert "not active" in await click(slack_app, SOUTH, approve, block_id, message_ts="1700000000.000200")
    assert await still_pending(slack_app)


async def test_once_the_child_moves_the_old_authoritys_button_decides_nothing(slack_app: SlackHarness) -> None:
    block_id, approve, _ = await southvale_request(slack_app)
    moved = CHILDREN.replace("S1 4ZZ,Southvale,true", "S1 4ZZ,Northshire,true")
    await reimport(slack_app, Feed("children.csv", moved))
    assert "There is no access request 1 for you to decide." in await click(slack_app, SOUTH, approve, block_id)
    assert await still_pending(slack_app)
    assert "Request 1 approved" in await click(slack_app, NORTH, approve, block_id)
