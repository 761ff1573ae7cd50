"""Block Kit from Reply: ordering, ended marks, escaping, buttons and modal shapes Slack accepts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest
from slack_sdk.models.blocks import DividerBlock, MarkdownTextObject, SectionBlock

from bot.slack import render
from handlers.vocabulary import Button, Challenge, Input, Link, Notice, Outcome, Reply, Signpost

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

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
ENDED = replace(CURRENT, practitioner_name="Tom Reed", ended=date(2024, 7, 20), current=False)


def test_a_section_per_signpost_lead_first_then_current_then_ended() -> None:
    reply = Reply(Outcome.ANSWERED, "Signposts", signposts=(ENDED, CURRENT, LEAD))
    sections = [b["text"]["text"] for b in render.reply_blocks(reply)[1:] if b["type"] == "section"]
    assert [s.split("*")[1] for s in sections] == ["Sam Carter", "Priya Shah", "Tom Reed"]
    assert "Lead professional" in sections[0] and "Lead professional" not in sections[1]
    assert "*Ended* 20/07/2024" in sections[2] and "current" in sections[1]


def test_sections_and_dividers_are_the_block_kit_slack_sdk_would_send() -> None:
    """Sections and dividers are written as dicts: the JSON Slack gets is byte for byte what
    slack_sdk's models gave, for short, escaped and over-long text (cut to Slack's limit)."""
    for text in ("Signposts for 999 000 1006: 2 involvements.", "&lt;!channel&gt; &amp;", "é" * 4000, "a&gt;" * 900):
        ours = render.section(text)
        theirs = SectionBlock(text=MarkdownTextObject(text=render.cut_markdown(text), verbatim=True)).to_dict()
        assert json.dumps(ours) == json.dumps(theirs) and len(ours["text"]["text"]) <= 3000
    assert json.dumps(render.divider()) == json.dumps(DividerBlock().to_dict())
    blocks = render.reply_blocks(Reply(Outcome.ANSWERED, "Signposts", signposts=(CURRENT, LEAD)))
    assert [b["type"] for b in blocks] == ["section", "divider", "section", "divider", "section"]


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


def test_enrolment_message_opens_its_link_from_a_button_and_notifies_with_its_own_text() -> None:
    """enrol's answer as a message: its text, a link button to the set-up page (no bare URL), then
    the Enter code button; the notification text is "Open this link …", not the code prompt."""
    link = "https://signpost.example/enrol/AbCdEfGhIjKlMnOpQrStUv"
    reply = Reply(
        Outcome.DONE,
        "Open this link to set up.",
        links=(Link("Set up authenticator", link),),
        challenge=Challenge("opaque-id", "Enter the code."),
    )
    assert reply.challenge is not None
    body = render.challenge_fallback(reply.challenge, reply)
    assert body["text"] == "Open this link to set up."
    sections = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert sections == ["Open this link to set up.", "Enter the code."]
    assert link not in json.dumps(sections)
    [links, actions] = [b for b in body["blocks"] if b["type"] == "actions"]
    [open_page] = links["elements"]
    assert open_page == {
        "type": "button",
        "action_id": render.OPEN_LINK,
        "text": {"type": "plain_text", "text": "Set up authenticator", "emoji": False},
        "url": link,
        "style": "primary",
    }
    [button] = actions["elements"]
    assert button["action_id"] == render.ENTER_CODE and json.loads(button["value"])["id"] == "opaque-id"


def test_command_hints_read_as_a_slack_user_types_them() -> None:
    """ "send: enrol" becomes send `/signpost enrol` in Slack; help lines start with the slash command."""
    reply = Reply(Outcome.REFUSED, "You haven't set one up yet. Send: enrol")
    assert render.reply_blocks(reply)[0]["text"]["text"] == "You haven't set one up yet. Send `/signpost enrol`"
    assert render.message(reply)["text"] == "You haven't set one up yet. Send `/signpost enrol`"
    notice = Notice("DM1", "request", "Access request 12 is waiting. Send 'pending' to read the purpose given.")
    assert "Send `/signpost pending` to read" in render.notice_message(notice)["blocks"][0]["text"]["text"]
    relayed = Notice("S1", "relay_answered", "Your message 7 was answered. Send 'relay 7' to read the answer.")
    assert (
        render.notice_message(relayed)["text"]
        == "Your message 7 was answered. Send `/signpost relay 7` to read the answer."
    )
    refused = Reply(Outcome.REFUSED, "Or send: register YOUR_PRACTITIONER_ID")
    assert render.section(render.text_of(refused.text))["text"]["text"] == (
        "Or send `/signpost register YOUR_PRACTITIONER_ID`"
    )
    help_reply = Reply(
        Outcome.INFO,
        "Signpost tells you who else is working with a child.",
        lines=(
            "• 943 476 5919 (a reference number)",
            "• enrol: set up the authenticator app",
            "• help: what you can ask",
        ),
        lines_are_commands=True,
    )
    assert render.reply_blocks(help_reply)[1]["text"]["text"].splitlines() == [
        "• `/signpost 943 476 5919` (a reference number)",
        "• `/signpost enrol`: set up the authenticator app",
        "• `/signpost help`: what you can ask",
    ]


def test_phone_numbers_and_emails_are_tappable_and_signposts_are_divided() -> None:
    reply = Reply(Outcome.ANSWERED, "Signposts", signposts=(CURRENT, ENDED), buttons=(Button("x", "X", "x"),))
    blocks = render.reply_blocks(reply)
    assert [b["type"] for b in blocks] == ["section", "divider", "section", "divider", "section", "divider", "actions"]
    contact = blocks[2]["text"]["text"].splitlines()[-1]
    assert contact == "<tel:01614960002|0161 496 0002> · <mailto:priya.shah@nhs.example|priya.shah@nhs.example>"
    odd = replace(CURRENT, phone="ask reception <x>", email="not an email|<!here>")
    assert render.signpost_block(odd)["text"]["text"].splitlines()[-1] == (
        "ask reception &lt;x&gt; · not an email|&lt;!here&gt;"
    )


def test_approve_and_deny_ask_for_confirmation_before_they_are_sent() -> None:
    blocks = render.action_blocks(
        (Button("approve", "Approve", "approve 1", "primary"), Button("deny", "Deny", "deny 1", "danger"))
    )
    approve, deny = blocks[0]["elements"]
    assert approve["confirm"]["title"]["text"] == "Approve this request?"
    assert approve["confirm"]["confirm"]["text"] == "Approve" and approve["confirm"]["deny"]["text"] == "Cancel"
    assert deny["confirm"]["style"] == "danger" and deny["confirm"]["confirm"]["text"] == "Deny"
    assert "confirm" not in render.button_element(Button("request_access", "Request access", "request 1"))


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


def test_a_leaver_s_signpost_says_they_are_no_longer_in_post_instead_of_a_contact() -> None:
    """As the store gives it (no phone, no email, not in post): who, for what and when stay."""
    gone = replace(LEAD, phone="", email="", in_post=False)
    text = render.signpost_block(gone)["text"]["text"]
    assert text.splitlines() == [
        "*Sam Carter* — School nurse, Northshire School Health  ★ *Lead professional*",
        "School nursing · since 01/09/2024 · current",
        "_No longer in this post: contact the organisation_",
    ]


def test_a_signpost_with_a_phone_or_an_email_only_shows_that_one_alone() -> None:
    """A feed may give one of them (README, Feeds): no empty link and no dangling separator."""
    no_phone, no_email = replace(CURRENT, phone=""), replace(CURRENT, email="")
    assert render.signpost_block(no_phone)["text"]["text"].splitlines()[-1] == (
        "<mailto:priya.shah@nhs.example|priya.shah@nhs.example>"
    )
    assert render.signpost_block(no_email)["text"]["text"].splitlines()[-1] == "<tel:01614960002|0161 496 0002>"
