"""Modals, buttons and App Home: the interactivity plumbing, asserted on what Slack receives.

Step-up, access requests and decisions run the real ``code``, ``enrol``, ``request`` and
``approve`` commands with real authenticator codes. Only the read-only double click uses a
scripted stand-in (``tests/bot/scripted.py``): no real button command is read-only, and that test
isolates the front end's claim path for one.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import pyotp
import pytest
import structlog
from sqlalchemy import text

import bot.slack.front
from bot import enrol_page
from bot.app import Signpost
from bot.logging import configure
from bot.slack import render
from handlers.dispatch.dispatcher import DUPLICATE
from handlers.stepup import flow as stepup
from handlers.vocabulary import Button, Notice, Platform, Principal
from store.people import credentials
from tests.access_helpers import load_access, notices, request_access
from tests.bot.conftest import SlackHarness, serving
from tests.bot.log_stream import logged_at
from tests.bot.slack.slack_requests import (
    SlackUser,
    another_code,
    buttons_in,
    code_for,
    later,
    link_identity,
    link_with_authenticator,
    principal_of,
    slack_events,
)
from tests.factories import AMY, SHIELDED, load_standard, say
from tests.fakes.slack_api import FakeSlackApi
from tests.stepup_helpers import ensure_enrolled

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")
SOCIAL_WORKER = SlackUser("U0SOCIAL")
DUTY = SlackUser("U0DUTY")


async def body_of(response: Any) -> dict[str, Any]:
    text = await response.text()
    return json.loads(text) if text else {}


async def stale_nurse(app: SlackHarness) -> pyotp.TOTP:
    """P002 linked as NURSE, enrolled, and their last code older than the 30-minute freshness."""
    await load_standard(app.signpost)
    totp = await link_with_authenticator(app.signpost, "P002", NURSE)
    later(app.signpost, minutes=31)
    return totp


async def open_code_modal(app: SlackHarness, user: SlackUser, text: str = AMY) -> dict[str, Any]:
    """`/signpost <reference>` when a fresh code is needed: the code modal Slack ends up showing."""
    response = await app.slack.command(user, text)
    assert (response.status, await response.text()) == (200, "")  # a code is needed: an empty ack
    await app.front.idle()
    [opened] = app.fake.of("views.open")  # the code modal at once, with the trigger id
    assert app.fake.of("views.update") == []  # no placeholder to update first
    view: dict[str, Any] = opened.body["view"]
    return view


def spaced(code: str) -> str:
    """A code as people type it from their phone: with spaces around and in the middle."""
    return f" {code[:3]} {code[3:]} "


async def test_step_up_challenge_becomes_a_code_modal_holding_only_the_challenge_id(
    slack_app: SlackHarness,
) -> None:
    """A lookup with a stale code: the modal asks for a code and carries only the opaque challenge
    id (the parked lookup stays on the server); nothing about the child is in it."""
    await stale_nurse(slack_app)
    view = await open_code_modal(slack_app, NURSE)
    assert view["callback_id"] == "signpost_code"
    challenge_id = view["private_metadata"]
    async with slack_app.signpost.ctx.db.read() as session:
        assert await credentials.is_parked(session, challenge_id, principal_of(NURSE))
    assert AMY not in challenge_id
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [(b["block_id"], b["element"]["action_id"]) for b in inputs] == [("code", "code")]
    assert stepup.PROMPT in json.dumps(view)
    for private in ("999 000 0018", AMY, "Sam Carter", "Amy"):
        assert private not in json.dumps(view)
    assert [(e.action, e.outcome) for e in await slack_events(slack_app.signpost)] == [("lookup", "challenged")]


async def test_wrong_code_is_shown_inline_and_the_right_code_shows_the_answer(
    slack_app: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """response_action errors on the code input; then response_action update with the signposts."""
    # An inline error can only come in the submission's own answer, which Signpost gives when the
    # work ends within SUBMIT_DEADLINE. What is held here is the answer, not this machine's speed
    # (a loaded box took past 2 s): the deadline's other side is test_slow_submission_….
    monkeypatch.setattr(bot.slack.front, "SUBMIT_DEADLINE", 60.0)
    totp = await stale_nurse(slack_app)
    view = await open_code_modal(slack_app, NURSE)
    good = code_for(slack_app.signpost, totp)
    wrong = slack_app.slack.view_submission(NURSE, view, "V9", {"code": {"code": another_code(good)}})
    answer = await body_of(await slack_app.slack.interactive(wrong))
    assert answer == {"response_action": "errors", "errors": {"code": stepup.WRONG.format(left=4, ies="ies")}}
    right = slack_app.slack.view_submission(NURSE, view, "V9", {"code": {"code": spaced(good)}})
    answer = await slack_app.shown_after(right)
    assert answer["response_action"] == "update"
    assert "Sam Carter" in json.dumps(answer["view"]) and "Lead professional" in json.dumps(answer["view"])
    # The parked lookup runs once the code is good, with its own audit event (sharing the code's
    # correlation id), recorded before the code's own event.
    events = await slack_events(slack_app.signpost)
    assert [(e.action, e.outcome, e.channel) for e in events] == [
        ("lookup", "challenged", "channel"),
        ("code", "challenged", "modal"),
        ("lookup", "answered", "channel"),
        ("code", "answered", "modal"),
    ]
    assert events[2].correlation_id == events[3].correlation_id


async def test_step_up_codes_never_reach_logs_or_the_audit_trail(slack_app: SlackHarness) -> None:
    totp = await stale_nurse(slack_app)
    view = await open_code_modal(slack_app, NURSE)
    code = code_for(slack_app.signpost, totp)
    with structlog.testing.capture_logs() as logs:
        submission = slack_app.slack.view_submission(NURSE, view, "V9", {"code": {"code": code}})
        answer = await slack_app.shown_after(submission)
        await slack_app.front.idle()
    assert "Sam Carter" in json.dumps(answer)  # the code was taken
    assert code not in json.dumps(logs, default=str)
    events = await slack_events(slack_app.signpost)
    assert [e.action for e in events if e.action == "code"] == ["code"]
    assert all(e.terms is None and code not in (e.detail or "") for e in events if e.action == "code")


async def test_slow_submission_is_acknowledged_with_a_placeholder_and_updated_later(
    slack_app: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the submission deadline the modal shows a placeholder, then views.update brings the answer."""
    totp = await stale_nurse(slack_app)
    view = await open_code_modal(slack_app, NURSE)
    monkeypatch.setattr(bot.slack.front, "SUBMIT_DEADLINE", 0.0)
    code = code_for(slack_app.signpost, totp)
    submission = slack_app.slack.view_submission(NURSE, view, "V77", {"code": {"code": code}})
    answer = await body_of(await slack_app.slack.interactive(submission))
    assert answer["response_action"] == "update" and "Checking" in json.dumps(answer["view"])
    await slack_app.front.idle()
    late = slack_app.fake.of("views.update")[-1]
    assert late.body["view_id"] == "V77" and "Sam Carter" in json.dumps(late.body["view"])


async def test_shielded_answer_request_access_collects_the_reason_in_a_modal_then_sends_it_once(
    modal_app: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Request access (a button with an input) in a modal pushes a reason modal; a double submit acts once."""
    # The second submission closes the modal once the first's answer stands; on a loaded box the first
    # could run past SUBMIT_DEADLINE and leave the second a placeholder: the answer is held here, not speed.
    monkeypatch.setattr(bot.slack.front, "SUBMIT_DEADLINE", 60.0)
    await load_access(modal_app.signpost)
    user = await modal_app.link("P001", SOCIAL_WORKER)
    await modal_app.slack.command(user, SHIELDED)
    await modal_app.front.idle()
    [result] = modal_app.fake.of("views.update")
    assert "shielded" in json.dumps(result.body["view"])
    offered = buttons_in(result.body["view"]["blocks"])
    assert [b["action_id"] for _, b in offered] == ["request_access", "relay_message"]  # issue 18: Send a message
    [(block_id, button)] = [(block, b) for block, b in offered if b["action_id"] == "request_access"]
    click = modal_app.slack.block_action_from_view(user, button, block_id, result.body["view_id"])
    assert (await modal_app.slack.interactive(click)).status == 200
    await modal_app.front.idle()
    [pushed] = modal_app.fake.of("views.push")
    modal = pushed.body["view"]
    assert modal["callback_id"] == "signpost_input" and pushed.body["trigger_id"] == click["trigger_id"]
    assert json.loads(modal["private_metadata"])["c"] == f"request {SHIELDED}"
    submission = modal_app.slack.view_submission(user, modal, "V555", {"input": {"value": "Section 47 enquiry"}})
    first = await modal_app.shown_after(submission)
    second = await body_of(await modal_app.slack.interactive(submission))
    assert first["response_action"] == "update"
    assert "Access request 1 for 999 000 0050 sent to a duty manager" in json.dumps(first["view"])
    assert second == {}  # the modal just closes: the first submission's answer stands
    assert [e.action for e in await slack_events(modal_app.signpost)] == ["lookup", "request_access"]
    # One request, so Southvale's first duty manager is asked once.
    assert [n.recipient_id for n in await notices(modal_app.signpost) if n.kind == "access_request"] == ["DM02"]


async def deliver_notice(app: SlackHarness, user: SlackUser, notice: Notice) -> dict[str, Any]:
    """A DM notice through the Slack deliverer; returns the chat.postMessage body."""
    await app.front.deliverer.deliver(Principal(Platform.SLACK, user.team_id, user.user_id), notice)
    return app.fake.of("chat.postMessage")[-1].body


async def access_request_notice(app: SlackHarness) -> tuple[Notice, pyotp.TOTP]:
    """P001 asks for access to the shielded (Southvale) child; DUTY is Southvale's DM02 in Slack.

    Returns the real notice DM02 was sent, and DM02's authenticator.
    """
    await load_access(app.signpost)
    totp = await link_with_authenticator(app.signpost, "DM02", DUTY)
    await request_access(app.signpost, "P001", SHIELDED)
    [notice] = [n for n in await notices(app.signpost, "DM02") if n.kind == "access_request"]
    return notice, totp


async def test_double_click_on_a_dm_button_has_one_effect_and_one_audit_event(slack_app: SlackHarness) -> None:
    """Approve clicked twice (the real approve, with a code less than 5 minutes old): one
    decision, the message replaced by it once, one approve audit event."""
    notice, _ = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    assert approve["action_id"] == "approve"
    for _ in range(2):
        click = slack_app.slack.block_action_from_message(DUTY, approve, block_id, message_ts="1700000000.000321")
        assert (await slack_app.slack.interactive(click)).status == 200
    await slack_app.front.idle()
    [replaced] = slack_app.fake.of("response_url")
    assert replaced.body["replace_original"] is True and replaced.body["response_type"] == "ephemeral"
    assert replaced.body["text"].startswith("Request 1 approved: P001 can see the signposts for 999 000 0050")
    # Approve declares a step-up, so each click opened a modal at once: the first shows the
    # decision, the second says it was already received (never a placeholder left spinning).
    modals = [json.dumps(u.body["view"]) for u in slack_app.fake.of("views.update")]
    shown = sorted(("Request 1 approved" in modal, DUPLICATE.text in modal) for modal in modals)
    assert shown == [(False, True), (True, False)]  # either click may be the first to arrive
    assert [(e.action, e.channel) for e in await slack_events(slack_app.signpost)] == [("approve", "button")]


async def test_double_click_on_a_read_only_button_has_one_audit_event(scripted_app: SlackHarness) -> None:
    """The same for a command without writes (claimed through the group-committed claim log).

    No real button command is read-only, so this uses the scripted ``deny`` (no step-up gate in
    that dispatcher: the identity is linked without enrolling)."""
    await load_standard(scripted_app.signpost)
    user = await link_identity(scripted_app.signpost, "DM01", DUTY)
    notice = Notice("DM01", "access_request", "Request 7 is waiting.", (Button("deny", "Deny", "deny 7", "danger"),))
    posted = await deliver_notice(scripted_app, user, notice)
    [(block_id, deny)] = buttons_in(posted["blocks"])
    clicks = [scripted_app.slack.block_action_from_message(user, deny, block_id) for _ in range(3)]
    for click in clicks:
        await scripted_app.slack.interactive(click)
    await scripted_app.front.idle()
    [answered] = scripted_app.fake.of("response_url")
    assert answered.body["text"] == "Denied request 7."
    assert [e.action for e in await scripted_app.audit()] == ["deny"]


async def test_code_gated_button_opens_the_code_modal_then_replaces_the_clicked_message_with_the_decision(
    slack_app: SlackHarness,
) -> None:
    """Approve with a code older than 5 minutes: a code modal first (the message keeps its
    buttons), then the real code decides, in the modal and in place of the clicked message."""
    notice, totp = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    later(slack_app.signpost, minutes=6)  # decisions need a code less than 5 minutes old
    click = slack_app.slack.block_action_from_message(DUTY, approve, block_id)
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    [opened] = slack_app.fake.of("views.open")
    assert opened.body["trigger_id"] == click["trigger_id"] and "Checking" in json.dumps(opened.body["view"])
    [code_view] = slack_app.fake.of("views.update")
    assert code_view.body["view"]["callback_id"] == "signpost_code"
    assert stepup.PROMPT_APPROVAL in json.dumps(code_view.body["view"])
    assert slack_app.fake.of("response_url") == []  # not decided yet: the buttons stay
    code = code_for(slack_app.signpost, totp)
    submission = slack_app.slack.view_submission(DUTY, code_view.body["view"], "V1", {"code": {"code": code}})
    answer = await slack_app.shown_after(submission)
    assert "Request 1 approved" in json.dumps(answer["view"])
    await slack_app.front.idle()
    [replaced] = slack_app.fake.of("response_url")
    assert replaced.path == urlparse(click["response_url"]).path  # the clicked message's own response_url
    assert replaced.body["replace_original"] is True and replaced.body["text"].startswith("Request 1 approved")
    events = await slack_events(slack_app.signpost)
    assert [(e.action, e.outcome, e.channel) for e in events] == [
        ("approve", "challenged", "button"),
        ("approve", "done", "button"),
        ("code", "done", "modal"),
    ]


async def test_a_code_gated_button_clicked_again_before_the_code_asks_once_and_decides_once(
    slack_app: SlackHarness,
) -> None:
    """Approve clicked, the code modal closed, Approve clicked again: the same code prompt (the
    same parked command) shows again, and one "challenged" event stands for both clicks. Before,
    each click parked the command again and was audited again."""
    notice, totp = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    later(slack_app.signpost, minutes=6)  # decisions need a code less than 5 minutes old
    for _ in range(2):
        click = slack_app.slack.block_action_from_message(DUTY, approve, block_id, message_ts="1700000000.000777")
        await slack_app.slack.interactive(click)
        await slack_app.front.idle()
    code_views = [u.body["view"] for u in slack_app.fake.of("views.update")]
    assert [v["callback_id"] for v in code_views] == ["signpost_code", "signpost_code"]
    assert code_views[0]["private_metadata"] == code_views[1]["private_metadata"]
    code = code_for(slack_app.signpost, totp)
    submission = slack_app.slack.view_submission(DUTY, code_views[1], "V2", {"code": {"code": code}})
    answer = await slack_app.shown_after(submission)
    assert "Request 1 approved" in json.dumps(answer["view"])
    await slack_app.front.idle()
    events = await slack_events(slack_app.signpost)
    assert [(e.action, e.outcome) for e in events] == [("approve", "challenged"), ("approve", "done"), ("code", "done")]
    # The same button once more, now decided: nothing new happens and nothing more is recorded.
    again = slack_app.slack.block_action_from_message(DUTY, approve, block_id, message_ts="1700000000.000777")
    await slack_app.slack.interactive(again)
    await slack_app.front.idle()
    assert len(await slack_events(slack_app.signpost)) == 3


@pytest.fixture
async def slack_with_enrol_page(signpost: Signpost, fake_slack: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    """The one aiohttp app with the Slack front end and the enrolment page, on loopback (``serving``:
    a search is answered in the ack however long it takes, as on an unloaded machine — with the
    1.5 s default, a loaded CI host answered the stepped-up lookup in a modal and the ack was empty)."""
    async with serving(signpost, fake_slack, also=[enrol_page.add_routes]) as harness:
        yield harness


def secret_on(page: str) -> str:
    """The base32 secret the enrolment page shows under its QR code."""
    start = page.index('<code id="secret">') + len('<code id="secret">')
    return page[start : page.index("</code>", start)].replace(" ", "")


async def test_at_debug_the_slack_sdk_logs_no_enrolment_link_nor_response_url(
    slack_with_enrol_page: SlackHarness,
) -> None:
    """SIGNPOST_LOG_LEVEL=debug turned the Slack SDK's debug on, which logs each call's whole body:
    the one-time enrolment link (whose page shows the authenticator's secret) and the response URL
    went into the log. Signpost's own debug events still come out."""
    app = slack_with_enrol_page
    await load_standard(app.signpost)
    await link_identity(app.signpost, "P002", NURSE)
    stream = io.StringIO()
    configure("json", "debug", stream=stream)
    try:
        await app.slack.command(NURSE, "enrol")
        await app.front.idle()
    finally:
        structlog.reset_defaults()
        configure("json", "info", stream=io.StringIO())
    [posted] = app.fake.of("response_url")
    [(_, open_page), _enter] = buttons_in(posted.body["blocks"])
    token = urlparse(open_page["url"]).path.rsplit("/", 1)[-1]
    logged = stream.getvalue()
    assert '"event": "command"' in logged  # Signpost's own lines are there
    assert token not in logged and posted.path not in logged
    assert not [line for line in logged.splitlines() if '"logger": "slack_sdk' in line]


async def test_enrolling_in_slack_posts_the_link_and_an_enter_code_button_that_opens_the_code_modal(
    slack_with_enrol_page: SlackHarness,
) -> None:
    """`/signpost enrol` declares no step-up, so its code prompt comes as a private message: the
    one-time link with an Enter code button. The button opens the code modal; the first code from
    the app set up from the link's page finishes enrolment, and a lookup then answers."""
    app = slack_with_enrol_page
    await load_standard(app.signpost)
    await link_identity(app.signpost, "P002", NURSE)
    await app.slack.command(NURSE, "enrol")
    await app.front.idle()
    [posted] = app.fake.of("response_url")
    assert posted.body["response_type"] == "ephemeral" and not app.fake.of("views.open")
    shown = json.dumps(posted.body["blocks"])
    assert "Open this link within 10 minutes" in shown and stepup.PROMPT_PENDING in shown
    [(_, open_page), (block_id, enter)] = buttons_in(posted.body["blocks"])
    assert open_page["text"]["text"] == "Set up authenticator" and posted.body["text"].startswith("Open this link")
    link = open_page["url"]
    assert re.fullmatch(r"https?://[^\s\"\\]+/enrol/[A-Za-z0-9_-]+", link)
    assert enter["action_id"] == "enter_code"
    click = app.slack.block_action_from_message(NURSE, enter, block_id)
    await app.slack.interactive(click)
    await app.front.idle()
    [opened] = app.fake.of("views.open")
    assert opened.body["view"]["callback_id"] == "signpost_code"
    challenge_id = opened.body["view"]["private_metadata"]
    async with app.signpost.ctx.db.read() as session:
        assert await credentials.is_parked(session, challenge_id, principal_of(NURSE))
    page = await app.slack.client.post(urlparse(link).path)  # the page's Show my QR code button
    assert page.status == 200
    totp = pyotp.TOTP(secret_on(await page.text()))
    code = code_for(app.signpost, totp)
    submission = app.slack.view_submission(NURSE, opened.body["view"], "V3", {"code": {"code": code}})
    answer = await app.shown_after(submission)
    assert answer["response_action"] == "update" and "You're set up" in json.dumps(answer["view"])
    assert code not in json.dumps([c.body for c in app.fake.calls])
    await app.front.idle()
    app.fake.calls.clear()
    answered = await app.slack.command(NURSE, AMY)
    assert "Sam Carter" in await answered.text()  # stepped up: answered in the ack itself
    await app.front.idle()
    assert app.fake.outbound() == []


async def test_app_home_counts_own_recent_lookups_and_requests_waiting_for_duty_managers(
    slack_app: SlackHarness,
) -> None:
    """Counts only, though the code is fresh: the tab stays as published (tests/bot/slack/test_home_tab.py)."""
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
    assert "Your recent lookups: 1. Send `/signpost history` to see them (Signpost asks for a code first)." in text
    assert "Requests waiting for your decision: 0" in text
    for private in (
        "999 000 0018",
        "9990000018",
        "02/11/2026 09:00 GMT",
        "Amy",
        "Jones",
        "Carter",
        "03/04/2014",
        "M1 2AB",
    ):
        assert private not in text


async def test_app_home_counts_access_requests_and_lists_registrations_with_approve_and_deny_buttons(
    slack_app: SlackHarness,
) -> None:
    """A Southvale duty manager's App Home, published whenever the tab is opened: with a fresh code
    or without one, it counts the waiting access request and says how to see it, naming no child and
    offering no button for it; a registration (which names no child) is listed with its Approve and
    Deny buttons, never the child's name or the purpose."""
    await load_access(slack_app.signpost)
    await request_access(slack_app.signpost, "P002", SHIELDED, "section 47 enquiry")
    await register_s001(slack_app)
    user = await link_identity(slack_app.signpost, "DM02", DUTY)
    home = {"type": "app_home_opened", "user": user.user_id, "channel": "D0001", "tab": "home", "event_ts": "1.2"}
    await slack_app.slack.event(user, home, event_id="Ev0008")
    await ensure_enrolled(slack_app.signpost, "DM02")  # a code, through the console: fresh on Slack too
    await slack_app.slack.event(user, home, event_id="Ev0009")
    await slack_app.front.idle()
    for published in slack_app.fake.of("views.publish"):  # never enrolled, then fresh: the same
        text = json.dumps(published.body["view"])
        assert "Requests waiting for your decision: 2" in text
        assert "1 access request waits: send `/signpost pending` to see it (Signpost asks for a code first)." in text
        assert "Registration R1: a Slack account asks to act as S001; waiting 0 min" in text
        buttons = [(e["action_id"], e["text"]["text"]) for _, e in buttons_in(published.body["view"]["blocks"])]
        assert buttons == [("approve", "Approve R1"), ("deny", "Deny R1")]
        for private in ("999 000", "Mia", "Stone", "30/06/2015", "S1 4ZZ", "section 47 enquiry"):
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
    assert [e.action for e in await slack_events(slack_app.signpost)] == ["home"]


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


def home_tab_click(app: SlackHarness, user: SlackUser, button: dict[str, Any], block_id: str) -> dict[str, Any]:
    """What Slack sends when ``button`` is clicked on the App Home tab: the container is the Home
    tab's view (of type ``home``), and there is no response_url."""
    click = app.slack.block_action_from_view(user, button, block_id, "V0HOME01")
    click["view"].update(type="home", callback_id="", root_view_id="V0HOME01")
    return click


async def register_s001(slack_app: SlackHarness) -> None:
    """A Slack account asks to act as S001: a registration Southvale's duty managers decide, the one
    request the Home tab lists with Approve and Deny (an access request names a child: counted)."""
    asked = await say(slack_app.signpost, Principal(Platform.SLACK, "T0001", "U0NEWHOME"), "register S001")
    assert asked.text.startswith("If the id you gave is an active practitioner's"), asked.text


async def approve_on_home(slack_app: SlackHarness, user: SlackUser, event_id: str) -> tuple[str, dict[str, Any]]:
    """Open ``user``'s Home tab (the one views.publish so far) and find its one Approve button:
    (block id, element)."""
    home = {"type": "app_home_opened", "user": user.user_id, "channel": "D0001", "tab": "home", "event_ts": "1.2"}
    await slack_app.slack.event(user, home, event_id=event_id)
    await slack_app.front.idle()
    [published] = slack_app.fake.of("views.publish")
    [(block_id, approve)] = [
        (b, e) for b, e in buttons_in(published.body["view"]["blocks"]) if e["action_id"] == "approve"
    ]
    return block_id, approve


async def test_an_approve_clicked_on_the_home_tab_is_answered_in_a_modal_never_over_the_home_tab(
    slack_app: SlackHarness,
) -> None:
    """The Home tab is not a modal: views.update with a modal over it (the click's view id) put the
    decision's answer where Slack takes only a Home tab (views.publish). The answer goes into a modal
    opened with the click's trigger id, as for a click in a message; the decision is audited once."""
    await load_access(slack_app.signpost)
    await register_s001(slack_app)
    user = await slack_app.link("DM02", DUTY)
    block_id, approve = await approve_on_home(slack_app, user, "Ev0010")
    click = home_tab_click(slack_app, user, approve, block_id)
    assert (await slack_app.slack.interactive(click)).status == 200
    await slack_app.front.idle()
    assert [c.body for c in slack_app.fake.of("views.update") if c.body.get("view_id") == "V0HOME01"] == []
    assert slack_app.fake.of("views.push") == []
    [opened] = slack_app.fake.of("views.open")
    assert opened.body["trigger_id"] == click["trigger_id"] and opened.body["view"]["type"] == "modal"
    [answer] = [c for c in slack_app.fake.of("views.update") if c.body.get("view_id") != "V0HOME01"]
    assert "approved" in json.dumps(answer.body["view"]).lower()
    decisions = [e for e in await slack_events(slack_app.signpost) if e.action == "approve"]
    assert [(e.user_id, e.outcome) for e in decisions] == [(user.user_id, "done")]


async def test_an_unreadable_button_on_the_home_tab_is_answered_kindly_in_a_modal(slack_app: SlackHarness) -> None:
    """A Home tab button Signpost cannot read (an older version's): audited once, and said so in a
    modal of its own, never over the Home tab (it has no response_url to answer in either)."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("DM01", DUTY)
    button = {"action_id": "approve", "value": "not a Signpost button", "text": {"type": "plain_text", "text": "x"}}
    assert (await slack_app.slack.interactive(home_tab_click(slack_app, user, button, "b1"))).status == 200
    await slack_app.front.idle()
    assert slack_app.fake.of("views.update") == []
    [opened] = slack_app.fake.of("views.open")
    assert bot.slack.front.UNKNOWN_BUTTON in json.dumps(opened.body["view"])
    assert [(e.action, e.outcome) for e in await slack_events(slack_app.signpost)] == [("usage", "invalid")]


async def test_a_decision_on_the_home_tab_republishes_it_without_the_decided_request(slack_app: SlackHarness) -> None:
    """Slack shows the Home tab last published until it is next opened: after Approve there, the
    tab listed the decided registration, buttons and all. It is published again for the person who
    decided, as it now is; the decision is still audited once."""
    await load_access(slack_app.signpost)
    await register_s001(slack_app)
    user = await slack_app.link("DM02", DUTY)
    block_id, approve = await approve_on_home(slack_app, user, "Ev0011")
    assert (await slack_app.slack.interactive(home_tab_click(slack_app, user, approve, block_id))).status == 200
    await slack_app.front.idle()
    [_, republished] = slack_app.fake.of("views.publish")
    assert republished.body["user_id"] == user.user_id and republished.body["view"]["type"] == "home"
    assert "Requests waiting for your decision: 0" in json.dumps(republished.body["view"])
    assert buttons_in(republished.body["view"]["blocks"]) == []
    decisions = [e for e in await slack_events(slack_app.signpost) if e.action == "approve"]
    assert [(e.user_id, e.outcome) for e in decisions] == [(user.user_id, "done")]


async def test_a_decision_on_the_home_tab_that_needs_a_code_republishes_it_once_the_code_is_in(
    slack_app: SlackHarness,
) -> None:
    """Approve on the Home tab (a registration's: an access request is only counted there) with a
    step-up older than its freshness: the code is asked in the modal first; the tab is published
    again only once the code is in and the decision made."""
    await load_access(slack_app.signpost)
    await register_s001(slack_app)
    totp = await link_with_authenticator(slack_app.signpost, "DM02", DUTY)
    block_id, approve = await approve_on_home(slack_app, DUTY, "Ev0012")
    later(slack_app.signpost, minutes=31)
    assert (await slack_app.slack.interactive(home_tab_click(slack_app, DUTY, approve, block_id))).status == 200
    await slack_app.front.idle()
    assert len(slack_app.fake.of("views.open")) == 1  # the modal, then the code asked in it
    [asked] = slack_app.fake.of("views.update")
    assert asked.body["view"]["callback_id"] == render.CODE_CALLBACK
    assert len(slack_app.fake.of("views.publish")) == 1  # nothing decided yet
    submission = slack_app.slack.view_submission(
        DUTY, asked.body["view"], "V0CODE1", {"code": {"code": code_for(slack_app.signpost, totp)}}
    )
    answer = await slack_app.shown_after(submission)
    assert "approved" in json.dumps(answer["view"]).lower()
    await slack_app.front.idle()
    [_, republished] = slack_app.fake.of("views.publish")
    assert republished.body["user_id"] == DUTY.user_id
    assert "Requests waiting for your decision: 0" in json.dumps(republished.body["view"])
    assert buttons_in(republished.body["view"]["blocks"]) == []


async def test_an_unknown_button_from_a_linked_practitioner_is_audited_under_their_practitioner_id(
    slack_app: SlackHarness,
) -> None:
    """A click whose action id Signpost does not know came in a request whose signature Bolt
    verified: its event names the clicker's practitioner, so a query by practitioner finds it."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    button = {"action_id": "not_ours", "value": "{}", "text": {"type": "plain_text", "text": "x"}}
    click = slack_app.slack.block_action_from_message(user, button, "actions-0")
    assert (await slack_app.slack.interactive(click)).status == 200
    await slack_app.front.idle()
    [event] = await slack_events(slack_app.signpost)
    assert (event.action, event.detail, event.user_id, event.actor_id) == (
        "usage",
        "unknown button",
        NURSE.user_id,
        "P002",
    )


async def test_an_unknown_button_whose_clickers_link_cannot_be_read_is_still_audited_naming_no_one(
    slack_app: SlackHarness,
) -> None:
    """When the clicker's link to the register cannot be read, the click is audited all the same,
    naming no practitioner, with one warning and no failed task."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    async with slack_app.signpost.ctx.db.write() as session:
        await session.execute(text("ALTER TABLE chat_identities RENAME TO chat_identities_gone"))
    button = {"action_id": "not_ours", "value": "{}", "text": {"type": "plain_text", "text": "x"}}
    with logged_at("info") as log:
        assert (
            await slack_app.slack.interactive(slack_app.slack.block_action_from_message(user, button, "a-0"))
        ).status == 200
        await slack_app.front.idle()
    assert "refused_actor_unread" in log.events() and "slack_task_failed" not in log.events()
    [event] = await slack_events(slack_app.signpost)
    assert (event.action, event.detail, event.user_id, event.actor_id) == (
        "usage",
        "unknown button",
        NURSE.user_id,
        None,
    )
