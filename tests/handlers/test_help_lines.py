"""Every line of help reads the same way: what to send, an example after ", e.g.", then what it
does after a colon (a line laid out with spaces instead read as one long command)."""

from __future__ import annotations

import re

from bot.app import Signpost
from tests.factories import load_standard, ready, say

LINE = re.compile(r"^• [^:]+?(?:, e\.g\. [^:]+)?(?: \([^)]*\))?: \S.*$")


async def test_each_help_line_is_command_example_then_what_it_does(signpost: Signpost) -> None:
    await load_standard(signpost)
    await ready(signpost, "AD01")  # an admin sees every command
    reply = await say(signpost, "AD01", "help")
    commands = [line for line in reply.lines if not line.startswith(("• 999", "• Ava"))]
    assert any(line.startswith("• lead-notices") for line in commands), reply.lines
    for line in commands:
        assert "  " not in line and LINE.match(line), line
