"""Issue 18 through the real Slack front end: the blind relay round trip and the lead-professional notice.

Real signed requests to Signpost's aiohttp app (Bolt verifies them), the real dispatcher and
commands, the real outbox delivering through the Slack deliverer, and the recording fake Web API:
every assertion is on what Slack was sent, split by who it was sent to.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import update

from bot.notify import Outbox
from handlers.vocabulary import Outcome
from store.tables.register import Child
from tests.access_helpers import load_access
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, buttons_in, slack_events
from tests.factories import AMY, NO_INVOLVEMENTS, SHIELDED
from tests.fakes.slack_api import Call
from tests.stepup_helpers import say_fresh

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")  # P002, Priya Shah: finds the shielded child, has no grant
LEAD = SlackUser("U0LEAD")  # S001, Lee Hart: the shielded child's lead professional
SOCIAL = SlackUser("U0SOCIAL")  # P001, Sam Carter: Amy's lead professional
JO = SlackUser("U0JO")  # DM02, Jo Bell: a Southvale duty manager
RAY = SlackUser("U0RAY")  # DM03, Ray Lowe: the other Southvale duty manager

MARKER = "section 47 enquiry zebrafinch, call me on 0161 496 0002"
ANSWER = "happy to talk kingfisher, ring after 3pm"
# Everything that would tell the sender who received (and answered) the message.
LEAD_IDENTITY = ("S001", "Lee", "Hart", "Health visitor", "Southvale NHS Trust", "0113 496 0001", "lee.hart", "U0LEAD")
# Every identity field of the shielded child (Mia Stone, born 30/06/2015, S1 4ZZ), in the spellings shown.
CHILD_IDENTITY = ("Mia", "Stone", "2015-06-30", "30/06/2015", "S1 4ZZ", "S14ZZ")
AMY_IDENTITY = ("Amy", "Jones", "Amelia", "Smith", "2014-04-03", "03/04/2014", "M1 2AB", "M12AB")
SAME_TS = "1700000000.000100"
PRIYA_LOOKED_UP_AMY = (
    "Priya Shah, School nurse, Northshire School Health (0161 496 0002, priya.shah@nhs.example) "
    "looked up 999 000 0018, a child you are lead professional for."
)


@pytest.fixture
def slack_app(modal_app: SlackHarness) -> SlackHarness:
    """The round trips here take the modal path (an answer later than the ack's budget), where the
    relay's buttons live in modals; the answer-in-the-ack path is the last test's."""
    return modal_app


def calls_since(app: SlackHarness, mark: int) -> list[Call]:
    return app.fake.calls[mark:]


def raw(calls: list[Call]) -> str:
    """What the calls carried, as text (non-ASCII kept as written)."""
    return " ".join(json.dumps(c.body, ensure_ascii=False) for c in calls)


async def deliver(app: SlackHarness) -> int:
    """One pass of the real outbox through the Slack deliverer (what the scheduler runs)."""
    report = await Outbox(app.signpost.ctx, [app.front.deliverer]).deliver_due()
    return report.delivered


def dm_to(app: SlackHarness, calls: list[Call], user: SlackUser) -> list[Call]:
    """The chat.postMessage calls among ``calls`` that went to ``user``'s DM channel."""
    channels = {
        c.answer["channel"]["id"] for c in calls if c.method == "conversations.open" and c.body["users"] == user.user_id
    }
    return [c for c in calls if c.method == "chat.postMessage" and c.body["channel"] in channels]


def button(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]]:
    [found] = [(block, b) for block, b in buttons_in(blocks) if b["action_id"] == action_id]
    return found


async def submit_input(app: SlackHarness, user: SlackUser, modal: dict[str, Any], view_id: str, text: str) -> str:
    """Submit an input modal; the modal Slack shows next (response_action update), as JSON text."""
    answer = await app.shown_after(app.slack.view_submission(user, modal, view_id, {"input": {"value": text}}))
    assert answer["response_action"] == "update"
    await app.front.idle()
    return json.dumps(answer["view"])


async def test_blind_relay_round_trip_in_slack_reveals_neither_the_recipient_nor_the_child(
    slack_app: SlackHarness,
) -> None:
    """Priya finds the shielded child, presses Send a message and writes in the modal; the lead
    professional gets a DM with Read and Reply, reads Priya's contact and answers through the relay
    from a modal opened on their DM; Priya is told 'delivered', then gets a DM that it was answered
    and reads the answer. Nothing Priya is sent names who received it, and no outbound payload at
    all holds an identity field of the child."""
    await load_access(slack_app.signpost)
    nurse = await slack_app.link("P002", NURSE)
    lead = await slack_app.link("S001", LEAD)
    to_nurse: list[Call] = []

    # 1. The lookup: a shielded answer in a modal, offering Request access and Send a message.
    mark = len(slack_app.fake.calls)
    await slack_app.slack.command(nurse, SHIELDED)
    await slack_app.front.idle()
    [result] = slack_app.fake.of("views.update")
    assert "shielded" in json.dumps(result.body["view"])
    block_id, send = button(result.body["view"]["blocks"], "relay_message")
    assert send["text"]["text"] == "Send a message"

    # 2. Send a message (clicked in the modal): its text is asked for in a modal pushed with the trigger id.
    click = slack_app.slack.block_action_from_view(nurse, send, block_id, result.body["view_id"])
    assert (await slack_app.slack.interactive(click)).status == 200
    await slack_app.front.idle()
    [pushed] = slack_app.fake.of("views.push")
    assert pushed.body["trigger_id"] == click["trigger_id"]
    modal = pushed.body["view"]
    assert modal["callback_id"] == "signpost_input"
    assert json.loads(modal["private_metadata"])["c"] == f"message {SHIELDED}"

    # 3. The submission: the sender is told it was delivered, and nothing about to whom.
    delivered = await submit_input(slack_app, nurse, modal, "V100", MARKER)
    assert "Message 1 about 999 000 0050 delivered to the professional responsible for this child" in delivered
    assert "Signpost does not say who they are" in delivered
    to_nurse += calls_since(slack_app, mark)

    # 4. The outbox: the lead professional's DM says what came, with Read and Reply; never the text itself.
    mark = len(slack_app.fake.calls)
    assert await deliver(slack_app) == 1
    [notice] = dm_to(slack_app, calls_since(slack_app, mark), lead)
    assert dm_to(slack_app, calls_since(slack_app, mark), nurse) == []
    assert notice.body["text"].startswith(
        "A practitioner sent you a message through Signpost about shielded record 999 000 0050, "
        "a child you are lead professional for (message 1). Send `/signpost relay 1` to read it"
    )
    assert "zebrafinch" not in notice.raw
    assert [b["text"]["text"] for _, b in buttons_in(notice.body["blocks"])] == ["Read", "Reply through Signpost"]

    # 5. Read: the message and the sender's contact, in a modal (reading needs a fresh code).
    mark = len(slack_app.fake.calls)
    read_block, read = button(notice.body["blocks"], "relay_read")
    click = slack_app.slack.block_action_from_message(
        lead, read, read_block, message_ts=SAME_TS, channel_id=notice.body["channel"]
    )
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    shown = raw([c for c in calls_since(slack_app, mark) if c.method == "views.update"])
    assert "Priya Shah, School nurse, Northshire School Health (0161 496 0002" in shown
    assert MARKER in shown
    # A reading leaves the notice (and its buttons) as it was: the text is never written into the DM.
    assert [c for c in calls_since(slack_app, mark) if c.method in ("response_url", "chat.postMessage")] == []

    # 6. Reply through Signpost from the DM: a modal opened with the click's trigger id, then the answer.
    mark = len(slack_app.fake.calls)
    reply_block, reply = button(notice.body["blocks"], "relay_reply")
    click = slack_app.slack.block_action_from_message(
        lead, reply, reply_block, message_ts=SAME_TS, channel_id=notice.body["channel"]
    )
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    [opened] = [c for c in calls_since(slack_app, mark) if c.method == "views.open"]
    assert opened.body["trigger_id"] == click["trigger_id"]
    assert json.loads(opened.body["view"]["private_metadata"])["c"] == "reply 1"
    passed_on = await submit_input(slack_app, lead, opened.body["view"], "V200", ANSWER)
    assert "Your answer to message 1 was passed on" in passed_on
    [replaced] = [c for c in calls_since(slack_app, mark) if c.method == "response_url"]
    assert replaced.path == "/response/" + click["response_url"].rsplit("/", 1)[1]  # the DM, in place

    # 7. The outbox again: the sender's DM says only that it was answered.
    mark = len(slack_app.fake.calls)
    assert await deliver(slack_app) == 1
    [told] = dm_to(slack_app, calls_since(slack_app, mark), nurse)
    assert (
        told.body["text"]
        == "Your message 1 about 999 000 0050 was answered. Send `/signpost relay 1` to read the answer."
    )
    to_nurse += calls_since(slack_app, mark)

    # 8. The sender reads the answer, from the DM's Read button.
    mark = len(slack_app.fake.calls)
    read_block, read = button(told.body["blocks"], "relay_read")
    # The same Read button ("relay 1") in another DM, whose ts may equal the first's (a ts is unique in its
    # channel only): it is another click, by another person, and is answered.
    click = slack_app.slack.block_action_from_message(
        nurse, read, read_block, message_ts=SAME_TS, channel_id=told.body["channel"]
    )
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    to_nurse += calls_since(slack_app, mark)
    status = raw([c for c in calls_since(slack_app, mark) if c.method == "views.update"])
    assert f"You wrote: {MARKER}" in status and "Status: answered" in status and ANSWER in status
    assert [c for c in calls_since(slack_app, mark) if c.method in ("response_url", "chat.postMessage")] == []

    # 9. The same Read button a minute later (the modal was closed): it reads again, never "Already received".
    mark = len(slack_app.fake.calls)
    again = slack_app.slack.block_action_from_message(
        nurse, read, read_block, message_ts=SAME_TS, channel_id=told.body["channel"], clicked_at=1700000060
    )
    await slack_app.slack.interactive(again)
    await slack_app.front.idle()
    to_nurse += calls_since(slack_app, mark)
    status = raw([c for c in calls_since(slack_app, mark) if c.method == "views.update"])
    assert ANSWER in status and "Already received" not in status
    # The message and the answer were only ever shown in modals: in no DM, message or response URL.
    texts = ("zebrafinch", "kingfisher")
    assert not [c.method for c in slack_app.fake.calls if c.method != "views.update" and any(t in c.raw for t in texts)]

    sender_saw = raw(to_nurse)
    assert not [word for word in LEAD_IDENTITY if word in sender_saw], "the sender never learns who answered"
    everything = raw(slack_app.fake.calls)
    assert not [word for word in CHILD_IDENTITY if word.casefold() in everything.casefold()]
    assert all(c.body.get("response_type") != "in_channel" for c in slack_app.fake.calls)
    assert [(e.action, e.user_id, e.channel) for e in await slack_events(slack_app.signpost)] == [
        ("lookup", NURSE.user_id, "channel"),
        ("relay_message", NURSE.user_id, "modal"),
        ("relay_read", LEAD.user_id, "button"),
        ("relay_message", LEAD.user_id, "modal"),
        ("relay_read", NURSE.user_id, "button"),
        ("relay_read", NURSE.user_id, "button"),
    ]


async def test_the_lead_professional_is_told_of_a_slack_lookup_by_direct_message(slack_app: SlackHarness) -> None:
    """Priya looks up Amy in Slack; the outbox sends Amy's lead professional (Sam) a DM saying who
    looked and how to reach them, with no identity field of Amy, and nothing to Priya."""
    await load_access(slack_app.signpost)
    nurse = await slack_app.link("P002", NURSE)
    social = await slack_app.link("P001", SOCIAL)
    await slack_app.slack.command(nurse, AMY)
    await slack_app.front.idle()
    assert "Sam Carter" in raw(slack_app.fake.of("views.update"))  # Priya was answered, privately
    mark = len(slack_app.fake.calls)
    assert await deliver(slack_app) == 1
    sent = calls_since(slack_app, mark)
    [notice] = dm_to(slack_app, sent, social)
    assert notice.body["text"] == PRIYA_LOOKED_UP_AMY
    assert buttons_in(notice.body["blocks"]) == []
    assert dm_to(slack_app, sent, nurse) == []
    assert not [word for word in AMY_IDENTITY if word.casefold() in raw(sent).casefold()]
    # A second lookup the same day tells nobody again.
    await slack_app.slack.command(nurse, AMY)
    await slack_app.front.idle()
    assert await deliver(slack_app) == 0


async def test_with_no_lead_professional_the_duty_managers_get_it_in_slack_and_review_the_traffic(
    slack_app: SlackHarness,
) -> None:
    """A shielded child with no lead professional: both of its authority's duty managers get the DM;
    the first answers by typing, the second's Reply is told it was already answered; the sender is
    never told who; `/signpost relays` shows the duty manager counts and senders, never contents nor who received it."""
    await load_access(slack_app.signpost)
    async with slack_app.signpost.ctx.db.write() as session:
        await session.execute(update(Child).where(Child.ref == int(NO_INVOLVEMENTS)).values(shielded=True))
    nurse = await slack_app.link("P002", NURSE)
    jo = await slack_app.link("DM02", JO)
    ray = await slack_app.link("DM03", RAY)

    await slack_app.slack.command(nurse, f"message 999 000 0069 {MARKER}")
    await slack_app.front.idle()
    sent = raw(slack_app.fake.of("views.update"))
    assert "Message 1 about 999 000 0069 delivered to the professional responsible for this child" in sent
    mark = len(slack_app.fake.calls)
    assert await deliver(slack_app) == 2
    for manager in (jo, ray):
        [notice] = dm_to(slack_app, calls_since(slack_app, mark), manager)
        assert (
            "999 000 0069, a child of your authority with no lead professional Signpost can reach (message 1)"
            in notice.body["text"]
        )
    [ray_notice] = dm_to(slack_app, calls_since(slack_app, mark), ray)

    await slack_app.slack.command(jo, f"reply 1 {ANSWER}")
    await slack_app.front.idle()
    assert "Your answer to message 1 was passed on" in raw(slack_app.fake.of("views.update")[-1:])
    reply_block, reply = button(ray_notice.body["blocks"], "relay_reply")
    click = slack_app.slack.block_action_from_message(ray, reply, reply_block, channel_id=ray_notice.body["channel"])
    await slack_app.slack.interactive(click)
    await slack_app.front.idle()
    [modal] = [c for c in slack_app.fake.of("views.open") if c.body["trigger_id"] == click["trigger_id"]]
    late = await submit_input(slack_app, ray, modal.body["view"], "V300", "I can help too")
    assert "Message 1 has already been answered through Signpost" in late

    mark = len(slack_app.fake.calls)
    assert await deliver(slack_app) == 1
    [told] = dm_to(slack_app, calls_since(slack_app, mark), nurse)
    assert told.body["text"].startswith("Your message 1 about 999 000 0069 was answered.")
    nurse_saw = raw([*slack_app.fake.of("views.update")[:1], told])
    managers = ("DM02", "DM03", "Jo", "Bell", "Ray", "Lowe", "Duty manager", "Southvale Children", "0113 496 01")
    assert not [word for word in managers if word in nurse_saw]

    mark = len(slack_app.fake.calls)
    await slack_app.slack.command(jo, "relays")
    await slack_app.front.idle()
    traffic = raw([c for c in calls_since(slack_app, mark) if c.method == "views.update"])
    assert "1 relay message in the last 30 days" in traffic
    assert "999 000 0069: P002 → the duty managers: 1 sent, 1 answered, 0 waiting; last sent " in traffic
    assert not [word for word in managers if word in traffic.replace("P002 → the duty managers", "")]
    assert "zebrafinch" not in traffic and "kingfisher" not in traffic


async def test_send_a_message_from_a_shielded_answer_in_the_ack_opens_the_message_modal(
    fast_app: SlackHarness,
) -> None:
    """The usual path: the shielded answer is the slash command's own ephemeral ack, with Send a
    message; its click (from that ephemeral message) opens the message modal with the click's
    trigger id, and the submission is delivered without saying to whom (the lead professional has
    a Slack link: one with none could not be reached, tests/bot/slack/test_relay_unreachable.py)."""
    await load_access(fast_app.signpost)
    nurse = await fast_app.link("P002", NURSE)
    await fast_app.link("S001", LEAD)
    response = await fast_app.slack.command(nurse, SHIELDED)
    answer = await response.json()
    assert answer["response_type"] == "ephemeral" and "shielded" in json.dumps(answer)
    block_id, send = button(answer["blocks"], "relay_message")
    click = fast_app.slack.block_action_from_message(nurse, send, block_id, channel_id="C0001")
    click["container"]["is_ephemeral"] = True
    assert (await fast_app.slack.interactive(click)).status == 200
    await fast_app.front.idle()
    [opened] = fast_app.fake.of("views.open")
    assert opened.body["trigger_id"] == click["trigger_id"]
    assert json.loads(opened.body["view"]["private_metadata"])["c"] == f"message {SHIELDED}"
    delivered = await submit_input(fast_app, nurse, opened.body["view"], "V300", MARKER)
    assert "delivered to the professional responsible for this child" in delivered
    assert not [word for word in LEAD_IDENTITY if word in delivered]
    everything = raw(fast_app.fake.calls) + json.dumps(answer)
    assert not [word for word in CHILD_IDENTITY if word.casefold() in everything.casefold()]


async def test_relay_typed_in_slack_is_shown_at_once_and_audited_as_read(fast_app: SlackHarness) -> None:
    """`/signpost relay 1` in Slack is answered privately (ephemeral, in the ack) with the message
    itself: the command's one event is a reading naming the child. (In Teams the typed command is
    only offered, and audited so: tests/bot/teams/test_relay.py.)"""
    await load_access(fast_app.signpost)
    nurse = await fast_app.link("P002", NURSE)
    await fast_app.link("S001", LEAD)
    assert (await say_fresh(fast_app.signpost, "P002", SHIELDED)).outcome is Outcome.SHIELDED
    sent = await say_fresh(fast_app.signpost, "P002", f"message {SHIELDED} {MARKER}")
    assert sent.outcome is Outcome.DONE, sent.text
    before = len(await fast_app.audit())
    response = await fast_app.slack.command(nurse, "relay 1")
    assert response.status == 200
    shown = await response.text()
    assert "zebrafinch" in shown and '"ephemeral"' in shown
    [event] = (await fast_app.audit())[before:]
    assert (event.action, event.outcome, event.channel, event.subject_refs, event.detail) == (
        "relay_read",
        "info",
        "channel",
        SHIELDED,
        "relay 1 read by sender",
    )
