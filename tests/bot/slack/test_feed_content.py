"""Text Signpost did not write (feeds, Slack profiles) reaches Slack shown, never interpreted:
in blocks, in a message's notification text, and cut without losing the contact line."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest

from bot.slack import render
from handlers.vocabulary import Challenge, Notice, Outcome, Platform, Principal, Reply, Signpost
from tests.access_helpers import notices
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser
from tests.factories import load_standard

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

DUTY = SlackUser("U0DUTY")
STRANGER = SlackUser("U0STRANGER")
HOSTILE_NAME = "Sam <!channel> <https://evil.example/approve|Verified by IT: approve>"
POST = Signpost(
    "Priya Shah", "School nurse", "NHS", "School nursing", "0161 496 0002", "priya@nhs.example", False, date(2024, 9, 1)
)
ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")  # an & that does not begin a whole entity


async def test_a_notice_quoting_a_slack_profile_cannot_ping_or_link_in_its_notification(
    slack_app: SlackHarness,
) -> None:
    """An unlinked account's real name, in the duty manager's registration notice: chat.postMessage's
    ``text`` (the notification) is escaped as the blocks are."""
    await load_standard(slack_app.signpost)
    await slack_app.link("DM01", DUTY)
    slack_app.fake.profiles[STRANGER.user_id] = {"id": STRANGER.user_id, "profile": {"real_name": HOSTILE_NAME}}
    await slack_app.slack.command(STRANGER, "register P001")
    await slack_app.front.idle()
    [notice] = [n for n in await notices(slack_app.signpost, "DM01") if "Registration request" in n.text]
    await slack_app.front.deliverer.deliver(Principal(Platform.SLACK, DUTY.team_id, DUTY.user_id), notice)
    [posted] = slack_app.fake.of("chat.postMessage")
    for text in (posted.body["text"], *(b["text"]["text"] for b in posted.body["blocks"] if b["type"] == "section")):
        assert "<!channel>" not in text and "<https://" not in text
        assert "Sam &lt;!channel&gt; &lt;https://evil.example/approve|Verified by IT: approve&gt;" in text


def test_every_message_text_is_escaped_and_keeps_its_command_hints() -> None:
    """The ``text`` of a private reply, a DM notice and a code fallback: escaped, hints in Slack's form."""
    said = "Denied: <!here> & <https://evil.example|ok>. Send 'pending' to see the rest."
    expected = "Denied: &lt;!here&gt; &amp; &lt;https://evil.example|ok&gt;. Send `/signpost pending` to see the rest."
    assert render.message(Reply(Outcome.DONE, said))["text"] == expected
    assert render.notice_message(Notice("DM01", "kind", said))["text"] == expected
    assert render.challenge_fallback(render_challenge(), Reply(Outcome.INFO, said))["text"] == expected


def render_challenge() -> Challenge:
    return Challenge("c1", "Enter the code from your authenticator app.")


def test_sections_are_verbatim_so_bare_urls_and_channels_stay_text() -> None:
    """Slack does not turn a feed's bare ``https://…`` or ``#general`` into a link in a section."""
    post = replace(POST, service="Call https://evil.example/call or #general")
    blocks = render.reply_blocks(Reply(Outcome.ANSWERED, "Signposts: 1", signposts=(post,)))
    sections = [b for b in blocks if b["type"] == "section"]
    assert sections and all(b["text"]["verbatim"] is True for b in sections)
    assert all(b["text"]["verbatim"] is True for b in render.notice_message(Notice("DM01", "k", "x"))["blocks"][:1])


def test_a_long_heavily_escaped_signpost_keeps_its_contact_line_and_whole_entities() -> None:
    """Every field at the feed's longest and made of ``<>&``: the section fits Slack's 3000, no
    entity is cut in two, the bold name is closed, and the phone and email are still there."""
    post = replace(POST, practitioner_name="<" * 200 + " " + ">" * 200, role="&" * 200, organisation="<&>" * 66)
    post = replace(post, service=">" * 200, lead_professional=True)
    text = render.signpost_block(post)["text"]["text"]
    assert len(text) <= 3000
    assert not ENTITY.search(text)
    name_line, service_line, contact = text.split("\n")
    assert name_line.startswith("*&lt;") and "…* — &amp;" in name_line and name_line.endswith("★ *Lead professional*")
    assert service_line.endswith("· since 01/09/2024 · current")
    assert contact == "<tel:01614960002|0161 496 0002> · <mailto:priya@nhs.example|priya@nhs.example>"


def test_a_signpost_that_fits_is_shown_whole() -> None:
    text = render.signpost_block(replace(POST, organisation="Tom & Jerry <Ltd>"))["text"]["text"]
    assert text.startswith("*Priya Shah* — School nurse, Tom &amp; Jerry &lt;Ltd&gt;\n") and "…" not in text


def test_a_cut_reply_line_never_ends_inside_an_entity() -> None:
    """The reply's own section and notification are cut at a whole entity too."""
    body = render.message(Reply(Outcome.INFO, "x" * 2897 + "<<<<"))
    for text in (body["text"], body["blocks"][0]["text"]["text"]):
        assert text.endswith("x…") and not ENTITY.search(text)
