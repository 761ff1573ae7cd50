"""Slack over HTTP: signed requests to /slack/events of the running app; what Slack receives."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from bot.slack.front import NO_WAY_BACK
from handlers.dispatch.chain import NOT_REGISTERED
from handlers.dispatch.dispatcher import AUDIT_FAILED_TEXT, DUPLICATE
from store.tables.delivery import Notice as NoticeRow
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, signed_headers, slack_events
from tests.factories import AMY, load_standard
from tests.store.delivery.test_deliveries import break_the_chain_head, restore_the_chain_head

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")
STRANGER = SlackUser("U0STRANGER")


def all_text(view_or_message: object) -> str:
    return json.dumps(view_or_message, ensure_ascii=False)


async def test_help_is_acknowledged_empty_and_answered_privately_through_response_url(
    slack_app: SlackHarness,
) -> None:
    """`/signpost help`: an empty 200 ack, then one ephemeral response_url post (never in_channel)."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    response = await slack_app.slack.command(user, "help")
    assert response.status == 200
    assert await response.text() == ""
    await slack_app.front.idle()
    [posted] = slack_app.fake.of("response_url")
    assert posted.body["response_type"] == "ephemeral"
    assert posted.body["replace_original"] is False
    assert "who else is working" in posted.body["text"]
    assert "REFERENCE` (a child's reference number)" in all_text(posted.body["blocks"])
    assert not slack_app.fake.of("chat.postMessage")
    [event] = await slack_events(slack_app.signpost)
    assert (event.platform, event.tenant, event.user_id, event.action) == (
        "slack",
        "T0001",
        "U0NURSE",
        "help",
    )


def sections_of(blocks: list[dict[str, object]]) -> list[str]:
    return [str(b["text"]["text"]) for b in blocks if b["type"] == "section"]  # type: ignore[index]


async def test_reference_is_answered_in_the_ack_itself_lead_first_ended_marked_with_no_web_api_call(
    slack_app: SlackHarness,
) -> None:
    """A stepped-up lookup: the signposts are the slash command's own HTTP response, an ephemeral
    message; Slack's Web API hears nothing (no views.open, no response_url) and the audit event is
    already durable when the answer leaves."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    response = await slack_app.slack.command(user, AMY)
    assert response.status == 200
    answer = await response.json()
    [event] = await slack_events(slack_app.signpost)  # durable before the ack was sent
    assert (event.action, event.outcome, event.actor_id, event.channel) == ("lookup", "answered", "P002", "channel")
    assert answer["response_type"] == "ephemeral"
    sections = sections_of(answer["blocks"])
    assert sections[0].startswith("Signposts for 999 000 0018")
    assert sections[1].startswith("*Sam Carter*") and "Lead professional" in sections[1]
    tom = next(s for s in sections if "Tom Reed" in s)
    assert "*Ended* 20/07/2024" in tom
    assert "0161 496 0002" in all_text(answer)
    assert AMY not in all_text(answer).replace("999 000 0018", "")  # nothing echoed but the reference typed
    await slack_app.front.idle()
    assert slack_app.fake.outbound() == []
    assert len(await slack_events(slack_app.signpost)) == 1


async def test_a_late_answer_goes_to_a_placeholder_modal_then_views_update(modal_app: SlackHarness) -> None:
    """Past the answer budget (here 0 s, so always): an empty ack, a placeholder modal opened with
    the trigger id, then the signposts in it; nothing in a message."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    response = await modal_app.slack.command(user, AMY)
    assert (response.status, await response.text()) == (200, "")
    await modal_app.front.idle()
    [opened] = modal_app.fake.of("views.open")
    assert "Checking" in all_text(opened.body["view"])
    assert "Carter" not in all_text(opened.body["view"])
    [updated] = modal_app.fake.of("views.update")
    assert updated.body["view_id"] == opened.answer["view"]["id"]
    assert sections_of(updated.body["view"]["blocks"])[1].startswith("*Sam Carter*")
    assert not modal_app.fake.of("response_url") and not modal_app.fake.of("chat.postMessage")
    [event] = await slack_events(modal_app.signpost)
    assert (event.action, event.outcome) == ("lookup", "answered")


async def test_bad_signature_is_refused_with_401_and_nothing_happens(slack_app: SlackHarness) -> None:
    body = urlencode(slack_app.slack.command_body(NURSE, "help"))
    headers = signed_headers(body, content_type="application/x-www-form-urlencoded", secret="some-other-secret")
    response = await slack_app.slack.client.post("/slack/events", data=body.encode(), headers=headers)
    assert response.status == 401
    await slack_app.front.idle()
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


async def test_stale_timestamp_is_refused_with_401(slack_app: SlackHarness) -> None:
    """A correctly signed request older than five minutes is a possible replay."""
    body = urlencode(slack_app.slack.command_body(NURSE, "help"))
    headers = signed_headers(body, content_type="application/x-www-form-urlencoded", timestamp=int(time.time()) - 600)
    response = await slack_app.slack.client.post("/slack/events", data=body.encode(), headers=headers)
    assert response.status == 401
    await slack_app.front.idle()
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


async def test_missing_signature_headers_are_refused_with_401(slack_app: SlackHarness) -> None:
    body = urlencode(slack_app.slack.command_body(NURSE, "help"))
    response = await slack_app.slack.client.post(
        "/slack/events", data=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 401
    await slack_app.front.idle()
    assert slack_app.fake.calls == [] and await slack_app.audit() == []


async def test_unlinked_user_gets_the_polite_refusal_with_how_to_register(slack_app: SlackHarness) -> None:
    await load_standard(slack_app.signpost)
    response = await slack_app.slack.command(STRANGER, AMY)
    await slack_app.front.idle()
    assert slack_app.fake.outbound() == []
    answer = await response.json()
    assert answer["response_type"] == "ephemeral"
    text = all_text(answer)
    assert "not registered with Signpost" in text and "register YOUR_PRACTITIONER_ID" in text
    assert NOT_REGISTERED.startswith("You're not registered")
    assert "Amy" not in text and "Carter" not in text
    [event] = await slack_app.audit()
    assert (event.outcome, event.actor_id, event.user_id) == ("refused", None, "U0STRANGER")


async def test_malformed_text_gets_usage_help_privately(slack_app: SlackHarness) -> None:
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    await slack_app.slack.command(user, "who is this child please")
    await slack_app.front.idle()
    [posted] = slack_app.fake.of("response_url")
    assert posted.body["response_type"] == "ephemeral"
    assert posted.body["text"].startswith("Sorry, I didn't understand that")
    assert not slack_app.fake.of("views.open")
    [event] = await slack_events(slack_app.signpost)
    assert (event.action, event.outcome) == ("usage", "invalid")


async def test_retried_command_delivery_has_one_effect_and_its_lost_first_answer_on_record(
    slack_app: SlackHarness,
) -> None:
    """Slack redelivers (X-Slack-Retry-Num) with the same trigger id: nothing happens twice. Slack
    retries only when it had no answer in time, so the answer the first delivery put in its ack was
    never shown: the retry says so (no signpost in it), and so does the audit, beside the lookup."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    first = await slack_app.slack.command(user, AMY, trigger="77.1700000000.retried")
    await slack_app.front.idle()
    again = await slack_app.slack.command(
        user,
        AMY,
        trigger="77.1700000000.retried",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    await slack_app.front.idle()
    assert (first.status, again.status) == (200, 200)
    assert "Sam Carter" in await first.text()
    retold = await again.text()
    assert "Slack would not show it" in retold and "Sam Carter" not in retold
    assert slack_app.fake.outbound() == []
    assert [e.action for e in await slack_events(slack_app.signpost)] == ["lookup", "answer_not_shown"]


async def test_retried_help_delivery_answers_once(slack_app: SlackHarness) -> None:
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    for retry in (None, "1", "2"):
        headers = {"X-Slack-Retry-Num": retry} if retry else {}
        await slack_app.slack.command(user, "help", trigger="78.1700000000.help", headers=headers)
        await slack_app.front.idle()
    assert len(slack_app.fake.of("response_url")) == 1
    assert [e.action for e in await slack_events(slack_app.signpost)] == ["help"]


async def test_another_accounts_request_reusing_a_trigger_id_is_answered_and_audited_not_dropped(
    slack_app: SlackHarness,
) -> None:
    """A trigger id is one account's delivery: a second account's request carrying the same id
    (forged, or a platform's reuse) is its own request, answered and audited, not taken for a
    redelivery of the first and dropped with no audit event."""
    await load_standard(slack_app.signpost)
    nurse = await slack_app.link("P002", NURSE)
    other = await slack_app.link("P003", SlackUser("U0OTHER"))
    first = await slack_app.slack.command(nurse, AMY, trigger="80.1700000000.shared")
    await slack_app.front.idle()
    second = await slack_app.slack.command(other, AMY, trigger="80.1700000000.shared")
    await slack_app.front.idle()
    assert "Sam Carter" in await first.text()
    assert "Sam Carter" in await second.text(), "the second account was answered as a duplicate"
    events = await slack_events(slack_app.signpost)
    assert [(e.action, e.actor_id) for e in events] == [("lookup", "P002"), ("lookup", "P003")]


async def test_a_request_whose_audit_write_failed_is_answered_on_redelivery_not_already_received(
    slack_app: SlackHarness,
) -> None:
    """No "seen" without an event: when the audit write fails, Slack's retry of the same delivery is
    answered (and audited) once the store is back, never "Already received" with nothing on record."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    db = slack_app.signpost.ctx.db
    last_seq = await break_the_chain_head(db)
    await slack_app.slack.command(user, "help", trigger="79.1700000000.crash")
    await slack_app.front.idle()
    [refused] = slack_app.fake.of("response_url")
    assert refused.body["text"] == AUDIT_FAILED_TEXT
    await restore_the_chain_head(db, last_seq)
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    await slack_app.slack.command(user, "help", trigger="79.1700000000.crash", headers=retry)
    await slack_app.front.idle()
    [_, answered] = slack_app.fake.of("response_url")
    assert "who else is working" in answered.body["text"]
    assert DUPLICATE.text not in all_text(answered.body)
    assert [e.action for e in await slack_events(slack_app.signpost)] == ["help"]


async def test_when_the_modal_cannot_open_the_answer_comes_as_an_ephemeral_message(
    modal_app: SlackHarness,
) -> None:
    """A late answer, and views.open refused (e.g. an expired trigger): still private, through the response_url."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    modal_app.fake.fail("views.open", "expired_trigger_id")
    await modal_app.slack.command(user, AMY)
    await modal_app.front.idle()
    assert modal_app.fake.of("views.update") == []
    [posted] = modal_app.fake.of("response_url")
    assert posted.body["response_type"] == "ephemeral" and "Sam Carter" in all_text(posted.body["blocks"])
    assert [e.action for e in await slack_events(modal_app.signpost)] == ["lookup"]


async def test_a_registration_shows_the_duty_manager_who_slack_says_the_account_is(slack_app: SlackHarness) -> None:
    """`/signpost register P001` from an unlinked account: Signpost asks Slack (users.info) who the account
    is and puts that beside the register's record in the duty manager's notice; the asker sees neither."""
    await load_standard(slack_app.signpost)
    slack_app.fake.profiles[STRANGER.user_id] = {
        "id": STRANGER.user_id,
        "profile": {"real_name": "Mallory Example", "email": "mallory@elsewhere.example"},
    }
    await slack_app.slack.command(STRANGER, "register P001")
    await slack_app.front.idle()
    [asked] = slack_app.fake.of("users.info")
    assert asked.body["user"] == STRANGER.user_id
    async with slack_app.signpost.ctx.db.read() as session:
        texts = [n.body for n in (await session.execute(select(NoticeRow))).scalars()]
    [notice] = [t for t in texts if "Registration request" in t]
    assert "Slack reports this account as: Mallory Example, email mallory@elsewhere.example" in notice
    assert "Sam Carter" in notice  # the register's record of P001, beside it
    [answer] = slack_app.fake.of("response_url")
    assert "Mallory" not in json.dumps(answer.body) and "mallory@" not in json.dumps(answer.body)


async def command_without_response_url(app: SlackHarness, user: SlackUser, text: str) -> tuple[int, str]:
    """A signed slash command whose form carries no response_url (Slack always sends one)."""
    fields = app.slack.command_body(user, text)
    del fields["response_url"]
    response = await app.slack.post(urlencode(fields), "application/x-www-form-urlencoded")
    return response.status, await response.text()


@pytest.mark.parametrize(
    ("text", "action", "shown"),
    [("help", "help", "who else is working"), ("frobnicate the register", "usage", "didn't understand")],
)
async def test_a_command_without_a_response_url_is_answered_in_its_ack(
    slack_app: SlackHarness, text: str, action: str, shown: str
) -> None:
    """Help and usage went after an empty ack to a response_url there was none of: audited, shown to
    no one. With nowhere else to go, the answer is the ack itself, ephemeral, as a lookup's is."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    status, ack = await command_without_response_url(slack_app, user, text)
    assert status == 200 and ack, "an empty ack: the answer went nowhere"
    answer = json.loads(ack)
    assert answer["response_type"] == "ephemeral"
    assert shown in answer["text"] and "frobnicate" not in all_text(answer)
    await slack_app.front.idle()
    assert slack_app.fake.outbound() == []
    assert [e.action for e in await slack_events(slack_app.signpost)] == [action]


async def test_a_late_answer_with_no_response_url_and_no_modal_is_refused_kindly_in_the_ack(
    modal_app: SlackHarness,
) -> None:
    """Past the answer budget (0 s here), help has no modal to go to and no response_url: the ack
    says kindly that it could not be answered here, rather than an empty ack and nothing."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    status, ack = await command_without_response_url(modal_app, user, "help")
    assert status == 200
    answer = json.loads(ack)
    assert answer["response_type"] == "ephemeral" and answer["text"] == NO_WAY_BACK
    await modal_app.front.idle()
    assert modal_app.fake.outbound() == []
    assert [e.action for e in await slack_events(modal_app.signpost)] == ["help"]
