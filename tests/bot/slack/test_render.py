"""Block Kit from Reply: ordering, ended marks, escaping, buttons and modal shapes Slack accepts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from bot.slack import render
from handlers.vocabulary import Button, Challenge, Input, Notice, Outcome, Reply, Signpost

CURRENT = Signpost(
    "Priya Shah",
    "School nurse",
    "Northshire School Health",
    "School nursing",
    "0161 496 0002",
    "priya.shah@nhs.example",
    False,
    date(2024, 9, 1),
)
LEAD = replace(CURRENT, practitioner_name="Sam Carter", lead_professional=True)
ENDED = replace(CURRENT, practitioner_name="Tom Reed", ended=date(2024, 7, 20))


def test_a_section_per_signpost_lead_first_then_current_then_ended() -> None:
    reply = Reply(Outcome.ANSWERED, "Signposts", signposts=(ENDED, CURRENT, LEAD))
    sections = [b["text"]["text"] for b in render.reply_blocks(reply)[1:]]
    assert [s.split("*")[1] for s in sections] == ["Sam Carter", "Priya Shah", "Tom Reed"]
    assert "Lead professional" in sections[0] and "Lead professional" not in sections[1]
    assert "*Ended* 20/07/2024" in sections[2] and "current" in sections[1]


def test_store_text_is_escaped_so_it_cannot_mention_or_link() -> None:
    sneaky = replace(CURRENT, practitioner_name="<!channel> & <https://evil.example|click>")
    text = render.signpost_block(sneaky)["text"]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text


def test_buttons_carry_their_command_and_input_and_repeat_ids_get_their_own_block() -> None:
    reason = Input("reason", "Purpose")
    buttons = (
        Button("approve", "Approve", "approve 1", "primary"),
        Button("deny", "Deny", "deny 1", "danger"),
        Button("approve", "Approve", "approve 2", "primary"),
        Button("request_access", "Request access", "request 9990000050", None, reason),
    )
    blocks = render.action_blocks(buttons)
    assert [[e["action_id"] for e in b["elements"]] for b in blocks] == [
        ["approve", "deny"],
        ["approve", "request_access"],
    ]
    assert len({b["block_id"] for b in blocks}) == 2
    values = [render.decode_button(e["value"]) for b in blocks for e in b["elements"]]
    assert values[2] == render.ButtonValue("approve 2") and values[3] == render.ButtonValue(
        "request 9990000050", reason
    )
    assert blocks[0]["elements"][1]["style"] == "danger" and "style" not in blocks[1]["elements"][1]


def test_code_modal_has_one_input_and_only_the_challenge_id_as_metadata() -> None:
    view = render.challenge_modal(Challenge("opaque-42", "Enter your code", error="Wrong code"))
    assert view["private_metadata"] == "opaque-42" and view["callback_id"] == render.CODE_CALLBACK
    assert [b["type"] for b in view["blocks"]].count("input") == 1
    assert render.challenge_errors(Challenge("x", "p", "Wrong code")) == {"code": "Wrong code"}
    assert len(view["title"]["text"]) <= 24 and len(view["submit"]["text"]) <= 24


def test_code_prompt_without_a_modal_keeps_the_replys_text_and_lines_before_the_enter_code_button() -> None:
    """A challenge answered as a message (enrol's) still shows what the reply says: the set-up link."""
    link = "https://signpost.example/enrol/AbCdEfGhIjKlMnOpQrStUv"
    reply = Reply(
        Outcome.DONE, "Open this link to set up.", lines=(link,), challenge=Challenge("opaque-id", "Enter the code.")
    )
    assert reply.challenge is not None
    body = render.challenge_fallback(reply.challenge, reply)
    sections = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert sections == ["Open this link to set up.", link, "Enter the code."]
    [actions] = [b for b in body["blocks"] if b["type"] == "actions"]
    [button] = actions["elements"]
    assert button["action_id"] == render.ENTER_CODE and json.loads(button["value"])["id"] == "opaque-id"


def test_input_modal_collects_the_buttons_input_with_its_limits() -> None:
    value = render.ButtonValue("request 1", Input("reason", "Purpose", required=True, max_length=300))
    view = render.input_modal(value, '{"c":"request 1"}')
    [block] = view["blocks"]
    assert block["optional"] is False and block["element"]["max_length"] == 300 and block["label"]["text"] == "Purpose"


def test_long_answers_stay_within_slacks_block_limits() -> None:
    reply = Reply(Outcome.ANSWERED, "Many", signposts=(CURRENT,) * 80, buttons=(Button("deny", "Deny", "deny 1"),))
    blocks = render.reply_blocks(reply)
    assert len(blocks) <= render.MAX_MESSAGE_BLOCKS
    assert "more involvements are not shown here" in json.dumps(blocks)
    assert blocks[-1]["type"] == "actions"
    assert len(render.result_modal(reply)["blocks"]) <= render.MAX_VIEW_BLOCKS


def test_notice_message_is_its_text_and_buttons_only() -> None:
    notice = Notice("DM01", "kind", "Request 7 waits", (Button("approve", "Approve", "approve 7"),))
    body = render.notice_message(notice)
    assert body["text"] == "Request 7 waits" and [b["type"] for b in body["blocks"]] == ["section", "actions"]


def test_decode_button_refuses_anything_that_is_not_ours() -> None:
    for bad in ("approve 7", "[]", '{"x": 1}'):
        try:
            render.decode_button(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
