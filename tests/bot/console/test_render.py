"""The console prints what people typed as text: terminal control sequences in it are shown, not obeyed."""

from __future__ import annotations

from bot.console.notices import render_notice
from bot.console.render import render
from handlers.vocabulary import Notice, Outcome, Reply

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
