"""Issue 18 through the real Teams front end: the blind relay round trip and the lead-professional notice.

Activities are posted to Signpost's aiohttp app; cards come back in invoke responses or are sent to
the recording fake connector; notices go out through the real outbox and the Teams deliverer into
each person's stored 1:1 conversation. Assertions are on the cards each person is shown.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Signpost
from bot.notify import Outbox
from bot.teams.front import TEAMS_KEY
from bot.teams.render import render_reply
from handlers.dispatch.dispatcher import OFFERED_DETAIL
from handlers.vocabulary import Command
from tests.bot.teams.teams_support import (
    CHANNEL_CONVERSATION,
    PRIYA,
    STRANGER,
    TeamsApp,
    TeamsUser,
    actions_of,
    invoke,
    later,
    link,
    mention,
    message,
    submit,
    task_fetch,
    teams_events,
    texts_of,
)
from tests.bot.teams.teams_tokens import Signer
from tests.factories import AMY, SHIELDED
from tests.fakes.teams_connector import FakeConnector, Sent
from tests.stepup_helpers import code_now, ensure_enrolled

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

LEE = TeamsUser(
    "29:1lee", "00000000-0000-4000-8000-000000000031", "Lee Hart"
)  # S001: the shielded child's lead professional
SAM = TeamsUser("29:1sam", "00000000-0000-4000-8000-000000000001", "Sam Carter")  # P001: Amy's lead professional

MARKER = "section 47 enquiry zebrafinch, call me on 0161 496 0002"
ANSWER = "happy to talk kingfisher, ring after 3pm"
# Everything that would tell the sender who received (and answered) the message.
LEAD_IDENTITY = ("S001", "Lee", "Hart", "Health visitor", "Southvale NHS Trust", "0113 496 0001", "lee.hart", LEE.aad)
# Every identity field of the shielded child (Mia Stone, born 30/06/2015, S1 4ZZ), in the spellings shown.
CHILD_IDENTITY = ("Mia", "Stone", "2015-06-30", "30/06/2015", "S1 4ZZ", "S14ZZ")
AMY_IDENTITY = ("Amy", "Jones", "Amelia", "Smith", "2014-04-03", "03/04/2014", "M1 2AB", "M12AB")
PRIYA_LOOKED_UP_AMY = (
    "Priya Shah, School nurse, Northshire School Health (0161 496 0002, priya.shah@nhs.example) "
    "looked up 999 000 0018, a child you are lead professional for."
)


@pytest.fixture
async def lee(loaded: Signpost) -> TeamsUser:
    await link(loaded, LEE, "S001")
    await ensure_enrolled(loaded, "S001")
    return LEE


def only_action(card: dict[str, Any], verb: str) -> dict[str, Any]:
    [action] = [a for a in actions_of(card) if a.get("verb") == verb]
    return action


async def invoke_card(teams: TeamsApp, body: dict[str, Any]) -> dict[str, Any]:
    """Post an adaptiveCard/action invoke; the card Teams puts in place of the clicked one."""
    response = await teams.post(body)
    assert response.status == 200
    doc = await response.json()
    assert doc["statusCode"] == 200 and doc["type"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = doc["value"]
    return card


def dialog_button(card: dict[str, Any], verb: str) -> dict[str, Any]:
    """The card's button that opens a Teams dialog for this verb (an Action.Submit with task/fetch)."""
    [action] = [a for a in actions_of(card) if a["type"] == "Action.Submit" and a["data"].get("verb") == verb]
    assert action["data"]["msteams"] == {"type": "task/fetch"}
    return action


async def dialog_card(teams: TeamsApp, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Post a task/fetch (or task/submit) invoke; the card Teams shows in the dialog it opens."""
    response = await teams.post(body, headers)
    assert response.status == 200
    doc = await response.json()
    assert doc["task"]["type"] == "continue" and doc["task"]["value"]["title"] == "Signpost"
    attachment = doc["task"]["value"]["card"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = attachment["content"]
    assert not [a for a in actions_of(card) if a["type"] == "Action.Execute"], "a dialog's buttons are Submits"
    return card


async def deliver(teams: TeamsApp, signpost: Signpost) -> int:
    """One pass of the real outbox through the Teams deliverer (what the scheduler runs)."""
    report = await Outbox(signpost.ctx, [teams.web[TEAMS_KEY].deliverer]).deliver_due()
    return report.delivered


def card_in(sent: Sent) -> dict[str, Any]:
    assert sent.card is not None
    return sent.card


def everything(cards: list[dict[str, Any]]) -> str:
    return " ".join(str(c) for c in cards)


async def test_blind_relay_round_trip_in_teams_reveals_neither_the_recipient_nor_the_child(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost, lee: TeamsUser
) -> None:
    """Priya finds the shielded child and sends a message from the card's Send a message form; the
    lead professional's proactive card offers Read and Reply; they read Priya's contact in a dialog and
    answer through the relay; Priya is told 'delivered', then gets a card that it was answered, and reads
    it in a dialog. What is read is never put into a card in the chat (the notice is not updated), so
    it dies with the child's key. Nothing Priya is shown names who received it; nothing sent to Teams
    identifies the child."""
    await teams.post(message(lee, "help", connector.url))  # Lee has talked to the bot: a 1:1 chat exists
    priya_saw: list[dict[str, Any]] = []

    # 1. The lookup: the shielded card, with Send a message as a form (input, then Action.Execute).
    await teams.post(message(PRIYA, SHIELDED, connector.url))
    shielded = card_in(connector.messages_in(PRIYA.personal_conversation)[-1])
    priya_saw.append(shielded)
    [form] = [a for a in shielded["actions"] if a["type"] == "Action.ShowCard" and a["title"] == "Send a message"]
    [box] = [e for e in form["card"]["body"] if e["type"] == "Input.Text"]
    assert box["id"] == "text" and box["isRequired"] is True and "no name, date of birth" in box["label"]
    send = only_action(shielded, "relay_message")
    assert send["type"] == "Action.Execute" and send["data"]["button"]["command"] == f"message {int(SHIELDED)}"

    # 2. Send: the sender is told it was delivered, and nothing about to whom.
    delivered = await invoke_card(teams, invoke(PRIYA, send, connector.url, {"text": MARKER}))
    priya_saw.append(delivered)
    assert "Message 1 about 999 000 0050 delivered to the professional responsible for this child" in texts_of(
        delivered
    )

    # 3. The outbox: Lee's proactive card says what came, with Read and a Reply form; never the text.
    connector.sent.clear()
    assert await deliver(teams, loaded) == 1
    [proactive] = connector.messages_in(lee.personal_conversation)
    assert connector.messages_in(PRIYA.personal_conversation) == []
    notice = card_in(proactive)
    assert texts_of(notice).startswith(
        "A practitioner sent you a message through Signpost about shielded record 999 000 0050, "
        "a child you are lead professional for (message 1). Press Read to read it"
    )
    assert "zebrafinch" not in str(notice)
    assert [a["title"] for a in notice["actions"]] == ["Read", "Reply through Signpost"]

    # 4. Read opens a dialog: Lee sees the message and Priya's contact details there, with a Reply form;
    #    the notice card in the chat is left as it was (no update, no new message).
    connector.sent.clear()
    read = await dialog_card(teams, task_fetch(lee, dialog_button(notice, "relay_read"), connector.url))
    assert "From: Priya Shah, School nurse, Northshire School Health (0161 496 0002" in texts_of(read)
    assert f"Message: {MARKER}" in texts_of(read)
    assert [a["title"] for a in actions_of(read)] == ["Reply through Signpost", "Send"]
    assert connector.sent == [], "nothing read is sent into the chat, and the notice is not updated"

    # 5. Reply through Signpost, from the notice card's form.
    reply = only_action(notice, "relay_reply")
    passed_on = await invoke_card(teams, invoke(lee, reply, connector.url, {"text": ANSWER}))
    assert "Your answer to message 1 was passed on" in texts_of(passed_on)

    # 6. The outbox again: Priya's card says only that it was answered.
    connector.sent.clear()
    assert await deliver(teams, loaded) == 1
    [told_sent] = connector.messages_in(PRIYA.personal_conversation)
    assert connector.messages_in(lee.personal_conversation) == []
    told = card_in(told_sent)
    priya_saw.append(told)
    assert texts_of(told).splitlines()[0] == (
        "Your message 1 about 999 000 0050 was answered. Press Read to read the answer."
    )
    assert [a["title"] for a in told["actions"]] == ["Read"]

    # 7. Priya reads the answer in a dialog; her notice is left as it was.
    connector.sent.clear()
    status = await dialog_card(teams, task_fetch(PRIYA, dialog_button(told, "relay_read"), connector.url))
    assert connector.sent == [] and connector.updates() == []
    priya_saw.append(status)
    assert f"You wrote: {MARKER}" in texts_of(status)
    assert any(line.startswith("Status: answered") and line.endswith(ANSWER) for line in texts_of(status).splitlines())

    sender_saw = everything(priya_saw)
    assert not [word for word in LEAD_IDENTITY if word in sender_saw], "the sender never learns who answered"
    outbound = " ".join(str(s.body) for s in connector.sent) + everything([delivered, read, passed_on, status])
    assert not [word for word in CHILD_IDENTITY if word.casefold() in (outbound + sender_saw).casefold()]
    assert [(e.action, e.user_id, e.channel) for e in await teams_events(loaded) if e.action != "help"] == [
        ("lookup", PRIYA.aad, "direct"),
        ("relay_message", PRIYA.aad, "button"),
        ("relay_read", LEE.aad, "button"),
        ("relay_message", LEE.aad, "button"),
        ("relay_read", PRIYA.aad, "button"),
    ]


async def test_the_lead_professional_is_told_of_a_teams_lookup_by_a_proactive_card(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Priya looks up Amy in Teams; Sam (Amy's lead professional) gets a card in his 1:1 chat saying who
    looked and how to reach them, with no identity field of Amy."""
    await link(loaded, SAM, "P001")
    await teams.post(message(SAM, "help", connector.url))
    await teams.post(message(PRIYA, AMY, connector.url))
    assert "Sam Carter" in texts_of(card_in(connector.messages_in(PRIYA.personal_conversation)[-1]))
    connector.sent.clear()
    assert await deliver(teams, loaded) == 1
    [sent] = connector.sent
    assert sent.conversation_id == SAM.personal_conversation
    notice = card_in(sent)
    assert texts_of(notice) == PRIYA_LOOKED_UP_AMY and "actions" not in notice
    assert not [word for word in AMY_IDENTITY if word.casefold() in str(sent.body).casefold()]


async def test_a_relay_message_naming_the_child_is_refused_on_the_card(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost, lee: TeamsUser
) -> None:
    """The identity filter answers on the card: nothing is relayed and Lee is sent nothing."""
    await teams.post(message(lee, "help", connector.url))
    await teams.post(message(PRIYA, SHIELDED, connector.url))
    send = only_action(card_in(connector.messages_in(PRIYA.personal_conversation)[-1]), "relay_message")
    refused = await invoke_card(teams, invoke(PRIYA, send, connector.url, {"text": "about Mia, born in June"}))
    assert texts_of(refused).startswith("Signpost cannot pass this on: it names the child")
    connector.sent.clear()
    assert await deliver(teams, loaded) == 0 and connector.sent == []


async def test_read_on_a_card_sent_before_readings_opened_dialogs_never_puts_the_message_in_the_chat(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost, lee: TeamsUser
) -> None:
    """A notice delivered earlier has Read as Action.Execute (or its Submit fallback on an older client).
    Clicking it replaces the card with one whose button opens the dialog: the message is not shown on
    the card, and nothing is read (no relay_read event) until the dialog is opened."""
    await teams.post(message(lee, "help", connector.url))
    await teams.post(message(PRIYA, SHIELDED, connector.url))
    send = only_action(card_in(connector.messages_in(PRIYA.personal_conversation)[-1]), "relay_message")
    await invoke_card(teams, invoke(PRIYA, send, connector.url, {"text": MARKER}))
    await deliver(teams, loaded)
    read_now = dialog_button(card_in(connector.messages_in(lee.personal_conversation)[-1]), "relay_read")
    earlier = {k: v for k, v in read_now["data"].items() if k != "msteams"}  # as render.execute made it

    replaced = await invoke_card(teams, invoke(lee, {"verb": "relay_read", "data": earlier}, connector.url))
    connector.sent.clear()
    await teams.post(submit(lee, {"data": earlier}, connector.url, "activity-notice"))
    [update] = connector.updates()
    for card in (replaced, card_in(update)):
        assert "zebrafinch" not in str(card) and "Priya" not in str(card)
        assert texts_of(card).startswith("Signpost shows this in a private window, so it is not kept in this chat.")
        assert dialog_button(card, "relay_read")["data"] == read_now["data"]
    assert "relay_read" not in [e.action for e in await teams_events(loaded)]

    read = await dialog_card(teams, task_fetch(lee, dialog_button(replaced, "relay_read"), connector.url))
    assert f"Message: {MARKER}" in texts_of(read)
    assert [e.action for e in await teams_events(loaded)].count("relay_read") == 1


async def test_a_stale_code_is_asked_for_in_the_dialog_and_a_reply_sent_from_it(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost, lee: TeamsUser
) -> None:
    """Read with a stale step-up: the dialog asks for the code (Submit → task/submit), then shows the
    message there; Reply from the dialog's form is passed on and answered in the dialog. Nothing is
    sent into the chat and the notice is never updated."""
    totp = await ensure_enrolled(loaded, "S001")
    await teams.post(message(lee, "help", connector.url))
    await teams.post(message(PRIYA, SHIELDED, connector.url))
    send = only_action(card_in(connector.messages_in(PRIYA.personal_conversation)[-1]), "relay_message")
    await invoke_card(teams, invoke(PRIYA, send, connector.url, {"text": MARKER}))
    await deliver(teams, loaded)
    notice = card_in(connector.messages_in(lee.personal_conversation)[-1])
    later(loaded, minutes=31)
    connector.sent.clear()

    asked = await dialog_card(teams, task_fetch(lee, dialog_button(notice, "relay_read"), connector.url))
    assert MARKER not in str(asked)
    [code] = [a for a in actions_of(asked) if a.get("data", {}).get("verb") == "code"]
    read = await dialog_card(teams, task_fetch(lee, code, connector.url, {"code": code_now(loaded, totp)}))
    assert f"Message: {MARKER}" in texts_of(read)

    [answer] = [a for a in actions_of(read) if a.get("data", {}).get("verb") == "relay_reply"]
    passed_on = await dialog_card(teams, task_fetch(lee, answer, connector.url, {"text": ANSWER}))
    assert "Your answer to message 1 was passed on" in texts_of(passed_on)
    assert connector.sent == []
    lee_events = [(e.action, e.outcome) for e in await teams_events(loaded) if e.user_id == LEE.aad]
    # The challenged reading, the reading itself once the code is good (before the code's own event), the answer.
    assert [(a, o) for a, o in lee_events if a != "help"] == [
        ("relay_read", "challenged"),
        ("relay_read", "info"),
        ("code", "info"),
        ("relay_message", "done"),
    ]


ACCEPTED = 202  # a message activity is answered through the connector, not in the response
PRIYA_CONTACT = ("Priya", "Shah", "0161 496 0002", "priya.shah", "Northshire School Health")


def bearer(signer: Signer, connector: FakeConnector) -> dict[str, str]:
    """A locally minted Bot Framework token, verified by the real validator against the fake JWKS."""
    return {"Authorization": f"Bearer {signer.token(connector.url)}"}


async def relay_one(teams: TeamsApp, connector: FakeConnector, signpost: Signpost, headers: dict[str, str]) -> None:
    """Lee has a 1:1 chat; Priya finds the shielded child and sends message 1, delivered to Lee."""
    assert (await teams.post(message(LEE, "help", connector.url), headers)).status == ACCEPTED
    assert (await teams.post(message(PRIYA, SHIELDED, connector.url), headers)).status == ACCEPTED
    send = only_action(card_in(connector.messages_in(PRIYA.personal_conversation)[-1]), "relay_message")
    response = await teams.post(invoke(PRIYA, send, connector.url, {"text": MARKER}), headers)
    assert response.status == 200
    assert await deliver(teams, signpost) == 1


async def readings(signpost: Signpost) -> list[tuple[str, str, str]]:
    return [(e.user_id, e.outcome, e.channel) for e in await teams_events(signpost) if e.action == "relay_read"]


async def relay_events(signpost: Signpost) -> list[tuple[str, str, str, str, str]]:
    """Each Teams ``relay_read`` event: who, outcome, channel, the children it names, its detail."""
    return [
        (e.user_id, e.outcome, e.channel, e.subject_refs, e.detail)
        for e in await teams_events(signpost)
        if e.action == "relay_read"
    ]


async def test_relay_typed_in_the_teams_chat_is_shown_only_in_a_dialog_and_audited_when_shown(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, lee: TeamsUser
) -> None:
    """Lee types `relay 1` in the 1:1 chat (the notice says to). Teams keeps what the bot posts there,
    so the message and Priya's contact are not sent into the chat: Lee gets a card saying it is shown
    in a private window, whose Open button (task/fetch with the same command) shows them in a dialog.
    The typed command is audited as what it was, an offer: nothing read, no child named (it was
    recorded as "read by recipient", naming the child, though Lee saw only the Open button). Each
    opening of the dialog is one reading, naming the child."""
    await relay_one(teams_secured, connector, loaded, bearer(signer, connector))
    connector.sent.clear()

    typed = await teams_secured.post(message(lee, "relay 1", connector.url), bearer(signer, connector))
    assert typed.status == ACCEPTED
    [sent] = connector.sent
    assert sent.conversation_id == lee.personal_conversation
    launcher = card_in(sent)
    assert texts_of(launcher).startswith("Signpost shows this in a private window, so it is not kept in this chat.")
    assert MARKER not in str(sent.body) and "zebrafinch" not in str(sent.body)
    assert not [word for word in PRIYA_CONTACT if word in str(sent.body)], "no sender contact in the chat"
    offered = (LEE.aad, "info", "direct", "", OFFERED_DETAIL)
    assert await relay_events(loaded) == [offered], "every command audited, as offered, not read"

    open_ = dialog_button(launcher, "open")
    assert open_["title"] == "Open" and open_["data"]["button"]["command"] == "relay 1"
    read = (LEE.aad, "info", "button", SHIELDED, "relay 1 read by recipient")
    for n in (1, 2):
        shown = await dialog_card(teams_secured, task_fetch(lee, open_, connector.url), bearer(signer, connector))
        assert f"Message: {MARKER}" in texts_of(shown)
        assert "From: Priya Shah, School nurse, Northshire School Health (0161 496 0002" in texts_of(shown)
        assert await relay_events(loaded) == [offered] + [read] * n, "each reading audited once, when shown"
    assert connector.sent == [sent], "nothing read is sent into the chat"


async def test_the_sender_typing_relay_in_a_team_channel_gets_the_launcher_privately(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, lee: TeamsUser
) -> None:
    """Priya @mentions the bot with `relay 1` in a team channel: the channel is told only that she was
    answered privately; her 1:1 chat gets the launcher (never her message), and the dialog shows it."""
    await relay_one(teams_secured, connector, loaded, bearer(signer, connector))
    connector.sent.clear()
    response = await teams_secured.post(mention(PRIYA, "relay 1", connector.url), bearer(signer, connector))
    assert response.status == ACCEPTED
    assert [s.text for s in connector.messages_in(CHANNEL_CONVERSATION)] == ["I've sent you the answer privately."]
    [private] = connector.messages_in(PRIYA.personal_conversation)
    assert "zebrafinch" not in " ".join(str(s.body) for s in connector.sent)
    opened = task_fetch(PRIYA, dialog_button(card_in(private), "open"), connector.url)
    shown = await dialog_card(teams_secured, opened, bearer(signer, connector))
    assert f"You wrote: {MARKER}" in texts_of(shown) and "Status: delivered" in texts_of(shown)
    assert await relay_events(loaded) == [
        (PRIYA.aad, "info", "channel", "", OFFERED_DETAIL),  # the typed command: offered privately
        (PRIYA.aad, "info", "button", SHIELDED, "relay 1 read by sender"),
    ]


async def test_a_code_sent_from_an_older_chat_card_for_a_reading_puts_no_text_in_the_chat(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, lee: TeamsUser
) -> None:
    """A code card for `relay 1` left in the chat from before readings moved into dialogs: its code
    resumes the reading, whose reply is marked transient (Reply.transient), so the card is replaced by
    the launcher, not the message. (The resumed reading ran, so it is audited; the dialog is another.)"""
    totp = await ensure_enrolled(loaded, "S001")
    await relay_one(teams_secured, connector, loaded, bearer(signer, connector))
    later(loaded, minutes=31)
    asked = await loaded.dispatcher.handle(Command(LEE.principal, "relay 1", "corr-old-card", channel="direct"))
    assert asked.challenge is not None and asked.transient == "relay 1"
    [code] = [a for a in actions_of(render_reply(asked)) if a.get("verb") == "code"]  # the card as it was posted

    response = await teams_secured.post(
        invoke(lee, code, connector.url, {"code": code_now(loaded, totp)}), bearer(signer, connector)
    )
    assert response.status == 200
    replaced = (await response.json())["value"]
    assert MARKER not in str(replaced) and "Priya" not in str(replaced)
    assert texts_of(replaced).startswith("Signpost shows this in a private window")
    opened = task_fetch(lee, dialog_button(replaced, "open"), connector.url)
    shown = await dialog_card(teams_secured, opened, bearer(signer, connector))
    assert f"Message: {MARKER}" in texts_of(shown)


async def test_relay_typed_by_someone_not_registered_is_refused_as_any_command_not_offered(
    teams_secured: TeamsApp, connector: FakeConnector, signer: Signer, loaded: Signpost, lee: TeamsUser
) -> None:
    """An account linked to nobody who types `relay 1` is refused as for any command (audited as
    refused, not as "offered": there is nothing it could open), and nothing of the message is sent."""
    await relay_one(teams_secured, connector, loaded, bearer(signer, connector))
    connector.sent.clear()
    typed = await teams_secured.post(message(STRANGER, "relay 1", connector.url), bearer(signer, connector))
    assert typed.status == ACCEPTED
    assert MARKER not in str([sent.body for sent in connector.sent])
    [event] = [e for e in await teams_events(loaded) if e.user_id == STRANGER.aad]
    assert (event.action, event.outcome, event.actor_id) == ("relay_read", "refused", None), event.detail
    assert event.detail != OFFERED_DETAIL
