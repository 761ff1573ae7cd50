"""The console prints what people typed as text: terminal control sequences in it are shown, not obeyed."""

from __future__ import annotations

import pytest

from bot.console.notices import render_notice
from bot.console.render import render
from handlers.search import request_access_button, send_message_button
from handlers.vocabulary import Notice, Outcome, Reply

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

# An OSC 8 hyperlink, a screen clear and a right-to-left override, as someone might type into a reason.
TYPED = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\ \x1b[2J \u202etxt.exe"


def test_a_reply_shows_control_sequences_as_escapes() -> None:
    shown = render(Reply(Outcome.DONE, f"Request 4 denied. Reason: {TYPED}", lines=("line one", "line two")))
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b]8;;https://evil.example/" in shown and "\\u202etxt.exe" in shown
    assert "click here" in shown and shown.endswith("\nline one\nline two")


def test_a_notice_shows_control_sequences_as_escapes_and_keeps_line_breaks() -> None:
    shown = render_notice(Notice("DM01", "request", f"Reason: {TYPED}\nSecond line\twith a tab"))
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "click here" in shown and "\nSecond line\twith a tab" in shown


def test_the_shielded_answers_buttons_show_the_reference_grouped_as_everywhere_else() -> None:
    """The shielded answer's buttons read `type: request 9990001146 PURPOSE` where every other line
    says 999 000 1146 (newcomer): the console shows the command as a person types it, reference
    grouped (the grammar reads both); the command a click sends back (Slack, Teams) is unchanged."""
    buttons = (request_access_button(9990001146), send_message_button(9990001146))
    shown = render(Reply(Outcome.SHIELDED, "A record exists and is shielded.", buttons=buttons))
    assert "  [Request access] type: request 999 000 1146 PURPOSE" in shown.splitlines()
    assert "  [Send a message] type: message 999 000 1146 TEXT" in shown.splitlines()
    assert "9990001146" not in shown
    assert [b.command for b in buttons] == ["request 9990001146", "message 9990001146"]
