"""The Slack Home tab names no child, even while its viewer's code is fresh.

Slack shows the Home tab last published every time it is opened, until another is published; and
none is published when Signpost is too busy to answer (``bot/slack/front.py``, ``_on_home``). A tab
published while the code was fresh would keep its references and Approve / Deny for access requests
long after. So ``home`` counts what names a child and says how to see it (``history``, ``pending``,
which ask for a code); registrations, which name no child, keep their lines and buttons.

Not ``one_store``: what is counted is read from each store, so this runs on both."""

from __future__ import annotations

import json
from typing import Any

from handlers.vocabulary import Platform, Principal, format_ref
from tests.access_helpers import load_access, request_access
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, buttons_in, link_with_authenticator
from tests.factories import AMY, BEN, NO_INVOLVEMENTS, SHIELDED, TWIN_A, TWIN_B, say

NURSE = SlackUser("U0NURSE")
DUTY = SlackUser("U0DUTY")
CHILDREN = (AMY, BEN, TWIN_A, TWIN_B, SHIELDED, NO_INVOLVEMENTS)  # every child the feeds register


async def opened_home(app: SlackHarness, user: SlackUser, event_id: str) -> dict[str, Any]:
    """The Home view Slack is given when ``user`` opens the tab (a signed app_home_opened event)."""
    event = {"type": "app_home_opened", "user": user.user_id, "channel": "D0001", "tab": "home", "event_ts": "1.2"}
    assert (await app.slack.event(user, event, event_id=event_id)).status == 200
    await app.front.idle()
    [*_, published] = app.fake.of("views.publish")
    assert published.body["user_id"] == user.user_id
    view: dict[str, Any] = published.body["view"]
    return view


def children_named(view: dict[str, Any]) -> list[str]:
    text = json.dumps(view)
    return [ref for ref in CHILDREN if ref in text or format_ref(ref) in text]


async def test_with_a_fresh_code_the_home_tab_names_no_child_and_offers_no_access_decision(
    slack_app: SlackHarness,
) -> None:
    app = slack_app.signpost
    await load_access(app)
    await link_with_authenticator(app, "P002", NURSE)  # a code just now: fresh
    answered = await slack_app.slack.command(NURSE, AMY)
    assert "Sam Carter" in await answered.text()  # answered in the ack: the code is fresh
    await request_access(app, "P002", SHIELDED)
    asked = await say(app, Principal(Platform.SLACK, "T0TEST", "U0NEWHOME"), "register S001")
    assert asked.text.startswith("If the id you gave is an active practitioner's"), asked.text
    await link_with_authenticator(app, "DM02", DUTY)  # fresh too
    await slack_app.front.idle()

    practitioner = await opened_home(slack_app, NURSE, "EvHOME1")
    assert children_named(practitioner) == []
    text = json.dumps(practitioner)
    assert "Your recent lookups: 1." in text and "`/signpost history`" in text, text
    assert buttons_in(practitioner["blocks"]) == []

    manager = await opened_home(slack_app, DUTY, "EvHOME2")
    assert children_named(manager) == []
    text = json.dumps(manager)
    assert "Requests waiting for your decision: 2" in text, text
    assert "1 access request waits: send `/signpost pending` to see it (Signpost asks for a code first)." in text
    assert "Registration R1: a Slack account asks to act as S001" in text
    decisions = [json.loads(button["value"])["c"] for _, button in buttons_in(manager["blocks"])]
    assert decisions == ["approve R1", "deny R1"], "only the registration's: an access request's carry its id"
