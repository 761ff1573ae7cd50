"""DM notices, rate limits and Web API failures: what reaches Slack, what is logged, what is kept."""

from __future__ import annotations

import asyncio
import json

import pytest
import structlog

from bot.delivery import DeliveryFailed
from handlers.vocabulary import Button, Notice, Platform, Principal
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, slack_events
from tests.factories import AMY, BEN, CHILDREN, PRACTITIONERS, SHIELDED, load_standard

DUTY = SlackUser("U0DUTY")
NURSE = SlackUser("U0NURSE")
NOTICE = Notice(
    "DM01",
    "access_request",
    f"A practitioner asked for access to shielded record {SHIELDED}. Open Signpost to decide.",
    (Button("approve", "Approve", "approve 7", "primary"), Button("deny", "Deny", "deny 7", "danger")),
    "req-7",
)


def personal_values() -> set[str]:
    """Every name, date of birth, postcode, phone and email in the synthetic feeds."""
    values: set[str] = set()
    for row in CHILDREN.strip().splitlines()[1:]:
        _ref, given, family, aliases, dob, _sex, postcode, *_ = row.split(",")
        values.update({given, family, dob, postcode, *aliases.split(";")})
        day = dob.split("-")
        values.add(f"{day[2]}/{day[1]}/{day[0]}")
    for row in PRACTITIONERS.strip().splitlines()[1:]:
        _id, given, family, _role, _org, _la, phone, email, _roles = row.split(",")
        values.update({given, family, phone, email})
    return {v for v in values if v}


def to(user: SlackUser) -> Principal:
    return Principal(Platform.SLACK, user.team_id, user.user_id)


async def test_notice_is_a_direct_message_with_its_text_and_buttons(slack_app: SlackHarness) -> None:
    await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    [opened] = slack_app.fake.of("conversations.open")
    assert opened.body["users"] == DUTY.user_id
    [posted] = slack_app.fake.of("chat.postMessage")
    assert posted.body["channel"] == opened.answer["channel"]["id"]
    assert posted.body["text"] == NOTICE.text
    actions = [b for b in posted.body["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for b in actions for e in b["elements"]] == ["approve", "deny"]


async def test_a_second_notice_to_the_same_person_reuses_their_direct_message_channel(slack_app: SlackHarness) -> None:
    """One Web API call a notice once the person has been written to: their DM channel is kept."""
    await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    await slack_app.front.deliverer.deliver(to(NURSE), NOTICE)
    opened = slack_app.fake.of("conversations.open")
    assert [o.body["users"] for o in opened] == [DUTY.user_id, NURSE.user_id]
    posts = slack_app.fake.of("chat.postMessage")
    duty_channel, nurse_channel = (o.answer["channel"]["id"] for o in opened)
    assert [p.body["channel"] for p in posts] == [duty_channel, duty_channel, nurse_channel]


async def test_a_kept_channel_slack_no_longer_knows_is_opened_again_and_the_notice_delivered(
    slack_app: SlackHarness,
) -> None:
    await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    slack_app.fake.fail("chat.postMessage", "channel_not_found")
    await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    first, again = slack_app.fake.of("conversations.open")
    posts = slack_app.fake.of("chat.postMessage")
    assert [p.answer["ok"] for p in posts] == [True, False, True]
    assert posts[1].body["channel"] == first.answer["channel"]["id"]
    assert posts[2].body["channel"] == again.answer["channel"]["id"]
    assert posts[2].body["text"] == NOTICE.text


async def test_a_kept_channel_that_fails_otherwise_fails_the_delivery_without_reopening(
    slack_app: SlackHarness,
) -> None:
    """Only a channel Slack says is gone is opened again; any other refusal is the outbox's to retry."""
    await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    slack_app.fake.fail("chat.postMessage", "internal_error")
    with pytest.raises(DeliveryFailed):
        await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    assert len(slack_app.fake.of("conversations.open")) == 1


async def test_no_personal_data_in_any_chat_post_message_body(slack_app: SlackHarness) -> None:
    """Lookups answer privately (an ephemeral ack, a modal or response_url); DMs carry notices only,
    never child data."""
    await load_standard(slack_app.signpost)
    nurse = await slack_app.link("P002", NURSE)
    duty = await slack_app.link("DM01", DUTY)
    acks = []
    for text in (AMY, BEN, "Amy Jones 03/04/2014", SHIELDED, "help"):
        acks.append(await (await slack_app.slack.command(nurse, text)).text())
    await slack_app.front.idle()
    await slack_app.front.deliverer.deliver(to(duty), NOTICE)
    posts = slack_app.fake.of("chat.postMessage")
    assert len(posts) == 1
    leaked = {value for value in personal_values() for post in posts if value in post.raw}
    assert leaked == set()
    assert "Sam Carter" in acks[0]  # answered privately, in the ack
    answers = [json.loads(ack) for ack in acks if ack]
    assert answers and all(answer["response_type"] == "ephemeral" for answer in answers)
    assert all(c.body.get("response_type") != "in_channel" for c in slack_app.fake.calls)


async def test_rate_limited_post_is_retried_after_retry_after(slack_app: SlackHarness) -> None:
    slack_app.fake.rate_limit("chat.postMessage", retry_after=0)
    await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    posts = slack_app.fake.of("chat.postMessage")
    assert len(posts) == 2 and posts[0].answer["error"] == "ratelimited" and posts[1].answer["ok"] is True


async def test_a_long_retry_after_fails_the_notice_at_once_instead_of_waiting_it_out(slack_app: SlackHarness) -> None:
    """Slack asks for an hour: the send fails now (the outbox retries it with backoff) rather than
    waiting inside the notice's two-minute claim, where another replica would send it again."""
    slack_app.fake.rate_limit("chat.postMessage", retry_after=3600)
    async with asyncio.timeout(30):  # a guard only: before, this waited an hour, three times
        with pytest.raises(DeliveryFailed, match="ratelimited"):
            await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    [post] = slack_app.fake.of("chat.postMessage")
    assert post.answer["error"] == "ratelimited"


async def test_a_retry_after_of_digits_that_are_not_ascii_fails_the_notice_not_the_sender(
    slack_app: SlackHarness,
) -> None:
    """A Retry-After of "²" (a digit to ``str.isdigit``, not to ``int``) is no number of seconds to
    wait: the send fails as ratelimited (the outbox retries it), never with a ValueError."""
    slack_app.fake.rate_limit("chat.postMessage", retry_after="\u00b2")
    async with asyncio.timeout(30):
        with pytest.raises(DeliveryFailed, match="ratelimited"):
            await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)


async def test_failed_notice_raises_delivery_failed_and_logs_no_personal_data(
    slack_app: SlackHarness,
) -> None:
    slack_app.fake.fail("chat.postMessage", "channel_not_found")
    with structlog.testing.capture_logs() as logs, pytest.raises(DeliveryFailed, match="channel_not_found"):
        await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    assert [(e["event"], e["error"], e["kind"]) for e in logs] == [
        ("slack_notice_failed", "channel_not_found", "access_request")
    ]
    assert NOTICE.text not in json.dumps(logs)


async def test_an_error_not_shaped_like_slack_s_codes_is_not_repeated(slack_app: SlackHarness) -> None:
    """Slack's "error" field was logged and raised as received: a proxy or a fake answering with a
    page, or anything it echoed, went into the log. Only an error shaped like Slack's codes is named."""
    slack_app.fake.fail("chat.postMessage", "Zqxmarker Vvtest was here <html>")
    with structlog.testing.capture_logs() as logs, pytest.raises(DeliveryFailed) as failed:
        await slack_app.front.deliverer.deliver(to(DUTY), NOTICE)
    assert [(e["event"], e["error"]) for e in logs] == [("slack_notice_failed", "unrecognised_error")]
    assert "Zqxmarker" not in json.dumps(logs) and "Zqxmarker" not in str(failed.value)


async def test_failed_reply_is_logged_without_personal_data_and_the_audit_record_stays(
    modal_app: SlackHarness,
) -> None:
    """views.update fails (a late answer): the lookup's audit event is durable anyway, with one saying
    its answer was not shown; the log names the method only."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    modal_app.fake.fail("views.update", "view_not_found")
    with structlog.testing.capture_logs() as logs:
        await modal_app.slack.command(user, AMY)
        await modal_app.front.idle()
    failures = [e for e in logs if e["event"] == "slack_api_failed"]
    assert [(e["method"], e["error"]) for e in failures] == [("views.update", "view_not_found")]
    rendered = json.dumps(logs, default=str)
    assert not {value for value in personal_values() if value in rendered}
    # The lookup's event stands, and the next says its answer was not shown (tests/bot/slack/test_not_shown.py).
    assert [(e.action, e.outcome) for e in await slack_events(modal_app.signpost)] == [
        ("lookup", "answered"),
        ("answer_not_shown", "failed"),
    ]


async def test_an_answer_slack_refuses_to_show_leaves_a_message_not_checking_for_ever(modal_app: SlackHarness) -> None:
    """views.update refused (invalid_arguments: a view Slack will not take): the modal said
    "Checking…" for ever. It now says the answer could not be shown here and to ask again."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    modal_app.fake.fail("views.update", "invalid_arguments")
    await modal_app.slack.command(user, AMY)
    await modal_app.front.idle()
    refused, shown = modal_app.fake.of("views.update")
    assert "Sam Carter" in refused.raw
    assert "would not show it in this window" in shown.raw and "Sam Carter" not in shown.raw
    assert [(e.action, e.outcome) for e in await slack_events(modal_app.signpost)] == [
        ("lookup", "answered"),
        ("answer_not_shown", "failed"),
    ]


async def test_rate_limited_reply_is_retried_and_delivered(modal_app: SlackHarness) -> None:
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    modal_app.fake.rate_limit("views.update", retry_after=0)
    await modal_app.slack.command(user, AMY)
    await modal_app.front.idle()
    updates = modal_app.fake.of("views.update")
    assert len(updates) == 2 and "Sam Carter" in updates[1].raw
