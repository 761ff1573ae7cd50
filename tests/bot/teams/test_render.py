"""Adaptive Cards from the shared Reply model, and card actions read back (no SDK, no network)."""

from __future__ import annotations

from datetime import date

from bot.teams.render import command_text, missing_input, read_action, render_notice, render_reply, render_text
from handlers.vocabulary import Button, Challenge, Input, Notice, Outcome, Reply, Signpost
from tests.bot.teams.teams_support import actions_of, texts_of

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
)


def test_signposts_render_as_one_container_each_with_contacts() -> None:
    card = render_reply(Reply(Outcome.ANSWERED, "Signposts: 2", child_ref="999 000 0018", signposts=(POST, ENDED)))
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    containers = [e for e in card["body"] if e["type"] == "Container"]
    assert len(containers) == 2
    first, second = texts_of(containers[0]), texts_of(containers[1])
    assert "Sam Carter ★ lead professional" in first and "0161 496 0001" in first and "since 10/01/2025" in first
    assert "ended 20/07/2024" in second and "lead professional" not in second


def test_buttons_without_input_are_execute_with_a_submit_fallback() -> None:
    card = render_notice(Notice("DM01", "k", "Decide", (Button("approve", "Approve", "approve 7", "primary"),)))
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
    for doc in (render_reply(reply), render_notice(Notice("P002", "denied", typed)), render_text(typed)):
        blocks = [e for e in doc["body"] if "text" in e or "inlines" in e]
        assert blocks and all(b["type"] == "RichTextBlock" for b in blocks)
        assert any(typed in r["text"] for b in blocks for r in b["inlines"])
        assert "'TextBlock'" not in str(doc)
