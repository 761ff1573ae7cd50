"""Adaptive Cards from the shared Reply model, and card actions read back (no SDK, no network)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from bot.teams.render import (
    command_text,
    for_dialog,
    missing_input,
    read_action,
    render_in_chat,
    render_notice,
    render_reply,
    render_text,
)
from handlers.vocabulary import Button, Challenge, Input, Notice, Outcome, Reply, Signpost
from tests.bot.teams.teams_support import actions_of, texts_of

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

POST = Signpost(
    "Sam Carter",
    "Social worker",
    "Northshire CS",
    "Children's social care",
    "0161 496 0001",
    "sam@northshire.example",
    True,
    date(2025, 1, 10),
)
ENDED = Signpost(
    "Tom Reed",
    "Teacher",
    "Hill Primary",
    "Education",
    "0161 496 0003",
    "tom@hill.example",
    False,
    date(2022, 9, 1),
    date(2024, 7, 20),
    current=False,
)


def test_signposts_render_as_one_container_each_with_contacts() -> None:
    card = render_reply(Reply(Outcome.ANSWERED, "Signposts: 2", child_ref="999 000 0018", signposts=(POST, ENDED)))
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    containers = [e for e in card["body"] if e["type"] == "Container"]
    assert len(containers) == 2
    first, second = texts_of(containers[0]), texts_of(containers[1])
    assert "Sam Carter ★ lead professional" in first and "0161 496 0001" in first and "since 10/01/2025" in first
    assert "ended 20/07/2024" in second and "lead professional" not in second


def nothing_transient(command: str) -> bool:
    return False


def only_relay_reads(command: str) -> bool:
    """What the dispatcher says of these commands: ``relay 7``'s answer must not stay in the chat."""
    return command.startswith("relay ")


def test_buttons_without_input_are_execute_with_a_submit_fallback() -> None:
    card = render_notice(
        Notice("DM01", "k", "Decide", (Button("approve", "Approve", "approve 7", "primary"),)), nothing_transient
    )
    [action] = card["actions"]
    assert action["type"] == "Action.Execute" and action["verb"] == "approve" and action["style"] == "positive"
    assert action["fallback"] == {"type": "Action.Submit", "title": "Approve", "data": action["data"]}


def test_action_data_reads_back_to_the_same_button_and_command() -> None:
    button = Button("request_access", "Request access", "request 9990000050", "primary", Input("reason", "Purpose"))
    card = render_reply(Reply(Outcome.SHIELDED, "Shielded", buttons=(button,)))
    [send] = [a for a in actions_of(card) if a["type"] == "Action.Execute"]
    action = read_action({**send["data"], "reason": "  Core group meeting  "})
    assert action is not None and action.button == button
    assert command_text(action) == "request 9990000050 Core group meeting" and missing_input(action) is None
    empty = read_action(send["data"])
    assert empty is not None and missing_input(empty) == "Please fill in: Purpose"
    too_long = read_action({**send["data"], "reason": "x" * 501})
    assert too_long is not None and missing_input(too_long) == "Please keep it under 500 characters."


def test_challenge_renders_one_code_input_and_the_error() -> None:
    """After a refused code the reply's text is the error (handlers/stepup/flow.py): shown once, first."""
    challenge = Challenge("ch-9", "Enter your code", "Wrong code")
    card = render_reply(Reply(Outcome.CHALLENGED, "Wrong code", challenge=challenge))
    inputs = [e for e in card["body"] if e["type"] == "Input.Text"]
    assert [i["id"] for i in inputs] == ["code"]
    assert texts_of(card).split("\n")[:2] == ["Wrong code", "Enter your code"]
    assert texts_of(card).count("Wrong code") == 1
    [send] = card["actions"]
    action = read_action({**send["data"], "code": " 123456 "})
    assert action is not None and (action.verb, action.challenge_id, action.code) == (
        "code",
        "ch-9",
        "123456",
    )


def test_foreign_data_is_not_an_action() -> None:
    for data in (
        None,
        "approve",
        {"verb": "approve"},
        {"signpost": 1, "verb": "approve"},
        {"signpost": 1, "verb": "approve", "button": {"command": 5}},
        {"signpost": 1, "verb": "approve", "button": {"command": "approve 1", "evil": True}},
    ):
        assert read_action(data) is None


def test_reply_and_notice_text_is_never_read_as_markdown() -> None:
    """What people typed can be in any reply or notice line: it goes into TextRuns, not TextBlocks."""
    typed = "[click here](https://evil.example/x) _now_ ![img](https://evil.example/i.png)"
    reply = Reply(Outcome.DONE, f"Request 4 denied. Reason: {typed}", lines=(typed,), child_ref=typed)
    notice = render_notice(Notice("P002", "denied", typed), nothing_transient)
    for doc in (render_reply(reply), notice, render_text(typed)):
        blocks = [e for e in doc["body"] if "text" in e or "inlines" in e]
        assert blocks and all(b["type"] == "RichTextBlock" for b in blocks)
        assert any(typed in r["text"] for b in blocks for r in b["inlines"])
        assert "'TextBlock'" not in str(doc)


def test_a_notice_reading_button_opens_a_dialog_and_reads_back_to_the_same_button() -> None:
    """Read (a transient command: what it shows must not stay in the chat) is an Action.Submit with
    task/fetch: Teams opens a dialog and the notice card is not replaced; a change's button on the same
    notice still answers on the card."""
    read = Button("relay_read", "Read", "relay 7", "primary")
    reply = Button("relay_reply", "Reply through Signpost", "reply 7", input=Input("message", "Your answer"))
    text = "A message is waiting. Send 'relay 7' to read it, or send 'relays' for counts."
    card = render_notice(Notice("S001", "relay", text, (read, reply)), only_relay_reads)
    assert texts_of(card).startswith("A message is waiting. Press Read to read it, or send 'relays' for counts.")
    first, second = card["actions"]
    assert first["type"] == "Action.Submit" and first["title"] == "Read" and first["style"] == "positive"
    assert first["data"]["msteams"] == {"type": "task/fetch"} and "fallback" not in first
    action = read_action(first["data"])
    assert action is not None and action.button == read and command_text(action) == "relay 7"
    assert second["type"] == "Action.ShowCard"
    [send] = second["card"]["actions"]
    assert send["type"] == "Action.Execute" and send["verb"] == "relay_reply"


def test_a_card_shown_in_a_dialog_has_submit_buttons_only() -> None:
    """Inside a dialog a Submit reaches the bot as task/submit: Execute buttons become their fallback."""
    reply = Button("relay_reply", "Reply through Signpost", "reply 7", input=Input("message", "Your answer"))
    challenge = Challenge("ch-9", "Enter your code")
    card = for_dialog(render_reply(Reply(Outcome.CHALLENGED, "Code", buttons=(reply,), challenge=challenge)))
    actions = actions_of(card)
    assert [a["type"] for a in actions] == ["Action.ShowCard", "Action.Submit", "Action.Submit"]
    assert read_action({**actions[1]["data"], "message": "ok"}) is not None
    code = read_action({**actions[2]["data"], "code": "123456"})
    assert code is not None and (code.verb, code.challenge_id, code.code) == ("code", "ch-9", "123456")


def test_a_transient_reply_for_the_chat_is_a_launcher_without_its_text() -> None:
    """A reply marked transient (Reply.transient: the command that shows it again) is never put into a
    card for the chat: the card says it is shown privately, and its one button opens a dialog that
    sends the same command. The same reply in a dialog is shown as it is."""
    reply = Reply(Outcome.INFO, "Message 7 about …", lines=("Message: zebrafinch",), transient="relay 7")
    chat = render_in_chat(reply)
    assert "zebrafinch" not in str(chat) and "Message 7" not in str(chat)
    assert texts_of(chat).startswith("Signpost shows this in a private window, so it is not kept in this chat.")
    [open_] = chat["actions"]
    assert open_["type"] == "Action.Submit" and open_["data"]["msteams"] == {"type": "task/fetch"}
    action = read_action(open_["data"])
    assert action is not None and command_text(action) == "relay 7" and action.button is not None
    assert action.button.input is None
    assert "Message: zebrafinch" in texts_of(render_reply(reply))
    assert render_in_chat(Reply(Outcome.INFO, "Plain")) == render_reply(Reply(Outcome.INFO, "Plain"))


def test_a_leaver_s_signpost_says_they_are_no_longer_in_post_instead_of_a_contact() -> None:
    gone = replace(POST, phone="", email="", in_post=False)
    card = render_reply(Reply(Outcome.ANSWERED, "Signposts: 1", child_ref="999 000 0018", signposts=(gone,)))
    [container] = [e for e in card["body"] if e["type"] == "Container"]
    texts = texts_of(container)
    assert "Sam Carter ★ lead professional" in texts and "No longer in this post: contact the organisation" in texts
    assert "Phone" not in texts and "Email" not in texts


def test_a_signpost_with_a_phone_or_an_email_only_shows_that_one_alone() -> None:
    """A feed may give one of them (README, Feeds): no empty "Phone:" or "Email:" line."""
    for post, shown, left_out in (
        (replace(POST, phone=""), "Email: ", "Phone: "),
        (replace(POST, email=""), "Phone: ", "Email: "),
    ):
        card = render_reply(Reply(Outcome.ANSWERED, "Signposts: 1", child_ref="999 000 0018", signposts=(post,)))
        text = texts_of(next(e for e in card["body"] if e["type"] == "Container"))
        assert shown in text and left_out not in text and "None" not in text
