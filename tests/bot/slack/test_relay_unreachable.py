"""A blind relay to someone Signpost cannot reach is not delivered to them (review, HIGH).

A recipient with no linked chat account on a platform Signpost serves, or whose notice of the
message was closed unsent at the end of its week, cannot take the message: the relay chooses as it
would choose next (the child's authority's duty managers, then the admins), and only with nobody
reachable is the sender told it was not delivered. Real signed Slack requests, the real dispatcher,
the real outbox through the Slack deliverer, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.notify import Outbox
from handlers.access import jobs
from handlers.clock import FakeClock
from handlers.vocabulary import Platform, Principal
from store.people import practitioners
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import RelayMessage
from tests.access_helpers import fresh_say, load_access
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser
from tests.bot.teams.teams_support import link as link_on_teams
from tests.bot.teams.test_relay import LEE
from tests.factories import SHIELDED
from tests.fakes.slack_api import Call
from tests.stepup_helpers import ensure_enrolled

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")  # P002, Priya Shah: the sender
LEAD = SlackUser("U0LEAD")  # S001, Lee Hart: the shielded child's lead professional
JO = SlackUser("U0JO")  # DM02, Jo Bell: a Southvale duty manager
MARKER = "section 47 enquiry zebrafinch, call me on 0161 496 0002"


async def link(app: SlackHarness, practitioner_id: str, user: SlackUser) -> SlackUser:
    """Link a Slack account and step its practitioner up (the console helpers answer later codes)."""
    async with app.signpost.ctx.db.write() as session:
        principal = Principal(Platform.SLACK, user.team_id, user.user_id)
        await practitioners.link_identity(session, principal, practitioner_id, app.signpost.ctx.clock.now())
    await ensure_enrolled(app.signpost, practitioner_id)
    return user


async def said(app: SlackHarness, user: SlackUser, text: str) -> str:
    """What ``user`` was shown for ``/signpost text``: the ack, and any modal or message after it."""
    mark = len(app.fake.calls)
    response = await app.slack.command(user, text)
    assert response.status == 200
    ack = await response.text()
    await app.front.idle()
    return ack + " ".join(json.dumps(c.body, ensure_ascii=False) for c in app.fake.calls[mark:])


async def deliver(app: SlackHarness) -> int:
    return (await Outbox(app.signpost.ctx, [app.front.deliverer]).deliver_due()).delivered


def dms_to(app: SlackHarness, user: SlackUser) -> list[Call]:
    channels = {
        c.answer["channel"]["id"]
        for c in app.fake.calls
        if c.method == "conversations.open" and c.body["users"] == user.user_id
    }
    return [c for c in app.fake.calls if c.method == "chat.postMessage" and c.body["channel"] in channels]


async def relay_rows(app: SlackHarness) -> list[RelayMessage]:
    async with app.signpost.ctx.db.read() as session:
        return list((await session.execute(select(RelayMessage).order_by(RelayMessage.id))).scalars())


async def test_a_lead_with_no_linked_account_is_passed_over_for_the_linked_duty_manager(
    slack_app: SlackHarness,
) -> None:
    """The lead professional (S001) has no Slack link: the message goes to the Southvale duty
    manager who has one (Jo), whose DM arrives; the sender's 'delivered' and 'relay 1' are true."""
    await load_access(slack_app.signpost)
    nurse = await link(slack_app, "P002", NURSE)
    await link(slack_app, "DM02", JO)

    sent = await said(slack_app, nurse, f"message {SHIELDED} {MARKER}")
    assert "Message 1 about 999 000 0050 delivered to the professional responsible" in sent
    [row] = await relay_rows(slack_app)
    assert (row.recipients, row.recipient_role) == ("DM02", "duty_manager")  # DM03 has no link either

    assert await deliver(slack_app) == 1
    [notice] = dms_to(slack_app, JO)
    assert "about shielded record 999 000 0050" in notice.body["text"] and "(message 1)" in notice.body["text"]

    status = await said(slack_app, nurse, "relay 1")
    assert "Status: delivered" in status


async def test_with_nobody_reachable_the_sender_is_told_it_was_not_delivered(slack_app: SlackHarness) -> None:
    """Nobody who could take the message (lead, duty managers, admins) has a Slack link: the sender
    is told at once that Signpost has nobody to pass it to, never 'delivered'; no notice waits."""
    await load_access(slack_app.signpost)
    nurse = await link(slack_app, "P002", NURSE)

    sent = await said(slack_app, nurse, f"message {SHIELDED} {MARKER}")
    assert "delivered" not in sent
    assert "Signpost has nobody to pass a message about 999 000 0050 to yet" in sent
    assert await relay_rows(slack_app) == []
    async with slack_app.signpost.ctx.db.read() as session:
        kinds = set((await session.execute(select(NoticeRow.kind))).scalars())
    assert "relay_message" not in kinds


async def test_a_lead_whose_notice_was_closed_unsent_after_a_week_is_passed_over(
    slack_app: SlackHarness, clock: FakeClock
) -> None:
    """The lead is linked but Slack refuses their DM all week: once the outbox closes the notice
    unsent, the relay is not 'delivered' any more and the scheduled hand-on passes it to the linked
    duty manager, who is sent it; then 'delivered' again, to someone who can take it."""
    await load_access(slack_app.signpost)
    nurse = await link(slack_app, "P002", NURSE)
    await link(slack_app, "S001", LEAD)
    await link(slack_app, "DM02", JO)

    sent = await said(slack_app, nurse, f"message {SHIELDED} {MARKER}")
    assert "Message 1 about 999 000 0050 delivered" in sent
    [row] = await relay_rows(slack_app)
    assert row.recipients == "S001"

    slack_app.fake.fail("conversations.open", "user_disabled", times=1)
    assert await deliver(slack_app) == 0
    clock.advance(days=7, minutes=1)
    await deliver(slack_app)  # closes the week-old notice unsent, first
    async with slack_app.signpost.ctx.db.read() as session:
        [closed] = (await session.execute(select(NoticeRow).where(NoticeRow.kind == "relay_message"))).scalars()
    assert closed.dropped_at is not None and closed.delivered_at is None

    before = await fresh_say(slack_app.signpost, "P002", "relay 1")
    assert "Status: delivered" not in before.lines

    assert await jobs.hand_on_relays(slack_app.signpost.ctx, clock.now()) == 1
    [row] = await relay_rows(slack_app)
    assert (row.recipients, row.recipient_role) == ("DM02", "duty_manager")
    assert await deliver(slack_app) == 1
    [notice] = dms_to(slack_app, JO)
    assert "(message 1)" in notice.body["text"]
    assert dms_to(slack_app, NURSE) == []  # nothing said to the sender: someone has it

    after = await fresh_say(slack_app.signpost, "P002", "relay 1")
    assert "Status: delivered" in after.lines


async def test_a_lead_linked_on_the_other_platform_keeps_the_message_this_replica_cannot_send(
    slack_app: SlackHarness,
) -> None:
    """Replicas may serve different platforms (one Slack, one Teams) on one store. The lead is linked
    on Teams only: a Slack-only replica judged them unreachable, so its scheduled hand-on took the
    message from them and, with nobody else linked, told the sender it was not delivered, while the
    Teams replica would have delivered it (review). Reachable means linked on a platform Signpost
    serves anywhere: the lead keeps it, and the sender is told nothing more."""
    await load_access(slack_app.signpost)
    nurse = await link(slack_app, "P002", NURSE)
    await link_on_teams(slack_app.signpost, LEE, "S001")

    sent = await said(slack_app, nurse, f"message {SHIELDED} {MARKER}")
    assert "Message 1 about 999 000 0050 delivered to the professional responsible" in sent
    await jobs.hand_on_relays(slack_app.signpost.ctx, slack_app.signpost.ctx.clock.now())
    [row] = await relay_rows(slack_app)
    assert (row.recipients, row.recipient_role) == ("S001", "lead")
    async with slack_app.signpost.ctx.db.read() as session:
        kinds = list((await session.execute(select(NoticeRow.kind).where(NoticeRow.recipient_id == "P002"))).scalars())
    assert "relay_undelivered" not in kinds, kinds
    assert "Status: delivered" in await said(slack_app, nurse, "relay 1")
