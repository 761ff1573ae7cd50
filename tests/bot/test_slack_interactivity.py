"""Modals, buttons and App Home: the interactivity plumbing, asserted on what Slack receives."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import pytest
import structlog

import bot.slack
from handlers.model import Button, Notice, Platform, Principal
from tests.bot import scripted
from tests.bot.conftest import SlackHarness
from tests.bot.slack_requests import SlackUser, buttons_in
from tests.factories import AMY, SHIELDED, load_standard

NURSE = SlackUser("U0NURSE")
SOCIAL_WORKER = SlackUser("U0SOCIAL")
DUTY = SlackUser("U0DUTY")


async def body_of(response: Any) -> dict[str, Any]:
    text = await response.text()
    return json.loads(text) if text else {}


async def open_code_modal(app: SlackHarness, user: SlackUser) -> dict[str, Any]:
    """`/signpost secret` (a scripted command that needs a code): the modal Slack ends up showing."""
    await app.slack.command(user, "secret")
    await app.front.idle()
    [updated] = app.fake.of("views.update")
    view: dict[str, Any] = updated.body["view"]
    return view


async def test_step_up_challenge_becomes_a_code_modal_holding_only_the_challenge_id(
    scripted_app: SlackHarness,
) -> None:
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("P002", NURSE)
    view = await open_code_modal(scripted_app, user)
    assert view["callback_id"] == "signpost_code"
    assert view["private_metadata"] == "ch-secret"
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [(b["block_id"], b["element"]["action_id"]) for b in inputs] == [("code", "code")]
    assert scripted.PROMPT in json.dumps(view)


async def test_wrong_code_is_shown_inline_and_the_right_code_shows_the_answer(
    scripted_app: SlackHarness,
) -> None:
    """response_action errors on the code input; then response_action update with the signposts."""
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("P002", NURSE)
    view = await open_code_modal(scripted_app, user)
    wrong = scripted_app.slack.view_submission(user, view, "V9", {"code": {"code": "000 000"}})
    answer = await body_of(await scripted_app.slack.interactive(wrong))
    assert answer == {"response_action": "errors", "errors": {"code": scripted.WRONG}}
    right = scripted_app.slack.view_submission(user, view, "V9", {"code": {"code": " 123 456 "}})
    answer = await body_of(await scripted_app.slack.interactive(right))
    assert answer["response_action"] == "update"
    assert "Sam Carter" in json.dumps(answer["view"]) and "Lead professional" in json.dumps(answer["view"])
    events = await scripted_app.audit()
    assert [(e.action, e.outcome, e.channel) for e in events] == [
        ("secret", "challenged", "channel"),
        ("code", "challenged", "modal"),
        ("code", "answered", "modal"),
    ]


async def test_step_up_codes_never_reach_logs_or_the_audit_trail(scripted_app: SlackHarness) -> None:
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("P002", NURSE)
    view = await open_code_modal(scripted_app, user)
    with structlog.testing.capture_logs() as logs:
        submission = scripted_app.slack.view_submission(user, view, "V9", {"code": {"code": "123456"}})
        await scripted_app.slack.interactive(submission)
        await scripted_app.front.idle()
    assert "123456" not in json.dumps(logs, default=str)
    assert all(e.terms is None for e in await scripted_app.audit() if e.action == "code")


async def test_slow_submission_is_acknowledged_with_a_placeholder_and_updated_later(
    scripted_app: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the submission deadline the modal shows a placeholder, then views.update brings the answer."""
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("P002", NURSE)
    view = await open_code_modal(scripted_app, user)
    monkeypatch.setattr(bot.slack, "SUBMIT_DEADLINE", 0.0)
    submission = scripted_app.slack.view_submission(user, view, "V77", {"code": {"code": "123456"}})
    answer = await body_of(await scripted_app.slack.interactive(submission))
    assert answer["response_action"] == "update" and "Checking" in json.dumps(answer["view"])
    await scripted_app.front.idle()
    late = scripted_app.fake.of("views.update")[-1]
    assert late.body["view_id"] == "V77" and "Sam Carter" in json.dumps(late.body["view"])


async def test_shielded_answer_request_access_collects_the_reason_in_a_modal_then_sends_it_once(
    scripted_app: SlackHarness,
) -> None:
    """Request access (a button with an input) pushes a reason modal; a double submit acts once."""
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("P001", SOCIAL_WORKER)
    await scripted_app.slack.command(user, SHIELDED)
    await scripted_app.front.idle()
    [result] = scripted_app.fake.of("views.update")
    assert "shielded" in json.dumps(result.body["view"])
    [(block_id, button)] = buttons_in(result.body["view"]["blocks"])
    assert button["action_id"] == "request_access"
    click = scripted_app.slack.block_action_from_view(user, button, block_id, result.body["view_id"])
    assert (await scripted_app.slack.interactive(click)).status == 200
    await scripted_app.front.idle()
    [pushed] = scripted_app.fake.of("views.push")
    modal = pushed.body["view"]
    assert modal["callback_id"] == "signpost_input" and pushed.body["trigger_id"] == click["trigger_id"]
    assert json.loads(modal["private_metadata"])["c"] == f"request {SHIELDED}"
    submission = scripted_app.slack.view_submission(
        user, modal, "V555", {"input": {"value": "Section 47 enquiry"}}
    )
    first = await body_of(await scripted_app.slack.interactive(submission))
    second = await body_of(await scripted_app.slack.interactive(submission))
    assert first["response_action"] == "update"
    assert f"Request sent for {SHIELDED}. Purpose recorded (18 characters)." in json.dumps(first["view"])
    assert second == {}  # the modal just closes: the first submission's answer stands
    assert [e.action for e in await scripted_app.audit()] == ["lookup", "request"]


async def deliver_notice(app: SlackHarness, user: SlackUser, *buttons: Button) -> dict[str, Any]:
    """A DM notice through the Slack deliverer; returns the chat.postMessage body."""
    notice = Notice("DM01", "access_request", "Request 7 is waiting for your decision.", buttons, "req-7")
    await app.front.deliverer.deliver(Principal(Platform.SLACK, user.team_id, user.user_id), notice)
    return app.fake.of("chat.postMessage")[-1].body


async def test_double_click_on_a_dm_button_has_one_effect_and_one_audit_event(
    scripted_app: SlackHarness,
) -> None:
    """Approve clicked twice: one decision, the message replaced by it once, one audit event."""
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("DM01", DUTY)
    posted = await deliver_notice(
        scripted_app,
        user,
        Button("approve", "Approve", "approve 7", "primary"),
        Button("deny", "Deny", "deny 7", "danger"),
    )
    [(block_id, approve), _] = buttons_in(posted["blocks"])
    for _ in range(2):
        click = scripted_app.slack.block_action_from_message(
            user, approve, block_id, message_ts="1700000000.000321"
        )
        assert (await scripted_app.slack.interactive(click)).status == 200
    await scripted_app.front.idle()
    [replaced] = scripted_app.fake.of("response_url")
    assert replaced.body["replace_original"] is True and replaced.body["response_type"] == "ephemeral"
    assert replaced.body["text"] == "Approved request 7."
    assert [(e.action, e.channel) for e in await scripted_app.audit()] == [("approve", "button")]


async def test_double_click_on_a_read_only_button_has_one_audit_event(scripted_app: SlackHarness) -> None:
    """The same for a command without writes (claimed through the group-committed claim log)."""
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("DM01", DUTY)
    posted = await deliver_notice(scripted_app, user, Button("deny", "Deny", "deny 7", "danger"))
    [(block_id, deny)] = buttons_in(posted["blocks"])
    clicks = [scripted_app.slack.block_action_from_message(user, deny, block_id) for _ in range(3)]
    for click in clicks:
        await scripted_app.slack.interactive(click)
    await scripted_app.front.idle()
    assert len(scripted_app.fake.of("response_url")) == 1
    assert [e.action for e in await scripted_app.audit()] == ["deny"]


async def test_code_gated_button_opens_the_code_modal_then_replaces_the_clicked_message_with_the_decision(
    scripted_app: SlackHarness,
) -> None:
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("DM01", DUTY)
    posted = await deliver_notice(scripted_app, user, Button("approve", "Approve", "confirm 7", "primary"))
    [(block_id, approve)] = buttons_in(posted["blocks"])
    click = scripted_app.slack.block_action_from_message(user, approve, block_id)
    await scripted_app.slack.interactive(click)
    await scripted_app.front.idle()
    [opened] = scripted_app.fake.of("views.open")
    assert opened.body["trigger_id"] == click["trigger_id"] and "Checking" in json.dumps(opened.body["view"])
    [code_view] = scripted_app.fake.of("views.update")
    assert code_view.body["view"]["private_metadata"] == "ch-confirm"
    assert scripted_app.fake.of("response_url") == []  # not decided yet: the buttons stay
    submission = scripted_app.slack.view_submission(
        user, code_view.body["view"], "V1", {"code": {"code": "123456"}}
    )
    answer = await body_of(await scripted_app.slack.interactive(submission))
    assert "Approved request 7" in json.dumps(answer["view"])
    await scripted_app.front.idle()
    [replaced] = scripted_app.fake.of("response_url")
    assert replaced.path == urlparse(click["response_url"]).path  # the clicked message's own response_url
    assert replaced.body["replace_original"] is True and replaced.body["text"].startswith(
        "Approved request 7"
    )


async def test_challenge_without_a_modal_offers_an_enter_code_button_that_opens_the_code_modal(
    scripted_app: SlackHarness,
) -> None:
    """A command that declared no step-up but is challenged: a private message with Enter code."""
    await load_standard(scripted_app.signpost)
    user = await scripted_app.link("P002", NURSE)
    await scripted_app.slack.command(user, "remind")
    await scripted_app.front.idle()
    [posted] = scripted_app.fake.of("response_url")
    assert posted.body["response_type"] == "ephemeral" and scripted.PROMPT in posted.body["text"]
    [(block_id, enter)] = buttons_in(posted.body["blocks"])
    assert enter["action_id"] == "enter_code"
    click = scripted_app.slack.block_action_from_message(user, enter, block_id)
    await scripted_app.slack.interactive(click)
    await scripted_app.front.idle()
    [opened] = scripted_app.fake.of("views.open")
    assert opened.body["view"]["callback_id"] == "signpost_code"
    assert opened.body["view"]["private_metadata"] == "ch-remind"


async def test_app_home_shows_own_recent_lookups_refs_and_times_and_pending_count_for_duty_managers(
    slack_app: SlackHarness,
) -> None:
    await load_standard(slack_app.signpost)
    user = await slack_app.link("DM01", DUTY)
    await slack_app.slack.command(user, AMY)
    await slack_app.front.idle()
    home = {
        "type": "app_home_opened",
        "user": user.user_id,
        "channel": "D0001",
        "tab": "home",
        "event_ts": "1.2",
    }
    response = await slack_app.slack.event(user, home, event_id="Ev0001")
    assert response.status == 200
    await slack_app.front.idle()
    [published] = slack_app.fake.of("views.publish")
    assert published.body["user_id"] == user.user_id and published.body["view"]["type"] == "home"
    text = json.dumps(published.body["view"])
    assert "999 000 0018" in text and "02/11/2026 09:00 UTC" in text
    assert "Requests waiting for your decision: 0" in text
    for private in ("Amy", "Jones", "Carter", "03/04/2014", "M1 2AB"):
        assert private not in text


async def test_app_home_retried_event_publishes_once_and_audits_once(slack_app: SlackHarness) -> None:
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    home = {
        "type": "app_home_opened",
        "user": user.user_id,
        "channel": "D0001",
        "tab": "home",
        "event_ts": "1.2",
    }
    for retry in (None, 1):
        await slack_app.slack.event(user, home, event_id="Ev0002", retry=retry)
        await slack_app.front.idle()
    [published] = slack_app.fake.of("views.publish")
    assert "No lookups yet" in json.dumps(published.body["view"])
    assert "Requests waiting" not in json.dumps(published.body["view"])  # not a duty manager
    assert [e.action for e in await slack_app.audit()] == ["home"]


async def test_app_home_for_an_unlinked_user_says_how_to_register(slack_app: SlackHarness) -> None:
    home = {"type": "app_home_opened", "user": "U0NEW", "channel": "D0002", "tab": "home", "event_ts": "1.3"}
    await slack_app.slack.event(SlackUser("U0NEW"), home, event_id="Ev0003")
    await slack_app.front.idle()
    [published] = slack_app.fake.of("views.publish")
    assert "not registered with Signpost" in json.dumps(published.body["view"])


async def test_messages_tab_opening_does_nothing(slack_app: SlackHarness) -> None:
    home = {
        "type": "app_home_opened",
        "user": "U0NEW",
        "channel": "D0002",
        "tab": "messages",
        "event_ts": "1.3",
    }
    assert (await slack_app.slack.event(SlackUser("U0NEW"), home, event_id="Ev0004")).status == 200
    await slack_app.front.idle()
    assert slack_app.fake.of("views.publish") == [] and await slack_app.audit() == []
