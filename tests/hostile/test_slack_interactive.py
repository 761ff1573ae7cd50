"""Hostile interactive payloads and events over signed Slack requests: clicks (in a message, in a
modal, on the Home tab, Enter code), code and input submissions and the Home tab opened, each as
Slack sends it with one to three of its fields removed, given junk, a pasted child's identity, or
another field's word (a view's type "home", a callback id of another view, a container "message").

Whatever the payload: never a 5xx or a traceback, at most one warning line, at most one command audited
(beside the record that its answer could not be shown), and the pasted identity never in a log line or
in anything sent to Slack.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack import render
from handlers.vocabulary import Action
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import TEAM, signed_headers
from tests.hostile import strategies as hs
from tests.hostile.observe import UNAUDITED, Check, LogTap, shown
from tests.hostile.slack_world import MANAGER, NURSE, populate, send_raw

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def world(slack_app: SlackHarness) -> AsyncIterator[SlackHarness]:
    yield await populate(slack_app)


def about_the_payload(log: str) -> str:
    """The log without Bolt's look-up of the bot's own ids (``auth.test``, made with the first request
    a server takes, and timed out on a loaded host): a line of its own, not about the payload."""
    return "\n".join(line for line in log.splitlines() if '"method": "auth.test"' not in line)


def button(action_id: str, value: str) -> dict[str, Any]:
    return {"action_id": action_id, "value": value, "text": {"type": "plain_text", "text": "x"}}


def payloads(app: SlackHarness) -> list[tuple[str, dict[str, Any]]]:
    """("interactive" or "event", the payload) for each kind Signpost listens to."""
    slack = app.slack
    approve = button("approve", '{"c":"approve R1"}')
    home_click = slack.block_action_from_view(MANAGER, approve, "b1", "V0HOME01")
    home_click["view"].update(type="home", callback_id="")
    code_view = {"type": "modal", "callback_id": render.CODE_CALLBACK, "private_metadata": "c0ffee"}
    input_view = {
        "type": "modal",
        "callback_id": render.INPUT_CALLBACK,
        "private_metadata": '{"c":"request 999 000 0018","f":null}',
    }
    home = {
        "token": "deprecated-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": "Ev0HOSTILE",
        "event_time": 1700000000,
        "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": "UBOT0001", "is_bot": True}],
        "event": {"type": "app_home_opened", "user": NURSE.user_id, "channel": "D0001", "tab": "home"},
    }
    return [
        ("interactive", slack.block_action_from_message(MANAGER, approve, "b1")),
        ("interactive", slack.block_action_from_view(MANAGER, approve, "b1", "V0MODAL1")),
        ("interactive", home_click),
        ("interactive", slack.block_action_from_message(NURSE, button(render.ENTER_CODE, '{"id":"c0ffee"}'), "b2")),
        ("interactive", slack.view_submission(NURSE, code_view, "V0CODE1", {"code": {"code": "123456"}})),
        ("interactive", slack.view_submission(NURSE, input_view, "V0INPUT1", {"input": {"input": "s47 enquiry"}})),
        ("event", home),
    ]


def from_home_tab(payload: Any) -> bool:
    """A click on the App Home tab (its view is of type ``home``)."""
    view = payload.get("view") if isinstance(payload, dict) else None
    return isinstance(view, dict) and view.get("type") == "home"


@given(data=st.data())
async def test_hostile_clicks_submissions_and_events_are_refused_or_answered_once(
    world: SlackHarness, logs: LogTap, data: st.DataObject
) -> None:
    kind, original = data.draw(st.sampled_from(payloads(world)), label="kind")
    payload = data.draw(hs.mutated(original), label="payload")
    if kind == "interactive":
        body = urlencode({"payload": json.dumps(payload)})
        headers = signed_headers(body, content_type=FORM)
    else:
        body = json.dumps(payload)
        headers = signed_headers(body, content_type="application/json")
    check = Check(f"slack-{kind}", shown(payload, 600))
    sent = await send_raw(world, logs, body.encode(), headers)
    check.status(sent.status, range(200, 500), "a signed payload")
    check.logs(sent.log)
    check.one_line_at_most(about_the_payload(sent.log))
    # An answer that could not be shown (no response_url, no trigger) is recorded so, beside its command.
    commands = [e for e in sent.events if e.action != Action.ANSWER_NOT_SHOWN.value]
    if len(commands) == 2 and commands[1].action == Action.HOME.value and from_home_tab(payload):
        # A decision clicked on the Home tab publishes the tab again: a Home view, audited as one.
        commands = commands[:1]
    check.expect(len(commands) <= 1, UNAUDITED, f"{[(e.action, e.outcome) for e in sent.events]}")
    check.outbound([c.body for c in sent.calls] + ([sent.ack] if sent.ack else []))
    check.settle()
