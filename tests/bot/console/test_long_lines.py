"""A line piped into the console is read at most a command's length at a time: one too long is
answered kindly as too long (its rest skipped), and an input with no line end at all
(``< /dev/zero``, read until memory ran out) is answered once and ends."""

from __future__ import annotations

import io

from bot.app import Signpost
from bot.console.console import Console
from handlers.grammar import MAX_COMMAND_TEXT
from tests.access_helpers import audit_events
from tests.factories import seed_demo

TOO_LONG = "That message is too long for a command"


async def test_a_line_too_long_is_answered_as_too_long_and_the_next_line_is_read(signpost: Signpost) -> None:
    await seed_demo(signpost)
    out = io.StringIO()
    typed = io.StringIO("A " * (2 * MAX_COMMAND_TEXT) + "\nhelp\n")
    assert await Console(signpost, "NS-P0001", typed, out).run() == 0
    said = out.getvalue()
    assert said.count(TOO_LONG) == 1 and "A A" not in said
    assert [(e.action, e.detail) for e in await audit_events(signpost) if e.platform == "console"][-2:] == [
        ("usage", "too long"),
        ("help", ""),
    ]


async def test_an_input_with_no_line_end_is_answered_once_and_ends(signpost: Signpost) -> None:
    """/dev/zero: one "too long" answer, then the console ends as at the end of its input."""
    await seed_demo(signpost)
    out = io.StringIO()
    with open("/dev/zero", encoding="utf-8") as zeros:
        assert await Console(signpost, "NS-P0001", zeros, out).run() == 0
    assert out.getvalue().count(TOO_LONG) == 1
