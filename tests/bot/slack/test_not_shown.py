"""An answer Slack never showed is on record as not shown: the lookup's event stands (it was
answered, and audited before it was sent), and one ``answer_not_shown`` event follows it, naming
the same child and request, so that an auditor or the child's subject access report does not take
the practitioner to have been told. One for each failed delivery; none when it is shown, none for a
redelivery. Real signed requests in; the fake Web API failing or down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.app import Signpost
from bot.slack.front import SLACK_UNREACHABLE
from store.audit.log import EventFilter, iter_events
from store.audit.sar import subject_access
from store.tables.audit import AuditEvent
from tests.bot.conftest import SlackHarness, serving
from tests.bot.log_stream import logged_at
from tests.bot.slack.slack_requests import SlackUser, buttons_in, slack_events
from tests.bot.slack.test_interactivity import DUTY, access_request_notice, deliver_notice
from tests.factories import AMY, SHIELDED, load_standard
from tests.fakes.slack_api import FakeSlackApi

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")
RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
NOT_SHOWN_WORDS = "the answer was not shown to the practitioner"


def assert_refers_to(unshown: AuditEvent, answered: AuditEvent, reason: str) -> None:
    """The not-shown event names the same child, person and request as the event that answered."""
    assert (unshown.action, unshown.outcome) == ("answer_not_shown", "failed")
    assert unshown.subject_refs == answered.subject_refs == AMY
    assert unshown.correlation_id == answered.correlation_id
    assert (unshown.actor_id, unshown.user_id, unshown.actor_org) == (
        answered.actor_id,
        answered.user_id,
        answered.actor_org,
    )
    assert unshown.detail == f"{NOT_SHOWN_WORDS.replace('the answer', f'the answer to event {answered.seq}')}: {reason}"
    assert unshown.terms is None and unshown.seq > answered.seq


async def goes_down(app: SlackHarness, user: SlackUser) -> None:
    """Slack answers one command (Bolt's look-up of the bot's ids is kept), then goes down: the
    next command is not yet known to be in an outage, so its answer is sent and lost."""
    await app.slack.command(user, "help")
    await app.front.idle()
    app.fake.down = True


@asynccontextmanager
async def late_app(signpost: Signpost, fake: FakeSlackApi) -> AsyncIterator[SlackHarness]:
    """Every search later than the ack budget (0): answered in a modal or through response_url."""
    async with serving(signpost, fake, SIGNPOST_SLACK_ANSWER_BUDGET=0) as harness:
        yield harness


async def test_a_late_answer_during_an_outage_is_recorded_as_not_shown(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """Slack down and the search slower than the ack: the ack says to try again, the lookup is
    audited as answered, and the audit now says its answer was shown to no one."""
    await load_standard(signpost)
    fake_slack.down = True
    with logged_at("info") as log:
        async with late_app(signpost, fake_slack) as app:
            user = await app.link("P002", NURSE)
            response = await app.slack.command(user, AMY)
            text = await response.text()
            await app.front.idle()
    assert response.status == 200 and SLACK_UNREACHABLE in text and "Carter" not in text
    answered, unshown = await slack_events(signpost)
    assert (answered.action, answered.outcome) == ("lookup", "answered")
    assert_refers_to(unshown, answered, "slack_unreachable")
    assert "Amy" not in log.written and not [line for line in log.lines() if line["level"] == "error"]


async def test_an_answer_views_update_loses_is_recorded_as_not_shown_once(modal_app: SlackHarness) -> None:
    """views.update fails twice (the answer, then the "could not show it" fallback): one event."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    modal_app.fake.fail("views.update", "internal_error", times=2)
    await modal_app.slack.command(user, AMY)
    await modal_app.front.idle()
    assert len(modal_app.fake.of("views.update")) == 2
    answered, unshown = await slack_events(modal_app.signpost)
    assert_refers_to(unshown, answered, "views.update:internal_error")


async def test_an_answer_the_response_url_refuses_is_recorded_as_not_shown(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """A redelivered command's answer goes through response_url (its trigger has expired); Slack
    answers 500: one warning line, as before, and the event saying the answer was not shown."""
    await load_standard(signpost)
    async with late_app(signpost, fake_slack) as app:
        user = await app.link("P002", NURSE)
        await goes_down(app, user)
        with logged_at("info") as log:
            await app.slack.command(user, AMY, headers=RETRY)
            await app.front.idle()
    assert [c.answer for c in fake_slack.of("response_url")][1:] == [{"status": 500}]
    assert log.events().count("slack_response_failed") == 1
    _help, answered, unshown = await slack_events(signpost)
    assert_refers_to(unshown, answered, "response_url:http_500")


async def test_an_answer_with_no_modal_and_no_reachable_response_url_is_recorded_once_and_not_for_its_redelivery(
    signpost: Signpost, fake_slack: FakeSlackApi
) -> None:
    """views.open refused and the response_url post failing: not shown, recorded once. Slack then
    delivers the same command again: a duplicate, answered with nothing new, and not recorded again."""
    await load_standard(signpost)
    async with late_app(signpost, fake_slack) as app:
        user = await app.link("P002", NURSE)
        await goes_down(app, user)
        trigger = app.slack.trigger()
        await app.slack.command(user, AMY, trigger=trigger)
        await app.front.idle()
        await app.slack.command(user, AMY, trigger=trigger, headers=RETRY)
        await app.front.idle()
    assert [c.method for c in fake_slack.outbound()][1:] == ["views.open", "response_url"]
    _help, answered, unshown = await slack_events(signpost)
    assert_refers_to(unshown, answered, "response_url:http_500")


async def test_a_decision_whose_modal_slack_refuses_and_that_has_no_message_to_answer_in_is_recorded_as_not_shown(
    slack_app: SlackHarness,
) -> None:
    """Approve clicked where Slack sent no response_url, and views.open refused: the decision is
    made and audited, and shown to no one; the audit says so, naming the shielded child."""
    notice, _ = await access_request_notice(slack_app)
    posted = await deliver_notice(slack_app, DUTY, notice)
    [(block_id, approve), _deny] = buttons_in(posted["blocks"])
    click = slack_app.slack.block_action_from_message(DUTY, approve, block_id)
    del click["response_url"]
    slack_app.fake.fail("views.open", "expired_trigger_id")
    assert (await slack_app.slack.interactive(click)).status == 200
    await slack_app.front.idle()
    assert slack_app.fake.of("response_url") == [] and slack_app.fake.of("views.update") == []
    decided, unshown = await slack_events(slack_app.signpost)
    assert (decided.action, decided.outcome, decided.subject_refs) == ("approve", "done", SHIELDED)
    assert (unshown.action, unshown.outcome, unshown.subject_refs) == ("answer_not_shown", "failed", SHIELDED)
    assert unshown.correlation_id == decided.correlation_id and unshown.actor_id == decided.actor_id == "DM02"
    assert unshown.detail.endswith(f"event {decided.seq} was not shown to the practitioner: response_url:none")


async def test_answers_that_are_shown_are_recorded_once_with_nothing_more(modal_app: SlackHarness) -> None:
    """Shown in a modal, through response_url (a redelivered search; help): each command's own event only."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    for headers in ({}, RETRY):
        await modal_app.slack.command(user, AMY, headers=headers)
        await modal_app.front.idle()
    await modal_app.slack.command(user, "help")
    await modal_app.front.idle()
    assert "Sam Carter" in modal_app.fake.of("views.update")[0].raw
    assert ["Sam Carter" in call.raw for call in modal_app.fake.of("response_url")] == [True, False]
    actions = [(e.action, e.outcome) for e in await slack_events(modal_app.signpost)]
    assert actions == [("lookup", "answered"), ("lookup", "answered"), ("help", "info")]


async def test_help_not_shown_is_not_recorded(fast_app: SlackHarness) -> None:
    """An answer that told nothing about a child (help) lost on the way: its own event is all."""
    await load_standard(fast_app.signpost)
    user = await fast_app.link("P002", NURSE)
    await goes_down(fast_app, user)
    await fast_app.slack.command(user, "help")
    await fast_app.front.idle()
    assert [c.answer for c in fast_app.fake.of("response_url")][1:] == [{"status": 500}]
    assert [e.action for e in await slack_events(fast_app.signpost)] == ["help", "help"]


async def test_the_childs_report_and_the_audit_export_say_the_answer_was_not_shown(modal_app: SlackHarness) -> None:
    """The subject access report reads: looked up, contact details shown; then, in plain words,
    that the answer was not shown to the practitioner. The export (by child) has the event too."""
    signpost = modal_app.signpost
    await load_standard(signpost)
    user = await modal_app.link("P002", NURSE)
    modal_app.fake.fail("views.update", "view_not_found", times=2)
    await modal_app.slack.command(user, AMY)
    await modal_app.front.idle()
    reason = "views.update:view_not_found"
    report = await subject_access(signpost.ctx.db, signpost.ctx.sealer, int(AMY), signpost.ctx.clock.now())
    # The lead professional's notice is queued with the lookup (and reaches them: it is no answer to the nurse).
    assert [(e.action, e.outcome) for e in report.entries] == [
        ("lead_professional_informed", "done"),
        ("lookup", "answered"),
        ("answer_not_shown", "failed"),
    ]
    text = report.to_text()
    assert "looked up by reference; contact details shown" in text
    who, said = report.entries[-1].line().splitlines()
    assert who in text and said in text
    assert "School nurse, Northshire School Health" in who
    assert said.strip().startswith(f"{NOT_SHOWN_WORDS}; the chat platform did not deliver it; nothing of it was seen")
    exported = [e async for e in iter_events(signpost.ctx.db, EventFilter(child_ref=int(AMY)))]
    _told, lookup, unshown = exported
    assert [(e["action"], e["outcome"]) for e in exported][1:] == [
        ("lookup", "answered"),
        ("answer_not_shown", "failed"),
    ]
    assert unshown["detail"] == f"the answer to event {lookup['seq']} was not shown to the practitioner: {reason}"
    assert unshown["correlation_id"] == lookup["correlation_id"]


async def test_a_retry_of_a_command_whose_answer_went_in_a_late_ack_records_it_not_shown_once(
    fast_app: SlackHarness,
) -> None:
    """The search is answered in the slash command's own ack, which reached Slack after its 3 s:
    Slack dropped it and delivers the command again (X-Slack-Retry-Num, http_timeout). The retry
    runs nothing again (one lookup), is told in its ack that the answer could not be shown (no
    signpost in it), and the audit says the first answer was not shown: once, however often Slack
    retries."""
    await load_standard(fast_app.signpost)
    user = await fast_app.link("P002", NURSE)
    trigger = fast_app.slack.trigger()
    first = await fast_app.slack.command(user, AMY, trigger=trigger)
    assert "Sam Carter" in await first.text()
    texts = []
    for n in ("1", "2"):
        again = await fast_app.slack.command(
            user, AMY, trigger=trigger, headers={"X-Slack-Retry-Num": n, "X-Slack-Retry-Reason": "http_timeout"}
        )
        assert again.status == 200
        texts.append(await again.text())
        await fast_app.front.idle()
    assert "Signpost has your answer but Slack would not show it" in texts[0] and "Carter" not in texts[0]
    assert texts[1] == "", "the second retry: nothing new to say"
    assert fast_app.fake.outbound() == []
    answered, unshown = await slack_events(fast_app.signpost)
    assert (answered.action, answered.outcome) == ("lookup", "answered")
    assert_refers_to(unshown, answered, "slack_retry:http_timeout")


async def test_a_retry_whose_first_answer_was_shown_through_the_modal_records_nothing_more(
    modal_app: SlackHarness,
) -> None:
    """The first delivery acked empty and showed its answer in the modal: Slack's retry (the empty
    ack was late) finds that answer shown; nothing is recorded as not shown, nothing runs twice."""
    await load_standard(modal_app.signpost)
    user = await modal_app.link("P002", NURSE)
    trigger = modal_app.slack.trigger()
    await modal_app.slack.command(user, AMY, trigger=trigger)
    await modal_app.front.idle()
    again = await modal_app.slack.command(user, AMY, trigger=trigger, headers=RETRY)
    await modal_app.front.idle()
    assert await again.text() == ""
    assert "Sam Carter" in modal_app.fake.of("views.update")[0].raw
    assert [(e.action, e.outcome) for e in await slack_events(modal_app.signpost)] == [("lookup", "answered")]


async def test_a_retry_reason_slack_never_sends_is_recorded_as_other(fast_app: SlackHarness) -> None:
    """X-Slack-Retry-Reason is not signed: a reason that is not one of Slack's codes is never
    written as it came; the first answer is still recorded as not shown, as "other"."""
    await load_standard(fast_app.signpost)
    user = await fast_app.link("P002", NURSE)
    trigger = fast_app.slack.trigger()
    await fast_app.slack.command(user, AMY, trigger=trigger)
    forged = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "Amy Jones 03/04/2014"}
    await fast_app.slack.command(user, AMY, trigger=trigger, headers=forged)
    await fast_app.front.idle()
    answered, unshown = await slack_events(fast_app.signpost)
    assert_refers_to(unshown, answered, "slack_retry:other")
